"""`live`: a video standing in for the webcam gives analyze's per-frame emotions; no display -> files."""
from __future__ import annotations

import csv
import os

import pytest

from fer_mask_ros.analysis.report import face_table
from fer_mask_ros.cli import main
from fer_mask_ros.cli.commands.live import Console
from fer_mask_ros.simulation.frame_source import find_demo_clip


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_live_video_matches_analyze(tmp_path, capsys):
    clip = str(find_demo_clip())
    assert main(["analyze", clip, "--output", str(tmp_path / "analyze"), "--no-progress"]) == 0
    assert main(["live", "--video", clip, "--output", str(tmp_path / "live"), "--no-frames"]) == 0
    out = capsys.readouterr().out
    analysed, live = _rows(tmp_path / "analyze" / "frames.csv"), _rows(tmp_path / "live" / "frames.csv")
    assert len(live) > 200  # the clip: 220 frames, one or two faces each
    assert [r[:9] for r in live] == [r[:9] for r in analysed]  # time, frame, id, box, emotion, confidence
    assert live == analysed
    assert "face 1: happy" in out and "NAO says:" in out
    last_face = max(int(r[2]) for r in live[1:])
    assert out.strip().splitlines()[-1].split()[0] == str(last_face)  # the per-face table ends with the last face


def test_live_speech_none_says_nothing(tmp_path, capsys):
    clip = str(find_demo_clip())  # the full clip: with --speech log the policy speaks in it (test above)
    assert main(["live", "--video", clip, "--output", str(tmp_path), "--no-frames", "--speech", "none"]) == 0
    captured = capsys.readouterr()
    assert "face 1: happy" in captured.out  # the run saw the faces that make the policy speak
    assert "NAO says" not in captured.out + captured.err
    assert "`raw_p_happy`" in (tmp_path / "COLUMNS.md").read_text()  # the folder says what its columns mean


def test_live_camera_rows_carry_the_computers_clock(tmp_path, monkeypatch, capsys):
    import time

    from fer_mask_ros import imaging
    from fer_mask_ros.analysis.clock import parse_iso
    from fer_mask_ros.imaging import read_video

    frames = read_video(find_demo_clip(), max_frames=5)

    class FakeCamera:  # camera 0 giving the clip's first frames
        def isOpened(self):
            return True

        def read(self):
            return (True, frames.pop(0)) if frames else (False, None)

        def release(self):
            pass

    monkeypatch.setattr(imaging, "open_video_capture", lambda index: FakeCamera())
    before = time.time()
    assert main(["live", "--output", str(tmp_path), "--no-frames", "--max-frames", "5", "--speech", "none"]) == 0
    after = time.time()
    rows = _rows(tmp_path / "frames.csv")
    header, rows = rows[0], rows[1:]
    assert rows
    for row in rows:
        utc = parse_iso(row[header.index("utc")])
        assert before - 0.01 <= utc <= after + 0.01
        assert utc - float(row[header.index("time")]) == pytest.approx(parse_iso(rows[0][header.index("utc")])
                                                                      - float(rows[0][header.index("time")]), abs=2e-3)
    assert "this computer's clock" in (tmp_path / "COLUMNS.md").read_text()


def test_live_without_display_writes_frames_and_csv(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["live", "--video", str(find_demo_clip()), "--window", "--max-frames", "5"]) == 0
    err = capsys.readouterr().err
    assert "no display" in err
    (out_dir,) = [d for d in os.listdir(tmp_path) if d.startswith("live-")]
    assert sorted(os.listdir(tmp_path / out_dir / "frames")) == [f"{i:06d}.jpg" for i in range(5)]
    assert len(_rows(tmp_path / out_dir / "frames.csv")) >= 6  # header + a face per frame


def test_live_missing_video_and_camera_are_one_line(tmp_path, capsys):
    assert main(["live", "--video", str(tmp_path / "nope.avi"), "--output", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: --video {tmp_path / 'nope.avi'}: no such file"
    assert main(["live", "--camera", "97", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: cannot open camera 97")


class _Rec:
    def __init__(self, face_id, emotion, t=0.0, masked=False, confidence=0.8):
        self.face_id, self.emotion, self.time, self.masked, self.confidence = face_id, emotion, t, masked, confidence


def test_console_prints_changes_only(capsys):
    console = Console()
    console.update(0.0, [_Rec(1, "happy")])
    console.update(0.1, [_Rec(1, "happy")])
    console.update(0.2, [_Rec(1, "sad")])
    console.update(0.3, [])
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split("face 1: ")[1].split()[0] for ln in lines] == ["happy", "sad", "gone"]


def test_face_table():
    table = face_table([_Rec(1, "happy", 0.0), _Rec(1, "happy", 0.1), _Rec(1, "sad", 0.2), _Rec(2, "fear", 0.3)])
    rows = table.splitlines()
    assert len(rows) == 3
    assert rows[1].split()[:4] == ["1", "3", "0.00", "0.20"] and "happy" in rows[1] and "67%" in rows[1]


def test_bad_video_gives_our_line_without_opencv_errors(tmp_path, capfd):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    assert main(["live", "--video", str(bad), "--output", str(tmp_path / "o")]) == 2
    assert main(["analyze", str(bad), "--output", str(tmp_path / "o2"), "--no-progress"]) == 2
    err = capfd.readouterr().err
    assert "cannot open as a video" in err
    assert "[ERROR" not in err and "GStreamer" not in err, err


def test_live_window_on_an_unreachable_display_falls_back_to_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DISPLAY", ":97")  # no X server answers there
    out = tmp_path / "out"
    assert main(["live", "--video", str(find_demo_clip()), "--window", "--max-frames", "2", "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: --window: cannot open a window on display ':97'" in err
    assert sorted(os.listdir(out / "frames")) == ["000000.jpg", "000001.jpg"]
