"""Hostile files through the real CLI (docs/ROBUSTNESS.md, CLI cases): image bombs and a file name that is
not UTF-8 in one batch. Each command skips the bombs with a counted warning, writes every other row
(the odd name byte for byte) and stays under 1.5 GB of peak memory; `classify` honours --backend."""
from __future__ import annotations

import os
import subprocess
import sys

import cv2
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
