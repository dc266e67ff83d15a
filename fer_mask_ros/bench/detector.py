"""`bench --detector [NAME]`: milliseconds per frame of the face detectors (or the one named) on one CPU thread.

Wire-up (commands/bench.py): call ``add_detector_arguments(parser)`` when building the
parser and ``run_detector_bench(args)`` when ``--detector`` is given.  Standalone:
``python -m fer_mask_ros.bench.detector``.

Frames are synthetic (textured background with a few face-sized blobs); the network cost
does not depend on content, decoding cost hardly does.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional, Sequence, Tuple

import numpy as np

SIZES: Tuple[Tuple[int, int], ...] = ((320, 240), (640, 480))
TARGET_MS = {(320, 240): 20.0, (640, 480): 60.0}
GOAL_MS = {(320, 240): 10.0, (640, 480): 30.0}


def add_detector_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("detector bench")
    group.add_argument("--detector-model", default=None,
                       help="detector ONNX model (default: the shipped one; times the named or default detector only)")
    group.add_argument("--detector-frames", type=int, default=50, help="timed frames per size (default 50)")
    group.add_argument("--detector-warmup", type=int, default=5, help="untimed frames per size (default 5)")
    group.add_argument("--detector-threads", type=int, default=1, help="onnxruntime / OpenCV threads (default 1)")
    group.add_argument("--detector-min-face", type=int, default=None, help="min face height (default: tuned)")


def _frames(width: int, height: int, count: int, seed: int = 0) -> List[np.ndarray]:
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(max(1, count)):
        small = rng.integers(0, 256, (max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
        frame = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
        for _ in range(2):
            r = int(rng.integers(30, max(31, height // 4)))
            c = (int(rng.integers(r, width - r)), int(rng.integers(r, height - r)))
            cv2.ellipse(frame, c, (int(r * 0.8), r), 0, 0, 360, (140, 170, 210), -1)
        out.append(frame)
    return out


def detector_name(args) -> Optional[str]:
    """The detector `bench --detector NAME` picked for every bench, or None (config/face_detector.yaml's)."""
    value = getattr(args, "detector", None)
    return value if isinstance(value, str) else None


def run_detector_bench(args) -> int:
    """One table per detector: the one `--detector NAME` (or `--detector-model`) picks, else every detector."""
    from fer_mask_ros.perception.detection import DETECTORS, default_detector_name

    name = detector_name(args)
    if name is None and getattr(args, "detector_model", None):
        name = default_detector_name()
    names = [name] if name else sorted(DETECTORS, key=lambda n: n != default_detector_name())
    for i, each in enumerate(names):
        if i:
            print()
        _bench_one(args, each)
    return 0


def _bench_one(args, name: str) -> None:
    import cv2

    from fer_mask_ros.errors import DetectorError
    from fer_mask_ros.perception.detection import DEFAULT_MIN_FACE, make_detector

    threads = max(1, int(getattr(args, "detector_threads", 1) or 1))
    cv2.setNumThreads(threads)
    min_face = getattr(args, "detector_min_face", None) or DEFAULT_MIN_FACE
    try:
        detector = make_detector(name, model_path=getattr(args, "detector_model", None), num_threads=threads,
                                 min_face=min_face)
    except DetectorError as exc:
        from fer_mask_ros.errors import CommandError

        raise CommandError(str(exc)) from exc
    n = max(1, int(getattr(args, "detector_frames", 50)))
    warm = max(0, int(getattr(args, "detector_warmup", 5)))
    rows = []
    for width, height in SIZES:
        frames = _frames(width, height, min(n, 10))
        for i in range(warm):
            detector.detect(frames[i % len(frames)])
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            detector.detect(frames[i % len(frames)])
            times.append((time.perf_counter() - t0) * 1000.0)
        s = detector.input_scale(height, width)
        net = f"{int(round(width * s))}x{int(round(height * s))}"
        arr = np.asarray(times)
        rows.append((f"{width}x{height}", net, float(np.mean(arr)), float(np.median(arr)),
                     float(np.percentile(arr, 90)), 1000.0 / float(np.mean(arr)),
                     TARGET_MS[(width, height)], GOAL_MS[(width, height)]))
    print(f"detector: {detector.name}, {detector.model_path}")
    print(f"threads: {threads}, min_face: {detector.min_face}px, score_threshold: {detector.score_threshold}, "
          f"frames: {n} per size")
    header = ("frame", "net input", "mean ms", "median ms", "p90 ms", "fps", "target ms", "goal ms", "ok")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] * len(header)) + "|")
    for frame, net, mean, med, p90, fps, target, goal in rows:
        ok = "goal" if mean <= goal else ("yes" if mean <= target else "NO")
        cells = [frame, net] + [f"{v:.1f}" for v in (mean, med, p90)] + [f"{v:.0f}" for v in (fps, target, goal)]
        cells.append(ok)
        print("| " + " | ".join(cells) + " |")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_mask_ros.bench.detector", description=__doc__.splitlines()[0])
    add_detector_arguments(parser)
    args = parser.parse_args(argv)
    return run_detector_bench(args)


if __name__ == "__main__":
    sys.exit(main())
