"""Which tracked faces each zoo member classifies in this frame.

A facial expression changes over hundreds of milliseconds, so a 30 fps stream need not classify every
face in every frame. `ClassifySchedule.due` decides, per member, from the faces' track ids, boxes and the
frame's stamp only (what both the live emotion_classifier node and offline analysis see, so both decide
the same):

* **at once** (every member, the same frame): a face whose track has no answer yet (a new face; a shot
  cut ends every track, so every face after a cut is new), a track seen again after more than
  ``refind_s`` unseen, or a face whose box changed a lot since the member last classified it (its size
  by more than ``CHANGE_SIZE`` as a ratio, or its centre by more than ``CHANGE_SHIFT`` face sizes);
* **at a rate**: member m classifies a face again once ``1 / rate_hz[m]`` seconds have passed since its
  slot (the phase is kept, so 10 Hz on a 25 fps stream is 10 Hz on average); a rate of 0 = every frame;
* **staggered**: when more faces are due than the member's share of this frame
  (ceil(faces x rate x frame interval), at least 1), the most overdue go first and the rest wait for the
  next frame, whose slots then stay apart: two faces at 10 Hz on a 30 fps stream never pay in one frame
  after their first.

Forced faces (new, re-found, changed) are always classified and count against the share.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from fer_mask_ros.config import node_default
from fer_mask_ros.perception.tracking import BACKWARDS_TOLERANCE_S

__all__ = ["CHANGE_SHIFT", "CHANGE_SIZE", "DEFAULT_RATES", "ClassifySchedule", "parse_rates"]

#: Box size ratio (either way) since a member's last answer that makes a face due at once.
CHANGE_SIZE = 1.3
#: Centre shift (face sizes) since a member's last answer that makes a face due at once.
CHANGE_SHIFT = 0.5
#: config/emotion_classifier.yaml's classify_hz group: {member: Hz per face, 0 = every frame}.
DEFAULT_RATES: Dict[str, float] = {k: float(v) for k, v in node_default("emotion_classifier", "classify_hz").items()}
DEFAULT_REFIND_S = float(node_default("emotion_classifier", "classify_refind_s"))
_EPS = 1e-3  # stamps of a 30 fps stream are not exact multiples of a 10 Hz period


def parse_rates(text: str, members: Iterable[str] = ()) -> Dict[str, float]:
    """'10' (every member) or 'fer_mask_net=10,mobilefacenet=3' -> {member: Hz}; ValueError naming the problem."""
    members = tuple(members)
    text = str(text).strip()
    out: Dict[str, float] = {}
    try:
        if "=" not in text:
            value = float(text)
            out = {m: value for m in (members or DEFAULT_RATES)}
        else:
            for part in text.split(","):
                name, _, value = part.partition("=")
                out[name.strip()] = float(value)
    except ValueError:
        raise ValueError(f"classify rates must be 'HZ' or 'member=HZ,...', got {text!r}") from None
    for name, value in out.items():
        if members and name not in members:
            raise ValueError(f"unknown model {name!r} in classify rates; choose from {', '.join(members)}")
        if not (math.isfinite(value) and 0.0 <= value <= 1000.0):
            raise ValueError(f"classify rate of {name} must be in [0, 1000] Hz (0 = every frame), got {value}")
    return out


class _Slot:
    __slots__ = ("next_due", "box", "deferred")

    def __init__(self, next_due: float, box: Tuple[float, float, float, float]) -> None:
        self.next_due, self.box, self.deferred = next_due, box, False


def _changed(a: Tuple[float, float, float, float], b: Tuple[float, float, float, float]) -> bool:
    size_a, size_b = max(a[2], a[3], 1e-6), max(b[2], b[3], 1e-6)
    if max(size_a, size_b) / min(size_a, size_b) > CHANGE_SIZE:
        return True
    shift = math.hypot(a[0] + a[2] / 2 - b[0] - b[2] / 2, a[1] + a[3] / 2 - b[1] - b[3] / 2)
    return shift > CHANGE_SHIFT * max(size_a, size_b)


class ClassifySchedule:
    """rates: {member: Hz per face, 0 = every frame}; members without a rate run every frame."""

    def __init__(self, rates: Optional[Mapping[str, float]] = None, refind_s: float = DEFAULT_REFIND_S,
                 timeout_s: float = 10.0) -> None:
        self.rates: Dict[str, float] = dict(DEFAULT_RATES if rates is None else rates)
        for name, value in self.rates.items():
            if not (math.isfinite(value) and 0.0 <= value <= 1000.0):
                raise ValueError(f"classify rate of {name} must be in [0, 1000] Hz (0 = every frame), got {value}")
        if not refind_s > 0:
            raise ValueError(f"refind_s must be > 0 seconds, got {refind_s}")
        self.refind_s = float(refind_s)
        self.timeout_s = float(timeout_s)
        self._slots: Dict[Tuple[int, str], _Slot] = {}
        self._seen: Dict[int, float] = {}  # track -> last stamp it was in a frame
        self._last_stamp: Optional[float] = None
        self._interval = 0.0  # running estimate of the frame interval (s)
        self.fresh = 0  # face-member classifications scheduled
        self.offered = 0  # face-member pairs offered

    def reset(self) -> None:
        self._slots.clear()
        self._seen.clear()
        self._last_stamp = None
        self._interval = 0.0

    def every_frame(self, member: str) -> bool:
        return self.rates.get(member, 0.0) <= 0.0

    def _tick(self, stamp: float) -> None:
        last = self._last_stamp
        if last is not None and stamp < last - BACKWARDS_TOLERANCE_S:
            self.reset()
            last = None
        if last is not None and stamp > last:
            dt = stamp - last
            self._interval = dt if self._interval <= 0 else 0.8 * self._interval + 0.2 * dt
        if last is None or stamp > last:
            self._last_stamp = stamp
            gone = [t for t, seen in self._seen.items() if stamp - seen > self.timeout_s]
            for t in gone:
                del self._seen[t]
            if gone:
                dropped = set(gone)
                for key in [k for k in self._slots if k[0] in dropped]:
                    del self._slots[key]

    def forget(self, track_id: int) -> None:
        self._seen.pop(track_id, None)
        for key in [k for k in self._slots if k[0] == track_id]:
            del self._slots[key]

    def due(self, stamp: float, faces: Sequence[Tuple[int, Tuple[float, float, float, float]]],
            members: Sequence[str], force: Iterable[int] = ()) -> Dict[str, List[int]]:
        """{member: indices into `faces` ((track_id, box) pairs) to classify now}; `force`: indices that must
        be classified by every member (e.g. the pipeline lost their evidence). Updates the slots as if the
        returned faces were classified."""
        stamp = float(stamp)
        self._tick(stamp)
        forced_all = set(force)
        for i, (tid, _) in enumerate(faces):
            seen = self._seen.get(tid)
            if tid <= 0 or seen is None or stamp - seen > self.refind_s:
                forced_all.add(i)
        out: Dict[str, List[int]] = {}
        for member in members:
            rate = self.rates.get(member, 0.0)
            self.offered += len(faces)
            if rate <= 0.0:
                out[member] = list(range(len(faces)))
                for tid, box in faces:
                    self._slots[(tid, member)] = _Slot(stamp, tuple(box))
                continue
            period = 1.0 / rate
            forced, waiting = [], []  # waiting: (next_due, index)
            for i, (tid, box) in enumerate(faces):
                slot = self._slots.get((tid, member))
                if i in forced_all or slot is None or _changed(slot.box, tuple(box)):
                    forced.append(i)
                elif stamp >= slot.next_due - _EPS:
                    waiting.append((slot.next_due, i))
            share = len(faces)  # the first frame: no interval known yet
            if self._interval > 0:
                share = max(1, int(math.ceil(len(faces) * rate * self._interval - 1e-9)))
            room = max(0, share - len(forced))
            waiting.sort()
            chosen = sorted(forced + [i for _, i in waiting[:room]])
            for _, i in waiting[room:]:
                self._slots[(faces[i][0], member)].deferred = True
            for i in chosen:
                tid, box = faces[i]
                slot = self._slots.get((tid, member))
                if slot is None or i in forced or slot.deferred or slot.next_due + period <= stamp + _EPS:
                    next_due = stamp + period  # a new phase
                else:
                    next_due = slot.next_due + period  # keep the phase
                self._slots[(tid, member)] = _Slot(next_due, tuple(box))
            out[member] = chosen
        for tid, _ in faces:
            self._seen[tid] = stamp
        self.fresh += sum(len(v) for v in out.values())
        return out

    @property
    def fresh_share(self) -> float:
        """Share of offered face-member pairs that were classified."""
        return self.fresh / self.offered if self.offered else 0.0
