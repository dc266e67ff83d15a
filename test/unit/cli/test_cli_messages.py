"""What the CLI tells a new user: photos without a face named, videos sent to analyze, a folder of frames analysed
as an image sequence (--fps), inputs shorter than --min-track-frames warned about, --version."""
from __future__ import annotations

import csv
import re

import cv2
import numpy as np
import pytest

from fer_mask_ros.cli import main
from fer_mask_ros.imaging import read_video
from fer_mask_ros.simulation.frame_source import find_demo_clip


@pytest.fixture(scope="module")
def clip_frames():
    return read_video(str(find_demo_clip()), max_frames=12)


def test_classify_names_photos_without_a_face_and_sends_videos_to_analyze(tmp_path, clip_frames, capsys):
    face, empty = tmp_path / "face.png", tmp_path / "wall.png"
    cv2.imwrite(str(face), clip_frames[0])
    cv2.imwrite(str(empty), np.full((240, 320, 3), 128, np.uint8))
    clip = str(find_demo_clip())
    assert main(["classify", str(face), str(empty), clip, "--no-progress"]) == 0
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert f"no face found in {empty}" in err
    assert any(ln.startswith(f"warning: skipping {clip}: a video") and f"analyze {clip} --output DIR" in ln
               for ln in err), err
    assert err[-1].startswith("2 photos, 1 faces (1 photos without a face), skipped 1")
    assert len(captured.out.strip().splitlines()) == 2  # header + the one face


def test_analyze_a_folder_of_frames_as_an_image_sequence(tmp_path, clip_frames, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, image in enumerate(clip_frames):
        cv2.imwrite(str(frames / f"frame_{i:04d}.png"), image)
    assert main(["analyze", str(frames), "--output", str(tmp_path / "out"), "--fps", "5", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"{frames}: 12 frames" in err, err
    with open(tmp_path / "out" / "frames.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted({int(r["frame"]) for r in rows}) == list(range(12))
    assert [float(r["time"]) for r in rows[:3]] == [0.0, 0.2, 0.4]  # --fps 5
    assert main(["analyze", str(frames), "--output", str(tmp_path / "o2"), "--fps", "0"]) == 2


def test_analyze_warns_when_an_input_is_shorter_than_min_track_frames(tmp_path, clip_frames, capsys):
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), clip_frames[0])
    assert main(["analyze", str(photo), "--output", str(tmp_path / "out"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"warning: .*photo\.jpg: 1 frame\(s\) analysed, fewer than --min-track-frames 10", err), err
    assert "classify PHOTO" in err


def test_version(capsys):
    assert main(["--version"]) == 0
    assert re.fullmatch(r"fer_mask_ros \d+\.\d+\.\d+\n", capsys.readouterr().out)


def test_a_camera_given_to_analyze_or_the_fake_nao_points_to_live(tmp_path, capsys):
    assert main(["analyze", "0", "--output", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == ("error: 0: a camera, not a recording; for a live camera use: "
                                               "python -m fer_mask_ros live --camera 0")
    assert main(["fake-nao", "--source", "/dev/video3", "--port", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --source /dev/video3: the fake NAO plays recordings") and "live --camera 3" in err
