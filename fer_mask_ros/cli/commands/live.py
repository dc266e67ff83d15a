"""`live`: a webcam (or a video standing in for one) through the graph's pipeline, without ROS or a NAO.

    python -m fer_mask_ros live                          # camera 0, a window (or DIR live-<time>/ with no display)
    python -m fer_mask_ros live --camera 1 --speech espeak
    python -m fer_mask_ros live --video session.mp4 --output out/   # frames/*.jpg + frames.csv, no window

Every frame goes through the same FacePipeline as the face_detector + emotion_classifier nodes (and as
`analyze`: a video gives the same frames.csv), the overlay is analyze's, every change of a face's emotion
is printed, and the speech policy of the emotion_speech node decides what is said (espeak or log).
Stops at the video's end, after --duration / --max-frames, on Ctrl-C, or with q / Esc in the window.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Dict, Iterator, List, Tuple

import numpy as np

from fer_mask_ros.cli.commands.classify import add_backend_argument
from fer_mask_ros.errors import CommandError
from fer_mask_ros.perception.evidence import DEFAULT_TIMEOUT_S

WINDOW = "fer_mask_ros live (q: stop)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, default=None, metavar="N",
                     help="camera index (default 0: /dev/video0)")
    src.add_argument("--video", default=None, metavar="FILE", help="a video file standing in for the camera")
    parser.add_argument("--window", action="store_true",
                        help="show the annotated frames in a window (the default without --output, on a display)")
    parser.add_argument("--output", "-o", default=None, metavar="DIR",
                        help="write DIR/frames/*.jpg (annotated) and DIR/frames.csv (analyze's columns, described in "
                             "DIR/COLUMNS.md); "
                             "the default when there is no display (DIR = live-<date>-<time>)")
    parser.add_argument("--no-frames", action="store_true", help="with --output: only frames.csv, no JPEGs")
    parser.add_argument("--speech", choices=("log", "espeak", "none"), default="log",
                        help="who says the sentences: log (print 'NAO says: ...', default), espeak (this computer's "
                             "speakers, and printed), none (nothing said or printed)")
    parser.add_argument("--language", default="en", help="speech language: en | it (default en)")
    parser.add_argument("--sentences", default=None, metavar="FILE",
                        help="YAML file of the sentences per language and emotion (format: "
                             "config/sentences/default.yaml; default: the built-in ones)")
    parser.add_argument("--duration", type=float, default=0.0, metavar="S", help="stop after S seconds (0 = never)")
    parser.add_argument("--max-frames", type=int, default=0, metavar="N", help="stop after N frames (0 = never)")
    parser.add_argument("--model", default=None, metavar="FILE", help="expression model (default: the shipped one)")
    parser.add_argument("--detector-model", default=None, metavar="FILE", help="face detector ONNX (default: shipped)")
    parser.add_argument("--score-threshold", type=float, default=None, help="detector threshold (default: detector's)")
    parser.add_argument("--min-face", type=int, default=None, help="smallest face height, pixels (default: detector's)")
    parser.add_argument("--full-scan-interval", type=float, default=None,
                        help="seconds between full-frame detector scans (default: config/face_detector.yaml)")
    parser.add_argument("--threads", type=int, default=1, help="inference threads (default 1)")
    add_backend_argument(parser)
    from fer_mask_ros.cli.commands.analyze import add_schedule_arguments

    add_schedule_arguments(parser)
    parser.add_argument("--smoothing-timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help="seconds unseen before a face's smoothing restarts (default %(default)s)")


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _check_args(args) -> None:
    if args.threads < 1:
        raise CommandError("--threads must be at least 1")
    if args.duration < 0 or args.max_frames < 0:
        raise CommandError("--duration and --max-frames must be >= 0")
    from fer_mask_ros.cli.commands.analyze import check_schedule_arguments

    check_schedule_arguments(args)
    if args.output and os.path.exists(args.output) and not os.path.isdir(args.output):
        raise CommandError(f"--output {args.output} exists and is not a folder")
    if args.video is not None and os.path.isdir(args.video):
        raise CommandError(f"--video {args.video} is a folder, not a video file; a folder of frames is analysed "
                           f"by `python -m fer_mask_ros analyze {args.video} --fps N --output DIR`")
    if args.video is not None and not os.path.isfile(args.video):
        raise CommandError(f"--video {args.video}: no such file")


def _frames(args) -> Tuple[Iterator[Tuple[int, float, np.ndarray]], str]:
    """((index, stamp, BGR frame) iterator, description). A video's stamps are frame / fps (as analyze);
    a camera's are seconds since its first frame."""
    if args.video is not None:
        from fer_mask_ros.analysis.sources import VideoSource
        from fer_mask_ros.errors import AnalysisError

        try:
            source = VideoSource(args.video)
        except AnalysisError as exc:
            raise CommandError(str(exc)) from None

        def video() -> Iterator[Tuple[int, float, np.ndarray]]:
            try:
                for frame in source:
                    yield frame.index, frame.stamp, frame.image
            except AnalysisError as exc:
                raise CommandError(str(exc)) from None

        return video(), f"{args.video} ({source.fps:g} fps)"
    from fer_mask_ros.imaging import open_video_capture

    index = 0 if args.camera is None else args.camera
    cap = open_video_capture(index)
    if not cap.isOpened():
        raise CommandError(f"cannot open camera {index} (/dev/video{index}): not there, or in use by another "
                           "program; try --camera 1, or --video FILE")

    def camera() -> Iterator[Tuple[int, float, np.ndarray]]:
        t0, i, failures = None, 0, 0
        try:
            while True:
                ok, image = cap.read()
                if not ok or image is None:
                    failures += 1
                    if failures >= 30:
                        raise CommandError(f"camera {index} stopped giving frames")
                    time.sleep(0.05)
                    continue
                failures = 0
                now = time.monotonic()
                t0 = now if t0 is None else t0
                yield i, now - t0, image
                i += 1
        finally:
            cap.release()

    return camera(), f"camera {index}"


def _speech(args):
    """(SpeechPolicy with the emotion_speech node's settings, say-backend or None)."""
    from fer_mask_ros.config import node_default
    from fer_mask_ros.errors import SpeechBackendError
    from fer_mask_ros.interaction.policy import SentenceBook, SpeechPolicy
    from fer_mask_ros.robot.say import make_backend

    kwargs = dict(node_default("emotion_speech", "policy") or {})
    kwargs.setdefault("window_s", float(node_default("emotion_speech", "window_s")))
    try:
        book = SentenceBook.load(args.sentences) if args.sentences else None
    except ValueError as exc:
        raise CommandError(f"--sentences: {exc}") from None
    try:
        policy = SpeechPolicy(language=args.language, sentences=book, **kwargs)
    except ValueError as exc:
        raise CommandError(f"--language: {exc}") from None
    if args.speech == "none":
        return policy, None
    try:
        return policy, make_backend(args.speech, language=policy.language)
    except SpeechBackendError as exc:
        raise CommandError(str(exc)) from None


class Console:
    """One line per face when it appears, changes emotion or mask state; one when it is gone."""

    def __init__(self, out=None) -> None:
        self.out = out or sys.stdout
        self.shown: Dict[int, Tuple[str, bool]] = {}

    def update(self, t: float, records: List) -> None:
        seen = set()
        for r in records:
            seen.add(r.face_id)
            state = (r.emotion, bool(r.masked))
            if self.shown.get(r.face_id) != state:
                self.shown[r.face_id] = state
                print(f"{t:8.2f} s  face {r.face_id}: {r.emotion} {r.confidence:.2f}" + (" (mask)" if r.masked else ""),
                      file=self.out, flush=True)
        for face_id in [f for f in self.shown if f not in seen]:
            del self.shown[face_id]
            print(f"{t:8.2f} s  face {face_id}: gone", file=self.out, flush=True)


def _clock(args) -> List:
    """[Unix time of stamp 0 or None, its source]: a video's recording start (as analyze), or this computer's
    clock at the camera's first frame (filled in when it comes)."""
    if args.video is None:
        return [None, "this computer's clock at the camera's first frame"]
    from fer_mask_ros.analysis.clock import recording_start

    return list(recording_start(args.video, "video"))


def run(args) -> int:
    from fer_mask_ros.analysis.analyse import FaceRecord
    from fer_mask_ros.analysis.render import draw_faces
    from fer_mask_ros.analysis.report import columns_markdown, face_table, write_frames_csv
    from fer_mask_ros.cli.commands.analyze import _load_models, _new_pipeline
    from fer_mask_ros.errors import WriteError
    from fer_mask_ros.safe_write import write_image, write_text

    _check_args(args)
    window = args.window or (not args.output and has_display())  # the default: a window where there is a display
    if window and not has_display():
        print("warning: --window: no display ($DISPLAY is not set); writing frames and CSV instead", file=sys.stderr)
        window = False
    if window:
        from fer_mask_ros.cli.commands.analyze import _check_window

        try:  # a GUI backend that cannot reach the display aborts the process: probed in a child first
            _check_window()
        except CommandError as exc:
            print(f"warning: {str(exc).replace('--play', '--window')}; writing frames and CSV instead", file=sys.stderr)
            window = False
    output = args.output
    if not window and not output:
        output = time.strftime("live-%Y%m%d-%H%M%S")
        if not has_display():
            print(f"no display: writing annotated frames and frames.csv into {output}/", file=sys.stderr)
    policy, backend = _speech(args)
    frames, what = _frames(args)
    detector, classifier = _load_models(args)
    pipeline = _new_pipeline(detector, classifier, args)
    frames_dir = os.path.join(output, "frames") if output and not args.no_frames else None
    if output:
        os.makedirs(frames_dir or output, exist_ok=True)
    print(f"live: {what}" + (f" -> {output}/" if output else "") + (", window" if window else "")
          + f"; speech: {args.speech} ({policy.language}); Ctrl-C stops", file=sys.stderr)
    import cv2

    console, records, n, t = Console(), [], 0, 0.0
    start = time.monotonic()
    clock = _clock(args)  # [Unix time of stamp 0 or None, where it came from]: frames.csv's utc column
    try:
        for index, t, image in frames:
            if clock[0] is None and args.video is None:
                clock[0] = time.time() - t
            results = pipeline.process(image, t, smooth=True)
            recs = [FaceRecord.from_face(t, index, r) for r in results]
            records.extend(recs)
            n += 1
            console.update(t, recs)
            for r in recs:
                policy.observe(r.face_id, r.emotion, r.confidence, r.masked, t, now=t)
            text = policy.decide(t)
            if text and args.speech != "none":  # none: the policy still decides, nothing is said or printed
                print(f"{t:8.2f} s  NAO says: {text}", flush=True)
                if backend is not None and args.speech != "log":
                    backend.say(text)
            if frames_dir or window:
                annotated = draw_faces(image, recs, time_s=t)
                if frames_dir:
                    try:  # the safe writer: OpenCV crashes on a folder name that is not UTF-8
                        write_image(os.path.join(frames_dir, f"{index:06d}.jpg"), annotated)
                    except WriteError as exc:
                        raise CommandError(str(exc)) from None
                if window:
                    cv2.imshow(WINDOW, annotated)
                    # a video plays in real time in the window (a camera is paced by the camera)
                    wait_ms = int((start + t - time.monotonic()) * 1000) if args.video is not None else 1
                    if cv2.waitKey(max(1, wait_ms)) & 0xFF in (ord("q"), 27):
                        break
            if (args.max_frames and n >= args.max_frames) or (args.duration and time.monotonic() - start
                                                               >= args.duration):
                break
    except KeyboardInterrupt:
        print("stopped (Ctrl-C)", file=sys.stderr)
    finally:
        if backend is not None:
            backend.close()
        if window:
            cv2.destroyAllWindows()
        if output:
            from fer_mask_ros.analysis.clock import iso_utc

            write_frames_csv(os.path.join(output, "frames.csv"), records, clock[0])
            write_text(os.path.join(output, "COLUMNS.md"), columns_markdown(
                ["frames.csv"], {"start_utc": iso_utc(clock[0]) or None, "source": clock[1]}))
    wall = time.monotonic() - start
    print(face_table(records))
    print(f"live: {n} frames in {wall:.1f} s ({n / wall if wall > 0 else 0:.1f} frames/s), "
          f"{len({r.face_id for r in records})} faces" + (f" -> {output}/frames.csv" if output else ""),
          file=sys.stderr)
    return 0
