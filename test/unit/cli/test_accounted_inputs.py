"""Issue 32 defect 10: messages that say what is wrong. `live --video DIR` on an existing folder, an unindexed bag
(what a killed record.launch leaves: `rosbag reindex` recovers it), and `detect`'s row for a readable image
without a face (test/unit/perception/test_detection.py checks the CSV contract)."""
from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fer_mask_ros.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_live_video_on_a_folder_says_it_is_a_folder(tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    assert main(["live", "--video", str(folder), "--no-frames"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a folder, not a video file" in err[0] and "analyze" in err[0], err
    assert "no such file" not in err[0]


def test_detect_accounts_for_every_readable_image(tmp_path, capsys):
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((120, 160, 3), 90, np.uint8))
    out = tmp_path / "faces.csv"
    assert main(["detect", "--output", str(out), str(wall), "--no-progress"]) == 0
    rows = out.read_text().splitlines()
    assert rows[1:] == [str(wall) + "," * 16]
    assert "1 image(s) read (1 without a face), 0 face(s)" in capsys.readouterr().err


@pytest.fixture()
def unindexed_bag(tmp_path):
    pytest.importorskip("rosbag")
    path = tmp_path / "cut.bag"
    code = ("import os, numpy as np, rosbag\n"
            "from sensor_msgs.msg import Image\n"
            f"b = rosbag.Bag({str(path)!r}, 'w')\n"
            "for i in range(3):\n"
            "    m = Image(height=2, width=2, encoding='mono8', step=2, data=bytes(4))\n"
            "    b.write('/fer_mask/camera/front/image_raw', m)\n"
            "b._file.flush()\n"
            "os._exit(0)  # killed before the index was written\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    return str(path)


def test_an_unindexed_bag_says_rosbag_reindex(unindexed_bag, tmp_path, capsys):
    from fer_mask_ros.errors import AnalysisError
    from fer_mask_ros.ros.bag import BagSource

    with pytest.raises(AnalysisError) as info:
        BagSource(unindexed_bag)
    assert f"rosbag reindex {unindexed_bag}" in str(info.value) and "unindexed" in str(info.value)
    p = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "check_bag"), unindexed_bag,
                        "/fer_mask/camera/front/image_raw"], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and f"rosbag reindex {unindexed_bag}" in p.stdout + p.stderr, (p.stdout, p.stderr)
