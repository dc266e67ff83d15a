"""Labelled photo folders as a second source: the hold-out split, the reader, faces that fill the frame."""
from __future__ import annotations

import numpy as np
import pytest

from fer_mask_ros.learning.photo_sources import identity_key, is_holdout, labelled_photos


def test_split_is_by_person_and_stable():
    assert identity_key("/a/happy/George_W_Bush_0012.jpg") == "George_W_Bush"
    assert is_holdout("x/happy/Ann_Smith_0001.jpg") == is_holdout("y/sad/Ann_Smith_0042.png")
    names = [f"Person_{i}_0001.jpg" for i in range(2000)]
    share = np.mean([is_holdout(n) for n in names])
    assert 0.25 < share < 0.35  # HOLDOUT_FRACTION = 0.3


def test_labelled_photos_reads_label_folders(tmp_path, make_face):
    import cv2

    for label in ("happy", "Surprised"):
        (tmp_path / label).mkdir()
        cv2.imwrite(str(tmp_path / label / "a_0001.png"), make_face(3))
    paths, labels = labelled_photos(str(tmp_path))
    assert [p.split("/")[-2] for p in paths] == ["Surprised", "happy"]
    assert labels.tolist() == [6, 3]
    (tmp_path / "bored").mkdir()
    with pytest.raises(ValueError, match="bored"):
        labelled_photos(str(tmp_path))
