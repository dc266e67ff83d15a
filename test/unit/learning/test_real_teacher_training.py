"""Training with the real-face teacher: class-by-class shares, the mixed targets, cached logits."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from conftest import make_fer_folder

from fer_mask_ros.learning.training import TrainConfig, Trainer, mix_teacher_targets, real_teacher_weights


def test_each_teacher_weighs_most_on_the_classes_it_gets_right():
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    own = np.array([0, 0, 0, 0, 0, 0, 2, 2])  # right on angry and fear, never says disgust
    real = np.array([1, 1, 1, 1, 1, 1, 2, 2])  # right on disgust and fear, never says angry
    share = real_teacher_weights(labels, own, real)
    assert share[0] == pytest.approx(0.1)  # own is better on angry (floor keeps the other at 0.1)
    assert share[1] == pytest.approx(0.9)  # real is better on disgust
    assert share[2] == pytest.approx(0.5)  # equal on fear
    assert share[3] == pytest.approx(0.5)  # a class neither saw: half each


def test_mixed_target_is_the_class_wise_mixture_renormalised():
    own = torch.tensor([[0.7, 0.3, 0, 0, 0, 0, 0]])
    real_logits = torch.log(torch.tensor([[0.1, 0.9, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6]]))
    share = torch.tensor([[0.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5]])
    mixed = mix_teacher_targets(own, real_logits, share, temperature=1.0)
    expected = torch.tensor([0.7, 0.9, 0, 0, 0, 0, 0])
    assert torch.allclose(mixed[0], expected / expected.sum(), atol=1e-4)
    assert torch.allclose(mixed.sum(1), torch.ones(1))


def _config(data, output, **kw) -> TrainConfig:
    base = dict(data=data, output=str(output), epochs=1, batch_size=8, lr=0.05, widths=(4, 8), mask_variants=1,
                progress=False, device="cpu", warmup_epochs=1, seed=0)
    base.update(kw)
    return TrainConfig(**base)


def test_trainer_distils_the_real_teacher_and_caches_its_logits(tmp_path, tiny_teacher_onnx, tiny_model_path):
    torch.set_num_threads(1)
    with pytest.raises(ValueError, match="--real-teacher"):
        Trainer(_config(str(tmp_path), tmp_path / "x", real_teacher=str(tmp_path / "none.onnx")))
    root = make_fer_folder(tmp_path / "fer", per_class_train=2, per_class_test=2)
    trainer = Trainer(_config(root, tmp_path / "run", real_teacher=tiny_teacher_onnx, teacher=tiny_model_path))
    trainer.load_data()
    trainer.build()
    assert trainer.real_logits.shape == (len(trainer.y), 7)
    assert os.path.isfile(tmp_path / "run" / "real_teacher.npz")
    share = trainer.real_share.numpy()
    assert share.shape == (len(trainer.y), 7) and np.all((share >= 0.1) & (share <= 0.9))
    x = torch.rand(3, 1, 48, 48)
    idx = torch.tensor([0, 1, 2])
    own = trainer._own_teacher_targets(x, idx, 4.0)
    expected = mix_teacher_targets(own, trainer.real_logits[idx], trainer.real_share[idx], 4.0)
    assert torch.allclose(trainer._teacher_targets(x, idx, 4.0), expected)
    assert np.isfinite(trainer.train_epoch(0)["train_loss"])
    # a second run with the same data reads the cached logits
    again = Trainer(_config(root, tmp_path / "run", real_teacher=tiny_teacher_onnx, teacher=tiny_model_path))
    again.load_data()
    assert torch.equal(again.real_logits, trainer.real_logits)
