"""fer_mask_ros.safe_write: atomic writes, odd file names, targets that are not regular files, OpenCV never given
a name it crashes on, counted failures."""
from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fer_mask_ros.errors import WriteError
from fer_mask_ros.safe_write import (
    WriteFailures,
    atomic_output,
    opencv_can_take,
    opencv_path,
    shown,
    write_bytes,
    write_image,
    write_text,
)

ODD = "caf\udce9 \n.png"  # the bytes b"caf\xe9 \n.png": not UTF-8, a newline


def test_opencv_segfaults_on_a_name_that_is_not_utf8():
    """Why the module exists: OpenCV 4.6's binding crashes on such a str (if a later OpenCV raises instead,
    this test fails and says the workaround could go)."""
    code = "import cv2, numpy; cv2.imwrite('/tmp/caf\\udce9.png', numpy.zeros((4, 4), numpy.uint8))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert p.returncode in (-11, 139), (p.returncode, p.stderr[-300:])


def test_odd_name_written_atomically(tmp_path):
    target = os.path.join(str(tmp_path), ODD)
    image = np.full((20, 30, 3), 7, np.uint8)
    assert write_image(target, image) == target
    assert os.listdir(os.fsencode(str(tmp_path))) == [b"caf\xe9 \n.png"]  # the name's own bytes
    with open(target, "rb") as handle:
        back = cv2.imdecode(np.frombuffer(handle.read(), np.uint8), cv2.IMREAD_UNCHANGED)
    assert back.shape == (20, 30, 3) and int(back[0, 0, 0]) == 7
    assert os.listdir(str(tmp_path)) == [ODD]  # no temporary file left


def test_unknown_extension_keeps_the_name_with_png_bytes(tmp_path):
    path = write_image(str(tmp_path / "a.xyz"), np.zeros((4, 4), np.uint8))
    assert path == str(tmp_path / "a.xyz") and (tmp_path / "a.xyz").read_bytes().startswith(b"\x89PNG")
    with pytest.raises(WriteError, match="a device"):
        write_image("/dev/null", np.zeros((4, 4), np.uint8))  # not /dev/null.png either
    assert not os.path.exists("/dev/null.png")


@pytest.mark.parametrize("image", [np.zeros((0, 5, 3), np.uint8), np.zeros((4, 4, 2), np.uint8),
                                   np.zeros((4, 4), np.float64), np.zeros((2, 2, 2, 2), np.uint8), "not an array"])
def test_images_opencv_cannot_encode_are_a_write_error(tmp_path, image):
    with pytest.raises(WriteError, match="cannot write"):
        write_image(str(tmp_path / "x.jpg"), image)
    assert os.listdir(str(tmp_path)) == []


def test_fifo_folder_and_device_are_refused(tmp_path):
    os.mkfifo(str(tmp_path / "fifo.csv"))
    (tmp_path / "dir.csv").mkdir()
    for name, kind in (("fifo.csv", "a FIFO"), ("dir.csv", "a folder")):
        with pytest.raises(WriteError, match=kind):
            write_text(str(tmp_path / name), "x")
    with pytest.raises(WriteError, match="a device"):
        write_bytes("/dev/null", b"x")
    os.symlink("loop", str(tmp_path / "loop"))
    with pytest.raises(WriteError, match="cannot write"):
        write_text(str(tmp_path / "loop"), "x")
    with pytest.raises(WriteError, match="does not exist"):
        write_text(str(tmp_path / "missing" / "a.csv"), "x")


def test_error_midway_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "frames.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_output(str(target)) as handle:
            handle.write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert sorted(os.listdir(str(tmp_path))) == ["frames.csv"]


def test_full_disk_is_a_write_error_naming_the_file(tmp_path, monkeypatch):
    """ENOSPC while writing: WriteError, nothing under the final name, no temporary left."""
    import errno

    real_fdopen = os.fdopen

    class Full:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: Full(real_fdopen(*a, **k)))
    with pytest.raises(WriteError, match="No space left on device") as info:
        write_text(str(tmp_path / "summary.json"), "{}")
    assert "summary.json" in str(info.value)
    assert os.listdir(str(tmp_path)) == []


def test_opencv_path_gives_opencv_a_plain_name(tmp_path):
    odd = os.path.join(str(tmp_path), "v\udcff\n.png")
    write_image(odd, np.zeros((8, 8), np.uint8))
    assert not opencv_can_take(odd) and opencv_can_take(str(tmp_path / "plain.png"))
    with opencv_path(odd) as name:
        assert opencv_can_take(name)
        assert cv2.imread(name, cv2.IMREAD_UNCHANGED).shape == (8, 8)
    assert not os.path.exists(name)


def test_failures_are_counted_and_throttled():
    lines = []
    failures = WriteFailures(lines.append, shown_max=2)
    for i in range(5):
        failures.record(WriteError(f"cannot write {i}"))
    assert failures.count == 5 and len(lines) == 3 and "counted" in lines[-1]
    assert shown("a\nb") == "a\\nb" and "\n" not in shown(ODD)
