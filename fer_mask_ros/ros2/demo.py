"""The demo graph on ROS 2, in one process, on a simulated NAO: `python -m fer_mask_ros ros2 demo`.

fake_nao (a real qi server playing the bundled clip) -> nao_camera (qi) -> face_detector -> emotion_classifier ->
emotion_speech (qi: the fake NAO prints "NAO says: ...") [-> hri_bridge, REP-155], the same topics and parameter
names as ROS 1's demo.launch, in namespace `ns`. The nodes are composed in one process on one multi-threaded
executor (an executor per node was slower here: more Python threads contending for the GIL); `bench.py --processes`
runs them as processes instead, as ROS 1 does. There is no ros2 launch in the PyPI wheels; demo_launch.py beside
this file is for those who have it.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional

CAMERA_TOPICS = {"image_raw": "camera/front/image_raw", "camera_info": "camera/front/camera_info"}
IMAGE_TOPIC = "camera/front/image_raw"


def _remaps(mapping: Dict[str, str]) -> List[str]:
    out = ["--ros-args"]
    for a, b in mapping.items():
        out += ["-r", f"{a}:={b}"]
    return out


class DemoGraph:
    """The demo's nodes, started in order on one executor; `add_node` spins one more (a test's subscriber);
    `stop()` ends them (the fake NAO last)."""

    def __init__(self, ns: str = "fer_mask", port: int = 0, fps: float = 10.0, source: Any = "clip",
                 speech_backend: str = "qi", language: str = "en", model: str = "", rep155: bool = False,
                 hri_prefix: str = "/humans", echo: bool = True, overrides: Optional[Dict[str, Dict[str, Any]]] = None):
        import rclpy  # noqa: PLC0415
        from rclpy.parameter import Parameter  # noqa: PLC0415

        from fer_mask_ros.ros2.emotion_classifier import EmotionClassifierNode  # noqa: PLC0415
        from fer_mask_ros.ros2.emotion_speech import EmotionSpeechNode  # noqa: PLC0415
        from fer_mask_ros.ros2.face_detector import FaceDetectorNode  # noqa: PLC0415
        from fer_mask_ros.ros2.fake_nao import FakeNaoNode  # noqa: PLC0415
        from fer_mask_ros.ros2.nao_camera import NaoCameraNode  # noqa: PLC0415
        from fer_mask_ros.ros2.runtime import low_latency_transport, quiet_qi  # noqa: PLC0415

        quiet_qi()
        low_latency_transport()
        self._own_context = not rclpy.ok()
        if self._own_context:
            rclpy.init(args=[])
        overrides = overrides or {}
        self.nodes: List[Any] = []

        def start(cls: Callable[..., Any], name: str, params: Dict[str, Any], remap: Dict[str, str], **kw: Any):
            params = dict(params, **overrides.get(name, {}))
            node = cls(namespace=ns, cli_args=_remaps(remap) if remap else None,
                       parameter_overrides=[Parameter(k, value=v) for k, v in params.items()], **kw)
            self.nodes.append(node)
            return node

        try:
            frames = None if isinstance(source, str) else source  # an in-memory frame source (benchmarks)
            self.fake_nao = start(FakeNaoNode, "fake_nao", {"source": source if frames is None else "",
                                                            "fps": float(fps), "port": int(port)},
                                  {}, echo=echo, frames=frames)
            real_port = int(self.fake_nao.nao.url.rsplit(":", 1)[1])
            nao = {"nao_ip": "127.0.0.1", "nao_port": real_port}
            self.camera = start(NaoCameraNode, "nao_camera", dict(nao, fps=int(round(fps))), CAMERA_TOPICS)
            self.detector = start(FaceDetectorNode, "face_detector", {}, {"image": IMAGE_TOPIC})
            self.classifier = start(EmotionClassifierNode, "emotion_classifier", {"model": model},
                                    {"image": IMAGE_TOPIC})
            self.speech = start(EmotionSpeechNode, "emotion_speech",
                                dict(nao, backend=speech_backend, language=language), {})
            self.hri = None
            if rep155:
                from fer_mask_ros.ros2.hri_bridge import HriBridgeNode  # noqa: PLC0415

                self.hri = start(HriBridgeNode, "hri_bridge", {"prefix": hri_prefix}, {"image": IMAGE_TOPIC})
        except BaseException:
            self.stop()
            raise
        from rclpy.executors import MultiThreadedExecutor  # noqa: PLC0415

        self.executor = MultiThreadedExecutor(num_threads=6)
        for node in self.nodes:
            self.executor.add_node(node)
        threading.Thread(target=self._spin, args=(self.executor,), name="ros2_demo", daemon=True).start()

    def add_node(self, node: Any) -> None:
        """Spin one more node (a test's or a benchmark's subscriber) with the graph."""
        self.executor.add_node(node)

    @staticmethod
    def _spin(executor: Any) -> None:
        from rclpy.executors import ExternalShutdownException  # noqa: PLC0415

        try:
            executor.spin()
        except ExternalShutdownException:
            pass

    def stop(self) -> None:
        import logging  # noqa: PLC0415

        import rclpy  # noqa: PLC0415

        # the robot link is closed on purpose now (the fake NAO goes last): no "disconnected" warning
        logging.getLogger("fer_mask_ros").setLevel(logging.ERROR)
        executor = getattr(self, "executor", None)
        if executor is not None:
            executor.shutdown(timeout_sec=5.0)
        for node in reversed(self.nodes):  # the fake NAO last: no client sees the robot vanish
            close = getattr(node, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    pass
            try:
                node.destroy_node()
            except Exception:
                pass
        self.nodes = []
        if self._own_context and rclpy.ok():
            rclpy.try_shutdown()


def run(duration: float = 30.0, **options: Any) -> int:
    """Runs the demo graph for `duration` s (0: until Ctrl-C), then prints the per-face table; 0 when it ran."""
    print(f"ros2 demo: simulated NAO playing the bundled clip for {duration:g} s "
          "(lines 'NAO says: ...' are its speech)", flush=True)
    graph = DemoGraph(**options)
    try:
        end = time.monotonic() + duration if duration > 0 else None
        while end is None or time.monotonic() < end:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        said = graph.fake_nao.nao.spoken_texts
        table = graph.fake_nao.table()
        graph.stop()
    print(f"ros2 demo: NAO said {len(said)} sentence(s); the faces the graph saw (emotions topic):\n{table}",
          flush=True)
    return 0
