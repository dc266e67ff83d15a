"""`bench`: speed tables. `--detector`, `--classifier` (no flag: both); `--analyze`: offline analysis of a
one-face QVGA video; `--graph`: the whole ROS graph (fer_mask_ros.bench_graph, needs the catkin workspace
sourced: `make bench`)."""
from __future__ import annotations

import argparse
import importlib

from ..cli import CommandError


def _detector_module():
    """fer_mask_ros.bench_detector, or None if it is not there (another part of the project)."""
    try:
        return importlib.import_module("fer_mask_ros.bench_detector")
    except ModuleNotFoundError as exc:
        if exc.name in ("fer_mask_ros.bench_detector",):
            return None
        raise


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detector", action="store_true", help="time the face detector")
    parser.add_argument("--classifier", action="store_true", help="time the expression classifier")
    parser.add_argument("--analyze", action="store_true",
                        help="time offline analysis (`analyze`) of a 320x240 one-face video at 30 fps")
    parser.add_argument("--graph", action="store_true",
                        help="time the whole ROS graph on a fake NAO (writes docs/PERFORMANCE.md and performance.json)")
    try:
        detector = _detector_module()
    except ImportError:
        detector = None  # reported by --detector at run time
    if detector is not None and hasattr(detector, "add_detector_arguments"):
        detector.add_detector_arguments(parser)  # first: the classifier section skips flags already defined
    from ..bench_analysis import add_analysis_arguments
    from ..bench_classifier import add_classifier_arguments
    from ..bench_graph import add_graph_arguments

    add_classifier_arguments(parser)
    add_analysis_arguments(parser)
    add_graph_arguments(parser)


def run(args) -> int:
    status = 0
    if args.analyze:
        from ..bench_analysis import run_analysis_bench

        try:
            status = int(run_analysis_bench(args) or 0)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if not (args.graph or args.detector or args.classifier):
            return status
        print()
    if args.graph:
        from ..bench_graph import run_graph_bench

        status = int(run_graph_bench(args) or 0)
        if not (args.detector or args.classifier):
            return status
    both = not (args.detector or args.classifier)
    if args.detector or both:
        try:
            detector = _detector_module()
        except ImportError as exc:
            raise CommandError(f"the detector bench cannot be loaded: {exc}") from None
        if detector is None or not hasattr(detector, "run_detector_bench"):
            raise CommandError("the detector bench (fer_mask_ros/bench_detector.py) is not available yet; "
                               "use bench --classifier")
        status = max(status, int(detector.run_detector_bench(args) or 0))
        if args.classifier or both:
            print()
    if args.classifier or both:
        from ..bench_classifier import run_classifier_bench

        status = max(status, int(run_classifier_bench(args) or 0))
    return status
