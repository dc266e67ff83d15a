"""Honest confidence: how far the model's confidence is from its accuracy, and the temperatures that close it.

* `expected_calibration_error`: the gap between confidence and accuracy, averaged over confidence bins
  (Guo et al. 2017), optionally with per-sample weights (class-balanced: every class counts alike).
* `risk_coverage`: at each `min_confidence`, the share of faces the robot would speak about (coverage)
  and the share of those sentences that are right (precision of the spoken words).
* `fit_temperature`: the temperature T that minimises the (weighted) negative log-likelihood of
  softmax(log p / T); the classifier keeps one for unmasked and one for masked faces (by its own mask
  flag, as at run time).

Rows of NaN (a photo with no face found) have no confidence: ECE and temperature fits skip them; the
risk-coverage table counts them as faces never spoken about.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from fer_mask_ros.perception.classifier import softmax

#: min_confidence values of the risk-coverage table.
THRESHOLDS = (0.0, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)


def class_balanced_weights(labels: np.ndarray, n_classes: int = 7) -> np.ndarray:
    """Per-sample weights under which every class present weighs the same in total (mean weight 1)."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(len(labels))
    if not present.any():
        return weights
    weights = 1.0 / counts[labels]
    return weights * len(labels) / weights.sum()


def _found(probs: np.ndarray) -> np.ndarray:
    return np.all(np.isfinite(probs), axis=1)


def expected_calibration_error(labels: Sequence[int], probs: np.ndarray, bins: int = 15,
                               weights: Optional[np.ndarray] = None) -> Optional[float]:
    """Sum over equal-width confidence bins of |accuracy - mean confidence| x the bin's (weighted) share."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    keep = _found(probs)
    if not keep.any():
        return None
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    labels, probs, w = labels[keep], probs[keep], w[keep]
    confidence = probs.max(1)
    correct = (probs.argmax(1) == labels).astype(np.float64)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = w.sum()
    ece = 0.0
    for b in range(bins):
        inside = which == b
        if not inside.any():
            continue
        wb = w[inside]
        gap = abs(np.average(correct[inside], weights=wb) - np.average(confidence[inside], weights=wb))
        ece += gap * wb.sum() / total
    return float(ece)


def risk_coverage(labels: Sequence[int], probs: np.ndarray, thresholds: Sequence[float] = THRESHOLDS,
                  weights: Optional[np.ndarray] = None) -> List[Dict[str, float]]:
    """At each threshold: coverage (share of all faces with confidence >= it; no face found = never spoken)
    and accuracy of those (None when nothing is spoken): `spoken_at` with one threshold for every face."""
    one_rule = np.zeros(len(labels))  # every face flagged unmasked: the same threshold for all
    return [{"min_confidence": float(t), **spoken_at(labels, probs, one_rule, t, t, weights=weights)}
            for t in thresholds]


def spoken_at(labels: Sequence[int], probs: np.ndarray, mask_prob: np.ndarray, min_confidence: float,
              min_confidence_masked: float, mask_threshold: float = 0.5,
              weights: Optional[np.ndarray] = None) -> Dict[str, Optional[float]]:
    """The speech policy's confidence rule on single faces: a face flagged masked needs min_confidence_masked,
    others min_confidence. Coverage over all faces (no face found = not spoken) and accuracy of the spoken."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    mask_prob = np.asarray(mask_prob, dtype=np.float64)
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    found = _found(probs) & np.isfinite(mask_prob)
    confidence = np.where(found, np.nan_to_num(probs).max(1), -1.0)
    needed = np.where(np.nan_to_num(mask_prob) >= mask_threshold, min_confidence_masked, min_confidence)
    spoken = found & (confidence >= needed)
    correct = spoken & (np.nan_to_num(probs, nan=-1.0).argmax(1) == labels)
    coverage = float(w[spoken].sum() / w.sum()) if w.sum() > 0 else 0.0
    accuracy = float(w[correct].sum() / w[spoken].sum()) if w[spoken].sum() > 0 else None
    return {"coverage": coverage, "accuracy": accuracy, "spoken": int(spoken.sum())}


def fit_temperature(labels: Sequence[int], log_probs: np.ndarray, weights: Optional[np.ndarray] = None,
                    low: float = 0.5, high: float = 6.0, steps: int = 221) -> float:
    """The T in [low, high] (log-spaced grid) minimising the weighted NLL of softmax(log_probs / T)."""
    labels = np.asarray(labels, dtype=np.int64)
    z = np.asarray(log_probs, dtype=np.float64)
    keep = _found(z)
    if not keep.any():
        raise ValueError("fit_temperature: no rows with a face")
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    labels, z, w = labels[keep], z[keep], w[keep]
    best_t, best_nll = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(low), np.log(high), steps)):
        scaled = z / t
        scaled = scaled - scaled.max(1, keepdims=True)
        log_norm = np.log(np.exp(scaled).sum(1))
        nll = float(np.average(log_norm - scaled[np.arange(len(labels)), labels], weights=w))
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log probs / T): the same ranking, confidence flattened (T > 1) or sharpened (T < 1)."""
    probs = np.asarray(probs, dtype=np.float64)
    out = np.full(probs.shape, np.nan)
    found = _found(probs)  # a row of NaN (no face) stays NaN
    out[found] = softmax(np.log(np.clip(probs[found], 1e-12, 1.0)) / float(temperature))
    return out
