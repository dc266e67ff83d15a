"""Per-face evidence over time: every member's calibrated answers, combined as they arrive.

For each track and each zoo member, `TrackEvidence` keeps a time-decayed weighted mean of the member's
log-probabilities (and, from the member with a mask head, of P(mask))::

    mean_m(t) = sum_k w_k log p_m,k / sum_k w_k,   w_k = 0.5 ** ((t - t_k) / half_life_s)

Half-life is in stamp seconds, so the result does not depend on the frame rate or on how often a member
ran. The track's estimate is the fusion of the members seen so far (`Fusion.combine` over their means,
members not seen yet left out and the rest rescaled); the mask flag is the mean P(mask).

With one member and the identity fusion this is an exponential moving average in log space: with an
answer every dt seconds the newest one weighs ``alpha = 1 - 0.5 ** (dt / half_life_s)`` once the history
is long. The former default ``smoothing_alpha`` 0.5 at 10 fps is a half-life of 0.1 s;
`half_life_for_alpha` converts. An entry not updated for more than ``timeout_s`` starts afresh; a stamp
going backwards by more than BACKWARDS_TOLERANCE_S drops it; ``prune(active_ids)`` drops entries of
tracks that are gone. Expiry runs once per new stamp.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, Optional, Tuple

import numpy as np

from fer_mask_ros.config import node_default
from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.perception.tracking import BACKWARDS_TOLERANCE_S

__all__ = ["DEFAULT_HALF_LIFE_S", "DEFAULT_TIMEOUT_S", "TrackEvidence", "half_life_for_alpha"]

#: config/emotion_classifier.yaml: the live graph's and offline analysis' defaults.
DEFAULT_HALF_LIFE_S = float(node_default("emotion_classifier", "smoothing_half_life_s"))
DEFAULT_TIMEOUT_S = float(node_default("emotion_classifier", "smoothing_timeout_s"))


def half_life_for_alpha(alpha: float, fps: float = 10.0) -> float:
    """The half-life (s) whose log-space EMA gives the newest of answers `fps` per second the weight `alpha`."""
    if not 0.0 < alpha <= 1.0 or fps <= 0:
        raise ValueError(f"need 0 < alpha <= 1 and fps > 0, got alpha={alpha} fps={fps}")
    if alpha >= 1.0:
        return 1e-6  # the newest answer alone
    return (1.0 / fps) * math.log(2.0) / -math.log(1.0 - alpha)


class _Mean:
    """A time-decayed weighted mean of vectors."""

    __slots__ = ("total", "weight", "stamp")

    def __init__(self, value: np.ndarray, stamp: float) -> None:
        self.total, self.weight, self.stamp = value.copy(), 1.0, stamp

    def add(self, value: np.ndarray, stamp: float, half_life: float) -> None:
        decay = 0.5 ** (max(0.0, stamp - self.stamp) / half_life)
        self.total = self.total * decay + value
        self.weight = self.weight * decay + 1.0
        self.stamp = max(stamp, self.stamp)

    @property
    def value(self) -> np.ndarray:
        return self.total / self.weight


class TrackEvidence:
    """Per-track, per-member evidence (see the module docstring). `fusion`: a perception.fusion.Fusion."""

    def __init__(self, fusion, half_life_s: float = DEFAULT_HALF_LIFE_S,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if not (math.isfinite(half_life_s) and half_life_s > 0):
            raise ValueError(f"half_life_s must be > 0 seconds, got {half_life_s}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s}")
        self.fusion = fusion
        self.half_life_s = float(half_life_s)
        self.timeout_s = float(timeout_s)
        # track -> ({member: mean log-probabilities}, mean P(mask) or None, last stamp)
        self._state: Dict[int, Tuple[Dict[str, _Mean], Optional[_Mean], float]] = {}
        self._expired_at: Optional[float] = None

    def __len__(self) -> int:
        return len(self._state)

    def __contains__(self, track_id: int) -> bool:
        return track_id in self._state

    def reset(self) -> None:
        self._state.clear()
        self._expired_at = None

    def forget(self, track_id: int) -> None:
        self._state.pop(track_id, None)

    def prune(self, active_ids: Iterable[int]) -> None:
        keep = set(active_ids)
        for tid in [t for t in self._state if t not in keep]:
            del self._state[tid]

    def _expire(self, stamp: float) -> None:
        if stamp == self._expired_at:
            return
        self._expired_at = stamp
        for tid, (_, _, last) in list(self._state.items()):
            if stamp - last > self.timeout_s or stamp < last - BACKWARDS_TOLERANCE_S:
                del self._state[tid]

    def members(self, track_id: int) -> Tuple[str, ...]:
        """The members with evidence for this track."""
        entry = self._state.get(track_id)
        return tuple(entry[0]) if entry else ()

    def has_mask(self, track_id: int) -> bool:
        entry = self._state.get(track_id)
        return entry is not None and entry[1] is not None

    def add(self, track_id: int, member: str, log_probs: np.ndarray, mask_prob: Optional[float],
            stamp: float) -> None:
        """One member's answer for one face: log_probs (7,) natural-log probabilities; mask_prob or None."""
        lp = np.asarray(log_probs, dtype=np.float64).reshape(-1)
        if lp.shape != (len(EMOTIONS),) or not np.all(np.isfinite(lp)):
            raise ValueError(f"log-probabilities must be {len(EMOTIONS)} finite numbers, got {lp}")
        stamp = float(stamp)
        self._expire(stamp)
        means, mask, last = self._state.get(track_id, ({}, None, stamp))
        prev = means.get(member)
        if prev is None:
            means[member] = _Mean(lp, stamp)
        else:
            prev.add(lp, stamp, self.half_life_s)
        if mask_prob is not None:
            m = np.array([float(mask_prob)])
            if mask is None:
                mask = _Mean(m, stamp)
            else:
                mask.add(m, stamp, self.half_life_s)
        self._state[track_id] = (means, mask, max(last, stamp))

    def estimate(self, track_id: int, stamp: float) -> Optional[Tuple[np.ndarray, float]]:
        """(probabilities (7,), P(mask)) from everything seen of the track, or None when nothing is known."""
        self._expire(float(stamp))
        entry = self._state.get(track_id)
        if entry is None:
            return None
        means, mask, _ = entry
        used = {m: v.value[None, :] for m, v in means.items() if self.fusion.needs(m)}
        if not used:
            return None
        mask_prob = float(mask.value[0]) if mask is not None else 0.0
        probs = self.fusion.combine(used, np.array([mask_prob]))[0]
        return probs, mask_prob
