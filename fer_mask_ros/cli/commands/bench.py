"""`bench`: speed tables. `--detector`, `--classifier` (no flag: both); `--analyze`: offline analysis of a
one-face QVGA video; `--detector NAME` (centerface | yunet) also picks the detector of the other benches;
`--graph`: the whole ROS graph (fer_mask_ros.ros.bench_graph, loaded only for --graph:
it needs ROS 1 and the catkin workspace sourced, `make bench`)."""
from __future__ import annotations

import argparse
import importlib

from fer_mask_ros.config import REPO_ROOT
from fer_mask_ros.errors import CommandError


def _detector_module():
    """fer_mask_ros.bench.detector, or None if it is not there (another part of the project)."""
    try:
        return importlib.import_module("fer_mask_ros.bench.detector")
    except ModuleNotFoundError as exc:
        if exc.name in ("fer_mask_ros.bench.detector",):
            return None
        raise


def _graph_bench():
    """fer_mask_ros.ros.bench_graph: the ROS side, imported by name so that the CLI stays ROS-free."""
    try:
        return importlib.import_module("fer_mask_ros.ros.bench_graph")
    except ImportError as exc:
        raise CommandError(f"bench --graph needs ROS 1 and the catkin workspace (source .ws/devel/setup.bash): {exc}"
                           ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fer_mask_ros.perception.detection import DETECTORS

    parser.add_argument("--detector", nargs="?", const=True, default=None, choices=sorted(DETECTORS),
                        metavar="{" + ",".join(sorted(DETECTORS)) + "}",
                        help="time the face detectors (a NAME: that one only, and the detector of --analyze, "
                             "--analyze-batch and --graph; default there: config/face_detector.yaml's)")
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
    from fer_mask_ros.bench.analysis import add_analysis_arguments
    from fer_mask_ros.bench.classifier import add_classifier_arguments

    add_classifier_arguments(parser)
    add_analysis_arguments(parser)
    add_graph_arguments(parser)


def run(args) -> int:
    status = 0
    if getattr(args, "analyze_batch", False):
        from fer_mask_ros.bench.analysis import run_batch_bench

        status = int(run_batch_bench(args) or 0)
        if not (args.analyze or args.graph or args.detector or args.classifier or args.analyze_film):
            return status
    if getattr(args, "analyze_film", False):
        from fer_mask_ros.bench.analysis import run_film_bench

        status = int(run_film_bench(args) or 0)
        if not (args.analyze or args.graph or args.detector or args.classifier):
            return status
    if args.analyze:
        from fer_mask_ros.bench.analysis import run_analysis_bench

        try:
            status = int(run_analysis_bench(args) or 0)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if not (args.graph or args.detector or args.classifier):
            return status
        print()
    if args.graph:
        status = int(_graph_bench().run_graph_bench(args) or 0)
        if not (args.detector or args.classifier):
            return status
    both = not (args.detector or args.classifier)
    if args.detector or both:
        try:
            detector = _detector_module()
        except ImportError as exc:
            raise CommandError(f"the detector bench cannot be loaded: {exc}") from None
        if detector is None or not hasattr(detector, "run_detector_bench"):
            raise CommandError("the detector bench (fer_mask_ros/bench/detector.py) is not available yet; "
                               "use bench --classifier")
        status = max(status, int(detector.run_detector_bench(args) or 0))
        if args.classifier or both:
            print()
    if args.classifier or both:
        from fer_mask_ros.bench.classifier import run_classifier_bench

        status = max(status, int(run_classifier_bench(args) or 0))
    return status


def add_graph_arguments(parser) -> None:
    g = parser.add_argument_group("graph bench (--graph)")
    g.add_argument("--graph-cases", default=None,
                   help="comma list RES@FPSxFACES, e.g. QVGA@30x2,VGA@10x5 "
                        "(default: QVGA/VGA x 1,2,5 faces x 10,30 fps)")
    g.add_argument("--graph-seconds", type=float, default=15.0, help="measured seconds per case (default 15)")
    g.add_argument("--graph-warmup", type=float, default=3.0, help="seconds per case before measuring (default 3)")
    g.add_argument("--graph-model", default=None, help="expression model (default models/fer_mask_net.pt)")
    g.add_argument("--graph-port", type=int, default=19581, help="fake NAO port (default 19581)")
    g.add_argument("--graph-master-port", type=int, default=11471, help="ROS master port of the bench (default 11471)")
    g.add_argument("--graph-out", default=str(REPO_ROOT / "docs"),
                   help="folder for PERFORMANCE.md and performance.json (default docs/)")
    g.add_argument("--graph-no-write", action="store_true", help="print the table only")
    g.add_argument("--peer-python", default=None,
                   help="python of a venv with the PyPI `fer` package (make bench-peer: .venv-peer/bin/python)")
