"""Latency of the ROS 2 graph on a fake NAO, as `make bench` measures the ROS 1 graph (ros/bench_graph.py).

    .venv-ros2/bin/python -m fer_mask_ros.ros2.bench [--case QVGA@30x2] [--seconds 20] [--warmup 5]

The same synthetic frames (simulation.face_frames.FaceFrames: the clip's masked faces on its background) are
served by a fake NAO at the offered rate; the graph is the demo's (nao_camera -> face_detector ->
emotion_classifier; speech on the log backend), composed in one process. Latency = camera stamp -> EmotionStamped
arrival in a subscriber node in the same process (the ROS 1 bench's subscriber is its own process). Prints one line.
"""
from __future__ import annotations

import argparse
import threading
import time
from typing import List

import numpy as np

SIZES = {"QVGA": (320, 240), "VGA": (640, 480)}


def run(case: str = "QVGA@30x2", seconds: float = 20.0, warmup: float = 5.0) -> dict:
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

    graph = DemoGraph(port=0, fps=fps, source=rgb, speech_backend="log", echo=False)
    try:
        watcher = rclpy.create_node("bench_watcher", namespace="fer_mask")
        watcher.create_subscription(EmotionArray, "emotion_array", on_array, 50)
        graph.executor.add_node(watcher)
        time.sleep(warmup)
        images_before = graph.camera.counts.count
        measuring.set()
        time.sleep(seconds)
        measuring.clear()
        images = graph.camera.counts.count - images_before
    finally:
        graph.stop()
    lat = np.asarray(latencies) * 1000.0
    out = {"case": case, "seconds": seconds, "camera_fps": images / seconds, "processed_fps": arrays[0] / seconds,
           "p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
           "p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
           "max_ms": float(lat.max()) if lat.size else float("nan")}
    print(f"ros2 bench {case}: camera {out['camera_fps']:.1f} fps, processed {out['processed_fps']:.1f} fps, latency "
          f"p50 {out['p50_ms']:.0f} ms, p95 {out['p95_ms']:.0f} ms, max {out['max_ms']:.0f} ms", flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="QVGA@30x2", help="RESOLUTION@FPSxFACES (default QVGA@30x2)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    args = parser.parse_args(argv)
    run(args.case, args.seconds, args.warmup)
    return 0


if __name__ == "__main__":
    from fer_mask_ros.ros2.runtime import exit_now

    exit_now(main())
