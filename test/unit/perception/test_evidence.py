"""Per-face evidence: members' log-probabilities combined over time (issue #31)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from fer_mask_ros.perception.evidence import TrackEvidence, half_life_for_alpha
from fer_mask_ros.perception.fusion import Fusion


def lp(*probs):
    p = np.asarray(probs, np.float64)
    return np.log(p / p.sum())


A = lp(0.7, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05)
B = lp(0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.7)


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def test_one_member_is_a_log_space_moving_average_in_stamp_time():
    ev = TrackEvidence(Fusion.single("m"), half_life_s=0.5, timeout_s=2.0)
    ev.add(1, "m", A, 0.2, 0.0)
    p, m = ev.estimate(1, 0.0)
    assert np.allclose(p, np.exp(A)) and m == pytest.approx(0.2)
    ev.add(1, "m", B, 0.8, 0.5)  # one half-life later: the older answer weighs half
    p, m = ev.estimate(1, 0.5)
    assert np.allclose(p, softmax((B + 0.5 * A) / 1.5))
    assert m == pytest.approx((0.8 + 0.5 * 0.2) / 1.5)
    # the same answers at another frame rate (half as many, twice the spacing) give the same weights by time
    ev2 = TrackEvidence(Fusion.single("m"), half_life_s=0.5)
    ev2.add(1, "m", A, 0.2, 0.0)
    ev2.add(1, "m", B, 0.8, 1.0)
    assert np.allclose(ev2.estimate(1, 1.0)[0], softmax((B + 0.25 * A) / 1.25))
    # without a new answer the estimate stays (all weights decay alike)
    assert np.allclose(ev.estimate(1, 1.5)[0], p)


def test_members_are_fused_with_the_fusion_weights_and_temperature():
    fusion = Fusion({"unmasked": {"a": 1.0, "b": 3.0}, "masked": {"a": 3.0, "b": 1.0}},
                    {"unmasked": 2.0, "masked": 1.0})
    ev = TrackEvidence(fusion, half_life_s=1.0)
    ev.add(1, "a", A, 0.1, 0.0)
    # only member a so far: rescaled to the whole weight (1 + 3), not softened by the missing member
    assert np.allclose(ev.estimate(1, 0.0)[0], softmax(A * 4.0 / 2.0))
    ev.add(1, "b", B, None, 0.0)
    assert np.allclose(ev.estimate(1, 0.0)[0], softmax((1.0 * A + 3.0 * B) / 2.0))
    # a masked face takes the masked weights and temperature
    ev.add(2, "a", A, 0.9, 0.0)
    ev.add(2, "b", B, None, 0.0)
    assert np.allclose(ev.estimate(2, 0.0)[0], softmax((3.0 * A + 1.0 * B) / 1.0))
    assert ev.members(1) == ("a", "b") and ev.has_mask(1)


def test_expiry_forget_prune_reset_and_bad_input():
    ev = TrackEvidence(Fusion.single("m"), half_life_s=0.3, timeout_s=2.0)
    ev.add(1, "m", A, 0.5, 0.0)
    ev.add(2, "m", B, 0.5, 0.0)
    assert ev.estimate(3, 0.0) is None
    assert ev.estimate(1, 2.5) is None and len(ev) == 0  # unseen for more than timeout_s
    ev.add(1, "m", A, 0.5, 3.0)
    assert ev.estimate(1, 1.0) is None  # time went back: starts afresh
    ev.add(1, "m", A, 0.5, 0.0)
    ev.add(2, "m", B, 0.5, 0.0)
    ev.prune([2])
    assert 1 not in ev and 2 in ev
    ev.forget(2)
    assert len(ev) == 0
    ev.add(1, "m", A, 0.5, 0.0)
    ev.reset()
    assert len(ev) == 0
    with pytest.raises(ValueError):
        ev.add(1, "m", np.array([0.0, np.nan, 0, 0, 0, 0, 0]), None, 0.0)
    with pytest.raises(ValueError):
        TrackEvidence(Fusion.single("m"), half_life_s=0.0)


def test_half_life_for_the_former_smoothing_alpha():
    assert half_life_for_alpha(0.5, fps=10.0) == pytest.approx(0.1)
    assert 0.5 ** (0.1 / half_life_for_alpha(0.25, 10.0)) == pytest.approx(0.75)
    assert half_life_for_alpha(1.0) < 1e-3
    assert math.isclose(half_life_for_alpha(0.5, fps=30.0), 1 / 30.0)
