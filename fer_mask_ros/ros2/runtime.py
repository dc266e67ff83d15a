"""ROS 2 node plumbing: parameters declared from config/<node>.yaml, /diagnostics, image QoS, stamp matching.

The only ROS 2 code besides the nodes is in this subpackage (fer_mask_ros/ros2/); it never imports the ROS 1
side (fer_mask_ros/ros/) and the core imports neither. Parameter names are the ROS 1 ones; a group member such
as ROS 1's ~diag/stale_warn_s is `diag.stale_warn_s` (ROS 2 nests with dots), and a mapping (~policy) is a YAML
string. Each parameter is declared read-only (read at start-up, as in ROS 1) with a descriptor: its type, the range
config/<node>.yaml declares (also in the descriptor's integer/floating-point range where ROS 2 can say it) and the
yaml comment. A value outside the range stops the node with one FATAL line naming it and the range, exit 2.
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Tuple

from fer_mask_ros.config import node_defaults
from fer_mask_ros.config_schema import Spec, node_schema, parse_interval, problems


class NodeStartError(Exception):
    """A configuration the node cannot start with: one FATAL line, exit 2 (the demo: one `error:` line)."""


def ros2_name(name: str) -> str:
    """config_schema's "diag/stale_warn_s" -> ROS 2's "diag.stale_warn_s"."""
    return name.replace("/", ".")


def _descriptor(name: str, spec: Spec, comment: str = ""):
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType  # noqa: PLC0415

    default = spec.default
    desc = ParameterDescriptor(name=ros2_name(name), read_only=True,
                               description=(comment or f"config yaml: {spec.text}")[:300],
                               additional_constraints=spec.allowed() if spec.text or isinstance(default, bool) else "")
    if not spec.has_default:
        desc.dynamic_typing = True  # no default: any value, checked against the range below
        return desc
    if spec.text == "<map>":
        desc.type = ParameterType.PARAMETER_STRING
        return desc
    if isinstance(default, bool):
        desc.type = ParameterType.PARAMETER_BOOL
    elif isinstance(default, int):
        desc.type = ParameterType.PARAMETER_INTEGER
    elif isinstance(default, float):
        desc.type = ParameterType.PARAMETER_DOUBLE
    else:
        desc.type = ParameterType.PARAMETER_STRING
    if spec.text and spec.text[0] in "[(":
        lo, hi, _, _ = parse_interval(spec.text)  # ROS 2 ranges include both ends: config_schema checks exactly
        if desc.type == ParameterType.PARAMETER_INTEGER:
            big = 2 ** 62
            desc.integer_range = [IntegerRange(from_value=int(max(lo, -big)), to_value=int(min(hi, big)), step=0)]
        elif desc.type == ParameterType.PARAMETER_DOUBLE:
            desc.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    return desc


def _declared_value(spec: Spec) -> Any:
    if not spec.has_default:
        return None
    if spec.text == "<map>":
        import yaml  # noqa: PLC0415

        return yaml.safe_dump(spec.default or {}, default_flow_style=True).strip()
    return spec.default


class Params:
    """The node's parameters, declared from config/<node>.yaml (names, types, ranges, defaults)."""

    def __init__(self, node: Any, config: str, extra: Optional[Dict[str, Any]] = None):
        from rclpy.exceptions import (  # noqa: PLC0415
            InvalidParameterTypeException,
            InvalidParameterValueException,
        )

        self.node, self.config = node, config
        self.schema = node_schema(config)
        self._values: Dict[str, Any] = {}
        for name, spec in self.schema.items():
            try:
                got = node.declare_parameter(ros2_name(name), _declared_value(spec), _descriptor(name, spec))
            except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
                why = str(exc).splitlines()[0]
                raise NodeStartError(f"{config}: parameter {ros2_name(name)}: {why}; allowed: {spec.allowed()} "
                                     f"(config/{config}.yaml)") from None
            self._values[name] = got.value
        for name, default in (extra or {}).items():  # not in the yaml (nao_ip on a node without one, ...)
            from rcl_interfaces.msg import ParameterDescriptor  # noqa: PLC0415

            self._values[name] = node.declare_parameter(
                name, default, ParameterDescriptor(read_only=True, dynamic_typing=default is None)).value
        set_values = {}
        for name, spec in self.schema.items():
            value = self._values[name]
            if value is None:
                continue
            if spec.text == "<map>":
                value = self._map(name, value)
                self._values[name] = value
            if spec.has_default and value == spec.default:
                continue
            set_values[name] = value
        for name, value in set_values.items():
            bad = problems(config, {name: value}, self.schema)
            if bad:
                raise NodeStartError(bad[0].replace(f"parameter ~{name} ", f"parameter {ros2_name(name)} "))

    def _map(self, name: str, text: Any) -> Dict[str, Any]:
        import yaml  # noqa: PLC0415

        try:
            value = yaml.safe_load(text) if isinstance(text, str) else text
        except yaml.YAMLError as exc:
            raise NodeStartError(f"{self.config}: parameter {name} is not a YAML mapping: "
                                 f"{str(exc).splitlines()[0]}") from None
        value = {} if value is None else value
        if not isinstance(value, dict):
            raise NodeStartError(f"{self.config}: parameter {name} = {text!r} is not a mapping {{key: value}}")
        return value

    def get(self, name: str, fallback: Any = None) -> Any:
        """A parameter's value ("diag/stale_warn_s" or "diag.stale_warn_s"); `fallback` when it is not set."""
        value = self._values.get(name.replace(".", "/"), self._values.get(name))
        return fallback if value is None else value

    def group(self, prefix: str) -> Dict[str, Any]:
        """The members of a group (tracker, diag) as a dict, as the ROS 1 nodes get them."""
        start = prefix + "/"
        return {k[len(start):]: v for k, v in self._values.items() if k.startswith(start) and v is not None}


def image_qos(depth: int = 1):
    """Sensor-data QoS (best effort, keep last `depth`): the newest frame wins, an old one is never waited for."""
    from rclpy.qos import QoSProfile, qos_profile_sensor_data  # noqa: PLC0415

    return QoSProfile(history=qos_profile_sensor_data.history, depth=max(1, int(depth)),
                      reliability=qos_profile_sensor_data.reliability, durability=qos_profile_sensor_data.durability)


def stamp_to_sec(stamp: Any) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def stamp_key(stamp: Any) -> Tuple[int, int]:
    return int(stamp.sec), int(stamp.nanosec)


class StampMatcher:
    """Pairs an image with the FaceArray of the same header stamp (the detector copies the image header), as ROS 1's
    message_filters.TimeSynchronizer does; with `slop_s` > 0 the nearest image within slop. Bounded: `size` images."""

    def __init__(self, size: int, slop_s: float = 0.0):
        self.size, self.slop_s = max(1, int(size)), float(slop_s)
        self._images: OrderedDict[Tuple[int, int], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.unmatched = 0

    def add_image(self, msg: Any) -> None:
        with self._lock:
            self._images[stamp_key(msg.header.stamp)] = msg
            while len(self._images) > self.size:
                self._images.popitem(last=False)

    def match(self, faces: Any) -> Optional[Any]:
        key = stamp_key(faces.header.stamp)
        with self._lock:
            image = self._images.get(key)
            if image is None and self.slop_s > 0 and self._images:
                t = key[0] + 1e-9 * key[1]
                best = min(self._images, key=lambda k: abs(k[0] + 1e-9 * k[1] - t))
                if abs(best[0] + 1e-9 * best[1] - t) <= self.slop_s:
                    image = self._images[best]
        if image is None:
            self.unmatched += 1
        return image


class Diagnostics:
    """One diagnostic_msgs/DiagnosticStatus for this node on /diagnostics every `period_s`: `fields()` gives the
    key/values, `level()` (level, message) with level 0 OK, 1 WARN, 2 ERROR. Never raises."""

    def __init__(self, node: Any, fields: Callable[[], Dict[str, Any]],
                 level: Optional[Callable[[], tuple]] = None, period_s: float = 1.0, hardware_id: str = ""):
        from diagnostic_msgs.msg import DiagnosticArray  # noqa: PLC0415

        self.node, self._fields, self._level = node, fields, level
        self.name = node.get_fully_qualified_name()
        self.hardware_id = hardware_id or node.get_namespace().strip("/") or "fer_mask_ros"
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._timer = node.create_timer(period_s, self.publish)

    def publish(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: PLC0415

        try:
            level, message = self._level() if self._level else (0, "ok")
            values = self._fields()
        except Exception as exc:  # diagnostics must never kill a node
            level, message, values = 2, f"diagnostics failed: {exc}", {}
        status = DiagnosticStatus(level=bytes([int(level)]), name=self.name, message=str(message),
                                  hardware_id=self.hardware_id)
        status.values = [KeyValue(key=str(k), value=_fmt(v)) for k, v in values.items()]
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.node.get_clock().now().to_msg()
        try:
            self._pub.publish(arr)
        except Exception:  # shutting down
            pass


class Counts:
    """Processed-item count, latency (mean over the last `window` items) and the last error, thread-safe."""

    def __init__(self, window: int = 50):
        self.count = self.errors = self.bad_input = 0
        self.last_error = self.last_bad = ""
        self.last_time: Optional[float] = None
        self._lat: List[float] = []
        self._window = window
        self._lock = threading.Lock()

    def add(self, latency_s: float) -> None:
        with self._lock:
            self.count += 1
            self.last_time = time.monotonic()
            self._lat = (self._lat + [latency_s])[-self._window:]

    def error(self, text: str) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = text[:300]

    def bad(self, text: str) -> None:
        with self._lock:
            self.bad_input += 1
            self.last_bad = text[:300]

    def fields(self) -> Dict[str, Any]:
        with self._lock:
            lat = list(self._lat)
            age = None if self.last_time is None else time.monotonic() - self.last_time
        return {"processed": self.count, "errors": self.errors, "last_error": self.last_error,
                "bad_input": self.bad_input, "last_bad_input": self.last_bad,
                "latency_mean_ms": 1000.0 * sum(lat) / len(lat) if lat else float("nan"),
                "last_age_s": float("nan") if age is None else age}

    def level(self, what: str, stale_warn_s: float = 2.0, latency_warn_ms: float = 250.0) -> tuple:
        f = self.fields()
        if self.errors and not self.count:
            return 2, f"every {what} failed: {self.last_error}"
        if not self.count:
            return 1, f"no {what} processed yet"
        if f["last_age_s"] > stale_warn_s:
            return 1, f"no {what} for {f['last_age_s']:.1f} s (input topic silent?)"
        if f["latency_mean_ms"] > latency_warn_ms:
            return 1, f"latency {f['latency_mean_ms']:.0f} ms > {latency_warn_ms:g} ms"
        return 0, "ok"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def config_defaults(config: str) -> Dict[str, Any]:
    return node_defaults(config)


def quiet_qi() -> None:
    """libqi logs every service (un)registration on stdout: keep its warnings and errors."""
    try:
        import qi  # noqa: PLC0415
    except ImportError:
        return
    qi.logging.setLevel(qi.logging.WARNING)


def make_executor(threads: int = 1) -> Any:
    """rclpy's single-threaded executor, or a multi-threaded one for `threads` > 1 (it costs latency: use it only for
    a node whose callbacks must overlap). rclpy.experimental.EventsExecutor (Jazzy) was tried: the nodes then got no
    messages and ignored Ctrl-C."""
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor  # noqa: PLC0415

    return MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()


def low_latency_transport() -> None:
    """Fast DDS publishes from the caller's thread (rmw_fastrtps' default is a separate sending thread: measured here,
    camera -> detector image p95 58 ms asynchronous vs 29 ms synchronous on a loaded 2-core VM). Set before
    rclpy.init; an explicit $RMW_FASTRTPS_PUBLICATION_MODE wins."""
    import os  # noqa: PLC0415

    os.environ.setdefault("RMW_FASTRTPS_PUBLICATION_MODE", "SYNCHRONOUS")


def run_node(factory: Callable[..., Any], name: str, argv: Optional[list] = None, threads: int = 1) -> int:
    """Runs one node standalone (`python -m fer_mask_ros.ros2.<node> --ros-args ...`) until Ctrl-C, on a
    single-threaded executor (rclpy's multi-threaded one costs latency) unless `threads` > 1; a NodeStartError is one
    FATAL line and exit status 2."""
    import sys  # noqa: PLC0415

    import rclpy  # noqa: PLC0415
    from rclpy.executors import ExternalShutdownException  # noqa: PLC0415

    low_latency_transport()
    rclpy.init(args=sys.argv if argv is None else argv)
    quiet_qi()
    node = None
    try:
        try:
            node = factory()
        except NodeStartError as exc:
            rclpy.logging.get_logger(name).fatal(str(exc))
            return 2
        executor = make_executor(threads)
        executor.add_node(node.node if hasattr(node, "node") else node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        close = getattr(node, "close", None)
        if callable(close):
            close()
        if rclpy.ok():
            rclpy.try_shutdown()
    return 0


def exit_now(status: int) -> None:
    """Leave the process with `status` without running native destructors at exit: libqi's can abort there
    ("terminate called without an active exception") once its session is closed. The ROS 1 nao_camera does the same."""
    import os  # noqa: PLC0415
    import sys  # noqa: PLC0415

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
