"""A mask-aware, calibrated log-linear fusion of the zoo's members.

For a face with members m and the condition c (masked when P(mask) >= mask_threshold)::

    logits = (sum_m w[c][m] * q_m * log p_m) * (W[c] / sum_m w[c][m] * q_m) / T[c]
    p      = softmax(logits)

w[c][m] are the per-condition weights, T[c] the per-condition temperature, q_m in [0, 1] an optional
per-face trust of member m (e.g. how plausible the landmarks it was aligned with are), and W[c] the sum of
the weights of all members. Members missing from a call (a member not run on this face yet) are left
out and the rest are rescaled to the same total weight, so one member alone gives that member's answer
at the fusion's temperature, not a softened one.

The weights and temperatures are fitted on held-out data (tools/fit_fusion.py) and shipped as a small
JSON file (models/fusion.json) with their provenance. `Fusion.single(name)` is the identity fusion of one
member (weight 1, temperature 1).
"""
from __future__ import annotations

import json
import math
from typing import Dict, Mapping, Optional

import numpy as np

from fer_mask_ros.errors import ModelError
from fer_mask_ros.labels import EMOTIONS

__all__ = ["CONDITIONS", "FUSION_FORMAT", "Fusion"]

CONDITIONS = ("unmasked", "masked")
FUSION_FORMAT = "fer_mask_ros.Fusion/1"


class Fusion:
    def __init__(self, weights: Mapping[str, Mapping[str, float]], temperatures: Mapping[str, float],
                 mask_threshold: float = 0.5, provenance: Optional[dict] = None) -> None:
        self.weights: Dict[str, Dict[str, float]] = {}
        for c in CONDITIONS:
            if c not in weights or c not in temperatures:
                raise ValueError(f"fusion needs weights and a temperature for {c!r}")
            w = {str(m): float(v) for m, v in weights[c].items()}
            if not w or any(not math.isfinite(v) or v < 0 for v in w.values()) or sum(w.values()) <= 0:
                raise ValueError(f"fusion weights for {c!r} must be finite, >= 0 and not all 0, got {w}")
            self.weights[c] = w
        self.temperatures = {c: float(temperatures[c]) for c in CONDITIONS}
        if any(not (math.isfinite(t) and t > 0) for t in self.temperatures.values()):
            raise ValueError(f"fusion temperatures must be finite and > 0, got {self.temperatures}")
        if not 0.0 < mask_threshold < 1.0:
            raise ValueError(f"mask_threshold must be in (0, 1), got {mask_threshold}")
        self.mask_threshold = float(mask_threshold)
        self.provenance = dict(provenance or {})

    @property
    def members(self) -> tuple:
        """Every member with a weight above 0 in some condition, in first-seen order."""
        seen = []
        for c in CONDITIONS:
            seen += [m for m, v in self.weights[c].items() if v > 0 and m not in seen]
        return tuple(seen)

    @classmethod
    def single(cls, name: str) -> Fusion:
        return cls({c: {name: 1.0} for c in CONDITIONS}, {c: 1.0 for c in CONDITIONS})

    @classmethod
    def load(cls, path: str) -> Fusion:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise ModelError(f"fusion file not found: {path}") from None
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: not a readable fusion file ({exc.__class__.__name__})") from None
        if not isinstance(data, dict) or data.get("format") != FUSION_FORMAT:
            raise ModelError(f"{path}: not a fusion file (expected format {FUSION_FORMAT!r})")
        try:
            return cls(data["weights"], data["temperatures"], data.get("mask_threshold", 0.5), data.get("provenance"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{path}: bad fusion file: {exc}") from None

    def to_json(self) -> dict:
        return {"format": FUSION_FORMAT, "weights": self.weights, "temperatures": self.temperatures,
                "mask_threshold": self.mask_threshold, "provenance": self.provenance}

    def masked(self, mask_prob: np.ndarray) -> np.ndarray:
        return np.asarray(mask_prob, dtype=np.float64).reshape(-1) >= self.mask_threshold

    def logits(self, log_probs: Mapping[str, np.ndarray], mask_prob: np.ndarray,
               quality: Optional[Mapping[str, np.ndarray]] = None) -> np.ndarray:
        """The fused logits (N, 7) of the members present in `log_probs` ({name: (N, 7)})."""
        masked = self.masked(mask_prob)
        n = len(masked)
        total = np.zeros((n, len(EMOTIONS)))
        used = np.zeros(n)
        all_weight = np.array([sum(self.weights[CONDITIONS[int(m)]].values()) for m in masked])
        for name, lp in log_probs.items():
            lp = np.asarray(lp, dtype=np.float64).reshape(n, len(EMOTIONS))
            w = np.array([self.weights[CONDITIONS[int(m)]].get(name, 0.0) for m in masked])
            if quality is not None and name in quality:
                w = w * np.clip(np.asarray(quality[name], dtype=np.float64).reshape(n), 0.0, 1.0)
            finite = np.all(np.isfinite(lp), axis=1)
            w = np.where(finite, w, 0.0)
            total += w[:, None] * np.where(finite[:, None], lp, 0.0)
            used += w
        if np.any(used <= 0):
            raise ValueError(f"no member with a weight above 0 among {sorted(log_probs)} for some face")
        temperature = np.where(masked, self.temperatures["masked"], self.temperatures["unmasked"])
        return total * (all_weight / used)[:, None] / temperature[:, None]

    def combine(self, log_probs: Mapping[str, np.ndarray], mask_prob: np.ndarray,
                quality: Optional[Mapping[str, np.ndarray]] = None) -> np.ndarray:
        """Fused probabilities (N, 7) (rows sum to 1)."""
        z = self.logits(log_probs, mask_prob, quality)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def needs(self, name: str) -> bool:
        return name in self.members

    def describe(self) -> str:
        parts = []
        for c in CONDITIONS:
            w = ", ".join(f"{m} {v:.2f}" for m, v in self.weights[c].items())
            parts.append(f"{c}: {w}, T {self.temperatures[c]:.2f}")
        return "; ".join(parts)
