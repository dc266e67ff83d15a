from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.learning.evaluation import confusion_png, evaluate_predictions, markdown_table, misclassified_grid_png

A, D, F, H, N, S, U = range(7)  # angry disgust fear happy neutral sad surprise


def onehot(preds, sharp=0.9):
    probs = np.full((len(preds), 7), (1.0 - sharp) / 6.0)
    probs[np.arange(len(preds)), preds] = sharp
    return probs


def test_accuracy_balanced_accuracy_and_confusion():
    y_true = [H, H, H, H, A, A, N, N]
    y_pred = [H, H, H, A, A, H, N, N]
    res = evaluate_predictions(y_true, onehot(y_pred))
    assert res["n"] == 8
    assert res["accuracy"] == pytest.approx(6 / 8)
    # recalls: happy 3/4, angry 1/2, neutral 2/2 -> mean over the 3 classes present
    assert res["balanced_accuracy"] == pytest.approx((0.75 + 0.5 + 1.0) / 3)
    cm = np.array(res["confusion"])
    assert cm.shape == (7, 7)
    assert cm.sum() == 8
    assert cm[H, H] == 3 and cm[H, A] == 1 and cm[A, H] == 1 and cm[A, A] == 1 and cm[N, N] == 2
    pc = res["per_class"]
    assert pc["happy"]["recall"] == pytest.approx(0.75)
    assert pc["happy"]["precision"] == pytest.approx(3 / 4)  # predicted happy 4 times, 3 right
    assert pc["angry"]["precision"] == pytest.approx(1 / 2)
    assert pc["happy"]["support"] == 4
    assert pc["fear"]["support"] == 0 and pc["fear"]["recall"] is None and pc["fear"]["precision"] is None
    json.dumps(res)  # serialisable


def test_four_class_view_restricts_samples_and_classes():
    # a fear sample is dropped; a happy sample whose argmax is sad but whose best 4-class prob is happy counts right
    y_true = [H, N, F, U, A]
    probs = np.zeros((5, 7))
    probs[0, [S, H]] = [0.6, 0.3]  # argmax sad (wrong in 7-class), happy among the 4 -> right
    probs[1, [N]] = 1.0
    probs[2, [F]] = 1.0
    probs[3, [U, N]] = [0.2, 0.8]  # surprise predicted neutral -> wrong
    probs[4, [D, A]] = [0.7, 0.3]  # angry: disgust ignored -> angry -> right
    res = evaluate_predictions(y_true, probs)
    four = res["four_class"]
    assert four["n"] == 4
    assert four["labels"] == ["neutral", "happy", "angry", "surprise"]
    assert four["accuracy"] == pytest.approx(3 / 4)
    assert four["balanced_accuracy"] == pytest.approx((1 + 1 + 1 + 0) / 4)
    cm = np.array(four["confusion"])
    assert cm[3, 0] == 1  # surprise -> neutral
    assert res["accuracy"] == pytest.approx(2 / 5)  # 7-class: neutral + fear right


def test_three_class_view_groups_and_drops_surprise():
    y_true = [H, S, F, N, U, D]
    probs = np.zeros((6, 7))
    probs[0] = onehot([H])[0]
    probs[1, [N, A, D, F]] = [0.4, 0.2, 0.2, 0.2]  # negative sum 0.6 > neutral 0.4 -> right
    probs[2, [H, F]] = [0.6, 0.4]  # -> positive, wrong
    probs[3, [U, N, H]] = [0.8, 0.15, 0.05]  # surprise ignored -> neutral, right
    probs[4] = onehot([U])[0]  # surprise sample dropped
    probs[5, [D]] = 1.0
    three = evaluate_predictions(y_true, probs)["three_class"]
    assert three["labels"] == ["positive", "negative", "neutral"]
    assert three["n"] == 5
    assert three["accuracy"] == pytest.approx(4 / 5)
    cm = np.array(three["confusion"])
    assert cm.tolist() == [[1, 0, 0], [1, 2, 0], [0, 0, 1]]
    assert three["balanced_accuracy"] == pytest.approx((1 + 2 / 3 + 1) / 3)


def test_mask_flag_accuracy():
    res = evaluate_predictions([H, H, N, N], onehot([H, H, N, N]), mask_prob=[0.9, 0.4, 0.5, 0.1], mask_true=True)
    assert res["mask_flag"]["accuracy"] == pytest.approx(2 / 4)
    assert res["mask_flag"]["predicted_masked_rate"] == pytest.approx(2 / 4)
    res = evaluate_predictions([H, N], onehot([H, N]), mask_prob=[0.2, 0.7], mask_true=[False, True])
    assert res["mask_flag"]["accuracy"] == 1.0
    assert "mask_flag" not in evaluate_predictions([H], onehot([H]))


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        evaluate_predictions([H, N], onehot([H]))
    with pytest.raises(ValueError):
        evaluate_predictions([9], onehot([H]))


def test_empty_input_gives_none_not_crash():
    res = evaluate_predictions(np.zeros(0, dtype=np.int64), np.zeros((0, 7)))
    assert res["accuracy"] is None and res["balanced_accuracy"] is None
    assert res["four_class"]["n"] == 0 and res["three_class"]["accuracy"] is None
    assert "–" in markdown_table({"x": res})


def test_pngs_written_and_readable(tmp_path):
    pytest.importorskip("matplotlib")  # the [plots] extra
    y_true = np.array([H, H, A, N, U, S])
    y_pred = np.array([H, A, A, S, N, S])
    probs = onehot(y_pred)
    res = evaluate_predictions(y_true, probs)
    cm_path = tmp_path / "cm.png"
    confusion_png(res["confusion"], EMOTIONS, cm_path, "test")
    img = cv2.imread(str(cm_path))
    assert img is not None and img.shape[0] > 100 and img.shape[1] > 100

    images = np.random.default_rng(0).integers(0, 255, (6, 48, 48), dtype=np.uint8)
    grid_path = tmp_path / "grid.png"
    drawn = misclassified_grid_png(images, y_true, y_pred, probs, grid_path, max_items=2)
    assert drawn == 2
    img = cv2.imread(str(grid_path))
    assert img is not None and img.size > 0

    none_path = tmp_path / "none.png"
    assert misclassified_grid_png(images, y_true, y_true, probs, none_path) == 0
    assert cv2.imread(str(none_path)) is not None


def test_markdown_table_side_by_side():
    a = evaluate_predictions([H, N], onehot([H, N]), mask_prob=[0.1, 0.2], mask_true=False)
    b = evaluate_predictions([H, N], onehot([H, H]), mask_prob=[0.9, 0.2], mask_true=True)
    md = markdown_table({"unmasked": a, "masked": b})
    lines = md.strip().splitlines()
    assert lines[0] == "| metric | unmasked | masked |"
    acc = next(line for line in lines if line.startswith("| accuracy |"))
    assert acc == "| accuracy | 100.0% | 50.0% |"
    assert any(line.startswith("| recall happy |") for line in lines)
    assert any(line.startswith("| 4-class accuracy |") for line in lines)
    assert any(line.startswith("| 3-class accuracy |") for line in lines)
    flag = next(line for line in lines if line.startswith("| mask flag accuracy |"))
    assert flag == "| mask flag accuracy | 100.0% | 50.0% |"


# ---------------------------------------------------------------- the `evaluate` command


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import torch

    from fer_mask_ros.perception.classifier import save_model
    from fer_mask_ros.perception.zoo.network import MaskedFERNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_model(MaskedFERNet(widths=(4, 8)), str(path), {"note": "random test model"})
    return str(path)


@pytest.fixture()
def tiny_dataset(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "faces"
    for label in ("happy", "sad", "surprise", "neutral"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            assert cv2.imwrite(str(root / label / f"{i}.png"), rng.integers(0, 256, (48, 48), dtype=np.uint8))
    flags = tmp_path / "flags"
    for sub in ("with_mask", "without_mask"):
        (flags / sub).mkdir(parents=True)
        for i in range(2):
            assert cv2.imwrite(str(flags / sub / f"{i}.jpg"), rng.integers(0, 256, (64, 50, 3), dtype=np.uint8))
    return root, flags


def test_evaluate_command_writes_all_outputs(tiny_model, tiny_dataset, tmp_path, capsys):
    from fer_mask_ros.cli import main

    data, flags = tiny_dataset
    out = tmp_path / "eval"
    rc = main(["evaluate", str(data), "--model", tiny_model, "--output", str(out), "--no-progress",
               "--mask-flag-dir", str(flags), "--limit", "10", "--batch-size", "4"])
    assert rc == 0
    for name in ("metrics.json", "metrics.md", "confusion_faces_unmasked.png", "confusion_faces_masked.png",
                 "misclassified_faces_unmasked.png", "misclassified_faces_masked.png"):
        assert (out / name).stat().st_size > 0, name
    for name in ("confusion_faces_unmasked.png", "misclassified_faces_masked.png"):
        assert cv2.imread(str(out / name)) is not None
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 10
    assert set(metrics["conditions"]) == {"unmasked", "masked"}
    masked = metrics["conditions"]["masked"]
    assert masked["n"] == 10 and np.array(masked["confusion"]).sum() == 10
    assert masked["mask_flag"]["accuracy"] is not None
    assert metrics["mask_flag_real"]["with_mask"]["n"] == 2
    # noise photos have no face: in the photo pipeline each one is a miss, and counted
    assert metrics["mask_flag_real"]["with_mask (photo pipeline)"]["no_face"] == 2
    md = (out / "metrics.md").read_text()
    assert "| metric | unmasked | masked |" in md and "| with_mask | 2 |" in md
    assert "| metric | unmasked | masked |" in capsys.readouterr().out


def test_evaluate_without_matplotlib_writes_the_metrics(tiny_model, tiny_dataset, tmp_path, capsys, monkeypatch):
    """matplotlib is the [plots] extra: without it evaluate says once that the figures are left out."""
    import sys

    from fer_mask_ros.cli import main
    from fer_mask_ros.cli.commands import evaluate

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails, find_spec finds nothing
    monkeypatch.setattr(evaluate, "_PLOTS", [])
    out = tmp_path / "eval"
    rc = main(["evaluate", str(tiny_dataset[0]), "--model", tiny_model, "--output", str(out), "--no-progress",
               "--limit", "10", "--batch-size", "4"])
    assert rc == 0
    assert json.loads((out / "metrics.json").read_text())["n"] == 10
    assert not list(out.glob("*.png"))
    err = capsys.readouterr().err
    assert err.count("matplotlib is not installed") == 1 and "fer_mask_ros[plots]" in err


def test_evaluate_unmasked_only(tiny_model, tiny_dataset, tmp_path):
    from fer_mask_ros.cli import main

    out = tmp_path / "eval"
    rc = main(["evaluate", str(tiny_dataset[0]), "--model", tiny_model, "--output", str(out), "--no-progress",
               "--no-masked"])
    assert rc == 0
    assert set(json.loads((out / "metrics.json").read_text())["conditions"]) == {"unmasked"}
    assert not (out / "confusion_faces_masked.png").exists()


def test_evaluate_errors_are_one_line(tiny_model, tiny_dataset, tmp_path, capsys):
    from fer_mask_ros.cli import main

    assert main(["evaluate", str(tmp_path / "nodata"), "--model", tiny_model, "--output", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == f"error: dataset not found: {tmp_path / 'nodata'}"
    assert main(["evaluate", str(tiny_dataset[0]), "--model", str(tmp_path / "gone.pt"),
                 "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "gone.pt" in err and "\n" not in err
