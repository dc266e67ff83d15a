"""`analyze`: per-frame emotions, events, timeline, summary and report for videos and rosbags.

    python -m fer_mask_ros analyze session.mp4 --output out/
    python -m fer_mask_ros analyze session.bag --output out/            # camera + recorded FaceArray
    python -m fer_mask_ros analyze videos/ more.bag --output out/ --render

One input writes into DIR; several inputs (or a folder) write DIR/<input name>/ each plus
DIR/summary.csv, and print the same table as markdown. See docs/ANALYSIS.md.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List

from fer_mask_ros.analysis.events import DEFAULTS
from fer_mask_ros.cli.commands.classify import add_backend_argument
from fer_mask_ros.errors import CommandError
from fer_mask_ros.perception.tracking import DEFAULT_SMOOTHING_ALPHA, DEFAULT_SMOOTHING_TIMEOUT_S


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="video files (mp4/avi/mkv/...), rosbags (.bag), or folders of them")
    parser.add_argument("--output", "-o", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--model", default=None, metavar="FILE", help="expression model (default: the shipped one)")
    parser.add_argument("--detector-model", default=None, metavar="FILE", help="face detector ONNX (default: shipped)")
    parser.add_argument("--score-threshold", type=float, default=None, help="detector threshold (default: detector's)")
    parser.add_argument("--min-face", type=int, default=None, help="smallest face height, pixels (default: detector's)")
    parser.add_argument("--full-scan-interval", type=float, default=None,
                        help="seconds between full-frame detector scans while tracked faces are re-found near "
                             "where they were (default 0.1, as the face_detector node; 0 = every frame)")
    parser.add_argument("--threads", type=int, default=1, help="inference threads (default 1)")
    add_backend_argument(parser)
    parser.add_argument("--smoothing-alpha", type=float, default=DEFAULT_SMOOTHING_ALPHA,
                        help="EMA weight of the newest frame, per face (default %(default)s, as the live graph)")
    parser.add_argument("--smoothing-timeout", type=float, default=DEFAULT_SMOOTHING_TIMEOUT_S,
                        help="seconds unseen before a face's smoothing restarts "
                             "(default %(default)s, as the live graph)")
    g = parser.add_argument_group("rosbags")
    g.add_argument("--topic", default="/naoqi_driver/camera/front/image_raw",
                   help="image topic (sensor_msgs/Image or CompressedImage; default %(default)s)")
    g.add_argument("--faces-topic", default="auto", metavar="TOPIC",
                   help="recorded fer_mask_ros/FaceArray topic that decides which frames are classified and "
                        "gives the face ids: 'auto' (default: the bag's FaceArray topic if there is one) or 'none'")
    g.add_argument("--sync-slop", type=float, default=0.0, metavar="S",
                   help="match images to FaceArrays within S seconds (default 0: exact stamps, as the live graph)")
    g = parser.add_argument_group("sampling")
    g.add_argument("--every", type=int, default=1, metavar="N", help="process every Nth frame (default 1)")
    g.add_argument("--max-fps", type=float, default=None, metavar="F",
                   help="process at most F frames per second of input time")
    g = parser.add_argument_group("events")
    g.add_argument("--enter", type=float, default=DEFAULTS.enter,
                   help=f"smoothed probability that starts an event (default {DEFAULTS.enter})")
    g.add_argument("--exit", type=float, default=DEFAULTS.exit,
                   help=f"an event ends when the probability drops below this (default {DEFAULTS.exit})")
    g.add_argument("--min-duration", type=float, default=DEFAULTS.min_duration, metavar="S",
                   help=f"drop events shorter than S seconds (default {DEFAULTS.min_duration})")
    g.add_argument("--merge-gap", type=float, default=DEFAULTS.merge_gap, metavar="S",
                   help=f"merge events of one face and emotion <= S seconds apart (default {DEFAULTS.merge_gap})")
    g = parser.add_argument_group("display")
    g.add_argument("--render", action="store_true", help="also write annotated.mp4 (annotated.avi if mp4 fails)")
    g.add_argument("--play", action="store_true", help="show the annotated frames in a window, in real time")
    g.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _check_args(args) -> None:
    if args.every < 1:
        raise CommandError("--every must be at least 1")
    if args.max_fps is not None and args.max_fps <= 0:
        raise CommandError("--max-fps must be > 0")
    if not 0.0 <= args.exit <= args.enter <= 1.0:
        raise CommandError(f"need 0 <= --exit <= --enter <= 1 (got --enter {args.enter} --exit {args.exit})")
    if args.min_duration < 0 or args.merge_gap < 0 or args.sync_slop < 0:
        raise CommandError("--min-duration, --merge-gap and --sync-slop must be >= 0")
    if not 0.0 < args.smoothing_alpha <= 1.0:
        raise CommandError("--smoothing-alpha must be in (0, 1]")
    if args.threads < 1:
        raise CommandError("--threads must be at least 1")
    if args.play and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise CommandError("--play needs a display, but $DISPLAY is not set (use --render to write a video instead)")
    if args.play:
        _check_window()
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise CommandError(f"--output {args.output} exists and is not a folder")


def _check_window() -> None:
    """Open and close a window in a child process: a GUI backend that cannot reach the display aborts
    the whole process (Qt), which must not happen to the analysis."""
    import subprocess

    probe = "import cv2; cv2.namedWindow('probe'); cv2.waitKey(1); cv2.destroyAllWindows()"
    try:
        proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        raise CommandError("--play: opening a window timed out") from None
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr or "").splitlines() if line.strip()]
        reason = lines[0] if lines else f"exit status {proc.returncode}"
        raise CommandError(f"--play: cannot open a window on display {os.environ.get('DISPLAY', '')!r}: {reason}")


def _load_models(args):
    """(detector or None, classifier): loaded once for all inputs."""
    from fer_mask_ros.errors import DetectorError
    from fer_mask_ros.perception.classifier import load_classifier
    from fer_mask_ros.perception.detection import FaceDetector

    classifier = load_classifier(args.model, args.threads, args.backend)
    kwargs = {"model_path": args.detector_model, "num_threads": args.threads}
    if args.score_threshold is not None:
        kwargs["score_threshold"] = args.score_threshold
    if args.min_face is not None:
        kwargs["min_face"] = args.min_face
    try:
        detector = FaceDetector(**kwargs)
    except DetectorError as exc:
        raise CommandError(str(exc).splitlines()[0]) from None
    return detector, classifier


def _new_pipeline(detector, classifier, args):
    from fer_mask_ros.perception.pipeline import FacePipeline
    from fer_mask_ros.perception.tracking import ProbabilitySmoother

    smoother = ProbabilitySmoother(alpha=args.smoothing_alpha, timeout_s=args.smoothing_timeout)
    kwargs = {} if args.full_scan_interval is None else {"full_scan_interval": args.full_scan_interval}
    try:
        return FacePipeline(detector=detector, classifier=classifier, smoother=smoother, **kwargs)
    except ValueError as exc:
        raise CommandError(f"--full-scan-interval: {exc}") from None


def _out_names(inputs: List[str]) -> Dict[str, str]:
    names, used = {}, set()
    for path in inputs:
        base = os.path.splitext(os.path.basename(os.path.normpath(path)))[0] or "input"
        name, n = base, 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        names[path] = name
    return names


def analyse_one(path: str, out_dir: str, detector, classifier, args) -> dict:
    from fer_mask_ros.analysis.analyse import analyse
    from fer_mask_ros.analysis.events import EventParams
    from fer_mask_ros.analysis.report import write_outputs
    from fer_mask_ros.analysis.sources import Sampler, open_source

    sampler = Sampler(args.every, args.max_fps)
    source = open_source(path, args.topic, args.faces_topic, sampler, args.sync_slop)
    pipeline = _new_pipeline(detector, classifier, args)  # fresh tracker + smoother per input
    render = os.path.join(out_dir, "annotated.mp4") if args.render else None
    if render:
        os.makedirs(out_dir, exist_ok=True)
    result = analyse(source, pipeline, render_path=render, play=args.play, progress=not args.no_progress)
    params = EventParams(enter=args.enter, exit=args.exit, min_duration=args.min_duration, merge_gap=args.merge_gap)
    sampling = {"every": args.every, "max_fps": args.max_fps}
    summary = write_outputs(out_dir, result, classifier.model_path, params, sampling)
    for note in result.notes:
        print(f"note: {path}: {note}", file=sys.stderr)
    rt = summary.get("realtime_factor")
    print(f"{path}: {result.frames} frames in {result.wall_s:.1f} s = {result.fps_processed:.1f} frames/s"
          + (f" ({rt:.1f}x real time; {summary['fps_per_cpu_second']} frames per CPU-second)" if rt else "")
          + f", {summary['faces']} faces, {summary['events']} events -> {out_dir}", file=sys.stderr)
    return summary


def run(args) -> int:
    from fer_mask_ros.analysis.report import batch_row, write_batch_table
    from fer_mask_ros.analysis.sources import expand_inputs
    from fer_mask_ros.errors import AnalysisError

    _check_args(args)
    inputs, batch = expand_inputs(args.inputs)
    if not inputs:
        raise CommandError(f"no videos or bags found in {', '.join(args.inputs)}")
    if not batch and not os.path.exists(inputs[0]):
        raise CommandError(f"{inputs[0]}: no such file")
    detector, classifier = _load_models(args)
    if not batch:
        try:
            analyse_one(inputs[0], args.output, detector, classifier, args)
        except AnalysisError as exc:
            raise CommandError(str(exc)) from None
        return 0
    names = _out_names(inputs)
    rows, failed = [], 0
    for path in inputs:
        out_dir = os.path.join(args.output, names[path])
        try:
            summary = analyse_one(path, out_dir, detector, classifier, args)
            rows.append(batch_row(path, out_dir, summary))
        except AnalysisError as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
            rows.append(batch_row(path, out_dir, None, str(exc)))
    os.makedirs(args.output, exist_ok=True)
    table = write_batch_table(os.path.join(args.output, "summary.csv"), rows)
    print(table)
    print(f"{len(inputs) - failed} of {len(inputs)} inputs analysed -> {os.path.join(args.output, 'summary.csv')}",
          file=sys.stderr)
    return 1 if failed else 0
