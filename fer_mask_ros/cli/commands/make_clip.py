"""`python -m fer_mask_ros make-clip`: build the bundled demo clip (fer_mask_ros/data/demo_clip.avi + .json)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from fer_mask_ros.errors import CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fer_mask_ros.simulation.clip import DEFAULT_SOURCE, DEFAULT_VIDEO  # noqa: PLC0415

    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help=f"FER2013 test images, one folder per emotion (default {DEFAULT_SOURCE})")
    parser.add_argument("--out", type=Path, default=DEFAULT_VIDEO,
                        help="output video (.avi, MJPG); the labels go next to it as .json (default: the bundled clip)")
    parser.add_argument("--seed", type=int, default=7, help="random seed: same seed, same clip (default 7)")
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--quality", type=int, default=80, help="MJPG quality 1-100 (default 80)")
    parser.add_argument("--check", choices=("none", "detector", "model"), default="detector",
                        help="keep only faces that the face detector finds along their path (detector, default), "
                             "and that the shipped model also classifies right through their mask (model)")


def run(args: argparse.Namespace) -> int:
    from fer_mask_ros.simulation import clip  # noqa: PLC0415

    if not (args.source / "happy").is_dir():
        raise CommandError(f"{args.source} does not hold FER2013 test images (expected {args.source}/happy/*.jpg)")
    accept = None
    if args.check != "none":
        from fer_mask_ros.perception.detection import FaceDetector  # noqa: PLC0415

        classifier = None
        if args.check == "model":
            from fer_mask_ros.perception.classifier import EmotionClassifier  # noqa: PLC0415

            classifier = EmotionClassifier()
        accept = clip.detector_check(FaceDetector(), classifier=classifier)
    try:
        labels = clip.build_clip(args.source, args.out, seed=args.seed, fps=args.fps, quality=args.quality,
                                 accept=accept)
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    print(f"wrote {args.out} ({labels['bytes']} bytes, {labels['frames']} frames, {labels['duration_s']} s) "
          f"and {os.fspath(args.out.with_suffix('.json'))}")
    for seg in labels["segments"]:
        faces = ", ".join(f"{f['emotion']} ({f['source']})" for f in seg["faces"])
        print(f"  {seg['start_s']:5.1f}-{seg['end_s']:5.1f} s: {faces}")
    return 0
