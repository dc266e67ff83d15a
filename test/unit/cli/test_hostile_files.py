"""Hostile files through the real CLI (docs/ROBUSTNESS.md, CLI cases): image bombs and a file name that is
not UTF-8 in one batch. Each command skips the bombs with a counted warning, writes every other row
(the odd name byte for byte) and stays under 1.5 GB of peak memory; `classify` honours --backend.
`detect --annotate` / `classify --annotate-dir` on a folder of every kind of bad entry (bombs, a truncated
PNG, a non-UTF-8 name with a newline, symlinks dangling and looping, a FIFO, an empty file) run in a child:
a native crash (cv2.imwrite segfaulted on the odd name) fails the test instead of killing pytest."""
from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fer_mask_ros.simulation.face_frames import FaceFrames
from fer_mask_ros.simulation.hostile_images import png_bomb

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ODD_NAME = b"caf\xe9 \xff.png"  # Latin-1 bytes: not UTF-8


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """good face photo, a 60000^2 header bomb, a 30000^2 zero PNG, the photo again under a non-UTF-8 name."""
    root = tmp_path_factory.mktemp("hostile")
    frame = FaceFrames(320, 240, 2, n_frames=1).frame(0)
    assert cv2.imwrite(str(root / "a_good.png"), frame)
    (root / "b_bomb_60000.png").write_bytes(png_bomb(60000, 60000))
    (root / "c_zero_30000.png").write_bytes(png_bomb(30000, 30000, zero_rows=True))
    ok, buf = cv2.imencode(".png", frame)
    with open(os.path.join(os.fsencode(str(root)), ODD_NAME), "wb") as f:
        f.write(buf.tobytes())
    return root


def run_cli(args, out):
    """Run `python -m fer_mask_ros ARGS -o OUT` in a child; (returncode, stderr, peak RSS of the child in MB)."""
    probe = ("import resource, subprocess, sys; "
             "p = subprocess.run(sys.argv[1:], stderr=subprocess.PIPE); "
             "sys.stderr.buffer.write(p.stderr); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(p.returncode)")
    cmd = [sys.executable, "-c", probe, sys.executable, "-m", "fer_mask_ros", *args, "--no-progress", "-o", str(out)]
    p = subprocess.run(cmd, capture_output=True, cwd=REPO, timeout=600)
    return p.returncode, p.stderr.decode("utf-8", "replace"), int(p.stdout.split()[-1]) / 1024.0


@pytest.mark.parametrize("command", [["detect"], ["classify"], ["classify", "--crops"]])
def test_bombs_and_odd_name_keep_the_batch(batch, tmp_path, command):
    out = tmp_path / "out.csv"
    rc, err, peak_mb = run_cli([*command, str(batch)], out)
    assert rc == 0, err
    rows = out.read_bytes().splitlines()[1:]
    paths = {r.split(b",")[0] for r in rows}
    root = os.fsencode(str(batch))
    assert os.path.join(root, b"a_good.png") in paths, err
    assert os.path.join(root, ODD_NAME) in paths, err  # the name's own bytes, not mangled
    assert not any(b"bomb" in p or b"zero" in p for p in paths)
    assert err.count("too large") == 2, err
    assert peak_mb < 1500, f"peak RSS {peak_mb:.0f} MB"


def test_photo_mode_honours_backend(batch, tmp_path, tiny_model_path):
    """An explicit --backend with no ONNX copy fails loudly in photo mode too (it fell back to torch)."""
    rc, err, _ = run_cli(["classify", "--model", tiny_model_path, "--backend", "onnxruntime",
                          str(batch / "a_good.png")], tmp_path / "out.csv")
    assert rc == 2 and "ONNX" in err, err


NEWLINE_NAME = b"caf\xe9 \n.png"  # not UTF-8 and a newline: cv2.imwrite segfaulted on it (issue 27)


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory):
    """Every kind of bad directory entry beside good photos (issue 27's reproduction)."""
    root = tmp_path_factory.mktemp("hostile_dir")
    broot = os.fsencode(str(root))
    frame = FaceFrames(320, 240, 2, n_frames=1).frame(0)
    ok, png = cv2.imencode(".png", frame)
    png = png.tobytes()
    (root / "a_good.png").write_bytes(png)
    (root / "b_bomb_60000.png").write_bytes(png_bomb(60000, 60000))
    (root / "c_zlib_bomb.png").write_bytes(png_bomb(30000, 30000, zero_rows=True))
    (root / "d_truncated.png").write_bytes(png[:74])
    with open(os.path.join(broot, NEWLINE_NAME), "wb") as handle:
        handle.write(png)
    os.symlink("nowhere.png", str(root / "e_dangling.png"))
    os.symlink("f_loop.png", str(root / "f_loop.png"))
    os.mkfifo(str(root / "g_fifo.png"))
    (root / "h_empty.png").write_bytes(b"")
    (root / "z_good.jpg").write_bytes(cv2.imencode(".jpg", frame)[1].tobytes())
    return root


def test_detect_annotate_survives_every_bad_entry(hostile_folder, tmp_path):
    annotated = tmp_path / "annotated"
    rc, err, _ = run_cli(["detect", "--annotate", str(annotated), str(hostile_folder)], tmp_path / "out.csv")
    assert rc == 0, f"exit {rc} (245, 139 or -11 = segmentation fault): {err}"
    assert "Traceback" not in err, err
    data = (tmp_path / "out.csv").read_bytes()
    root = os.fsencode(str(hostile_folder))
    for good in (b"a_good.png", NEWLINE_NAME, b"z_good.jpg"):  # the rows after the odd name are kept
        assert os.path.join(root, good) in data, err
    written = set(os.listdir(os.fsencode(str(annotated))))
    assert written == {b"a_good.png", NEWLINE_NAME, b"z_good.jpg"}, written
    assert cv2.imdecode(np.frombuffer((annotated / "z_good.jpg").read_bytes(), np.uint8), 1).shape == (240, 320, 3)
    for reason in ("too large", "not a readable image", "dangling symlink", "symlink loop", "a FIFO", "empty file"):
        assert reason in err, (reason, err)
    assert "7 unreadable" in err, err
    assert not [n for n in written if n.startswith(b".partial-")]


def test_classify_annotate_survives_every_bad_entry(hostile_folder, tmp_path):
    annotated = tmp_path / "annotated"
    rc, err, _ = run_cli(["classify", "--annotate-dir", str(annotated), str(hostile_folder)], tmp_path / "out.csv")
    assert rc == 0, f"exit {rc} (245, 139 or -11 = segmentation fault): {err}"
    assert "Traceback" not in err, err
    assert len(os.listdir(str(annotated))) == 3, err


def test_annotate_target_that_is_a_fifo_is_one_warning(tmp_path):
    """An annotated image whose target is a FIFO (or a folder) is not written: one counted warning, the batch
    goes on, exit 0."""
    src = tmp_path / "in"
    src.mkdir()
    frame = FaceFrames(320, 240, 2, n_frames=1).frame(0)
    for name in ("a.png", "b.png", "c.png"):
        assert cv2.imwrite(str(src / name), frame)
    out = tmp_path / "annotated"
    out.mkdir()
    os.mkfifo(str(out / "a.png"))
    (out / "b.png").mkdir()
    rc, err, _ = run_cli(["detect", "--annotate", str(out), str(src)], tmp_path / "out.csv")
    assert rc == 0, err
    assert err.count("warning: cannot write") == 2 and "a FIFO" in err and "a folder" in err, err
    assert "2 annotated image(s) not written" in err, err
    assert (out / "c.png").is_file()
    assert (tmp_path / "out.csv").read_text().count("c.png") == 2


@pytest.mark.parametrize("command", [["detect"], ["classify"]])
def test_csv_output_that_cannot_be_written_is_one_error_line(batch, tmp_path, command):
    """-o /dev/full (a full disk), -o a folder: `error: cannot write ...`, exit 2; an existing CSV is kept."""
    good = str(batch / "a_good.png")
    for target, reason in (("/dev/full", "No space left on device"), (str(tmp_path), "it is a folder")):
        p = subprocess.run([sys.executable, "-m", "fer_mask_ros", *command, good, "--no-progress", "-o", target],
                           capture_output=True, text=True, cwd=REPO, timeout=300)
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
        assert p.stderr.strip().splitlines()[-1] == f"error: cannot write {target}: {reason}", p.stderr
    assert os.listdir(str(tmp_path)) == []  # no temporary file left beside


def test_a_closed_pipe_is_not_a_traceback(batch):
    """`detect DIR | true`: the reader is gone before the first row (as `| head` after its lines); no
    BrokenPipeError traceback, exit status 141 (128 + SIGPIPE)."""
    p = subprocess.run(f"{sys.executable} -m fer_mask_ros detect --no-progress {batch} | true; "
                       "echo ${PIPESTATUS[0]}", shell=True, executable="/bin/bash", capture_output=True, text=True,
                       cwd=REPO, timeout=300)
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr
    assert p.stdout.strip() == "141", p.stdout


def test_analyze_and_render_a_video_whose_name_is_not_utf8(tmp_path, tiny_model_path):
    """cv2.VideoCapture / VideoWriter segfaulted on such a name (the input's, and the output folder named after
    it); matplotlib refused it as a title. Both inputs analysed, the summary one line per input."""
    from conftest import write_video

    frames = [FaceFrames(320, 240, 2, n_frames=12).frame(i) for i in range(12)]
    src = tmp_path / "in"
    src.mkdir()
    odd = os.path.join(os.fsencode(str(src)), b"caf\xe9 \n.avi")
    write_video(src / "plain.avi", frames)
    os.replace(write_video(src / "tmp.avi", frames), odd)
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "fer_mask_ros", "analyze", str(src), "--output", str(out), "--render",
                        "--model", tiny_model_path, "--min-track-frames", "3", "--jobs", "1", "--no-progress"],
                       capture_output=True, text=True, cwd=REPO, timeout=600)
    assert p.returncode == 0, f"exit {p.returncode} (139 or -11 = segmentation fault): {p.stderr}"
    assert "Traceback" not in p.stderr, p.stderr
    folder = os.path.join(os.fsencode(str(out)), b"caf\xe9 \n")
    assert {b"frames.csv", b"summary.json", b"annotated.mp4"} <= set(os.listdir(folder))
    assert "| ok |" in p.stdout and len([line for line in p.stdout.splitlines() if "| ok |" in line]) == 2, p.stdout


@pytest.mark.parametrize("args,message", [(["--threshold", "nan"], "--threshold must be in (0, 1]"),
                                          (["--threshold", "-1"], "--threshold must be in (0, 1]"),
                                          (["--min-face", "-5"], "--min-face must be at least 0")])
def test_detect_refuses_numbers_out_of_range(batch, args, message, capsys):
    """They were accepted silently (-1: 331 'faces' in one photo; NaN: none)."""
    from fer_mask_ros.cli import main

    assert main(["detect", str(batch / "a_good.png"), *args]) == 2
    assert message in capsys.readouterr().err
