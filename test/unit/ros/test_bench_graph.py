"""bench --graph helpers (no ROS graph): cases, frames, statistics, records, Markdown, soak verdict."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from fer_mask_ros.ros import bench_graph as bg
from fer_mask_ros.ros.soak import verdict
from fer_mask_ros.simulation.face_frames import FaceFrames


def test_parse_cases_default_and_explicit():
    cases = bg.parse_cases(None)
    assert len(cases) == 12
    assert {(c.resolution, c.offered_fps, c.faces) for c in cases} == {
        (r, f, n) for r in ("QVGA", "VGA") for f in (10.0, 30.0) for n in (1, 2, 5)}
    assert bg.parse_cases("qvga@30x2, VGA@10x5") == [bg.Case("QVGA", 30.0, 2), bg.Case("VGA", 10.0, 5)]
    for bad in ("QVGA", "XGA@30x2", "QVGA@0x1", "QVGA@30x-1", "QVGA@ax2"):
        with pytest.raises(ValueError, match="bad case"):
            bg.parse_cases(bad)


@pytest.mark.parametrize("size,faces", [((320, 240), 1), ((320, 240), 2), ((640, 480), 5), ((1280, 960), 50)])
def test_face_frames_geometry(size, faces):
    ff = FaceFrames(size[0], size[1], faces, n_frames=3)
    assert len(ff.frames) == 3
    for i in range(4):  # loops
        frame = ff.frame(i)
        assert frame.shape == (size[1], size[0], 3) and frame.dtype == np.uint8
        boxes = ff.boxes(i)
        assert len(boxes) == faces
        for x, y, w, h in boxes:
            assert w == h > 0 and 0 <= x and x + w <= size[0] and 0 <= y and y + h <= size[1]
        # boxes do not overlap (one grid cell each)
        for a in range(len(boxes)):
            for b in range(a + 1, len(boxes)):
                xa, ya, wa, _ = boxes[a]
                xb, yb, wb, _ = boxes[b]
                assert xa + wa <= xb or xb + wb <= xa or ya + wa <= yb or yb + wb <= ya
    assert not np.array_equal(ff.frame(0), ff.frame(1)), "faces should move between frames"


@pytest.mark.parametrize("name", ["centerface", "yunet"])
def test_face_frames_are_found_by_the_detector(name):
    from fer_mask_ros.perception.detection import iou, make_detector

    det = make_detector(name)
    for size, faces in (((320, 240), 2), ((640, 480), 5)):
        ff = FaceFrames(size[0], size[1], faces, n_frames=2)
        found = det.detect(ff.frame(0))
        matched = sum(any(iou(d.box, b) > 0.3 for d in found) for b in ff.boxes(0))
        assert matched >= faces - 1, (size, faces, matched)


def test_percentile_and_cpu():
    assert math.isnan(bg.percentile([], 50))
    assert bg.percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert bg.percentile(list(range(101)), 95) == pytest.approx(95.0)
    a = bg.proc_sample(os.getpid())
    sum(i * i for i in range(200000))
    b = bg.proc_sample(os.getpid())
    assert a is not None and b is not None and b.rss > 0 and b.cpu_s >= a.cpu_s
    assert bg.cpu_percent(a, b) >= 0
    assert bg.proc_sample(2 ** 22 + 12345) is None


def test_record_keys_and_nan_to_null():
    r = bg.CaseResult("QVGA", 30.0, 2, 10.0, 20.0, float("nan"), 29.9, 0.1, stages_ms={"decode": 1.234})
    rec = r.record()
    for key in ("resolution", "offered_fps", "faces", "p50_ms", "p95_ms", "max_ms", "processed_fps", "dropped_fps",
                "peer_fps"):
        assert key in rec
    assert rec["max_ms"] is None and rec["peer_fps"] is None and rec["stages_ms"] == {"decode": 1.23}
    json.dumps(rec)


def test_markdown_block_is_replaced_in_place(tmp_path):
    machine = bg.machine_description()
    assert machine["cores"] and machine["cpu"]
    r = bg.CaseResult("VGA", 10.0, 5, 30.0, 40.0, 50.0, 10.0, 0.0, cpu_percent={"face_detector": 50.0},
                      rss_mb={"face_detector": 400.0})
    table = bg.render_markdown([r], machine)
    row = bg.format_row(r)
    assert row.count("|") == bg.HEADER.count("|")
    path = tmp_path / "PERFORMANCE.md"
    path.write_text("# Performance\n\nprose before\n\n" + bg.BEGIN + "\nold\n" + bg.END + "\n\nprose after\n")
    bg.write_performance_md(path, table)
    text = path.read_text()
    assert "old" not in text and "prose before" in text and "prose after" in text and row in text
    bg.write_performance_md(path, table)
    assert path.read_text() == text  # idempotent
    new = tmp_path / "NEW.md"
    bg.write_performance_md(new, table)
    assert row in new.read_text()


def _minute(m, p95, rss, backlog=0):
    return {"minute": m, "p50_ms": p95 / 2, "p95_ms": p95, "processed_fps": 30.0,
            "rss_mb": {"face_detector": rss, "emotion_classifier": 300.0}, "backlog": {"face_detector": backlog}}


def test_soak_verdict():
    assert verdict([_minute(1, 40.0, 400.0), _minute(10, 47.0, 420.0)]) == []
    assert verdict([_minute(1, 40.0, 400.0), _minute(10, 55.0, 400.0)]) == []  # +37 % but under 60 ms
    assert verdict([_minute(1, 60.0, 400.0), _minute(10, 80.0, 400.0)]) == ["p95 60.0 -> 80.0 ms"]
    assert verdict([_minute(1, 40.0, 400.0), _minute(10, 40.0, 440.0)]) == ["face_detector RSS 400 -> 440 MB"]
    assert verdict([_minute(1, 40.0, 400.0), _minute(10, 40.0, 400.0, backlog=5)]) == ["face_detector backlog 5"]


def test_bench_graph_cli_errors(capsys):
    from fer_mask_ros.cli import main

    assert main(["bench", "--graph", "--graph-cases", "QVGA@30"]) != 0
    assert "bad case" in capsys.readouterr().err
    assert main(["bench", "--graph", "--graph-model", "/nonexistent.pt"]) != 0
    assert "not found" in capsys.readouterr().err


def test_capacity_and_peer_ratio():
    from fer_mask_ros.ros import bench_graph as bg

    r = bg.CaseResult("QVGA", 30.0, 1, 10.0, 20.0, 30.0, 30.0, 0.0, peer_fps=40.0,
                      stages_ms={"decode": 1.0, "detection": 6.0, "crop": 0.5, "classification": 2.5, "publish": 0.0})
    assert r.capacity_fps == 100.0
    assert r.peer_ratio == 2.5
    rec = r.record()
    assert (rec["capacity_fps"], rec["peer_ratio"]) == (100.0, 2.5)
    assert "| 100.0 | 40.0 | 2.50 |" in bg.format_row(r)
    bare = bg.CaseResult("VGA", 10.0, 1, 1.0, 1.0, 1.0, 10.0, 0.0)
    assert bare.capacity_fps is None and bare.peer_ratio is None
    assert bare.record()["peer_ratio"] is None
