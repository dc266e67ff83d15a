"""fake_nao on ROS 2: a simulated NAO (simulation.fake_nao.FakeNao, a real qi server) as a node.

    python -m fer_mask_ros.ros2.fake_nao --ros-args -r __ns:=/fer_mask -p port:=9559 -p duration:=30.0

Serves ALVideoDevice (frames of `source` at `fps`), ALTextToSpeech, ALAnimatedSpeech, ALLeds on tcp://host:port
(loopback by default), prints "NAO says: ..." for every sentence and republishes it on ~/said
(std_msgs/msg/String). It keeps the emotions the graph publishes (emotions, in its namespace) and, when `duration`
(> 0) is over, prints the per-face table `make demo` prints and stops.
"""
from __future__ import annotations

import threading
import time
from collections import namedtuple
from typing import Any, List

from fer_mask_ros_interfaces.msg import EmotionStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from std_msgs.msg import String

from fer_mask_ros.ros2.runtime import Diagnostics, NodeStartError, exit_now, run_node, stamp_to_sec

_Record = namedtuple("_Record", "time face_id emotion confidence masked")


def faces_table(seen: List[tuple]) -> str:
    """The per-face table of `make demo` (analysis.report.face_table) from (stamp, face_id, emotion, conf, masked)."""
    from fer_mask_ros.analysis.report import face_table  # noqa: PLC0415

    if not seen:
        return "  (none)"
    t0 = min(s[0] for s in seen)
    return face_table([_Record(s[0] - t0, *s[1:]) for s in sorted(seen)])


class FakeNaoNode(Node):
    PARAMS = {"source": ("clip", "video, image folder, or clip (the bundled demo clip)"),
              "fps": (10.0, "frames per second the camera shows"),
              "host": ("127.0.0.1", "address to listen on (0.0.0.0: every interface)"),
              "port": (9559, "qi port (0: any free port)"),
              "say_seconds": (0.0, "seconds each sentence takes"),
              "duration": (0.0, "seconds before the node stops and prints its table; 0 = run until Ctrl-C")}

    def __init__(self, echo: bool = True, frames: Any = None, **kwargs: Any):
        """frames: a FrameSource-like object shown instead of the `source` parameter (benchmarks)."""
        super().__init__("fake_nao", **kwargs)
        values = {name: self.declare_parameter(name, default, ParameterDescriptor(description=text, read_only=True))
                  .value for name, (default, text) in self.PARAMS.items()}
        from fer_mask_ros.simulation.fake_nao import FakeNao  # noqa: PLC0415

        try:
            self.nao = FakeNao(frames if frames is not None else (str(values["source"]) or "clip"),
                               fps=float(values["fps"]),
                               url=f"tcp://{values['host']}:{int(values['port'])}",
                               say_seconds=float(values["say_seconds"]), echo=echo)
            self.nao.start()
        except Exception as exc:
            raise NodeStartError(f"fake_nao: {exc}") from None
        self.duration = float(values["duration"])
        self.started = time.monotonic()
        self.seen: List[tuple] = []  # (stamp, face_id, emotion, confidence, masked)
        self._lock = threading.Lock()
        self._published = 0
        self.pub_said = self.create_publisher(String, "~/said", 20)
        self.create_subscription(EmotionStamped, "emotions", self.on_emotion, 200)
        self.create_timer(0.1, self.relay_said)
        Diagnostics(self, self.nao.stats)
        self.get_logger().info(f"fake_nao: listening on {self.nao.url}, playing {self.nao.source}")

    def on_emotion(self, m: Any) -> None:
        with self._lock:
            self.seen.append((stamp_to_sec(m.header.stamp), m.face_id, m.emotion, m.confidence, m.masked))

    def relay_said(self) -> None:
        spoken = self.nao.spoken
        for utt in spoken[self._published:]:
            self.pub_said.publish(String(data=utt.text))
        self._published = len(spoken)

    def finished(self) -> bool:
        return self.duration > 0 and time.monotonic() - self.started >= self.duration

    def table(self) -> str:
        with self._lock:
            return faces_table(list(self.seen))

    def close(self) -> None:
        self.nao.stop()


def main(argv=None) -> int:
    import rclpy  # noqa: PLC0415

    holder: List[FakeNaoNode] = []

    def make() -> FakeNaoNode:
        node = FakeNaoNode()
        holder.append(node)

        def check() -> None:
            if node.finished():
                print(f"fake_nao: NAO said {len(node.nao.spoken_texts)} sentence(s); the faces the graph saw "
                      f"(emotions topic):\n{node.table()}", flush=True)
                rclpy.try_shutdown()
        node.create_timer(0.2, check)
        return node

    return run_node(make, "fake_nao", argv)


if __name__ == "__main__":
    exit_now(main())  # qi: no native teardown at exit
