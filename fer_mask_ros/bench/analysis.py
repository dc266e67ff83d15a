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

import numpy as np

from fer_mask_ros.perception.pipeline import DEFAULT_FULL_SCAN_INTERVAL


def add_analysis_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("analysis bench")
    group.add_argument("--analyze-seconds", type=float, default=10.0, help="length of the test video (default 10 s)")
    group.add_argument("--analyze-intervals", default=f"0,{DEFAULT_FULL_SCAN_INTERVAL:g}", metavar="S,S",
                       help="full-scan intervals to compare (default 0 = every frame, and the default)")
    group.add_argument("--analyze-film", action="store_true",
                       help="face ids against people on a synthetic multi-person film with shot cuts")
    group.add_argument("--analyze-film-keep", default=None, metavar="FILE", help="also keep the film as FILE")
    group.add_argument("--analyze-film-picture", default=None, metavar="PNG",
                       help="also draw one frame per shot with the ids of the new and the old tracker")
    group.add_argument("--analyze-batch", action="store_true",
                       help="`analyze DIR --jobs J` on several QVGA videos: x real time per --jobs value")
    group.add_argument("--analyze-batch-inputs", type=int, default=4, metavar="N", help="videos (default 4)")
    group.add_argument("--analyze-batch-seconds", type=float, default=60.0, metavar="S",
                       help="seconds per video (default 60)")
    group.add_argument("--analyze-batch-fps", type=float, default=30.0, metavar="F", help="frame rate (default 30)")
    group.add_argument("--analyze-batch-jobs", default="1,2", metavar="J,J", help="--jobs values (default 1,2)")
    group.add_argument("--analyze-batch-schedules", default="default;0", metavar="HZ;HZ",
                       help="`analyze --classify-hz` values to compare, separated by ';' (default: 'default' = the "
                            "configured rates, and 0 = every face in every frame)")


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
    from fer_mask_ros.bench.detector import detector_name
    from fer_mask_ros.perception.classifier import load_classifier
    from fer_mask_ros.perception.detection import make_detector
    from fer_mask_ros.perception.pipeline import FacePipeline

    cv2.setNumThreads(1)
    intervals = list(intervals) or _intervals(args.analyze_intervals)
    classifier = load_classifier(getattr(args, "classifier_model", None), 1)
    detector = make_detector(detector_name(args), num_threads=1)
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
    print(f"offline analysis: 320x240, 1 masked face, 30 fps, {n} frames, detector ({detector.name}) "
          f"+ classifier on 1 thread")
    print("| full-scan interval s | frames | frames/s (wall) | frames per CPU-second | x real time (1 core) "
          "| full scans | window re-finds |")
    print("|---|---|---|---|---|---|---|")
    for interval, frames, wall_fps, cpu_fps, realtime, full, region in rows:
        print(f"| {interval:g} | {frames} | {wall_fps:.1f} | {cpu_fps:.1f} | {realtime:.2f}x | {full} | {region} |")
    return 0


# ----------------------------------------------------------------------------- a synthetic film: tracks vs people

#: (background, [(person, x, y, side, dx per s)], switch): shots of the synthetic film; x, y, side in
#: 1/100 of the frame height; `switch` = (frame share, person): that person replaces the first one,
#: same place, without a cut (only appearance can tell).
FILM_SHOTS = (
    (0, [(0, 100, 20, 62, 4)], None),                       # the singer, close
    (1, [(1, 25, 30, 45, 2), (2, 110, 35, 40, -2)], None),  # two of the audience
    (2, [(3, 95, 22, 55, -3)], None),                       # the president, where the singer was
    (0, [(0, 90, 25, 55, 3)], None),                        # the singer again, same place as the president
    (3, [(4, 30, 30, 42, 3), (5, 120, 28, 44, -3)], (0.5, 2)),  # two more; halfway, person 2 takes person 4's place
    (1, [(2, 40, 30, 45, 2), (1, 115, 35, 40, -2)], None),  # the audience, places swapped
)


def _film_background(kind: int, width: int, height: int) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(100 + kind)
    base = np.array([(40, 60, 140), (150, 120, 60), (70, 130, 70), (120, 60, 130)][kind % 4], np.float32)
    grad = np.linspace(0.6, 1.3, width, dtype=np.float32)[None, :, None]
    img = np.clip(base[None, None, :] * grad * np.ones((height, 1, 1), np.float32), 0, 255).astype(np.uint8)
    for _ in range(8):  # some scenery
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.rectangle(img, (x, y), (x + int(rng.integers(20, 120)), y + int(rng.integers(20, 120))), colour, -1)
    return img


def write_film(path: str, shot_seconds: float = 1.5, fps: float = 25.0, width: int = 640, height: int = 360):
    """A synthetic film: the bundled clip's 6 faces as 6 people in FILM_SHOTS, hard cuts between shots.
    Returns the truth: per frame, [(person, face box)]."""
    import cv2

    from fer_mask_ros.simulation.face_frames import clip_face_patches

    patches, margin = clip_face_patches(), 0.18
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}")
    truth = []
    per_shot = int(round(shot_seconds * fps))
    u = height / 100.0
    for bg_kind, people, switch in FILM_SHOTS:
        bg = _film_background(bg_kind, width, height)
        for k in range(per_shot):
            frame, boxes = bg.copy(), []
            for j, (person, x, y, side, dx) in enumerate(people):
                if j == 0 and switch is not None and k >= switch[0] * per_shot:
                    person = switch[1]
                s = int(side * u)
                tile = cv2.resize(patches[person], (s, s), interpolation=cv2.INTER_AREA)
                x0 = int(x * u + dx * u * k / fps)
                y0 = int(y * u)
                x0, y0 = max(0, min(width - s, x0)), max(0, min(height - s, y0))
                frame[y0:y0 + s, x0:x0 + s] = tile
                f = s / (1 + 2 * margin)
                boxes.append((person, (x0 + margin * f, y0 + margin * f, f, f)))
            writer.write(frame)
            truth.append(boxes)
    writer.release()
    return truth


def film_scores(records, truth, min_track_frames: int) -> dict:
    """Face ids against people: ids (kept / all), ids that cover two people, and the ideal count
    (one id per person per shot, and per stretch of a person in one place)."""
    people_of: dict = {}
    frames_of: dict = {}
    found = 0
    for r in records:
        frames_of[r.face_id] = frames_of.get(r.face_id, 0) + 1
        cx, cy = r.box[0] + r.box[2] / 2, r.box[1] + r.box[3] / 2
        for person, (x, y, w, h) in truth[r.frame]:
            if x <= cx <= x + w and y <= cy <= y + h:
                people_of.setdefault(r.face_id, {}).setdefault(person, 0)
                people_of[r.face_id][person] += 1
                found += 1
                break
    kept = [f for f, n in frames_of.items() if n >= min_track_frames]
    ideal = sum(len(people) + (1 if switch else 0) for _, people, switch in FILM_SHOTS)
    return {"ids": len(kept), "all_ids": len(frames_of), "ideal": ideal,
            "mixed": sum(1 for f in kept if len(people_of.get(f, {})) > 1),
            "recall": found / max(1, sum(len(t) for t in truth))}


def _shot_frames(film: str, records, n_frames: int) -> list:
    """The middle frame of every shot (and of each half of a shot with a switch), drawn with its ids."""
    from fer_mask_ros.analysis.render import draw_faces
    from fer_mask_ros.imaging import read_video

    frames = read_video(film)
    per_shot = n_frames // len(FILM_SHOTS)
    picks = []
    for k, (_, _, switch) in enumerate(FILM_SHOTS):
        start = k * per_shot
        picks += [start + per_shot // 4, start + 3 * per_shot // 4] if switch else [start + per_shot // 2]
    out = []
    for i in picks:
        recs = [r for r in records if r.frame == i]
        out.append(draw_faces(frames[i], recs, bars=False, time_s=i / 25.0))
    return out


def _film_picture(path: str, pictures) -> None:
    """Rows of shot frames (one row per tracker), 2/5 scale, titled."""
    import cv2

    rows = []
    for name, frames in pictures:
        small = [cv2.resize(f, (f.shape[1] * 2 // 5, f.shape[0] * 2 // 5), interpolation=cv2.INTER_AREA)
                 for f in frames]
        strip = np.hstack([np.pad(f, ((0, 0), (0, 4), (0, 0)), constant_values=255) for f in small])
        title = np.full((26, strip.shape[1], 3), 255, np.uint8)
        cv2.putText(title, name, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        rows += [title, strip]
    cv2.imwrite(path, np.vstack(rows))


def run_film_bench(args) -> int:
    """`bench --analyze-film`: ids of the synthetic film, with this tracker and with the old one."""
    import cv2

    from fer_mask_ros.analysis.analyse import analyse
    from fer_mask_ros.analysis.sources import open_source
    from fer_mask_ros.bench.detector import detector_name
    from fer_mask_ros.perception.classifier import load_classifier
    from fer_mask_ros.perception.detection import make_detector
    from fer_mask_ros.perception.pipeline import FacePipeline
    from fer_mask_ros.perception.tracking import Tracker

    cv2.setNumThreads(1)
    classifier = load_classifier(getattr(args, "classifier_model", None), 1)
    detector = make_detector(detector_name(args), num_threads=1)
    from fer_mask_ros.analysis.report import DEFAULT_MIN_TRACK_FRAMES

    min_frames = DEFAULT_MIN_TRACK_FRAMES
    rows, pictures = [], []
    with tempfile.TemporaryDirectory() as tmp:
        film = os.path.join(tmp, "film.avi")
        truth = write_film(film)
        if getattr(args, "analyze_film_keep", None):
            import shutil

            shutil.copy(film, args.analyze_film_keep)
        for name, kwargs in (("ids from 1, shot cuts, appearance, motion gate (default)", {}),
                             ("no motion gate (the tracker before #31)", {"tracker": Tracker(max_speed=0)}),
                             ("no shot cuts", {"shot_cuts": None}),
                             ("no shot cuts, no appearance, no motion gate (the tracker before #18)",
                              {"shot_cuts": None, "tracker": Tracker(appearance_threshold=0, max_speed=0)})):
            pipeline = FacePipeline(detector=detector, classifier=classifier, **kwargs)
            result = analyse(open_source(film), pipeline, progress=False)
            scores = film_scores(result.records, truth, min_frames)
            rows.append((name, scores, result.shot_cuts))
            if getattr(args, "analyze_film_picture", None) and name.endswith(("(default)", "before #18)")):
                pictures.append((name, _shot_frames(film, result.records, len(truth))))
        if pictures:
            _film_picture(args.analyze_film_picture, pictures)
    n_people = len({p for _, people, sw in FILM_SHOTS for p, *_ in people} | {sw[1] for *_, sw in FILM_SHOTS if sw})
    print(f"synthetic film: {len(FILM_SHOTS)} shots (hard cuts), {n_people} people (the clip's faces), "
          f"{len(truth)} frames at 640x360; one person replaces another in place within a shot")
    print(f"| tracker | face ids (>= {min_frames} frames) | all ids | ideal (person x shot) | ids covering two people "
          "| cuts found | faces found |")
    print("|---|---|---|---|---|---|---|")
    for name, s, cuts in rows:
        print(f"| {name} | {s['ids']} | {s['all_ids']} | {s['ideal']} | {s['mixed']} | {cuts} "
              f"| {100 * s['recall']:.0f} % |")
    return 0


# ----------------------------------------------------------------------------- batches on all cores


def _batch_outputs(root: str) -> dict:
    out = {}
    for name in sorted(os.listdir(root)):
        sub = os.path.join(root, name)
        if os.path.isdir(sub):
            out[name] = tuple(open(os.path.join(sub, f), encoding="utf-8").read() for f in ("frames.csv", "events.csv"))
    return out


def _fresh_share(root: str) -> float:
    """Share of frames.csv rows (all inputs under `root`) that a model classified in their frame."""
    import csv

    fresh = rows = 0
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name, "frames.csv")
        if os.path.isfile(path):
            with open(path, encoding="utf-8", newline="") as handle:
                for row in csv.DictReader(handle):
                    rows += 1
                    fresh += int(row.get("fresh", "1") == "1")
    return fresh / rows if rows else float("nan")


def run_batch_bench(args) -> int:
    """`bench --analyze-batch`: `python -m fer_mask_ros analyze DIR --jobs J` on N QVGA videos, as a user runs it
    (a subprocess: start-up, model loading and writing the outputs included); x real time = video seconds / wall."""
    import json
    import subprocess
    import sys
    import time

    from fer_mask_ros.bench.detector import detector_name

    jobs_list = [int(v) for v in str(args.analyze_batch_jobs).split(",") if v.strip()]
    picked = detector_name(args)
    detector_args = ["--detector", picked] if picked else []
    n, seconds, fps = args.analyze_batch_inputs, args.analyze_batch_seconds, args.analyze_batch_fps
    schedules = [v.strip() for v in str(getattr(args, "analyze_batch_schedules", "default")).split(";") if v.strip()]
    rows, reference = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        videos = os.path.join(tmp, "videos")
        os.makedirs(videos)
        for k in range(n):
            write_test_video(os.path.join(videos, f"session{k}.avi"), seconds, fps, faces=1 + k % 2)
        for schedule, jobs in [(s, j) for s in schedules for j in jobs_list]:
            out = os.path.join(tmp, f"out_{len(rows)}")
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            rate_args = [] if schedule == "default" else ["--classify-hz", schedule]
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "fer_mask_ros", "analyze", videos, "--output", out,
                                   "--jobs", str(jobs), "--no-progress"] + detector_args + rate_args,
                                  capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                return 1
            outputs = _batch_outputs(out)
            reference.setdefault(schedule, outputs)
            frames = cpu = 0.0
            for name in os.listdir(out):
                summary_path = os.path.join(out, name, "summary.json")
                if os.path.isfile(summary_path):
                    with open(summary_path, encoding="utf-8") as handle:
                        summary = json.load(handle)
                    frames, cpu = frames + summary["frames"], cpu + summary["cpu_s"]
            rows.append((schedule, jobs, wall, load, "yes" if outputs == reference[schedule] else "NO",
                         frames / max(cpu, 1e-9), _fresh_share(out)))
    total = n * seconds
    print(f"offline analysis, batches: {n} videos of {seconds:g} s, 320x240 at {fps:g} fps (1-2 masked faces), "
          f"{os.cpu_count()} CPUs here; `python -m fer_mask_ros analyze DIR --jobs J "
          f"{' '.join(detector_args) or '(default detector)'}` as a subprocess")
    print("| --classify-hz | --jobs | video s | wall s | x real time | frames/s | per-frame results identical to the "
          "schedule's first row | load average at start | frames per CPU-second (analysis only) | CPU ms per frame "
          "| fresh rows | x real time if J cores were free |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for schedule, jobs, wall, load, same, per_cpu, fresh in rows:
        print(f"| {schedule} | {jobs} | {total:g} | {wall:.1f} | {total / wall:.2f}x | {total * fps / wall:.0f} "
              f"| {same} | {load:.1f} | {per_cpu:.0f} | {1000.0 / max(per_cpu, 1e-9):.2f} | {100 * fresh:.0f} % "
              f"| {jobs * per_cpu / fps:.2f}x |")
    return 0
