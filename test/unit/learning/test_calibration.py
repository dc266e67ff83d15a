"""Calibration maths: ECE, risk-coverage, the speech rule on stills, temperature fitting."""
from __future__ import annotations

import numpy as np
import pytest

from fer_mask_ros.learning.calibration import (
    class_balanced_weights,
    expected_calibration_error,
    fit_temperature,
    risk_coverage,
    spoken_at,
    temper,
)


def _probs(rows):
    return np.asarray(rows, dtype=np.float64)


def test_ece_of_a_perfectly_calibrated_and_an_over_sure_model():
    # 10 faces at confidence 0.8, 8 right: calibrated -> ECE 0
    probs = np.tile([0.8, 0.2, 0, 0, 0, 0, 0], (10, 1))
    labels = np.array([0] * 8 + [1] * 2)
    assert expected_calibration_error(labels, probs) == pytest.approx(0.0)
    # same confidence, only 4 right: |0.4 - 0.8| = 0.4
    labels = np.array([0] * 4 + [1] * 6)
    assert expected_calibration_error(labels, probs) == pytest.approx(0.4)


def test_ece_averages_bins_by_their_share_and_skips_faces_not_found():
    probs = _probs([[0.95, 0.05, 0, 0, 0, 0, 0]] * 2 + [[0.55, 0.45, 0, 0, 0, 0, 0]] * 2 + [[np.nan] * 7])
    labels = np.array([0, 0, 0, 1, 3])
    # bin 0.95: acc 1.0 vs 0.95 -> 0.05; bin 0.55: acc 0.5 vs 0.55 -> 0.05; each half the faces found
    assert expected_calibration_error(labels, probs) == pytest.approx(0.05)
    assert expected_calibration_error(labels[-1:], probs[-1:]) is None


def test_class_balanced_weights_make_every_class_weigh_the_same():
    labels = np.array([0, 0, 0, 1])
    w = class_balanced_weights(labels)
    assert w[labels == 0].sum() == pytest.approx(w[labels == 1].sum())
    assert w.mean() == pytest.approx(1.0)
    # weighted ECE: the rare class's one face counts as much as the three others
    probs = np.tile([0.9, 0.1, 0, 0, 0, 0, 0], (4, 1))
    assert expected_calibration_error(labels, probs, weights=w) == pytest.approx(abs(0.5 - 0.9))


def test_risk_coverage_counts_faces_not_found_as_never_spoken():
    probs = _probs([[0.9, 0.1, 0, 0, 0, 0, 0], [0.6, 0.4, 0, 0, 0, 0, 0], [0.2, 0.1, 0.7, 0, 0, 0, 0],
                    [np.nan] * 7])
    labels = np.array([0, 1, 2, 0])
    rows = {r["min_confidence"]: r for r in risk_coverage(labels, probs, thresholds=(0.0, 0.65, 0.95))}
    assert rows[0.0]["coverage"] == pytest.approx(0.75) and rows[0.0]["accuracy"] == pytest.approx(2 / 3)
    assert rows[0.65]["coverage"] == pytest.approx(0.5) and rows[0.65]["accuracy"] == pytest.approx(1.0)
    assert rows[0.95]["coverage"] == 0.0 and rows[0.95]["accuracy"] is None


def test_spoken_at_uses_the_masked_threshold_for_faces_flagged_masked():
    probs = _probs([[0.6, 0.4, 0, 0, 0, 0, 0], [0.6, 0.4, 0, 0, 0, 0, 0], [0.8, 0.2, 0, 0, 0, 0, 0]])
    labels = np.array([0, 1, 0])
    mask = np.array([0.1, 0.9, 0.9])
    out = spoken_at(labels, probs, mask, min_confidence=0.5, min_confidence_masked=0.7)
    # face 1 unmasked at 0.6 >= 0.5: spoken, right; face 2 masked at 0.6 < 0.7: silent; face 3 masked 0.8: right
    assert out["spoken"] == 2 and out["coverage"] == pytest.approx(2 / 3) and out["accuracy"] == 1.0


def test_fit_temperature_flattens_an_over_sure_model_and_keeps_the_ranking():
    rng = np.random.default_rng(0)
    n = 4000
    labels = rng.integers(0, 7, n)
    # a model right 50 % of the time that always says 0.95
    pred = np.where(rng.random(n) < 0.5, labels, (labels + rng.integers(1, 7, n)) % 7)
    probs = np.full((n, 7), 0.05 / 6)
    probs[np.arange(n), pred] = 0.95
    t = fit_temperature(labels, np.log(probs))
    assert t > 1.5
    tempered = temper(probs, t)
    assert np.array_equal(tempered.argmax(1), probs.argmax(1))
    assert tempered.max(1).mean() == pytest.approx(0.5, abs=0.03)
    assert expected_calibration_error(labels, tempered) < 0.03 < expected_calibration_error(labels, probs)


def test_fit_temperature_needs_faces():
    with pytest.raises(ValueError, match="no rows"):
        fit_temperature(np.array([0]), np.full((1, 7), np.nan))
