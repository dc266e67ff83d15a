"""Latency of the ROS 2 graph on a fake NAO, as `make bench` measures the ROS 1 graph (ros/bench_graph.py).

    .venv-ros2/bin/python -m fer_mask_ros.ros2.bench [--case QVGA@30x2] [--seconds 20] [--warmup 5] [--processes]

The same synthetic frames (simulation.face_frames.FaceFrames: the clip's masked faces on its background) are
served by a fake NAO at the offered rate; the graph is the demo's (nao_camera -> face_detector ->
emotion_classifier; speech on the log backend), composed in one process, or with --processes one process per node
(as ROS 1 runs them; the fake NAO and the subscriber stay in this process). Latency = camera stamp ->
EmotionArray (with faces) arrival in a subscriber here. Prints one line.
"""
from __future__ import annotations

import argparse
import threading
import time
from typing import List

import numpy as np

SIZES = {"QVGA": (320, 240), "VGA": (640, 480)}


class NodeProcesses:
    """nao_camera, face_detector and emotion_classifier as processes (python -m fer_mask_ros.ros2.<node>) against a
    FakeNao served from this process; `camera_images()` counts the camera topic in a subscriber here."""

    def __init__(self, frames, fps: float, ns: str = "fer_mask"):
        import subprocess  # noqa: PLC0415
        import sys  # noqa: PLC0415

        import rclpy  # noqa: PLC0415
        from rclpy.executors import MultiThreadedExecutor  # noqa: PLC0415
        from sensor_msgs.msg import Image  # noqa: PLC0415

        from fer_mask_ros.ros2.runtime import image_qos  # noqa: PLC0415
        from fer_mask_ros.simulation.fake_nao import FakeNao  # noqa: PLC0415

        self.nao = FakeNao(frames, fps=fps, url="tcp://127.0.0.1:0", echo=False).start()
        port = self.nao.url.rsplit(":", 1)[1]
        common = ["--ros-args", "-r", f"__ns:=/{ns}"]
        image = ["-r", "image:=camera/front/image_raw"]
        commands = [["nao_camera", "-p", "nao_ip:=127.0.0.1", "-p", f"nao_port:={port}", "-p", f"fps:={int(fps)}",
                     "-r", "image_raw:=camera/front/image_raw", "-r", "camera_info:=camera/front/camera_info"],
                    ["face_detector", *image], ["emotion_classifier", *image]]
        self.procs = [subprocess.Popen([sys.executable, "-m", f"fer_mask_ros.ros2.{c[0]}", *common, *c[1:]],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in commands]
        rclpy.init(args=[])
        self.images = 0
        self.node = rclpy.create_node("bench_camera_counter", namespace=ns)
        self.node.create_subscription(Image, "camera/front/image_raw", self._count, image_qos(5))
        self.executor = MultiThreadedExecutor(num_threads=2)
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def _count(self, _msg) -> None:
        self.images += 1

    def add_node(self, node) -> None:
        self.executor.add_node(node)

    def camera_images(self) -> int:
        return self.images

    def stop(self) -> None:
        import rclpy  # noqa: PLC0415

        for proc in self.procs:
            proc.send_signal(2)  # SIGINT, as Ctrl-C
        for proc in self.procs:
            try:
                proc.wait(10)
            except Exception:
                proc.kill()
        self.executor.shutdown(timeout_sec=5.0)
        rclpy.try_shutdown()
        self.nao.stop()


def run(case: str = "QVGA@30x2", seconds: float = 20.0, warmup: float = 5.0, processes: bool = False) -> dict:
    import rclpy  # noqa: PLC0415
    from fer_mask_ros_interfaces.msg import EmotionArray  # noqa: PLC0415

    from fer_mask_ros.ros2.demo import DemoGraph  # noqa: PLC0415
    from fer_mask_ros.simulation.face_frames import FaceFrames  # noqa: PLC0415

    resolution, rest = case.split("@")
    fps, faces = (float(v) for v in rest.split("x"))
    width, height = SIZES[resolution]
    frames = FaceFrames(width, height, int(faces), n_frames=40)
    rgb = [f[:, :, ::-1].copy() for f in frames.frames]
    latencies: List[float] = []
    arrays = [0]
    lock = threading.Lock()
    measuring = threading.Event()

    def on_array(msg) -> None:
        now = time.time()
        if not measuring.is_set():
            return
        with lock:
            arrays[0] += 1
            if msg.emotions:
                latencies.append(now - (msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec))

    if processes:
        graph = NodeProcesses(rgb, fps)
        camera_images = graph.camera_images
    else:
        graph = DemoGraph(port=0, fps=fps, source=rgb, speech_backend="log", echo=False)
        camera_images = lambda: graph.camera.counts.count  # noqa: E731
    try:
        watcher = rclpy.create_node("bench_watcher", namespace="fer_mask")
        watcher.create_subscription(EmotionArray, "emotion_array", on_array, 50)
        graph.add_node(watcher)
        time.sleep(warmup)
        images_before = camera_images()
        measuring.set()
        time.sleep(seconds)
        measuring.clear()
        images = camera_images() - images_before
    finally:
        graph.stop()
    lat = np.asarray(latencies) * 1000.0
    out = {"case": case, "processes": processes, "seconds": seconds, "camera_fps": images / seconds,
           "processed_fps": arrays[0] / seconds,
           "p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
           "p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
           "max_ms": float(lat.max()) if lat.size else float("nan")}
    how = "a process per node" if processes else "one process"
    print(f"ros2 bench {case} ({how}): camera {out['camera_fps']:.1f} fps, processed {out['processed_fps']:.1f} fps, "
          "latency "
          f"p50 {out['p50_ms']:.0f} ms, p95 {out['p95_ms']:.0f} ms, max {out['max_ms']:.0f} ms", flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="QVGA@30x2", help="RESOLUTION@FPSxFACES (default QVGA@30x2)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--processes", action="store_true", help="a process per node (default: one process)")
    args = parser.parse_args(argv)
    run(args.case, args.seconds, args.warmup, args.processes)
    return 0


if __name__ == "__main__":
    from fer_mask_ros.ros2.runtime import exit_now

    exit_now(main())
