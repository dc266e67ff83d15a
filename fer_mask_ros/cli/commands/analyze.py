"""`analyze`: per-frame emotions, events, timeline, summary and report for videos and rosbags.

    python -m fer_mask_ros analyze session.mp4 --output out/
    python -m fer_mask_ros analyze session.bag --output out/            # camera + recorded FaceArray
    python -m fer_mask_ros analyze videos/ more.bag --output out/ --render

    python -m fer_mask_ros analyze videos/ --output out/ --jobs 2           # two inputs at a time
    python -m fer_mask_ros analyze videos/ --output out/ --shard 3/8 --resume   # one task of a job array
    python -m fer_mask_ros analyze --summarize out/                         # out/summary.csv from finished ones

One input writes into DIR; several inputs (or a folder, or --shard) write DIR/<input name>/ each plus
DIR/summary.csv, and print the same table as markdown. See docs/ANALYSIS.md.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Dict, List, Optional

from fer_mask_ros.analysis.events import DEFAULTS
from fer_mask_ros.analysis.report import DEFAULT_MIN_TRACK_FRAMES
from fer_mask_ros.cli.commands.classify import add_backend_argument
from fer_mask_ros.cli.commands.detect import add_detector_argument
from fer_mask_ros.errors import CommandError, UserError
from fer_mask_ros.perception.evidence import DEFAULT_HALF_LIFE_S, DEFAULT_TIMEOUT_S

#: --export formats
EXPORTS = ("elan",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="video files (mp4/avi/mkv/...), rosbags (.bag), or folders of them; a folder of "
                             "images only is one input, an image sequence (see --fps)")
    parser.add_argument("--output", "-o", metavar="DIR", help="output folder (required unless --summarize)")
    parser.add_argument("--model", default=None, metavar="FILE", help="expression model (default: the shipped one)")
    add_detector_argument(parser)
    parser.add_argument("--detector-model", default=None, metavar="FILE", help="face detector ONNX (default: shipped)")
    parser.add_argument("--score-threshold", type=float, default=None, help="detector threshold (default: detector's)")
    parser.add_argument("--min-face", type=int, default=None, help="smallest face height, pixels (default: detector's)")
    parser.add_argument("--full-scan-interval", type=float, default=None,
                        help="seconds between full-frame detector scans while tracked faces are re-found near "
                             "where they were (default 0.1, as the face_detector node; 0 = every frame)")
    parser.add_argument("--threads", type=int, default=1, help="inference threads (default 1)")
    add_backend_argument(parser)
    add_schedule_arguments(parser)
    parser.add_argument("--smoothing-timeout", type=float, default=DEFAULT_TIMEOUT_S,
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
    g.add_argument("--fps", type=float, default=None, metavar="F",
                   help="frame rate of an image sequence (a folder of frames, sorted by name; default 10)")
    g.add_argument("--every", type=int, default=1, metavar="N", help="process every Nth frame (default 1)")
    g.add_argument("--max-fps", type=float, default=None, metavar="F",
                   help="process at most F frames per second of input time")
    g = parser.add_argument_group("events")
    g.add_argument("--enter", type=float, default=DEFAULTS.enter,
                   help=f"probability (the face's evidence) that starts an event (default {DEFAULTS.enter})")
    g.add_argument("--exit", type=float, default=DEFAULTS.exit,
                   help=f"an event ends when the probability drops below this (default {DEFAULTS.exit})")
    g.add_argument("--min-duration", type=float, default=DEFAULTS.min_duration, metavar="S",
                   help=f"drop events shorter than S seconds (default {DEFAULTS.min_duration})")
    g.add_argument("--merge-gap", type=float, default=DEFAULTS.merge_gap, metavar="S",
                   help=f"merge events of one face and emotion <= S seconds apart (default {DEFAULTS.merge_gap})")
    g.add_argument("--min-track-frames", type=int, default=DEFAULT_MIN_TRACK_FRAMES, metavar="N",
                   help="faces seen in fewer than N processed frames (flicker tracks) get no events, share, "
                        "timeline row or thumbnail; their rows stay in frames.csv (default %(default)s)")
    g = parser.add_argument_group("batches and clusters")
    g.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                   help="inputs analysed at once, one process each (default: the cores available, fewer when "
                        "memory is short; results are identical to --jobs 1)")
    g.add_argument("--shard", default=None, metavar="K/N",
                   help="analyse only the K-th of N deterministic slices of the sorted inputs (a job array "
                        "task); output sub-folders are named as in the full run; then --summarize DIR")
    g.add_argument("--resume", action="store_true",
                   help="skip inputs whose sub-folder already holds a finished analysis (summary.json)")
    g.add_argument("--chunk-seconds", type=float, default=0.0, metavar="S",
                   help="one long video: analyse time chunks of S seconds on --jobs workers and stitch them "
                        "(ids matched in the overlap; numbers close to, not always equal to, one pass; default off)")
    g.add_argument("--chunk-overlap", type=float, default=5.0, metavar="S",
                   help="seconds each chunk starts earlier to warm up the tracker and smoothing (default 5)")
    g.add_argument("--summarize", default=None, metavar="DIR",
                   help="only write DIR/summary.csv (and print the table) from DIR's finished sub-folders")
    g = parser.add_argument_group("display")
    g.add_argument("--render", action="store_true", help="also write annotated.mp4 (annotated.avi if mp4 fails)")
    g.add_argument("--play", action="store_true", help="show the annotated frames in a window, in real time")
    g.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    g = parser.add_argument_group("exports")
    g.add_argument("--export", action="append", choices=EXPORTS, default=[], metavar="FORMAT",
                   help="also write the analysis for another tool: elan = <input name>.eaf (ELAN 3.0: a tier of "
                        "emotion segments and one of events per face, linked to the video); repeatable")


def _check_args(args) -> None:
    if not args.inputs:
        raise CommandError("no INPUT given (or use --summarize DIR)")
    if not args.output:
        raise CommandError("--output DIR is required")
    if args.min_track_frames < 1:
        raise CommandError("--min-track-frames must be at least 1")
    if args.jobs is not None and args.jobs < 1:
        raise CommandError("--jobs must be at least 1")
    if args.chunk_seconds < 0 or args.chunk_overlap < 0:
        raise CommandError("--chunk-seconds and --chunk-overlap must be >= 0")
    if args.chunk_seconds and (args.render or args.play or args.max_fps):
        raise CommandError("--chunk-seconds cannot be combined with --render, --play or --max-fps")
    if args.every < 1:
        raise CommandError("--every must be at least 1")
    if args.fps is not None and args.fps <= 0:
        raise CommandError("--fps must be > 0")
    if args.max_fps is not None and args.max_fps <= 0:
        raise CommandError("--max-fps must be > 0")
    if not 0.0 <= args.exit <= args.enter <= 1.0:
        raise CommandError(f"need 0 <= --exit <= --enter <= 1 (got --enter {args.enter} --exit {args.exit})")
    if args.min_duration < 0 or args.merge_gap < 0 or args.sync_slop < 0:
        raise CommandError("--min-duration, --merge-gap and --sync-slop must be >= 0")
    check_schedule_arguments(args)
    if args.threads < 1:
        raise CommandError("--threads must be at least 1")
    if args.play and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise CommandError("--play needs a display, but $DISPLAY is not set (use --render to write a video instead)")
    if args.play:
        _check_window()
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise CommandError(f"--output {args.output} exists and is not a folder")


def camera_index(text: str):
    """"0" or "/dev/video0" -> 0 (what a user types for a webcam); None for anything else."""
    import re

    found = re.fullmatch(r"(?:/dev/video)?(\d+)", str(text).strip())
    return int(found.group(1)) if found else None


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
    from fer_mask_ros.perception.detection import make_detector
    from fer_mask_ros.perception.zoo import load_zoo

    classifier = load_zoo(getattr(args, "classifier", None), args.model, args.threads, args.backend)
    kwargs = {"model_path": args.detector_model, "num_threads": args.threads}
    if args.score_threshold is not None:
        kwargs["score_threshold"] = args.score_threshold
    if args.min_face is not None:
        kwargs["min_face"] = args.min_face
    try:
        detector = make_detector(getattr(args, "detector", None), **kwargs)
    except DetectorError as exc:
        raise CommandError(str(exc).splitlines()[0]) from None
    return detector, classifier


def _new_pipeline(detector, classifier, args):
    from fer_mask_ros.perception.pipeline import FacePipeline
    from fer_mask_ros.perception.schedule import ClassifySchedule

    schedule = ClassifySchedule(args.classify_rates)
    evidence = {"half_life_s": args.smoothing_half_life, "smoothing_timeout_s": args.smoothing_timeout}
    kwargs = {} if args.full_scan_interval is None else {"full_scan_interval": args.full_scan_interval}
    try:
        return FacePipeline(detector=detector, classifier=classifier, schedule=schedule, **evidence, **kwargs)
    except ValueError as exc:
        raise CommandError(f"--full-scan-interval: {exc}") from None


def add_schedule_arguments(parser: argparse.ArgumentParser) -> None:
    """--classify-hz and --smoothing-half-life: the emotion_classifier node's ~classify_hz and
    ~smoothing_half_life_s (analyze and live)."""
    from fer_mask_ros.perception.schedule import DEFAULT_RATES

    rates = ", ".join(f"{m} {v:g}" for m, v in DEFAULT_RATES.items())
    parser.add_argument("--classify-hz", default=None, metavar="HZ",
                        help="how often each model classifies a tracked face: HZ for every model or "
                             f"MODEL=HZ,...; new faces at once; 0 = every frame (default: {rates}, as the live "
                             "graph)")
    parser.add_argument("--smoothing-half-life", type=float, default=DEFAULT_HALF_LIFE_S, metavar="S",
                        help="a face's evidence weighs an answer this many seconds old half "
                             "(default %(default)s, as the live graph)")


def check_schedule_arguments(args) -> None:
    from fer_mask_ros.perception.schedule import DEFAULT_RATES, parse_rates

    try:
        args.classify_rates = (dict(DEFAULT_RATES) if args.classify_hz is None
                               else {**DEFAULT_RATES, **parse_rates(args.classify_hz, DEFAULT_RATES)})
    except ValueError as exc:
        raise CommandError(f"--classify-hz: {exc}") from None
    if not 0.0 < args.smoothing_half_life <= 60.0:
        raise CommandError("--smoothing-half-life must be in (0, 60] seconds")


def analyse_one(path: str, out_dir: str, detector, classifier, args, on_frames: Optional[Callable] = None,
                log: Callable = None) -> dict:
    from fer_mask_ros.analysis.analyse import analyse
    from fer_mask_ros.analysis.report import model_files, write_outputs
    from fer_mask_ros.analysis.sources import Sampler, open_source

    log = log or (lambda line: print(line, file=sys.stderr))
    sampler = Sampler(args.every, args.max_fps)
    source = open_source(path, args.topic, args.faces_topic, sampler, args.sync_slop, fps=args.fps)
    pipeline = _new_pipeline(detector, classifier, args)  # fresh tracker + per-track evidence per input
    render = os.path.join(out_dir, "annotated.mp4") if args.render else None
    if render:
        os.makedirs(out_dir, exist_ok=True)
    result = analyse(source, pipeline, render_path=render, play=args.play,
                     progress=not args.no_progress and on_frames is None, on_frames=on_frames)
    params = _event_params(args)
    sampling = {"every": args.every, "max_fps": args.max_fps}
    summary = write_outputs(out_dir, result, classifier.model_path, params, sampling, args.min_track_frames,
                            models=model_files(detector, classifier), export=getattr(args, "export", None) or ())
    for note in result.notes:
        log(f"note: {path}: {note}")
    if result.frames < args.min_track_frames:
        log(f"warning: {path}: {result.frames} frame(s) analysed, fewer than --min-track-frames "
            f"{args.min_track_frames}, so its faces count as short tracks (no events, share or timeline row); "
            + ("for photos use: python -m fer_mask_ros classify PHOTO" if result.frames <= 1
               else f"use --min-track-frames {max(1, result.frames)}"))
    rt = summary.get("realtime_factor")
    short = summary["short_tracks"]["tracks"]
    log(f"{path}: {result.frames} frames in {result.wall_s:.1f} s = {result.fps_processed:.1f} frames/s"
        + (f" ({rt:.1f}x real time; {summary['fps_per_cpu_second']} frames per CPU-second)" if rt else "")
        + f", {summary['faces']} faces" + (f" (+{short} short tracks left out)" if short else "")
        + f", {summary['events']} events -> {out_dir}"
        + (f"; annotated video: {os.path.basename(result.render_path)}, {result.video_codec}"  # type: ignore
           if result.video_codec else ""))
    return summary


# ----------------------------------------------------------------------------- batches


class _Progress:
    """One bar for a batch: frames read of all inputs (rate and ETA), inputs done in the description."""

    def __init__(self, total_frames: int, n_inputs: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.n, self.done_count, self.enabled = n_inputs, 0, enabled
        self.bar = tqdm(total=total_frames or None, unit="frame", desc=f"0/{n_inputs} inputs", file=sys.stderr,
                        disable=not enabled, dynamic_ncols=True, smoothing=0.05)

    def frames(self, n: int) -> None:
        self.bar.update(n)

    def done(self) -> None:
        self.done_count += 1
        self.bar.set_description(f"{self.done_count}/{self.n} inputs")

    def write(self, line: str) -> None:
        if self.enabled:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


_WORKER: dict = {}


def _event_params(args):
    from fer_mask_ros.analysis.events import EventParams

    return EventParams(enter=args.enter, exit=args.exit, min_duration=args.min_duration, merge_gap=args.merge_gap)


def _worker_pool(args, jobs: int):
    """(process pool of `jobs` workers with the models loaded, queue of their frame counts). Spawned,
    not forked: no inherited onnxruntime / OpenMP state."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    frames_queue = ctx.Queue()
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init,
                               initargs=(args, frames_queue, os.getpid()))
    return pool, frames_queue


def _worker_init(args, queue, parent: int) -> None:
    """Process-pool initializer: one thread per library, the models loaded once per worker."""
    import cv2

    from fer_mask_ros.analysis.batch import exit_with_parent

    exit_with_parent(parent)  # a SIGKILLed analyze leaves no worker behind, even one killed before this runs
    cv2.setNumThreads(1)
    _WORKER.update(args=args, queue=queue)
    try:
        _WORKER["models"] = _load_models(args)
    except Exception as exc:  # reported with the first input
        _WORKER["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _worker_run(path: str, out_dir: str):
    if "error" in _WORKER:
        return path, None, None, [], _WORKER["error"]
    queue, lines = _WORKER["queue"], []
    summary, error = _analyse_or_error(path, out_dir, *_WORKER["models"], _WORKER["args"],
                                       lambda n: queue.put(n), lines.append)
    return path, summary, error, lines, None


def _worker_chunk(path: str, frame_range):
    """One time chunk of a video, analysed in a worker: (Analysis or None, error)."""
    from fer_mask_ros.analysis.analyse import analyse
    from fer_mask_ros.analysis.sources import Sampler, VideoSource
    from fer_mask_ros.errors import AnalysisError

    if "error" in _WORKER:
        return None, _WORKER["error"], None
    args, queue = _WORKER["args"], _WORKER["queue"]
    try:
        source = VideoSource(path, Sampler(args.every, None), frame_range=tuple(frame_range))
        result = analyse(source, _new_pipeline(*_WORKER["models"], args), progress=False,
                         on_frames=lambda n: queue.put(n))
    except AnalysisError as exc:
        return None, str(exc), None
    from fer_mask_ros.analysis.report import model_files

    return result, None, model_files(*_WORKER["models"])


def _run_chunked(path: str, args) -> int:
    """--chunk-seconds: one video in time chunks on --jobs workers, stitched (analysis/chunks.py)."""
    import queue as queue_mod

    from fer_mask_ros.analysis import batch, chunks
    from fer_mask_ros.analysis.report import write_outputs
    from fer_mask_ros.analysis.sources import VideoSource

    probe = VideoSource(path)
    n_frames, fps = probe.total or 0, probe.fps
    probe._cap.release()
    plan = chunks.plan(n_frames, fps, args.chunk_seconds, args.chunk_overlap)
    jobs = args.jobs or batch.default_jobs(len(plan), args.threads)[0]
    print(f"{path}: {len(plan)} chunks of {args.chunk_seconds:g} s (+{args.chunk_overlap:g} s overlap) "
          f"on {jobs} jobs", file=sys.stderr)
    progress = _Progress(n_frames + sum(start - warm for warm, start, _ in plan), len(plan), not args.no_progress)
    pool, frames_queue = _worker_pool(args, jobs)
    try:
        with pool:
            futures = [pool.submit(_worker_chunk, path, (warm, stop)) for warm, _, stop in plan]
            parts, models = [], {}
            for future in futures:
                while not future.done():
                    try:
                        progress.frames(frames_queue.get(timeout=0.5))
                    except queue_mod.Empty:
                        pass
                result, error, models = future.result()
                if error:
                    raise CommandError(error)
                parts.append(result)
                progress.done()
    finally:
        progress.close()
    result = chunks.stitch(parts, plan)
    params = _event_params(args)
    sampling = {"every": args.every, "max_fps": None, "chunk_seconds": args.chunk_seconds,
                "chunk_overlap": args.chunk_overlap}
    model = (models.get("classifier") or {}).get("path")
    summary = write_outputs(args.output, result, model, params, sampling, args.min_track_frames, models=models,
                            export=args.export or ())
    for note in result.notes:
        print(f"note: {path}: {note}", file=sys.stderr)
    print(f"{path}: {result.frames} frames in {len(plan)} chunks, {summary['faces']} faces, {summary['events']} "
          f"events -> {args.output}", file=sys.stderr)
    return 0


def _analyse_or_error(path, out_dir, detector, classifier, args, on_frames, log):
    """(summary, None) or (None, one-line error); failed.json marks a failed input. WriteError stops the batch."""
    from fer_mask_ros.analysis import batch
    from fer_mask_ros.errors import AnalysisError, WriteError

    batch.clear_partials(out_dir)  # what a killed run was writing
    try:
        summary = analyse_one(path, out_dir, detector, classifier, args, on_frames=on_frames, log=log)
    except AnalysisError as exc:
        error = str(exc)
    except WriteError:  # the output cannot be written (a full disk): every other input would fail alike
        raise
    except Exception as exc:  # one broken input never loses the batch
        error = f"{path}: {type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
    else:
        batch.clear_failed(out_dir)
        return summary, None
    batch.mark_failed(out_dir, path, error)
    return None, error


def _run_batch(todo: List[str], out_dirs: Dict[str, str], args, jobs: int, progress: _Progress) -> Dict[str, tuple]:
    """{input: (summary or None, error)} for every input in todo, jobs at a time."""
    results: Dict[str, tuple] = {}
    if jobs <= 1:
        detector, classifier = _load_models(args)
        for path in todo:
            results[path] = _analyse_or_error(path, out_dirs[path], detector, classifier, args, progress.frames,
                                              progress.write)
            progress.done()
        return results
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, wait

    pool, frames_queue = _worker_pool(args, jobs)
    with pool:
        from fer_mask_ros.analysis.batch import largest_first

        pending = {pool.submit(_worker_run, path, out_dirs[path]) for path in largest_first(todo)}
        while pending:
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            while True:
                try:
                    progress.frames(frames_queue.get_nowait())
                except queue_mod.Empty:
                    break
            for future in finished:
                try:
                    path, summary, error, lines, fatal = future.result()
                except UserError as exc:  # WriteError (a full disk): stop, the queued inputs are not started
                    path, summary, error, lines, fatal = None, None, None, [], str(exc)
                if fatal:
                    for other in pending:
                        other.cancel()
                    raise CommandError(fatal)
                for line in lines:
                    progress.write(line)
                results[path] = (summary, error)
                progress.done()
    return results


def run(args) -> int:
    from fer_mask_ros.analysis import batch
    from fer_mask_ros.analysis.report import batch_row, write_batch_table
    from fer_mask_ros.analysis.sources import VIDEO_EXTENSIONS, declared_frames, expand_inputs
    from fer_mask_ros.errors import AnalysisError
    from fer_mask_ros.safe_write import shown

    if args.summarize:
        if not os.path.isdir(args.summarize):
            raise CommandError(f"--summarize {args.summarize}: no such folder")
        table, n_rows, failed = batch.summarize(args.summarize)
        if not n_rows:
            raise CommandError(f"--summarize {args.summarize}: no finished analyses in its sub-folders")
        print(table)
        print(f"{n_rows - failed} of {n_rows} inputs analysed -> {os.path.join(args.summarize, 'summary.csv')}",
              file=sys.stderr)
        return 1 if failed else 0
    _check_args(args)
    try:
        shard = batch.parse_shard(args.shard) if args.shard else None
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    for path in args.inputs:
        if camera_index(path) is not None and not os.path.isfile(path):
            raise CommandError(f"{path}: a camera, not a recording; for a live camera use: python -m fer_mask_ros "
                               f"live --camera {camera_index(path)}")
    inputs, is_batch = expand_inputs(args.inputs)
    if not inputs:
        raise CommandError(f"no videos or bags found in {', '.join(args.inputs)}")
    if not is_batch and shard is None:
        if not os.path.exists(inputs[0]):
            raise CommandError(f"{inputs[0]}: no such file")
        if args.resume and batch.finished_summary(args.output, inputs[0]) is not None:
            print(f"{inputs[0]}: already analysed in {args.output} (--resume)", file=sys.stderr)
            return 0
        if args.chunk_seconds and inputs[0].lower().endswith(VIDEO_EXTENSIONS) and declared_frames(inputs[0]):
            return _run_chunked(inputs[0], args)
        detector, classifier = _load_models(args)
        try:
            analyse_one(inputs[0], args.output, detector, classifier, args)
        except AnalysisError as exc:
            raise CommandError(str(exc)) from None
        return 0
    inputs = sorted(inputs)
    names = batch.out_names(inputs)  # over the whole list: every shard names folders alike
    out_dirs = {p: os.path.join(args.output, names[p]) for p in inputs}
    mine = batch.shard(inputs, *shard) if shard else inputs
    done = {p: batch.finished_summary(out_dirs[p], p) for p in mine} if args.resume else {}
    todo = [p for p in mine if done.get(p) is None]
    if args.resume and len(todo) < len(mine):
        print(f"--resume: {len(mine) - len(todo)} of {len(mine)} inputs already analysed, skipped", file=sys.stderr)
    if args.play and todo:
        jobs, why = 1, "--play"
    elif args.jobs is not None:
        jobs, why = min(args.jobs, max(1, len(todo))), "--jobs"
    else:
        jobs, why = batch.default_jobs(len(todo), args.threads)
    if todo:
        print(f"analysing {len(todo)} inputs" + (f" (shard {shard[0]}/{shard[1]} of {len(inputs)})" if shard else "")
              + f" with {jobs} job{'s' if jobs > 1 else ''} ({why})", file=sys.stderr)
    progress = _Progress(sum(declared_frames(p, args.topic) for p in todo), len(todo), not args.no_progress)
    try:
        results = _run_batch(todo, out_dirs, args, jobs, progress)
    finally:
        progress.close()
    rows, failed = [], 0
    for path in mine:
        summary, error = (done[path], None) if done.get(path) is not None else results[path]
        if error:
            failed += 1
            print(f"error: {shown(error)}", file=sys.stderr)  # one line, whatever the file name holds
        rows.append(batch_row(path, out_dirs[path], summary, error or ""))
    os.makedirs(args.output, exist_ok=True)
    if shard:
        print(f"shard {shard[0]}/{shard[1]}: {len(mine) - failed} of {len(mine)} inputs analysed; when every shard "
              f"is done: python -m fer_mask_ros analyze --summarize {args.output}", file=sys.stderr)
        return 1 if failed else 0
    table = write_batch_table(os.path.join(args.output, "summary.csv"), rows)
    print(table)
    print(f"{len(mine) - failed} of {len(mine)} inputs analysed -> {os.path.join(args.output, 'summary.csv')}",
          file=sys.stderr)
    return 1 if failed else 0
