from __future__ import annotations

import gzip
import os

import numpy as np
import pytest
from conftest import fake_face, make_fer_folder, write_image

from fer_mask_ros.errors import DatasetError
from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.learning.datasets import calibration_crops, load_dataset

# Kaggle's fer2013.csv codes, spelled out here (not taken from the library) on purpose.
KAGGLE = {0: "angry", 1: "disgust", 2: "fear", 3: "happy", 4: "sad", 5: "surprise", 6: "neutral"}
USAGE_OF_ROW = ["Training"] * 6 + ["PublicTest"] * 2 + ["PrivateTest"] * 2


def _pixels(value: int, n: int = 48 * 48) -> str:
    return " ".join([str(value)] * n)


def csv_rows():
    """10 rows: emotion code i % 7, a flat image of grey level 10 * i, usage per USAGE_OF_ROW."""
    return [(i % 7, _pixels(10 * i), USAGE_OF_ROW[i]) for i in range(10)]


def write_csv(path, rows, header="emotion,pixels,Usage") -> str:
    text = header + "\n" + "".join(",".join(str(c) for c in row) + "\n" for row in rows)
    path = str(path)
    if path.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    return path


@pytest.mark.parametrize("name", ["fer2013.csv", "fer2013.csv.gz"])
def test_csv_label_mapping_and_pixels(tmp_path, name):
    path = write_csv(tmp_path / name, csv_rows())
    data = load_dataset(path)
    assert len(data) == 10
    assert data.images.shape == (10, 48, 48) and data.images.dtype == np.uint8
    for i in range(10):
        assert EMOTIONS[data.labels[i]] == KAGGLE[i % 7], f"row {i}"
        assert np.all(data.images[i] == 10 * i)
    assert data.usages == USAGE_OF_ROW
    assert data.sources[0] == f"{path}:2" and data.sources[9] == f"{path}:11"


@pytest.mark.parametrize("usage,expected", [("Training", 6), ("PublicTest", 2), ("PrivateTest", 2)])
def test_csv_usage_filter(tmp_path, usage, expected):
    path = write_csv(tmp_path / "fer2013.csv.gz", csv_rows())
    data = load_dataset(path, usage=usage)
    assert len(data) == expected
    assert set(data.usages) == {usage}


def test_csv_bad_usage_name(tmp_path):
    path = write_csv(tmp_path / "fer2013.csv", csv_rows())
    with pytest.raises(DatasetError, match="Validation"):
        load_dataset(path, usage="Validation")


def test_csv_malformed_row_names_file_and_line(tmp_path):
    rows = csv_rows()
    rows[4] = (3,)  # line 6: one field instead of three
    path = write_csv(tmp_path / "fer2013.csv", rows)
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert f"{path}:6" in str(info.value)


def test_csv_wrong_pixel_count(tmp_path):
    rows = csv_rows()
    rows[2] = (1, _pixels(7, 48 * 48 - 1), "Training")  # line 4
    path = write_csv(tmp_path / "fer2013.csv", rows)
    with pytest.raises(DatasetError, match="2303 pixels") as info:
        load_dataset(path)
    assert f"{path}:4" in str(info.value)


def test_csv_non_numeric_pixels(tmp_path):
    rows = csv_rows()
    rows[0] = (1, "1 2 x 4", "Training")
    path = write_csv(tmp_path / "fer2013.csv", rows)
    with pytest.raises(DatasetError, match=r"fer2013\.csv:2"):
        load_dataset(path)


@pytest.mark.parametrize("emotion", ["7", "-1", "happy", ""])
def test_csv_bad_emotion(tmp_path, emotion):
    rows = csv_rows()
    rows[8] = (emotion, _pixels(1), "PrivateTest")  # line 10
    path = write_csv(tmp_path / "fer2013.csv", rows)
    with pytest.raises(DatasetError, match="emotion") as info:
        load_dataset(path)
    assert f"{path}:10" in str(info.value)


def test_csv_missing_columns(tmp_path):
    path = write_csv(tmp_path / "fer2013.csv", [(1, 2)], header="label,data")
    with pytest.raises(DatasetError, match="pixels"):
        load_dataset(path)


def test_missing_path(tmp_path):
    with pytest.raises(DatasetError, match="nothere"):
        load_dataset(str(tmp_path / "nothere.csv"))
    with pytest.raises(DatasetError, match="nothere"):
        load_dataset(str(tmp_path / "nothere"))


def test_fer_image_folder_usages(tmp_path):
    root = make_fer_folder(tmp_path / "fer", per_class_train=2, per_class_test=2, labels=["happy", "sad"])
    data = load_dataset(root)
    assert len(data) == 8
    assert data.images.shape == (8, 48, 48)
    by_name = {os.path.basename(s): (EMOTIONS[label], u) for s, label, u in zip(data.sources, data.labels, data.usages)}
    assert by_name["Training_0.png"] == ("happy", "Training")
    assert by_name["PublicTest_2.png"] == ("happy", "PublicTest")
    assert by_name["PrivateTest_3.png"] == ("happy", "PrivateTest")
    assert by_name["Training_4.png"] == ("sad", "Training")
    assert data.class_counts()["happy"] == 4 and data.class_counts()["sad"] == 4
    public = load_dataset(root, usage="PublicTest")
    assert len(public) == 2 and set(public.usages) == {"PublicTest"}
    assert sorted(EMOTIONS[label] for label in public.labels) == ["happy", "sad"]
    assert len(load_dataset(root, usage="Training")) == 4


def test_generic_folder_with_aliases(tmp_path):
    root = tmp_path / "generic"
    aliases = {"anger": "angry", "happiness": "happy", "sadness": "sad", "surprised": "surprise"}
    for folder in aliases:
        write_image(root / folder / "a.png", fake_face(0))
    # colour, non-square, nested one level deeper: converted to 48x48 grey
    write_image(root / "happiness" / "more" / "b.jpg", np.zeros((60, 90, 3), np.uint8) + 200)
    data = load_dataset(str(root))
    assert len(data) == 5
    assert data.images.shape == (5, 48, 48)
    got = {os.path.relpath(s, str(root)): EMOTIONS[label] for s, label in zip(data.sources, data.labels)}
    for folder, label in aliases.items():
        assert got[os.path.join(folder, "a.png")] == label
    assert got[os.path.join("happiness", "more", "b.jpg")] == "happy"
    assert set(data.usages) == {""}


def test_unknown_label_folder_is_skipped_and_named(tmp_path):
    root = tmp_path / "generic"
    write_image(root / "happy" / "a.png", fake_face(3))
    write_image(root / "bored" / "b.png", fake_face(3))
    data = load_dataset(str(root))
    assert len(data) == 1 and "bored" in data.warnings[0]


def test_unreadable_image_error_or_skip(tmp_path):
    root = tmp_path / "generic"
    write_image(root / "happy" / "a.png", fake_face(3))
    write_image(root / "sad" / "c.png", fake_face(5))
    bad = root / "sad" / "b.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(DatasetError, match="b.png"):
        load_dataset(str(root), skip_unreadable=False)
    data = load_dataset(str(root))
    assert len(data) == 2
    assert data.skipped == [str(bad)]
    assert str(bad) not in data.sources


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "empty" / "happy").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images"):
        load_dataset(str(tmp_path / "empty"))


def test_calibration_crops_are_training_faces_half_masked(tmp_path):
    root = make_fer_folder(tmp_path / "fer", per_class_train=4, per_class_test=2)
    training = load_dataset(root)
    training = training.subset(np.asarray(training.usages) == "Training")
    crops = calibration_crops(root, 10, seed=3)
    assert crops.shape == (10, 48, 48) and crops.dtype == np.uint8
    assert np.array_equal(crops, calibration_crops(root, 10, seed=3))
    train_set = {face.tobytes() for face in training.images}
    assert all(face.tobytes() in train_set for face in crops[:5])  # plain Training faces
    assert not any(face.tobytes() in train_set for face in crops[5:])  # masked copies
