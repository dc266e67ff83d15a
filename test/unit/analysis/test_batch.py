"""Tracks that follow people (shot cuts, short tracks), a readable report, and batches: --jobs, --shard,
--resume, --summarize; data loss in videos and mixed image types in bags."""
from __future__ import annotations

import csv
import json
import os
import re

import cv2
import numpy as np
import pytest
from conftest import write_video

from fer_mask_ros.cli import main
from fer_mask_ros.imaging import read_video

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CLIP = os.path.join(REPO, "fer_mask_ros", "data", "demo_clip.avi")
LABELS = os.path.join(REPO, "fer_mask_ros", "data", "demo_clip.json")
FPS = 10.0

pytestmark = pytest.mark.skipif(not os.path.isfile(CLIP), reason="bundled demo clip missing")


@pytest.fixture(scope="module")
def clip():
    return read_video(CLIP, max_frames=200)


def analyze(*args):
    return main(["analyze", "--no-progress", *[str(a) for a in args]])


def rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def face_box(frame_index):
    with open(LABELS) as handle:
        labels = json.load(handle)
    for seg in labels["segments"]:
        if seg["start_frame"] <= frame_index < seg["end_frame"]:
            return seg["faces"][0]["boxes"][frame_index - seg["start_frame"]]
    raise AssertionError(frame_index)


def new_shot(frame, box):
    """The same face, same place, in another shot: everything around the face repainted."""
    out = np.empty_like(frame)
    out[:] = (30, 90, 200)
    out[::16] = (240, 240, 40)
    x, y, w, h = (int(v) for v in box)
    out[y:y + h, x:x + w] = frame[y:y + h, x:x + w]
    return out


# ----------------------------------------------------------------------------- tracks


def test_a_shot_cut_splits_the_track_even_for_the_same_face_in_the_same_place(clip, tiny_model_path):
    from fer_mask_ros.perception.classifier import EmotionClassifier
    from fer_mask_ros.perception.detection import FaceDetector
    from fer_mask_ros.perception.pipeline import FacePipeline

    frames = clip[:20] + [new_shot(clip[i], face_box(i)) for i in range(20, 40)]
    detector, classifier = FaceDetector(num_threads=1), EmotionClassifier(tiny_model_path, num_threads=1)

    def ids(**kwargs):
        pipe = FacePipeline(detector, classifier, **kwargs)
        out = [[r.track_id for r in pipe.process(f, i / FPS)] for i, f in enumerate(frames)]
        return out, pipe

    per_frame, pipe = ids()
    before = {t for f in per_frame[:20] for t in f}
    after = {t for f in per_frame[20:] for t in f}
    assert len(before) == 1 and len(after) == 1 and before != after
    assert pipe.shot_cuts.cuts == 1
    # without cut detection (and appearance, which sees the same face) the id would carry over
    from fer_mask_ros.perception.tracking import Tracker

    per_frame, _ = ids(shot_cuts=None, tracker=Tracker(appearance_threshold=0))
    assert len({t for f in per_frame for t in f}) == 1


def test_a_video_with_a_cut_through_analyze(clip, tiny_model_path, tmp_path):
    frames = clip[:20] + [new_shot(clip[i], face_box(i)) for i in range(20, 40)]
    video = write_video(tmp_path / "cut.avi", frames)
    assert analyze(video, "--output", tmp_path / "out", "--model", tiny_model_path) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["shot_cuts"] == 1 and summary["faces"] == 2
    by_face = {}
    for r in rows(tmp_path / "out" / "frames.csv"):
        by_face.setdefault(r["face_id"], []).append(int(r["frame"]))
    assert all(max(f) < 20 or min(f) >= 20 for f in by_face.values()), "an id spans the cut"


def test_short_tracks_get_no_events_and_no_share(clip, tiny_model_path, tmp_path):
    video = write_video(tmp_path / "short.avi", clip[:6])
    loose = ["--min-duration", "0", "--enter", "0.1", "--exit", "0.1"]  # any face gives events
    assert analyze(video, "--output", tmp_path / "a", "--model", tiny_model_path, *loose) == 0
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["faces"] == 0 and summary["short_tracks"] == {"min_track_frames": 10, "tracks": 1, "frames": 6}
    assert summary["events"] == 0 and summary["emotion_shares"] == {}
    assert len(rows(tmp_path / "a" / "frames.csv")) == 6  # the rows stay
    assert analyze(video, "--output", tmp_path / "b", "--model", tiny_model_path, *loose,
                   "--min-track-frames", "3") == 0
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["faces"] == 1 and summary["events"] >= 1


# ----------------------------------------------------------------------------- report


def test_report_has_a_thumbnail_per_face_marked_key_frames_a_legend_and_a_browser_video(clip, tiny_model_path,
                                                                                        tmp_path):
    video = write_video(tmp_path / "two.avi", clip[:60])  # two people, one after the other
    out = tmp_path / "out"
    assert analyze(video, "--output", out, "--model", tiny_model_path, "--render", "--min-duration", "0",
                   "--enter", "0.1", "--exit", "0.1") == 0
    summary = json.loads((out / "summary.json").read_text())
    page = (out / "report.html").read_text()
    assert summary["faces"] == 2
    for fid in summary["face_ids"]:
        assert re.search(rf"<img alt='face {fid}' src='data:image/jpeg;base64,", page), fid
    assert "<h2>Legend</h2>" in page and "confidence of the top emotion" in page
    assert "Key frames" in page and "black and white frame" in page
    name = summary["outputs"][-1]
    assert name.startswith("annotated.") and summary["video_codec"]
    if name.endswith((".mp4", ".webm")):
        assert f"<source src='{name}'" in page
    events = rows(out / "events.csv")
    assert {e["face_id"] for e in events} <= {str(f) for f in summary["face_ids"]}


def test_every_face_with_an_event_is_in_the_timeline():
    from types import SimpleNamespace

    from fer_mask_ros.analysis.render import timeline_faces

    series = {fid: (np.arange(100 - 5 * fid) / 10.0 + fid, np.full((100 - 5 * fid, 7), 1 / 7)) for fid in range(1, 16)}
    events = [SimpleNamespace(face_id=f) for f in (14, 15, 9)]
    shown = timeline_faces(series, events, max_faces=8)
    assert {14, 15, 9} <= set(shown) and len(shown) == 8
    assert shown == sorted(shown)  # here first appearance = id order
    assert len(timeline_faces(series, [SimpleNamespace(face_id=f) for f in range(1, 13)], max_faces=8)) == 12


# ----------------------------------------------------------------------------- batches


@pytest.fixture(scope="module")
def four_videos(clip, tmp_path_factory):
    root = tmp_path_factory.mktemp("four")
    for k in range(4):
        write_video(root / f"v{k}.avi", clip[40 * k + 20:40 * k + 36])
    return root


def outputs(root):
    """{sub-folder: (frames.csv, events.csv)} of a batch output folder."""
    out = {}
    for name in sorted(os.listdir(root)):
        if os.path.isdir(root / name):
            out[name] = tuple((root / name / f).read_text() for f in ("frames.csv", "events.csv"))
    return out


def summary_rows(path):
    return [{k: v for k, v in r.items() if k != "fps_processed"} for r in rows(path)]


def test_jobs_shards_resume_and_summarize_give_the_same_results(four_videos, tiny_model_path, tmp_path, capsys):
    common = ["--model", tiny_model_path, "--min-track-frames", "3"]
    assert analyze(four_videos, "--output", tmp_path / "j1", "--jobs", "1", *common) == 0
    one = outputs(tmp_path / "j1")
    assert len(one) == 4 and all(frames.count("\n") > 1 for frames, _ in one.values())

    assert analyze(four_videos, "--output", tmp_path / "j2", "--jobs", "2", *common) == 0
    assert outputs(tmp_path / "j2") == one
    assert summary_rows(tmp_path / "j2" / "summary.csv") == [
        {**r, "output": r["output"].replace("j1", "j2")} for r in summary_rows(tmp_path / "j1" / "summary.csv")]

    for k in (2, 1):
        assert analyze(four_videos, "--output", tmp_path / "sh", "--shard", f"{k}/2", "--jobs", "1", *common) == 0
    assert outputs(tmp_path / "sh") == one
    assert not (tmp_path / "sh" / "summary.csv").exists()
    capsys.readouterr()
    assert main(["analyze", "--summarize", str(tmp_path / "sh")]) == 0
    assert "v3.avi | ok" in capsys.readouterr().out
    assert [r["input"] for r in rows(tmp_path / "sh" / "summary.csv")] == sorted(
        str(four_videos / f"v{k}.avi") for k in range(4))
    assert summary_rows(tmp_path / "sh" / "summary.csv") == [
        {**r, "output": r["output"].replace("j1", "sh")} for r in summary_rows(tmp_path / "j1" / "summary.csv")]

    # --resume: nothing to do; then one removed summary.json means exactly that input again
    stamps = {n: os.path.getmtime(tmp_path / "j1" / n / "frames.csv") for n in one}
    assert analyze(four_videos, "--output", tmp_path / "j1", "--resume", *common) == 0
    assert "4 of 4 inputs already analysed" in capsys.readouterr().err
    os.remove(tmp_path / "j1" / "v2" / "summary.json")
    assert analyze(four_videos, "--output", tmp_path / "j1", "--resume", "--jobs", "1", *common) == 0
    assert "3 of 4 inputs already analysed" in capsys.readouterr().err
    for n in one:
        changed = os.path.getmtime(tmp_path / "j1" / n / "frames.csv") != stamps[n]
        assert changed == (n == "v2"), n
    assert outputs(tmp_path / "j1") == one


def test_bad_shard_and_summarize_arguments(tmp_path, capsys):
    assert analyze("x.avi", "--output", tmp_path, "--shard", "3/2") == 2
    assert "1 <= K <= N" in capsys.readouterr().err
    assert main(["analyze", "--summarize", str(tmp_path / "nothing")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_shards_partition_the_sorted_inputs():
    from fer_mask_ros.analysis.batch import out_names, shard

    inputs = [f"in/{c}.avi" for c in "edcba"] + ["other/a.avi"]
    parts = [shard(inputs, k, 3) for k in (1, 2, 3)]
    assert sorted(p for part in parts for p in part) == sorted(inputs)
    assert parts == [shard(list(reversed(inputs)), k, 3) for k in (1, 2, 3)]
    names = out_names(sorted(inputs))
    assert len(set(names.values())) == len(inputs) and names["other/a.avi"] == "a_2"


def test_largest_inputs_start_first(tmp_path):
    from fer_mask_ros.analysis.batch import largest_first

    paths = []
    for name, size in (("a.avi", 10), ("b.avi", 30), ("c.avi", 20), ("d.avi", 30)):
        (tmp_path / name).write_bytes(b"x" * size)
        paths.append(str(tmp_path / name))
    missing = str(tmp_path / "gone.avi")
    assert [os.path.basename(p) for p in largest_first(paths + [missing])] == ["b.avi", "d.avi", "c.avi", "a.avi",
                                                                                "gone.avi"]


def test_default_jobs_respects_memory(monkeypatch):
    from fer_mask_ros.analysis import batch

    monkeypatch.setattr(batch, "available_cpus", lambda: 8)
    monkeypatch.setattr(batch, "available_memory_mb", lambda: 10_000.0)
    assert batch.default_jobs(3)[0] == 3
    assert batch.default_jobs(20)[0] == 8
    monkeypatch.setattr(batch, "available_memory_mb", lambda: 1300.0)
    jobs, why = batch.default_jobs(20)
    assert jobs == 2 and "memory" in why


# ----------------------------------------------------------------------------- data loss


def test_a_video_with_a_broken_middle_says_how_many_frames_were_lost(clip, tiny_model_path, tmp_path):
    path = write_video(tmp_path / "whole.avi", clip[:60])
    data = bytearray(open(path, "rb").read())
    starts = [m.start() for m in re.finditer(b"\xff\xd8\xff", bytes(data))]
    assert len(starts) == 60
    for k in range(20, 35):  # frames 20-34: JPEG data zeroed
        data[starts[k]:starts[k + 1] - 16] = bytes(starts[k + 1] - 16 - starts[k])
    broken = tmp_path / "broken.avi"
    broken.write_bytes(bytes(data))
    assert analyze(broken, path, "--output", tmp_path / "out", "--model", tiny_model_path) == 0
    summary = json.loads((tmp_path / "out" / "broken" / "summary.json").read_text())
    assert summary["frames_declared"] == 60 and summary["frames_unreadable"] == 15
    assert summary["frames"] == 45 and summary["duration"] == pytest.approx(6.0)
    assert any("15 of the 60 declared frames" in n and "20-34" in n for n in summary["notes"])
    table = {r["input"]: r for r in rows(tmp_path / "out" / "summary.csv")}
    assert table[str(broken)]["status"] == "partial" and table[path]["status"] == "ok"
    assert "unreadable frames" in (tmp_path / "out" / "broken" / "report.html").read_text()


def test_a_bag_topic_with_both_image_types_is_read(clip, tiny_model_path, tmp_path):
    rosbag = pytest.importorskip("rosbag")
    genpy = pytest.importorskip("genpy")
    from sensor_msgs.msg import CompressedImage, Image

    path = tmp_path / "mixed.bag"
    with rosbag.Bag(str(path), "w") as bag:
        for i, frame in enumerate(clip[:12]):
            stamp = genpy.Time(1_700_000_000, int(i * 1e8))
            if i % 2:
                msg = CompressedImage(format="jpeg", data=cv2.imencode(".png", frame)[1].tobytes())
            else:
                msg = Image(height=240, width=320, encoding="bgr8", step=960, data=frame.tobytes())
            msg.header.stamp = stamp
            bag.write("/naoqi_driver/camera/front/image_raw", msg, stamp)
    assert analyze(path, "--output", tmp_path / "out", "--model", tiny_model_path) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["frames"] == 12 and not summary["notes"]
    from fer_mask_ros.analysis.sources import declared_frames

    assert declared_frames(str(path)) == 12 and declared_frames(str(path), "/other/topic") == 0
    assert sorted({int(r["frame"]) for r in rows(tmp_path / "out" / "frames.csv")}) == list(range(12))


def test_one_video_in_time_chunks_matches_one_pass(clip, tiny_model_path, tmp_path, capsys):
    video = write_video(tmp_path / "long.avi", clip[:150])  # 15 s: three people one after the other
    common = ["--model", tiny_model_path, "--min-track-frames", "3"]
    assert analyze(video, "--output", tmp_path / "one", *common) == 0
    assert analyze(video, "--output", tmp_path / "chunks", "--chunk-seconds", "4", "--chunk-overlap", "2",
                   "--jobs", "2", *common) == 0
    assert "4 chunks of 4 s" in capsys.readouterr().err
    one, chunked = rows(tmp_path / "one" / "frames.csv"), rows(tmp_path / "chunks" / "frames.csv")
    assert [(r["frame"], r["face_id"]) for r in chunked] == [(r["frame"], r["face_id"]) for r in one]
    assert [r["emotion"] for r in chunked] == [r["emotion"] for r in one]
    diff = max(abs(float(a[c]) - float(b[c])) for a, b in zip(one, chunked) for c in a if c.startswith("p_"))
    assert diff < 1e-3
    summary = json.loads((tmp_path / "chunks" / "summary.json").read_text())
    assert summary["frames"] == 150 and not summary["notes"]


def test_batch_progress_says_inputs_done_rate_and_eta(four_videos, tiny_model_path, tmp_path, capsys):
    assert main(["analyze", str(four_videos), "--output", str(tmp_path / "p"), "--model", tiny_model_path,
                 "--jobs", "1"]) == 0
    err = capsys.readouterr().err
    assert "with 1 job (--jobs)" in err
    assert "4/4 inputs" in err and "frame/s" in err and "<" in err  # tqdm: rate and remaining time
    assert "64/64" in err  # the frames the videos declare (4 x 16)


def test_a_worker_whose_parent_died_before_it_started_watching_exits_at_once():
    """A spawned pool worker runs exit_with_parent only after its imports: when the analyze that started it was
    SIGKILLed before that, the worker's parent is already another process and it must exit, not wait for good."""
    import subprocess
    import sys

    code = ("import os, time\nfrom fer_mask_ros.analysis.batch import exit_with_parent\n"
            "exit_with_parent(os.getppid() + 1000003)\ntime.sleep(60)\n")
    proc = subprocess.run([sys.executable, "-c", code], timeout=120)
    assert proc.returncode == 70
