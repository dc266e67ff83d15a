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
import os
import threading
import time
from typing import List

import numpy as np

SIZES = {"QVGA": (320, 240), "VGA": (640, 480)}


class NodeProcesses:
    """The fake NAO (python -m fer_mask_ros fake-nao, serving the frames from a folder), nao_camera, face_detector and
    emotion_classifier each as a process, as the ROS 1 bench runs them; the camera rate comes from nao_camera's
    /diagnostics (this process never receives the images)."""

    def __init__(self, frames, fps: float, ns: str = "fer_mask"):
        import subprocess  # noqa: PLC0415
        import sys  # noqa: PLC0415
        import tempfile  # noqa: PLC0415

        import cv2  # noqa: PLC0415
        import rclpy  # noqa: PLC0415
        from diagnostic_msgs.msg import DiagnosticArray  # noqa: PLC0415
        from rclpy.executors import SingleThreadedExecutor  # noqa: PLC0415

        from fer_mask_ros.ports import free_port  # noqa: PLC0415

        self.folder = tempfile.mkdtemp(prefix="fer_mask_ros2_bench_")
        for i, rgb in enumerate(frames):
            cv2.imwrite(os.path.join(self.folder, f"{i:03d}.png"), rgb[:, :, ::-1])
        port = free_port()
        common = ["--ros-args", "-r", f"__ns:=/{ns}"]
        image = ["-r", "image:=camera/front/image_raw"]
        nodes = [["nao_camera", "-p", "nao_ip:=127.0.0.1", "-p", f"nao_port:={port}", "-p", f"fps:={int(fps)}",
                  "-r", "image_raw:=camera/front/image_raw", "-r", "camera_info:=camera/front/camera_info"],
                 ["face_detector", *image], ["emotion_classifier", *image]]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.procs = [subprocess.Popen([sys.executable, "-m", "fer_mask_ros", "fake-nao", "--source", self.folder,
                                        "--fps", str(fps), "--port", str(port), "--quiet"], **quiet)]
        time.sleep(2.0)  # the fake NAO listens before the camera connects (it would retry anyway)
        self.procs += [subprocess.Popen([sys.executable, "-m", f"fer_mask_ros.ros2.{c[0]}", *common, *c[1:]], **quiet)
                       for c in nodes]
        rclpy.init(args=[])
        self.camera_published = 0
        self.camera_name = f"/{ns}/nao_camera"
        self.node = rclpy.create_node("bench_diagnostics", namespace=ns)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._diag, 20)
        self.executor = SingleThreadedExecutor()  # rclpy's multi-threaded executor adds latency
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def _diag(self, msg) -> None:
        for status in msg.status:
            if status.name == self.camera_name:
                values = {kv.key: kv.value for kv in status.values}
                self.camera_published = int(values.get("processed", "0"))

    def add_node(self, node) -> None:
        self.executor.add_node(node)

    def camera_images(self) -> int:
        return self.camera_published

    def stop(self) -> None:
        import shutil  # noqa: PLC0415

        import rclpy  # noqa: PLC0415

        for proc in reversed(self.procs):  # the fake NAO last
            proc.send_signal(2)  # SIGINT, as Ctrl-C
            try:
                proc.wait(10)
            except Exception:
                proc.kill()
        self.executor.shutdown(timeout_sec=5.0)
        rclpy.try_shutdown()
        shutil.rmtree(self.folder, ignore_errors=True)


def run(case: str = "QVGA@30x2", seconds: float = 20.0, warmup: float = 5.0, processes: bool = False) -> dict:
    import rclpy  # noqa: PLC0415
    from fer_mask_ros_interfaces.msg import EmotionArray  # noqa: PLC0415

    from fer_mask_ros.ros2.demo import DemoGraph  # noqa: PLC0415
    from fer_mask_ros.ros2.runtime import low_latency_transport  # noqa: PLC0415
    from fer_mask_ros.simulation.face_frames import FaceFrames  # noqa: PLC0415

    low_latency_transport()  # before rclpy.init (the node processes set it themselves)
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
