"""The maths of the class-balance loss, balanced accuracy and the augmentations added for real photos."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fer_mask_ros.labels import EMOTIONS  # noqa: E402
from fer_mask_ros.learning.evaluation import classification_metrics  # noqa: E402
from fer_mask_ros.learning.training import (  # noqa: E402
    camera_augment,
    erase_lower_face,
    logit_adjusted_loss,
    transfer_real_masks,
)


def test_logit_adjusted_loss_is_cross_entropy_on_shifted_logits():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    targets = torch.tensor([0, 2])
    prior = torch.tensor([0.7, 0.2, 0.1])
    got = logit_adjusted_loss(logits, targets, prior.log(), tau=1.0)
    shifted = logits + prior.log()
    expected = -(shifted.log_softmax(1)[torch.arange(2), targets]).mean()
    assert float(got) == pytest.approx(float(expected), rel=1e-6)
    # tau = 0, or a uniform prior, is plain cross-entropy
    plain = torch.nn.functional.cross_entropy(logits, targets)
    assert float(logit_adjusted_loss(logits, targets, prior.log(), tau=0.0)) == pytest.approx(float(plain))
    uniform = torch.full((3,), 1 / 3).log()
    assert float(logit_adjusted_loss(logits, targets, uniform, tau=1.0)) == pytest.approx(float(plain), rel=1e-6)


def test_logit_adjustment_pushes_rare_classes_up_at_inference():
    """Minimising the adjusted loss on data with prior p leaves logits ~ log p(y|x) - log p(y): a rare
    class whose evidence equals a common class's wins at inference."""
    prior = torch.tensor([0.9, 0.1])
    logits = torch.zeros(1, 2, requires_grad=True)
    opt = torch.optim.SGD([logits], lr=0.5)
    targets = torch.tensor([0] * 9 + [1])  # the data's own imbalance, no evidence either way
    for _ in range(300):
        opt.zero_grad()
        logit_adjusted_loss(logits.expand(10, 2), targets, prior.log(), tau=1.0).backward()
        opt.step()
    assert abs(float((logits[0, 0] - logits[0, 1]).detach())) < 0.05  # balanced, not 9:1


def test_balanced_accuracy_and_no_face():
    y = np.array([0, 0, 0, 0, 1])
    def balanced_accuracy(pred):
        return classification_metrics(y, pred, EMOTIONS)["balanced_accuracy"]

    assert balanced_accuracy(np.array([0, 0, 0, 0, 0])) == pytest.approx(0.5)
    assert balanced_accuracy(np.array([0, 0, 0, -1, 1])) == pytest.approx((0.75 + 1) / 2)


def test_camera_and_lower_face_augmentations_keep_range_and_touch_what_they_say():
    gen = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.rand(*shape, generator=gen)

    x = torch.rand(64, 1, 48, 48, generator=gen)
    out = camera_augment(x.clone(), rand, strength=1.0)
    assert out.shape == x.shape and not torch.equal(out, x)
    crops = torch.full((8, 48, 48), 100, dtype=torch.uint8)
    chosen = torch.tensor([True, False] * 4)
    erased = erase_lower_face(crops, rand, chosen)
    assert torch.equal(erased[1], crops[1])  # not chosen: untouched
    assert torch.equal(erased[0, :20], crops[0, :20])  # eyes untouched
    assert (erased[0, 40:] != 100).float().mean() > 0.5  # lower face replaced


def test_real_mask_transfer_replaces_only_the_lower_face():
    rng = np.random.default_rng(0)
    faces = np.full((50, 48, 48), 200, np.uint8)
    donors = np.full((3, 48, 48), 20, np.uint8)
    out = transfer_real_masks(faces, donors, rng, fraction=0.5)
    changed = np.any(out != faces, axis=(1, 2))
    assert 10 < changed.sum() < 40
    assert np.array_equal(out[changed][:, :20], faces[changed][:, :20])
    assert (out[changed][:, 40:] < 150).all()
