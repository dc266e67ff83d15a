"""Node plumbing shared by the nodes: newest-frame worker, statistics, /diagnostics, parameters."""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable, Dict, Optional

#: Big enough for several QVGA..VGA frames, so rospy never splits a frame over reads.
IMAGE_BUFF_SIZE = 2 ** 24


class LatestWorker:
    """Keeps only the newest item and processes it in one worker thread.

    `put(item)` from subscriber callbacks never blocks; an item that was replaced before the
    worker took it counts as dropped. The worker calls `handler(item)`; exceptions are passed to
    `on_error` (the worker keeps running).
    """

    def __init__(self, handler: Callable[[Any], None], on_error: Callable[[BaseException], None],
                 name: str = "worker"):
        self._handler = handler
        self._on_error = on_error
        self._cond = threading.Condition()
        self._item: Any = None
        self._has_item = False
        self._stop = False
        self.received = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: Any) -> None:
        with self._cond:
            self.received += 1
            if self._has_item:
                self.dropped += 1
            self._item, self._has_item = item, True
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._has_item and not self._stop:
                    self._cond.wait(0.5)
                if self._stop:
                    return
                item, self._item, self._has_item = self._item, None, False
            try:
                self._handler(item)
            except BaseException as exc:  # noqa: B036 - report and keep the worker alive
                self._on_error(exc)


class RateStats:
    """Processed-item rate and latency over a sliding window (wall time)."""

    def __init__(self, window_s: float = 5.0):
        self.window_s = float(window_s)
        self._times: deque = deque()
        self._latencies: deque = deque()
        self._lock = threading.Lock()
        self.count = 0
        self.errors = 0
        self.last_error = ""

    def add(self, latency_s: Optional[float] = None, now: Optional[float] = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.count += 1
            self._times.append(now)
            self._latencies.append(latency_s if latency_s is not None else float("nan"))
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
            self._latencies.popleft()

    def error(self, text: str) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = text

    def summary(self, now: Optional[float] = None) -> Dict[str, float]:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            n = len(self._times)
            rate = (n - 1) / (self._times[-1] - self._times[0]) if n >= 2 and self._times[-1] > self._times[0] else 0.0
            lat = [v for v in self._latencies if v == v]
        return {
            "rate_hz": rate,
            "latency_mean_ms": 1000.0 * sum(lat) / len(lat) if lat else float("nan"),
            "latency_max_ms": 1000.0 * max(lat) if lat else float("nan"),
        }


class Diagnostics:
    """Publishes one diagnostic_msgs/DiagnosticStatus for this node on /diagnostics every `period_s`.

    `fields()` returns the key/values; `level()` returns (level, message) with level one of
    DiagnosticStatus.OK/WARN/ERROR.
    """

    def __init__(self, name: str, fields: Callable[[], Dict[str, Any]],
                 level: Optional[Callable[[], tuple]] = None, period_s: float = 1.0):
        import rospy  # noqa: PLC0415
        from diagnostic_msgs.msg import DiagnosticArray  # noqa: PLC0415

        self._rospy = rospy
        self.name = name
        self._fields = fields
        self._level = level
        self._pub = rospy.Publisher("/diagnostics", DiagnosticArray, queue_size=10)
        self._timer = rospy.Timer(rospy.Duration(period_s), self._publish) if period_s > 0 else None

    def _publish(self, _event: Any = None) -> None:
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: PLC0415

        try:
            level, message = self._level() if self._level else (DiagnosticStatus.OK, "ok")
            values = self._fields()
        except Exception as exc:  # diagnostics must never kill a node
            level, message, values = DiagnosticStatus.ERROR, f"diagnostics failed: {exc}", {}
        status = DiagnosticStatus(level=level, name=self.name, message=message, hardware_id="fer_mask_ros")
        status.values = [KeyValue(key=str(k), value=_fmt(v)) for k, v in values.items()]
        arr = DiagnosticArray()
        arr.header.stamp = self._rospy.Time.now()
        arr.status = [status]
        try:
            self._pub.publish(arr)
        except self._rospy.ROSException:
            pass

    def shutdown(self) -> None:
        if self._timer is not None:
            self._timer.shutdown()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.3f}"
    return str(value)


def param(name: str, default: Any) -> Any:
    """Private parameter ~name (defaults come from config/*.yaml via the launch files, then from here)."""
    import rospy  # noqa: PLC0415

    return rospy.get_param("~" + name, default)


def fatal(message: str, status: int = 2) -> None:
    """Log one fatal line and exit the node (a configuration error the user must fix)."""
    import sys  # noqa: PLC0415

    import rospy  # noqa: PLC0415

    rospy.logfatal(message)
    if not rospy.core.is_shutdown():
        rospy.signal_shutdown(message)
    sys.exit(status)
