"""`bench --analyze`: offline-analysis throughput on a synthetic 320x240 one-face video at 30 fps.

The video is written from the bundled clip's masked faces (`bench_graph.FaceFrames`, moving), then
`analysis.analyse` runs on it exactly as `python -m fer_mask_ros analyze` does, once per full-scan
interval, with one thread. The table gives frames per wall second and per CPU second of the process;
"x real time" is frames per CPU second / the video's fps, i.e. what one free core achieves.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from typing import List, Sequence

from fer_mask_ros.perception.pipeline import DEFAULT_FULL_SCAN_INTERVAL


def add_analysis_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("analysis bench")
    group.add_argument("--analyze-seconds", type=float, default=10.0, help="length of the test video (default 10 s)")
    group.add_argument("--analyze-intervals", default=f"0,{DEFAULT_FULL_SCAN_INTERVAL:g}", metavar="S,S",
                       help="full-scan intervals to compare (default 0 = every frame, and the default)")


def write_test_video(path: str, seconds: float, fps: float = 30.0, width: int = 320, height: int = 240,
                     faces: int = 1) -> int:
    """Masked clip faces moving over the clip background; returns the number of frames written."""
    import cv2

    from fer_mask_ros.simulation.face_frames import FaceFrames

    n = max(1, int(round(seconds * fps)))
    frames = FaceFrames(width, height, faces, n_frames=min(n, 300))
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}")
    for i in range(n):
        writer.write(frames.frame(i % frames.n_frames))
    writer.release()
    return n


def _intervals(text: str) -> List[float]:
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 0 for v in values):
        raise ValueError(f"--analyze-intervals: expected seconds >= 0 separated by commas, got {text!r}")
    return values


def run_analysis_bench(args, intervals: Sequence[float] = ()) -> int:
    import cv2

    from fer_mask_ros.analysis.analyse import analyse
    from fer_mask_ros.analysis.sources import open_source
    from fer_mask_ros.perception.classifier import load_classifier
    from fer_mask_ros.perception.detection import FaceDetector
    from fer_mask_ros.perception.pipeline import FacePipeline

    cv2.setNumThreads(1)
    intervals = list(intervals) or _intervals(args.analyze_intervals)
    classifier = load_classifier(getattr(args, "classifier_model", None), 1)
    detector = FaceDetector(num_threads=1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video = os.path.join(tmp, "one_face_qvga30.avi")
        n = write_test_video(video, args.analyze_seconds)
        warm_up = os.path.join(tmp, "warm_up.avi")
        write_test_video(warm_up, min(1.0, args.analyze_seconds))
        for interval in intervals:
            pipeline = FacePipeline(detector=detector, classifier=classifier, full_scan_interval=interval)
            analyse(open_source(warm_up), pipeline, progress=False)  # one second: loads and caches, not timed
            pipeline.reset()
            pipeline.full_scans = pipeline.region_scans = 0
            result = analyse(open_source(video), pipeline, progress=False)
            per_cpu = result.frames / max(1e-9, result.cpu_s)
            rows.append((interval, result.frames, result.frames / max(1e-9, result.wall_s), per_cpu, per_cpu / 30.0,
                         pipeline.full_scans, pipeline.region_scans))
    print(f"offline analysis: 320x240, 1 masked face, 30 fps, {n} frames, detector + classifier on 1 thread")
    print("| full-scan interval s | frames | frames/s (wall) | frames per CPU-second | x real time (1 core) "
          "| full scans | window re-finds |")
    print("|---|---|---|---|---|---|---|")
    for interval, frames, wall_fps, cpu_fps, realtime, full, region in rows:
        print(f"| {interval:g} | {frames} | {wall_fps:.1f} | {cpu_fps:.1f} | {realtime:.2f}x | {full} | {region} |")
    return 0
