"""Node plumbing shared by the nodes: newest-frame worker, statistics, /diagnostics, parameters."""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable, Dict, List, Optional, Tuple

from fer_mask_ros.config import node_default

#: Big enough for several QVGA..VGA frames, so rospy never splits a frame over reads.
IMAGE_BUFF_SIZE = 2 ** 24


class LatestWorker:
    """Keeps only the newest item and processes it in one worker thread.

    `put(item)` from subscriber callbacks never blocks; an item that was replaced before the
    worker took it counts as dropped. The worker calls `handler(item)`; exceptions are passed to
    `on_error` (the worker keeps running). Should the thread still end (on_error itself failing),
    `ensure_alive()` (called with each diagnostics report) starts it again and counts `restarts`.
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
        self.restarts = 0
        self.restarted_at: Optional[float] = None  # monotonic time of the last restart
        self._name = name
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def ensure_alive(self) -> bool:
        """True when the worker thread runs; else start a new one (counted in `restarts`) and return False."""
        with self._cond:
            if self._stop or self._thread.is_alive():
                return True
            self.restarts += 1
            self.restarted_at = time.monotonic()
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
            return False

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


class SeqGaps:
    """Messages lost before they reached the node (inside rospy, the network or a full publisher queue).

    rospy numbers every message a publisher sends (header.seq); a jump of k + 1 from the same publisher
    means k messages were lost on the way. A publisher that restarts (seq going back) starts afresh.
    """

    MAX_PUBLISHERS = 64

    def __init__(self):
        self.lost = 0
        self._last: Dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, msg: Any) -> None:
        header = getattr(msg, "header", None)
        if header is None:
            return
        seq = int(getattr(header, "seq", 0))
        conn = getattr(msg, "_connection_header", None) or {}
        key = str(conn.get("callerid", "")) if isinstance(conn, dict) else ""
        with self._lock:
            last = self._last.get(key)
            if last is not None and last < seq <= last + 2 ** 31:
                self.lost += seq - last - 1
            if key not in self._last and len(self._last) >= self.MAX_PUBLISHERS:
                self._last.clear()
            self._last[key] = seq


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
        self.last_time: Optional[float] = None  # monotonic time of the last add()

    def age_s(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds since the last processed item, None before the first."""
        if self.last_time is None:
            return None
        return (time.monotonic() if now is None else now) - self.last_time

    def add(self, latency_s: Optional[float] = None, now: Optional[float] = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.count += 1
            self.last_time = now
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


def hardware_id() -> str:
    """The robot a node serves, for /diagnostics: ~hardware_id if set, else "<ns> NAO <ip>:<port>" from the
    nao_ip / nao_port parameters (private, or the namespace's: nao.launch sets both), else the namespace."""
    import rospy  # noqa: PLC0415

    explicit = rospy.get_param("~hardware_id", "")
    if explicit:
        return str(explicit)
    ns = rospy.get_namespace().strip("/") or "fer_mask_ros"
    ip = rospy.get_param("~nao_ip", "") or rospy.get_param("nao_ip", "")
    if not ip:
        return ns
    port = rospy.get_param("~nao_port", "") or rospy.get_param("nao_port", "")
    return f"{ns} NAO {ip}:{port}" if port else f"{ns} NAO {ip}"


def watch_sim_time(node: str, grace_s: float = 10.0, repeat_s: float = 60.0) -> Optional[threading.Thread]:
    """When /use_sim_time is true, warn (then once a minute) while no /clock has come: the node's time
    stands at 0, e.g. a live launch after a replay left /use_sim_time=true on the master. Wall time only."""
    import rospy  # noqa: PLC0415

    if not rospy.get_param("/use_sim_time", False):
        return None

    def run() -> None:
        time.sleep(grace_s)
        while not rospy.is_shutdown() and rospy.Time.now().is_zero():
            rospy.logwarn(f"{node}: /use_sim_time is true but no /clock is published, so this node's time "
                          "stands at 0 (a bag replay left it set? live launches set it false; replays need "
                          "rosbag play --clock)")
            deadline = time.monotonic() + repeat_s
            while time.monotonic() < deadline and not rospy.is_shutdown() and rospy.Time.now().is_zero():
                time.sleep(0.5)

    thread = threading.Thread(target=run, name="sim_time_watch", daemon=True)
    thread.start()
    return thread


#: message types a camera topic carries (raw, and image_transport's compressed)
IMAGE_TYPES = ("sensor_msgs/Image", "sensor_msgs/CompressedImage")
#: image topics this graph publishes itself (never a camera): face_detector's overlay, hri_bridge's face crops
OWN_IMAGE_SUFFIXES = ("image_annotated", "/cropped", "/aligned")


def no_images_message(node: str, topic: str, after_s: float, published: List[Tuple[str, str]]) -> str:
    """The one WARN line when no image came on `topic`: who should publish it, and the image topics that do exist
    (`published`: [(topic, type)], as rospy.get_published_topics() gives them) with the remap that would use one."""
    compressed = topic.endswith("/compressed")
    want = "sensor_msgs/CompressedImage" if compressed else "sensor_msgs/Image"
    cameras = sorted(t for t, kind in published if kind == want and t != topic and not t.endswith(OWN_IMAGE_SUFFIXES))
    who = "naoqi_driver" if topic.startswith("/naoqi_driver/") else "the camera node (nao_camera, usb_camera)"
    line = f"{node}: no images on {topic} for {after_s:g} s and no node publishes it - is {who} running? "
    if not cameras:
        others = sorted(t for t, kind in published if kind in IMAGE_TYPES and not t.endswith(OWN_IMAGE_SUFFIXES))
        return line + (f"(no {want} topic is published; rostopic list)" if not others else
                       f"(image topics published: {', '.join(others[:6])})")
    use = cameras[0][:-len("/compressed")] if compressed else cameras[0]
    shown = ", ".join(cameras[:6]) + (f" and {len(cameras) - 6} more" if len(cameras) > 6 else "")
    return line + (f"Image topics that exist: {shown}; to use {cameras[0]}: roslaunch fer_mask_ros nao.launch "
                   f"image_topic:={use} (rosrun: image:={cameras[0]})")


def warn_if_no_images(node: str, topic: str, received: Callable[[], int], publishers: Callable[[], int],
                      after_s: float = 8.0) -> threading.Thread:
    """One WARN when no image came on `topic` within `after_s` wall seconds and no node publishes it (a publisher
    that sends nothing, as nao_camera without its robot, says why itself). Names the topic, who should send it, and
    the image topics that do exist with the remap that would use them (no_images_message)."""
    import rospy  # noqa: PLC0415

    def run() -> None:
        time.sleep(after_s)
        if rospy.is_shutdown() or received() > 0 or publishers() > 0:
            return
        try:
            published = [(str(t), str(kind)) for t, kind in rospy.get_published_topics()]
        except Exception:  # the master went away: the WARN still names the topic
            published = []
        rospy.logwarn(no_images_message(node, topic, after_s, published))

    thread = threading.Thread(target=run, name="image_watch", daemon=True)
    thread.start()
    return thread


#: /diagnostics stays WARN this long after a node was started again (respawned by roslaunch)
RESTART_WARN_S = 30.0
#: how often a node asks its master who it is (watch_master)
MASTER_POLL_S = 2.0
#: exit status of a node that found a new master (roslaunch respawns it, and it registers with the new one)
NEW_MASTER_EXIT = 3


def master_identity(master: Any) -> Optional[Tuple[int, str]]:
    """(pid, /run_id) of the master behind a rosgraph.Master proxy, or None while it does not answer."""
    try:
        pid = int(master.getPid())
    except Exception:  # down, restarting, unreachable
        return None
    try:
        run_id = str(master.getParam("/run_id"))
    except Exception:  # a master without /run_id (rosmaster started alone)
        run_id = ""
    return pid, run_id


def master_changed(first: Optional[Tuple[int, str]], now: Optional[Tuple[int, str]]) -> bool:
    """True when the master answering now is another process than the one the node registered with: a node's
    publishers, subscribers and services are only known to the first, so the node must start again."""
    return first is not None and now is not None and now != first


#: parameters of the node's namespace that the nodes read besides their private ones (nao.launch sets them)
SHARED_PARAMS = ("nao_ip", "nao_port", "/use_sim_time")


def launch_params(master: Any) -> Dict[str, Any]:
    """The node's private parameters (as one mapping) and SHARED_PARAMS, as its launch set them on the master."""
    import rospy  # noqa: PLC0415

    names = [rospy.get_name()] + [rospy.resolve_name(n) for n in SHARED_PARAMS]
    kept = {}
    for name in names:
        try:
            kept[name] = master.getParam(name)
        except Exception:  # not set
            continue
    return kept


def restore_params(master: Any, kept: Dict[str, Any]) -> int:
    """Set on a (new) master the parameters `launch_params` kept that it does not have; how many were set."""
    done = 0
    for name, value in kept.items():
        try:
            if not master.hasParam(name):
                master.setParam(name, value)
                done += 1
        except Exception:  # the new master went away again: the respawned node starts from the defaults
            pass
    return done


def watch_master(node: str, poll_s: float = MASTER_POLL_S,
                 on_change: Optional[Callable[[str], None]] = None) -> Optional[threading.Thread]:
    """Poll the master's pid and /run_id every `poll_s`; when a restarted master answers (kill -9 and a new
    roscore: it knows nothing of this node, and rospy does not register again), log one WARN and exit with
    NEW_MASTER_EXIT, so that roslaunch's respawn starts the node again against the new master."""
    import os  # noqa: PLC0415

    import rosgraph  # noqa: PLC0415
    import rospy  # noqa: PLC0415

    master = rosgraph.Master(rospy.get_name())
    first = master_identity(master)
    if first is None:
        return None
    kept = launch_params(master)

    def exit_now(message: str) -> None:
        rospy.logwarn(message)
        restore_params(master, kept)  # the new master starts empty: the respawned node finds its launch's values
        time.sleep(0.5)  # let rosout and the log file take the line
        os._exit(NEW_MASTER_EXIT)

    def run() -> None:
        while not rospy.is_shutdown():
            time.sleep(poll_s)
            now = master_identity(master)
            if master_changed(first, now):
                what = f"{node}: the ROS master was restarted (pid {first[0]} -> {now[0]}); this node's topics and " \
                       "services are unknown to it"
                if on_change is not None:
                    on_change(what + ": restart this node (or its launch) to see them again")
                else:
                    exit_now(what + f": exiting (status {NEW_MASTER_EXIT}) to be respawned")
                return

    thread = threading.Thread(target=run, name="master_watch", daemon=True)
    thread.start()
    return thread


_STARTS: Optional[int] = None


def count_start(parent_pid: Optional[int] = None) -> int:
    """How many times this node has started under the same parent (roslaunch respawns a node that died: same
    parent, next count). Kept on the master as ~starts = {parent: pid, count: n}; a new launch starts at 1."""
    import os  # noqa: PLC0415

    import rospy  # noqa: PLC0415

    global _STARTS
    if _STARTS is not None and parent_pid is None:
        return _STARTS  # counted once per process (Diagnostics, or fatal() before it)
    parent = os.getppid() if parent_pid is None else int(parent_pid)
    try:
        before = rospy.get_param("~starts", {})
        count = int(before.get("count", 0)) + 1 if isinstance(before, dict) and before.get("parent") == parent else 1
        rospy.set_param("~starts", {"parent": parent, "count": count})
    except Exception:  # never stop a node for its bookkeeping
        count = 1
    _STARTS = count
    return count


class Diagnostics:
    """Publishes one diagnostic_msgs/DiagnosticStatus for this node on /diagnostics every `period_s`.

    `fields()` returns the key/values; `level()` returns (level, message) with level one of
    DiagnosticStatus.OK/WARN/ERROR. hardware_id names the robot (see `hardware_id`). It also starts
    `watch_sim_time`, so every node warns when it runs on a simulated clock that nobody drives, and
    `watch_master`, so a node whose master was restarted exits (and is respawned; exit_on_new_master=False: a
    WARN only). Every status carries
    `starts` (1, then 2, 3 ... after each respawn by roslaunch) and `uptime_s`; a node started again is
    WARN "restarted ..." for RESTART_WARN_S.
    """

    def __init__(self, name: str, fields: Callable[[], Dict[str, Any]],
                 level: Optional[Callable[[], tuple]] = None, period_s: float = 1.0, exit_on_new_master: bool = True):
        import rospy  # noqa: PLC0415
        from diagnostic_msgs.msg import DiagnosticArray  # noqa: PLC0415

        self._rospy = rospy
        self.name = name
        self._fields = fields
        self._level = level
        self.hardware_id = hardware_id()
        self._pub = rospy.Publisher("/diagnostics", DiagnosticArray, queue_size=10)
        self.starts = count_start()
        self._started = time.monotonic()
        if self.starts > 1:
            rospy.logwarn(f"{name}: started again (start {self.starts} under this launch: the previous process "
                          "ended; roslaunch respawned it)")
        watch_sim_time(name)
        # a node that must not exit (the demo's required fake NAO: its qi server keeps serving) only says so
        watch_master(name, on_change=None if exit_on_new_master else rospy.logwarn)
        self._timer = rospy.Timer(rospy.Duration(period_s), self._publish) if period_s > 0 else None

    def _publish(self, _event: Any = None) -> None:
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: PLC0415

        try:
            level, message = self._level() if self._level else (DiagnosticStatus.OK, "ok")
            values = dict(self._fields())
        except Exception as exc:  # diagnostics must never kill a node
            level, message, values = DiagnosticStatus.ERROR, f"diagnostics failed: {exc}", {}
        uptime = time.monotonic() - self._started
        values.update(starts=self.starts, uptime_s=uptime)
        if self.starts > 1 and uptime < RESTART_WARN_S and level == DiagnosticStatus.OK:
            level, message = DiagnosticStatus.WARN, (f"restarted {uptime:.0f} s ago (start {self.starts}: the "
                                                     "previous process died)")
        status = DiagnosticStatus(level=level, name=self.name, message=message, hardware_id=self.hardware_id)
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


class BadInputs:
    """Inputs that are skipped (malformed image, unsupported encoding, corrupt compressed data).

    Each one is counted and warned about at most once per `throttle_s` (the warning says how many
    were skipped since the last one), never raised: a bad frame must not stop a node.
    """

    def __init__(self, node: str, throttle_s: float = 5.0):
        self.node = node
        self.throttle_s = float(throttle_s)
        self.count = 0
        self.last = ""
        self.last_time: Optional[float] = None
        self._warned_at: Optional[float] = None
        self._since_warning = 0
        self._lock = threading.Lock()

    def add(self, reason: str) -> None:
        import rospy  # noqa: PLC0415

        now = time.monotonic()
        with self._lock:
            self.count += 1
            self._since_warning += 1
            self.last, self.last_time = reason, now
            if self._warned_at is not None and now - self._warned_at < self.throttle_s:
                return
            n, self._since_warning, self._warned_at = self._since_warning, 0, now
        rospy.logwarn(f"{self.node}: skipped {n} bad input(s) ({self.count} in all); last: {reason}")

    def age_s(self) -> Optional[float]:
        return None if self.last_time is None else time.monotonic() - self.last_time


class Thresholds:
    """WARN / ERROR thresholds of a node's /diagnostics, from private parameters (config/*.yaml).

    latency_{warn,error}_ms: mean processing latency over the stats window;
    stale_{warn,error}_s: seconds without a processed input once inputs have been seen (the camera
    topic went silent); drop_warn_ratio: share of inputs dropped (replaced before processing) since
    the last report; bad_input_warn_s: WARN while a bad input was skipped this recently.
    """

    KEYS = ("latency_warn_ms", "latency_error_ms", "stale_warn_s", "stale_error_s", "drop_warn_ratio",
            "bad_input_warn_s")

    def __init__(self, **overrides: float):
        import rospy  # noqa: PLC0415

        values = {key: config_default("diag/" + key) for key in self.KEYS}  # config/<node>.yaml
        values.update(overrides)
        for key, default in values.items():
            setattr(self, key, float(rospy.get_param("~diag/" + key, default)))
        self._last_received = 0
        self._last_dropped = 0
        self.drop_ratio = 0.0

    def evaluate(self, stats: RateStats, received: int, dropped: int, bad: Optional[BadInputs] = None,
                 what: str = "images") -> Optional[tuple]:
        """(level, message) for the first threshold crossed (ERROR before WARN), or None when all is well."""
        from diagnostic_msgs.msg import DiagnosticStatus as S  # noqa: PLC0415, N817

        d_recv, d_drop = received - self._last_received, dropped - self._last_dropped
        if d_recv > 0:
            self.drop_ratio = d_drop / d_recv
        self._last_received, self._last_dropped = received, dropped
        age = stats.age_s()
        lat = stats.summary()["latency_mean_ms"]
        if received and age is not None and age > self.stale_error_s:
            return S.ERROR, f"no {what} processed for {age:.0f} s"
        if lat == lat and lat > self.latency_error_ms:
            return S.ERROR, f"latency {lat:.0f} ms > {self.latency_error_ms:g} ms"
        if received and age is not None and age > self.stale_warn_s:
            return S.WARN, f"no {what} for {age:.1f} s (input topic silent?)"
        if lat == lat and lat > self.latency_warn_ms:
            return S.WARN, f"latency {lat:.0f} ms > {self.latency_warn_ms:g} ms"
        if d_recv > 0 and self.drop_ratio > self.drop_warn_ratio:
            return S.WARN, f"dropping {100 * self.drop_ratio:.0f} % of {what} (too slow for the input rate)"
        bad_age = bad.age_s() if bad is not None else None
        if bad_age is not None and bad_age < self.bad_input_warn_s:
            return S.WARN, f"skipped {bad.count} bad input(s); last: {bad.last}"
        return None


def route_library_logs(name: str = "fer_mask_ros") -> None:
    """Send the core library's Python logging (e.g. NaoConnection's state changes) to rosout and the screen."""
    import logging  # noqa: PLC0415

    class _ToRosout(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                logging.getLogger("rosout").log(record.levelno, "%s", self.format(record))
            except Exception:  # logging must never kill a node
                pass

    lib = logging.getLogger(name)
    if not any(isinstance(h, _ToRosout) or type(h).__name__ == "_ToRosout" for h in lib.handlers):
        lib.addHandler(_ToRosout())
    lib.setLevel(logging.INFO)
    lib.propagate = False
    import rospy  # noqa: PLC0415

    # at shutdown the robot link is closed on purpose (or the fake NAO stops first): no "disconnected" WARN
    rospy.on_shutdown(lambda: lib.setLevel(logging.ERROR))


def quiet_qi(level: str = "warning") -> None:
    """libqi logs every service (un)registration at info level on stdout; keep its warnings and errors.
    qi's "No Application was created" path warning says nothing to a ROS user and is silenced."""
    try:
        import qi  # noqa: PLC0415
    except ImportError:
        return
    qi.logging.setLevel(getattr(qi.logging, level.upper(), qi.logging.WARNING))
    try:
        qi.logging.setFilters("qi.path.sdklayout=silent")
    except Exception:  # older libqi-python: keep the warning rather than fail
        pass


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.3f}"
    return str(value)


_CONFIG_NODE: Optional[str] = None
_FROM_CONFIG = object()


def use_config(node: str) -> None:
    """Take the defaults of `param()` and `Thresholds` from config/<node>.yaml: the launch files load that
    file into the node's private namespace, and a node started without it gets the same values. Then check
    every private parameter that is set against its range declared in that yaml (fer_mask_ros.config_schema):
    one FATAL line naming the parameter and its range, exit 2."""
    global _CONFIG_NODE
    _CONFIG_NODE = node
    check_params(node)


def check_params(node: str) -> None:
    """FATAL (exit 2) for the first private parameter outside its declared range; a WARN naming private
    parameters config/<node>.yaml does not declare (a typo such as ~fsp is otherwise silently ignored)."""
    import rospy  # noqa: PLC0415

    from fer_mask_ros.config_schema import node_schema, problems  # noqa: PLC0415

    try:
        schema = node_schema(node)
    except (OSError, ValueError) as exc:
        fatal(f"{node}: cannot read config/{node}.yaml: {exc}")
    values = {name: rospy.get_param("~" + name) for name in schema if rospy.has_param("~" + name)}
    bad = problems(node, values, schema)
    if bad:
        fatal(bad[0])
    prefix = rospy.get_name().rstrip("/") + "/"
    maps = {name for name, spec in schema.items() if spec.text == "<map>"}  # their keys: checked by their user
    maps.add("starts")  # the node's own start count (count_start), not a setting
    unknown = sorted(n[len(prefix):] for n in rospy.get_param_names()
                     if n.startswith(prefix) and n[len(prefix):] not in schema
                     and n[len(prefix):].split("/")[0] not in maps)
    if unknown:
        rospy.logwarn(f"{node}: ignoring parameter(s) config/{node}.yaml does not declare: "
                      + ", ".join("~" + n for n in unknown))


def config_default(name: str) -> Any:
    if _CONFIG_NODE is None:
        raise RuntimeError(f"param({name!r}) without a default needs use_config(node) first")
    return node_default(_CONFIG_NODE, name)


def param(name: str, default: Any = _FROM_CONFIG) -> Any:
    """Private parameter ~name; without `default`, the value config/<node>.yaml sets (see use_config)."""
    import rospy  # noqa: PLC0415

    return rospy.get_param("~" + name, config_default(name) if default is _FROM_CONFIG else default)


def parent_is_roslaunch() -> bool:
    """True when this process was started by a roslaunch (not by rostest, whose tests must not be interrupted)."""
    import os  # noqa: PLC0415

    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
    except OSError:
        return False
    return any(os.path.basename(a.decode(errors="replace")) == "roslaunch" for a in argv[:2])


def stop_parent_launch() -> bool:
    """Stop the roslaunch that started this node the way Ctrl-C does: it shuts every node down (the
    earliest-started last) and exits 0, with no "REQUIRED process has died" banner. False if not under roslaunch."""
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415

    if not parent_is_roslaunch():
        return False
    os.kill(os.getppid(), signal.SIGINT)
    return True


#: a node that ends with fatal() again and again under roslaunch (respawned) waits this long at most before it exits
FATAL_BACKOFF_MAX_S = 30.0


def fatal(message: str, status: int = 2) -> None:
    """Log one fatal line and exit the node (a configuration error the user must fix, or a start-up failure).
    The launch files respawn a node that ends (a passing failure, e.g. the robot not ready, heals so); when the
    same node fails again and again, each start waits longer before it exits: 1, 2, 4 ... up to 30 s, so a
    configuration error repeats its one line at growing intervals instead of every 2 s."""
    import sys  # noqa: PLC0415

    import rospy  # noqa: PLC0415

    rospy.logfatal(message)
    if parent_is_roslaunch():
        starts = count_start()
        if starts > 1:
            time.sleep(min(FATAL_BACKOFF_MAX_S, 2.0 ** (starts - 2)))
    if not rospy.core.is_shutdown():
        rospy.signal_shutdown(message)
    sys.exit(status)
