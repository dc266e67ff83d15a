from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from conftest import fake_face

from fer_mask_ros.errors import ModelError
from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.learning.export import export_onnx, quantize_onnx
from fer_mask_ros.perception.classifier import (
    MODEL_FORMAT,
    EmotionClassifier,
    int8_path_for,
    load_model,
    onnx_path_for,
    save_model,
)
from fer_mask_ros.perception.zoo.network import MaskedFERNet, fold_batchnorm


class NotAWeight:
    """A custom class: torch.load(weights_only=True) must refuse to rebuild it."""

    def __init__(self) -> None:
        self.value = 1


class Exploit:
    """Unpickling this would create a file; a weights-only load must never run it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _randomise_bn(model: MaskedFERNet, seed: int = 0) -> MaskedFERNet:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    return model.eval()


def _batch(n: int = 4) -> torch.Tensor:
    return torch.from_numpy(np.stack([fake_face(i % 7, seed=i) for i in range(n)]).astype(np.float32) / 255.0)[:, None]


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(1)
    model = _randomise_bn(MaskedFERNet((4, 8)))
    path = str(tmp_path / "sub" / "m.pt")
    save_model(model, path, {"note": "hello", "epochs": 3})
    loaded, meta = load_model(path)
    assert meta == {"note": "hello", "epochs": 3}
    assert loaded.widths == (4, 8) and not loaded.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    x = _batch()
    with torch.no_grad():
        a, b = model(x), loaded(x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].shape == (4, len(EMOTIONS)) and a[1].shape == (4,)
    assert not os.path.exists(path + ".tmp")


def _assert_model_error(path, *words):
    with pytest.raises(ModelError) as info:
        load_model(str(path))
    assert str(path) in str(info.value)
    for w in words:
        assert w in str(info.value)
    return info


def test_missing_file(tmp_path):
    _assert_model_error(tmp_path / "none.pt", "not found")


def test_random_bytes(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    _assert_model_error(path)


def test_custom_class_refused(tmp_path):
    path = tmp_path / "custom.pt"
    torch.save({"format": MODEL_FORMAT, "thing": NotAWeight()}, str(path))
    _assert_model_error(path)


def test_pickled_code_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    for name, write in (("raw.pt", lambda p: p.write_bytes(pickle.dumps(Exploit(str(marker))))),
                        ("zip.pt", lambda p: torch.save({"format": MODEL_FORMAT, "x": Exploit(str(marker))}, str(p)))):
        path = tmp_path / name
        write(path)
        assert not marker.exists()
        _assert_model_error(path)
        assert not marker.exists(), f"loading {name} ran pickled code"


def test_wrong_format(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"format": "someone.else/1", "state_dict": {}}, str(path))
    _assert_model_error(path, MODEL_FORMAT)
    path2 = tmp_path / "bare_state_dict.pt"
    torch.save(MaskedFERNet((4, 8)).state_dict(), str(path2))
    _assert_model_error(path2)


def test_wrong_architecture(tmp_path):
    path = tmp_path / "arch.pt"
    save_model(MaskedFERNet((4, 8, 16)), str(path))
    payload = torch.load(str(path), weights_only=True)
    payload["widths"] = [4, 8]  # the header says one architecture, the weights another
    torch.save(payload, str(path))
    _assert_model_error(path, "architecture")


def test_wrong_labels(tmp_path):
    path = tmp_path / "labels.pt"
    save_model(MaskedFERNet((4, 8)), str(path))
    payload = torch.load(str(path), weights_only=True)
    payload["labels"] = list(reversed(EMOTIONS))
    torch.save(payload, str(path))
    _assert_model_error(path, "labels")


@pytest.mark.parametrize("drop", ["widths", "state_dict"])
def test_incomplete_payload(tmp_path, drop):
    path = tmp_path / "partial.pt"
    save_model(MaskedFERNet((4, 8)), str(path))
    payload = torch.load(str(path), weights_only=True)
    del payload[drop]
    torch.save(payload, str(path))
    _assert_model_error(path)


def test_fold_batchnorm_matches_eval_model():
    torch.manual_seed(2)
    model = _randomise_bn(MaskedFERNet((4, 8, 16)), seed=3)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    x = _batch(5)
    with torch.no_grad():
        a, b = model(x), folded(x)
    assert torch.allclose(a[0], b[0], atol=1e-4)
    assert torch.allclose(a[1], b[1], atol=1e-4)


def _crops():
    grey = fake_face(3)
    bgr = fake_face(5, size=64, colour=True)[:, 4:60]  # non-square colour
    bgra = np.dstack([fake_face(1, size=50, colour=True), np.full((50, 50), 255, np.uint8)])
    unit_float = fake_face(6).astype(np.float32) / 255.0
    byte_float = fake_face(0).astype(np.float64)
    return [grey, bgr, bgra, unit_float, byte_float]


def test_predict_any_crop(tiny_model_path):
    clf = EmotionClassifier(tiny_model_path, backend="torch")
    assert clf.backend == "torch"
    preds = clf.predict(_crops())
    assert len(preds) == 5
    for p in preds:
        assert p.probabilities.shape == (len(EMOTIONS),)
        assert abs(p.probabilities.sum() - 1.0) < 1e-6
        assert np.all(p.probabilities >= 0)
        assert 0.0 <= p.mask_probability <= 1.0
        assert p.masked == (p.mask_probability >= 0.5)
        assert p.emotion == EMOTIONS[int(np.argmax(p.probabilities))]
        assert p.confidence == pytest.approx(p.probabilities.max())
        d = p.as_dict()
        assert set(d["probabilities"]) == set(EMOTIONS)
    # a float crop in [0, 1] means the same picture as its uint8 version
    same = clf.predict([fake_face(6), fake_face(6).astype(np.float32) / 255.0])
    assert np.allclose(same[0].probabilities, same[1].probabilities, atol=1e-2)
    assert clf.predict([]) == []
    with pytest.raises(ValueError):
        clf.predict([np.zeros((0, 0), np.uint8)])
    with pytest.raises(ValueError):
        clf.predict_batch(np.zeros((2, 32, 32), np.uint8))


def test_classifier_errors(tmp_path, tiny_model_path):
    with pytest.raises(ModelError, match="nothere"):
        EmotionClassifier(str(tmp_path / "nothere.pt"))
    with pytest.raises(ValueError, match="backend"):
        EmotionClassifier(tiny_model_path, backend="tensorrt")
    with pytest.raises(ModelError, match="ONNX"):
        EmotionClassifier(tiny_model_path, backend="onnxruntime")  # no .onnx beside the session model


def test_onnx_matches_torch_and_stale_copy_is_ignored(tiny_model_copy):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    onnx_file = export_onnx(tiny_model_copy)
    assert onnx_file == onnx_path_for(tiny_model_copy) and os.path.isfile(onnx_file)
    crops = _crops()
    ort_clf = EmotionClassifier(tiny_model_copy)  # auto picks the fresh ONNX copy
    assert ort_clf.backend == "onnxruntime"
    torch_clf = EmotionClassifier(tiny_model_copy, backend="torch")
    for a, b in zip(ort_clf.predict(crops), torch_clf.predict(crops)):
        assert np.allclose(a.probabilities, b.probabilities, atol=1e-4)
        assert a.mask_probability == pytest.approx(b.mask_probability, abs=1e-4)
    batch = np.stack([fake_face(i) for i in range(7)])
    p1, m1 = ort_clf.predict_batch(batch, batch_size=3)
    p2, m2 = torch_clf.predict_batch(batch)
    assert p1.shape == (7, 7) and np.allclose(p1, p2, atol=1e-4) and np.allclose(m1, m2, atol=1e-4)

    # the .pt changes: the ONNX copy is stale (hash mismatch) -> auto falls back to torch
    torch.manual_seed(9)
    save_model(MaskedFERNet((4, 8)), tiny_model_copy)
    stale = EmotionClassifier(tiny_model_copy)
    assert stale.backend == "torch"
    with pytest.raises(ModelError, match="export"):
        EmotionClassifier(tiny_model_copy, backend="onnxruntime")


def test_int8_copy_is_preferred_close_to_fp32_and_checked(tiny_model_copy):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import onnx

    model, _ = load_model(tiny_model_copy)
    save_model(_randomise_bn(model, seed=3), tiny_model_copy)  # non-trivial activations to calibrate
    calibration = np.stack([fake_face(i % 7, seed=i) for i in range(64)])
    out = quantize_onnx(tiny_model_copy, calibration)
    assert out == int8_path_for(tiny_model_copy) and os.path.isfile(onnx_path_for(tiny_model_copy))
    ops = {n.op_type for n in onnx.load(out).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops

    auto = EmotionClassifier(tiny_model_copy)
    assert auto.backend == "int8"
    fp32 = EmotionClassifier(tiny_model_copy, backend="onnxruntime")
    batch = np.stack([fake_face(i % 7, seed=100 + i) for i in range(14)])
    p_int8, m_int8 = auto.predict_batch(batch)
    p_fp32, m_fp32 = fp32.predict_batch(batch)
    assert np.abs(p_int8 - p_fp32).max() < 0.05 and np.abs(m_int8 - m_fp32).max() < 0.05
    assert not np.array_equal(p_int8, p_fp32)  # it really runs the int8 graph

    torch.manual_seed(11)
    save_model(MaskedFERNet((4, 8)), tiny_model_copy)  # retrained: both copies are stale
    assert EmotionClassifier(tiny_model_copy).backend == "torch"
    with pytest.raises(ModelError, match="int8"):
        EmotionClassifier(tiny_model_copy, backend="int8")


def test_quantize_refuses_bad_calibration(tiny_model_copy):
    pytest.importorskip("onnxruntime")
    with pytest.raises(ValueError, match="calibration"):
        quantize_onnx(tiny_model_copy, np.zeros((4, 32, 32), np.uint8))


def test_widen_keeps_the_function_and_refuses_narrowing():
    from fer_mask_ros.perception.zoo.network import widen

    torch.manual_seed(4)
    narrow = _randomise_bn(MaskedFERNet((4, 8, 8)))
    wide = widen(narrow, (6, 12, 9), noise=0.0)
    assert wide.widths == (6, 12, 9)
    x = _batch(5)
    with torch.no_grad():
        (a, ma), (b, mb) = narrow(x), wide(x)
    assert torch.allclose(a, b, atol=1e-4) and torch.allclose(ma, mb, atol=1e-4)
    noisy = widen(narrow, (6, 12, 9), noise=0.05)
    with torch.no_grad():
        c, _ = noisy(x)
    assert not torch.allclose(a, c, atol=1e-6) and torch.allclose(a, c, atol=0.5)
    with pytest.raises(ValueError, match="widen"):
        widen(narrow, (4, 4, 8))
    with pytest.raises(ValueError, match="widen"):
        widen(narrow, (4, 8))


class _Crafted(torch.nn.Module):
    """An ONNX copy with the right hash stamp but wrong outputs: 3 classes, or NaN."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x):
        pooled = x.mean(dim=(1, 2, 3)).unsqueeze(1)
        if self.kind == "shape":
            return pooled.repeat(1, 3), pooled
        nan = pooled * float("nan")
        return nan.repeat(1, 7), nan


@pytest.mark.parametrize("kind", ["shape", "nan"])
def test_crafted_onnx_copy_with_the_right_stamp_is_refused(tiny_model_copy, kind, caplog):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from fer_mask_ros.learning.export import _stamp_source

    onnx_file = onnx_path_for(tiny_model_copy)
    torch.onnx.export(_Crafted(kind), torch.zeros(2, 1, 48, 48), onnx_file, input_names=["image"],
                      output_names=["emotion_logits", "mask_logit"], dynamic_axes={"image": {0: "batch"}},
                      opset_version=17, dynamo=False)
    _stamp_source(onnx_file, tiny_model_copy)
    with caplog.at_level("WARNING", logger="fer_mask_ros.perception.classifier"):
        clf = EmotionClassifier(tiny_model_copy)  # auto: falls back to torch, saying why
    assert clf.backend == "torch"
    assert any(onnx_file in r.getMessage() for r in caplog.records), caplog.text
    p, m = clf.predict_batch(np.stack([fake_face(i) for i in range(3)]))
    assert p.shape == (3, 7) and np.all(np.isfinite(p)) and np.all(np.isfinite(m))
    with pytest.raises(ModelError, match="NaN" if kind == "nan" else "shapes"):
        EmotionClassifier(tiny_model_copy, backend="onnxruntime")  # explicit: fails loudly


def test_unloadable_onnx_copy_is_reported(tiny_model_copy, caplog):
    pytest.importorskip("onnxruntime")
    with open(onnx_path_for(tiny_model_copy), "wb") as f:
        f.write(b"not an onnx file")
    with caplog.at_level("WARNING", logger="fer_mask_ros.perception.classifier"):
        assert EmotionClassifier(tiny_model_copy).backend == "torch"
    assert "cannot load" in caplog.text
    with pytest.raises(ModelError, match="cannot load"):
        EmotionClassifier(tiny_model_copy, backend="onnxruntime")


def test_the_onnx_runtimes_never_import_torch():
    """Start-up cost of every analysis worker and node: a fresh ONNX copy is vouched for by the .pt's hash,
    so the shipped model (int8) loads and classifies without importing torch."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from fer_mask_ros.perception.classifier import EmotionClassifier\n"
            "c = EmotionClassifier()\n"
            "c.predict([np.zeros((60, 60), np.uint8)])\n"
            "print(c.backend, 'torch' in sys.modules)\n"
            "c.meta\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["int8", "False", "True"]  # the metadata, asked for, is read from the .pt (with torch)


def test_flip_averages_the_log_probabilities_of_the_face_and_its_mirror_image(tiny_model_path):
    clf = EmotionClassifier(tiny_model_path, backend="torch")
    assert clf.flip_average  # stills get it by default
    crops = np.stack([fake_face(i) for i in range(3)])
    crops[:, :, :20] = 0  # not mirror-symmetric
    one, mask_one = clf.predict_batch(crops, flip=False)
    mirrored, mask_mirrored = clf.predict_batch(crops[:, :, ::-1].copy(), flip=False)
    both, mask_both = clf.predict_batch(crops)
    expected = np.sqrt(one * mirrored)
    expected /= expected.sum(axis=1, keepdims=True)  # the mean of log-probabilities, normalised
    assert not np.allclose(one, mirrored, rtol=0, atol=1e-6)
    assert np.allclose(both, expected, atol=1e-6)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    assert np.allclose(logit(mask_both), (logit(mask_one) + logit(mask_mirrored)) / 2, atol=1e-6)
    assert np.allclose(EmotionClassifier(tiny_model_path, backend="torch", flip_average=False).predict_batch(crops)[0],
                       one)


def test_fitted_temperatures_flatten_confidence_by_the_mask_flag_and_travel_to_onnx(tiny_model_copy):
    from fer_mask_ros.learning.calibration import temper

    model, meta = load_model(tiny_model_copy)
    save_model(model, tiny_model_copy, {**meta, "temperatures": {"unmasked": 2.0, "masked": 4.0}})
    calibrated = EmotionClassifier(tiny_model_copy, backend="torch", flip_average=False)
    raw = EmotionClassifier(tiny_model_copy, backend="torch", flip_average=False, calibrated=False)
    assert calibrated.temperatures == (2.0, 4.0)
    batch = np.stack([fake_face(i) for i in range(7)])
    p, mask = calibrated.predict_batch(batch)
    r, _ = raw.predict_batch(batch)
    for row in range(len(batch)):
        t = 4.0 if mask[row] >= 0.5 else 2.0
        assert np.allclose(p[row], temper(r[row:row + 1], t)[0], atol=1e-6)
    assert np.array_equal(p.argmax(1), r.argmax(1))
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    export_onnx(tiny_model_copy)
    assert EmotionClassifier(tiny_model_copy, backend="onnxruntime").temperatures == (2.0, 4.0)
    save_model(model, tiny_model_copy, {**meta, "temperatures": {"unmasked": -1, "masked": 1}})
    with pytest.raises(ModelError, match="temperatures"):
        EmotionClassifier(tiny_model_copy, backend="torch")
