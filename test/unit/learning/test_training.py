from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from conftest import fake_face, make_fer_folder, write_image

from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.learning.training import TrainConfig, Trainer, augment, masked_variants
from fer_mask_ros.perception.classifier import EmotionClassifier, load_model


def _config(data, output, **kw) -> TrainConfig:
    base = dict(data=data, output=str(output), epochs=3, batch_size=8, lr=0.05, widths=(4, 8), mask_variants=1,
                progress=False, device="cpu", warmup_epochs=1, seed=0)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: faster than two on a busy 2-core machine, and restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _clean_loss(trainer: Trainer) -> float:
    """Cross-entropy on the un-augmented training images (batch statistics, no dropout in the config)."""
    import torch.nn.functional as F

    trainer.model.train()
    with torch.no_grad():
        x = trainer.x_clean.float().unsqueeze(1) / 255.0
        logits, _ = trainer.model(x)
        return float(F.cross_entropy(logits, trainer.y))


def test_augment_shapes_and_range():
    g = torch.Generator().manual_seed(0)
    x = torch.from_numpy(np.stack([fake_face(i) for i in range(6)]))
    out = augment(x, g)
    assert out.shape == (6, 1, 48, 48) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    again = augment(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    assert not torch.allclose(out, x.float().unsqueeze(1) / 255.0)


def test_masked_variants_deterministic():
    images = np.stack([fake_face(i) for i in range(3)])
    v = masked_variants(images, 2, seed=5)
    assert v.shape == (2, 3, 48, 48)
    assert not np.array_equal(v[0], v[1])
    assert np.array_equal(v, masked_variants(images, 2, seed=5))
    assert all(not np.array_equal(v[0, i], images[i]) for i in range(3))


def test_training_steps_reduce_loss(tmp_path):
    root = make_fer_folder(tmp_path / "fer", per_class_train=6, per_class_test=2, labels=["happy", "sad", "surprise"])
    trainer = Trainer(_config(root, tmp_path / "run", epochs=6, batch_size=6, lr=0.1, dropout=0.0, mask_prob=0.0,
                              warmup_epochs=0))
    trainer.load_data()
    # Training_ files train, PublicTest_ files validate, PrivateTest_ files are left out
    assert len(trainer.train_set) == 18 and len(trainer.val_set) == 3
    assert set(trainer.train_set.usages) == {"Training"} and set(trainer.val_set.usages) == {"PublicTest"}
    trainer.build()
    assert trainer.steps_per_epoch == 3
    before = _clean_loss(trainer)
    losses = [trainer.train_epoch(e)["train_loss"] for e in range(6)]
    after = _clean_loss(trainer)
    assert np.all(np.isfinite(losses))
    assert after < before - 0.3, (before, after, losses)
    assert np.mean(losses[-2:]) < losses[0] - 0.2, losses


def test_run_checkpoint_resume_and_best(tmp_path):
    root = make_fer_folder(tmp_path / "fer", per_class_train=2, per_class_test=2)
    out = tmp_path / "run"
    best = Trainer(_config(root, out, epochs=2, limit=10)).run()
    assert {"epoch", "train_loss", "val_acc", "val_masked_acc", "val_mask_flag_acc"} <= set(best)
    for name in ("best.pt", "checkpoint.pt", "log.jsonl"):
        assert (out / name).is_file(), name
    ckpt = torch.load(str(out / "checkpoint.pt"), weights_only=True)
    assert ckpt["epoch"] == 1

    resumed = Trainer(_config(root, out, epochs=3, limit=10, resume=True))
    resumed.run()
    assert resumed.start_epoch == 2
    epochs = [json.loads(line)["epoch"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
    assert torch.load(str(out / "checkpoint.pt"), weights_only=True)["epoch"] == 2

    model, meta = load_model(str(out / "best.pt"))
    assert model.widths == (4, 8)
    assert meta["config"]["widths"] == (4, 8) or list(meta["config"]["widths"]) == [4, 8]
    assert "selected" in meta
    clf = EmotionClassifier(str(out / "best.pt"), backend="torch")
    pred = clf.predict([fake_face(3)])[0]
    assert pred.emotion in EMOTIONS and abs(pred.probabilities.sum() - 1) < 1e-6
    assert not os.path.exists(str(out / "checkpoint.pt.tmp"))


def test_needs_public_test_split(tmp_path):
    root = tmp_path / "fer"
    make_fer_folder(root, per_class_train=1, per_class_test=0, labels=["happy", "sad"])
    with pytest.raises(ValueError, match="PublicTest"):
        Trainer(_config(str(root), tmp_path / "run")).load_data()


def test_augment_strength_zero_only_flips():
    x = torch.from_numpy(np.stack([fake_face(i % 7, seed=i) for i in range(8)]))
    out = augment(x, torch.Generator().manual_seed(1), strength=0.0)
    plain = x.float().unsqueeze(1) / 255.0
    for i in range(8):
        assert torch.allclose(out[i], plain[i], atol=1e-5) or torch.allclose(out[i], plain[i].flip(2), atol=1e-5)
    full = augment(x, torch.Generator().manual_seed(1), strength=1.0)
    assert not torch.allclose(full, out)


def test_init_from_a_narrower_model_is_widened(tmp_path):
    from fer_mask_ros.perception.classifier import save_model
    from fer_mask_ros.perception.zoo.network import MaskedFERNet

    root = make_fer_folder(tmp_path / "fer", per_class_train=2, per_class_test=2)
    narrow = tmp_path / "narrow.pt"
    save_model(MaskedFERNet((4, 8)), str(narrow))
    trainer = Trainer(_config(root, tmp_path / "run", epochs=1, limit=10, init=str(narrow), widths=(6, 8)))
    trainer.run()
    model, _ = load_model(str(tmp_path / "run" / "best.pt"))
    assert model.widths == (6, 8)
    with pytest.raises(ValueError, match="narrow.pt"):
        Trainer(_config(root, tmp_path / "run2", epochs=1, limit=10, init=str(narrow), widths=(3, 8))).run()


def test_swa_averages_weights_holds_the_lr_and_resumes(tmp_path):
    root = make_fer_folder(tmp_path / "fer", per_class_train=2, per_class_test=2)
    out = tmp_path / "run"
    cfg = _config(root, out, epochs=3, limit=10, swa_start=2, lr=0.05, swa_lr=0.01)
    trainer = Trainer(cfg)
    trainer.run()
    assert trainer.swa_count == 2  # epochs 2 and 3
    assert trainer.opt.param_groups[0]["lr"] == pytest.approx(0.01)
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert "swa_val_acc" not in records[1] and "swa_val_acc" in records[2]  # needs two snapshots
    assert (out / "swa.pt").is_file()
    swa_model, meta = load_model(str(out / "swa.pt"))
    assert meta["selected"]["swa_epochs"] == 2

    resumed = Trainer(_config(root, out, epochs=4, limit=10, swa_start=2, lr=0.05, swa_lr=0.01, resume=True))
    resumed.run()
    assert resumed.swa_count == 3


def test_swa_average_is_the_mean_and_batchnorm_is_re_estimated(tmp_path):
    root = make_fer_folder(tmp_path / "fer", per_class_train=2, per_class_test=2)
    trainer = Trainer(_config(root, tmp_path / "run", limit=10, swa_start=1, dropout=0.0))
    trainer.load_data()
    trainer.build()
    weight = next(n for n, p in trainer.model.named_parameters() if p.dim() == 4)
    for value in (1.0, 3.0):
        with torch.no_grad():
            trainer.model.state_dict()[weight].fill_(value)
        trainer._swa_update()
    assert torch.allclose(trainer.swa[weight], torch.full_like(trainer.swa[weight], 2.0))

    norm_name = next(n for n, m in trainer.model.named_modules() if isinstance(m, torch.nn.BatchNorm2d))
    stale = trainer.swa[norm_name + ".running_var"].clone()
    averaged = trainer._swa_model()
    norm = dict(averaged.named_modules())[norm_name]
    assert not averaged.training and norm.momentum == pytest.approx(0.1)
    assert torch.allclose(dict(averaged.named_parameters())[weight], torch.full_like(trainer.swa[weight], 2.0))
    assert not torch.allclose(norm.running_var, stale)  # statistics come from forward passes, not the average


@pytest.mark.parametrize("photo_forward, passes_per_batch", [("joint", 1), ("separate", 2)])
def test_mask_photos_share_the_batchnorm_pass_as_configured(tmp_path, photo_forward, passes_per_batch):
    root = make_fer_folder(tmp_path / "fer", per_class_train=2, per_class_test=2)
    photos = tmp_path / "photos"
    for i in range(12):
        write_image(photos / ("with_mask" if i % 2 else "without_mask") / f"p{i}.png", fake_face(i % 7, seed=i))
    trainer = Trainer(_config(root, tmp_path / "run", epochs=1, limit=10, swa_start=1, mask_photos=str(photos),
                              photo_forward=photo_forward))
    trainer.load_data()
    trainer.build()
    assert trainer.photos is not None

    def passes(model) -> int:
        return int(next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)).num_batches_tracked)

    trainer.train_epoch(0)
    assert passes(trainer.model) == passes_per_batch * trainer.steps_per_epoch
    trainer._swa_update()
    fer_batches = -(-min(len(trainer.train_set), trainer.cfg.swa_bn_images) // trainer.cfg.batch_size)
    assert passes(trainer._swa_model()) == passes_per_batch * fer_batches  # the SWA statistics mirror training


def test_unknown_photo_forward_is_refused(tmp_path):
    with pytest.raises(ValueError, match="photo_forward"):
        Trainer(_config(str(tmp_path), tmp_path / "run", photo_forward="both"))
    with pytest.raises(ValueError, match="teacher_flip"):
        Trainer(_config(str(tmp_path), tmp_path / "run", teacher_flip=True))


def test_teacher_flip_distils_the_mean_over_the_mirror_image(tmp_path):
    import torch.nn.functional as F

    from fer_mask_ros.perception.classifier import save_model
    from fer_mask_ros.perception.zoo.network import MaskedFERNet

    root = make_fer_folder(tmp_path / "fer", per_class_train=2, per_class_test=2)
    teacher = tmp_path / "teacher.pt"
    save_model(MaskedFERNet((4, 8)), str(teacher))
    trainer = Trainer(_config(root, tmp_path / "run", epochs=1, limit=10, teacher=str(teacher), teacher_flip=True))
    trainer.load_data()
    trainer.build()
    x = torch.rand(3, 1, 48, 48)
    with torch.no_grad():
        plain = F.softmax(trainer.teacher(x)[0] / 4.0, 1)
        mirrored = F.softmax(trainer.teacher(x.flip(3))[0] / 4.0, 1)
    assert not torch.allclose(plain, mirrored)
    assert torch.allclose(trainer._teacher_probs(x, 4.0), (plain + mirrored) / 2, atol=1e-6)
    trainer.cfg.teacher_flip = False
    assert torch.allclose(trainer._teacher_probs(x, 4.0), plain, atol=1e-6)
    assert np.isfinite(trainer.train_epoch(0)["train_loss"])


def test_photo_teacher_teaches_the_photo_samples_and_the_teacher_the_rest(tmp_path):
    from fer_mask_ros.perception.classifier import save_model
    from fer_mask_ros.perception.zoo.network import MaskedFERNet

    with pytest.raises(ValueError, match="--photo-teacher needs --teacher and --photo-source"):
        Trainer(_config(str(tmp_path), tmp_path / "run", teacher=str(tmp_path / "t.pt"), photo_teacher="p.pt"))
    root = make_fer_folder(tmp_path / "fer", per_class_train=2, per_class_test=2)
    torch.manual_seed(1)
    teacher, photo_teacher = tmp_path / "teacher.pt", tmp_path / "photo_teacher.pt"
    save_model(MaskedFERNet((4, 8)), str(teacher))
    save_model(MaskedFERNet((4, 8)), str(photo_teacher))
    trainer = Trainer(_config(root, tmp_path / "run", epochs=1, limit=10, teacher=str(teacher)))
    trainer.load_data()
    trainer.build()
    assert trainer.photo_teacher is None and not bool(trainer.is_photo.any())
    x = torch.rand(4, 1, 48, 48)
    idx = torch.tensor([0, 1, 2, 3])
    from_teacher = trainer._teacher_probs(x, 4.0)
    assert torch.allclose(trainer._teacher_targets(x, idx, 4.0), from_teacher)
    trainer.photo_teacher = MaskedFERNet((4, 8)).eval()
    trainer.is_photo = torch.tensor([False, True, False, True] + [False] * (len(trainer.y) - 4))
    mixed = trainer._teacher_targets(x, idx, 4.0)
    from_photo_teacher = trainer._teacher_probs(x, 4.0, trainer.photo_teacher)
    assert not torch.allclose(from_teacher, from_photo_teacher)
    assert torch.allclose(mixed[[0, 2]], from_teacher[[0, 2]], atol=1e-6)
    assert torch.allclose(mixed[[1, 3]], from_photo_teacher[[1, 3]], atol=1e-6)
    assert np.isfinite(trainer.train_epoch(0)["train_loss"])


def test_time_budget_shrinks_the_schedule_and_keeps_the_averaging_share():
    from fer_mask_ros.learning.training import fit_schedule

    assert fit_schedule(400, 340, 2, 4.0, 798.0) == (201, 171)  # 199 more epochs fit; SWA keeps 15 %
    assert fit_schedule(400, 0, 2, 4.0, 798.0) == (201, 0)
    assert fit_schedule(10, 2, 2, 100.0, 250.0) == (4, 2)  # averaging already under way: unchanged
    assert fit_schedule(10, 8, 2, 100.0, 5000.0) == (10, 8)  # never grows
    assert fit_schedule(10, 8, 2, 100.0, 10.0) == (2, 3)  # nothing more fits: the run ends before averaging
    assert fit_schedule(10, 9, 2, 100.0, 150.0) == (3, 3)


def test_time_budget_ends_the_run_early(tmp_path):
    root = make_fer_folder(tmp_path / "fer", per_class_train=2, per_class_test=2)
    trainer = Trainer(_config(root, tmp_path / "run", epochs=50, limit=10, time_budget=1e-6))
    trainer.run()
    assert trainer.cfg.epochs == 2
    assert len((tmp_path / "run" / "log.jsonl").read_text().splitlines()) == 2


def test_occluder_top_range_sets_where_the_lower_face_is_hidden():
    from fer_mask_ros.learning.training import erase_lower_face

    black, white = torch.zeros((64, 48, 48), dtype=torch.uint8), torch.full((64, 48, 48), 255, dtype=torch.uint8)
    chosen = torch.ones(64, dtype=torch.bool)
    chosen[:4] = False
    for seed, (low, high) in enumerate(((0.42, 0.5), (0.6, 0.65))):
        out = [erase_lower_face(face, lambda *s, g=torch.Generator().manual_seed(seed): torch.rand(*s, generator=g),
                                chosen, (low, high)) for face in (black, white)]
        assert torch.equal(out[0][:4], black[:4]) and torch.equal(out[1][:4], white[:4])  # not chosen: untouched
        # covered pixels do not depend on the face; the centre column's top edge lies in the range
        column = (out[0][4:, :, 24] == out[1][4:, :, 24]).float()
        first = column.argmax(1).float() / 48
        assert float(first.min()) >= low - 1 / 48 and float(first.max()) <= high + 1 / 48
        assert bool(column[:, int(high * 48) + 1:].all())
    g = torch.Generator().manual_seed(0)
    patterned = erase_lower_face(black, lambda *s: torch.rand(*s, generator=g), chosen, (0.5, 0.5))[4:, 30:, :]
    spread = patterned.float().flatten(1).std(1)
    assert float(spread.max()) > 40  # stripes or checks on some occluders, beyond the fine grain
    with pytest.raises(ValueError, match="occluder_top"):
        Trainer(_config("unused", "unused", occluder_top=(0.7, 0.5)))


def test_teacher_sees_the_same_augmented_face_without_its_mask(tmp_path):
    from fer_mask_ros.perception.classifier import save_model
    from fer_mask_ros.perception.zoo.network import MaskedFERNet

    with pytest.raises(ValueError, match="--teacher-sees-clean needs --teacher"):
        Trainer(_config(str(tmp_path), tmp_path / "run", teacher_sees_clean=True))
    root = make_fer_folder(tmp_path / "fer", per_class_train=2, per_class_test=2)
    teacher = tmp_path / "teacher.pt"
    save_model(MaskedFERNet((4, 8)), str(teacher))
    trainer = Trainer(_config(root, tmp_path / "run", epochs=1, limit=10, teacher=str(teacher), mask_prob=1.0,
                              teacher_sees_clean=True))
    trainer.load_data()
    trainer.build()
    idx = torch.arange(len(trainer.y))
    x, use_mask, seen = trainer._batch(idx, torch.Generator().manual_seed(3))
    assert bool(use_mask.all())
    # the teacher's batch is the student's augmentation of the unmasked faces
    g = torch.Generator().manual_seed(3)
    torch.rand(len(idx), generator=g), torch.randint(0, 1, (len(idx),), generator=g)  # _batch's mask draws
    expected = augment(trainer.x_clean[idx], g, trainer.cfg.aug_strength)
    assert torch.allclose(seen, expected)
    assert not torch.allclose(x, seen)
    trainer.cfg.teacher_sees_clean = False
    x2, _, seen2 = trainer._batch(idx, torch.Generator().manual_seed(3))
    assert torch.equal(x2, seen2)
    trainer.cfg.teacher_sees_clean = True
    assert np.isfinite(trainer.train_epoch(0)["train_loss"])
