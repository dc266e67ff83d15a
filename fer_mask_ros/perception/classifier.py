"""Load the expression model and classify face crops.

Model files are plain dicts of tensors and primitives, read with `torch.load(...,
weights_only=True)`, so loading never runs pickled code. An ONNX copy beside the .pt
(same stem, produced by learning/export.py `export_onnx`) is used through onnxruntime when present and made
from the same .pt (checked by hash): it is about 1.7x faster at batch 1 on one core. An int8
copy (`<stem>.int8.onnx`, `quantize_onnx`: convolutions in int8, calibrated on face crops) is
faster again (about 1.5x on an AVX2 core) and is preferred by backend "auto" when it is fresh.

A still image's face is classified together with its mirror image and the two answers are averaged
(FLIP_AVERAGE; `flip_average=False` or a call's `flip=False` turns it off): about 1 point of accuracy
on real photos for one more crop in the same batch. Streams (FacePipeline with smoothing: the live graph,
bag replay, `analyze`) average over frames instead and take one pass per face.

A copy is trusted only after a probe batch at load time gives the right output shapes ((N, 7) and
(N,)) and finite values; so is the torch model. An explicit backend (int8, onnxruntime) fails with
ModelError when its copy is missing, stale, unloadable or fails the probe; "auto" falls back to the
next runtime with a logged warning naming the reason, never silently.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from fer_mask_ros.config import model_path
from fer_mask_ros.errors import ModelError
from fer_mask_ros.imaging import square_resize, to_grey
from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.perception.alignment import INPUT_SIZE

LOG = logging.getLogger(__name__)

DEFAULT_MODEL = model_path("fer_mask_net.pt")
MODEL_FORMAT = "fer_mask_ros.MaskedFERNet/1"


@dataclass
class Prediction:
    emotion: str
    confidence: float
    probabilities: np.ndarray  # (7,) in EMOTIONS order
    masked: bool
    mask_probability: float

    def as_dict(self) -> Dict[str, object]:
        return {
            "emotion": self.emotion, "confidence": float(self.confidence), "masked": bool(self.masked),
            "mask_probability": float(self.mask_probability),
            "probabilities": {e: float(p) for e, p in zip(EMOTIONS, self.probabilities)},
        }


def preprocess(crop: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Any face crop (grey, BGR or BGRA uint8) -> grey uint8 (size, size), centre-square."""
    crop = np.asarray(crop)
    if crop.size == 0 or crop.ndim not in (2, 3):
        raise ValueError(f"a face crop must be a non-empty 2-D or 3-D image array, got shape {crop.shape}")
    if crop.dtype != np.uint8:
        if np.issubdtype(crop.dtype, np.floating) and crop.max() <= 1.0:
            crop = crop * 255.0
        crop = np.clip(np.rint(crop), 0, 255).astype(np.uint8)
    return square_resize(to_grey(crop), size)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(model, path: str, meta: Optional[dict] = None) -> None:
    """Write a model as a weights-only dict (state dict + architecture + metadata)."""
    import torch

    payload = {
        "format": MODEL_FORMAT,
        "widths": list(model.widths),
        "input_size": INPUT_SIZE,
        "labels": list(EMOTIONS),
        "meta": dict(meta or {}),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    torch.save(payload, tmp)
    os.replace(tmp, path)


def torch_load_problem(exc: BaseException) -> str:
    """Why torch.load(weights_only=True) refused a file, in one line, without torch's advice to re-run it with
    weights_only=False: that would run whatever code the file holds."""
    import re

    text = str(exc)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return (f"it holds pickled code or objects other than tensors (GLOBAL {found.group(1)}); refused, none of it "
                "ran: use only model files written by this package")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    keep = [line for line in lines
            if not any(w in line for w in ("weights_only", "Weights only load failed", "file an issue",
                                           "Check the documentation", "WeightsUnpickler error:"))]
    detail = (keep[0] if keep else (lines[0] if lines else repr(exc)))[:200]
    if type(exc).__name__ == "UnpicklingError" or "Weights only load failed" in text:
        return f"not a PyTorch file ({detail})"
    return f"{type(exc).__name__}: {detail}"


def model_file_problem(path: str) -> Optional[str]:
    """None for a file torch can be asked to read; else why not, when the name or the bytes say what it is. An
    .onnx file is an ONNX copy: it is used beside the .pt it was exported from, never read as a .pt."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    if path.lower().endswith(".onnx"):
        try:  # only to tell a damaged file from a good one
            import onnx  # noqa: PLC0415

            check = lambda: onnx.load(path, load_external_data=False)  # noqa: E731
        except ImportError:
            try:
                import onnxruntime  # noqa: PLC0415

                check = lambda: onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])  # noqa: E731
            except ImportError:
                check = None
        if check is not None:
            try:
                check()
            except Exception as exc:
                why = (str(exc).splitlines() or [""])[0][:160]
                return f"not a valid ONNX model ({type(exc).__name__}: {why})"
        stem = path[:-len(".int8.onnx")] if path.lower().endswith(".int8.onnx") else path[:-len(".onnx")]
        return (f"an ONNX file; give the model's .pt ({os.path.basename(stem)}.pt): its ONNX copies beside it are used "
                "(--backend onnxruntime / int8 to insist)")
    if head[:2] != b"PK" and head[:1] != b"\x80":
        return "not a PyTorch model file (neither a zip archive nor a pickle)"
    return None


def load_model(path: str):
    """Rebuild MaskedFERNet from a model file; ModelError (naming the path) on any problem."""
    import torch

    from fer_mask_ros.perception.zoo.network import MaskedFERNet

    if not os.path.isfile(path):
        raise ModelError(f"model file not found: {path}")
    problem = model_file_problem(path)
    if problem:
        raise ModelError(f"cannot load model {path}: {problem}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, pickled code refused, truncated file...
        raise ModelError(f"cannot load model {path}: {torch_load_problem(exc)}") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ModelError(f"{path} is not a fer_mask_ros model (expected format {MODEL_FORMAT!r})")
    if list(payload.get("labels", [])) != list(EMOTIONS):
        raise ModelError(f"{path} has labels {payload.get('labels')}, expected {list(EMOTIONS)}")
    try:
        model = MaskedFERNet(tuple(payload["widths"]))
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:200]
        raise ModelError(f"{path} does not match the MaskedFERNet architecture: {reason}") from None
    model.eval()
    return model, payload.get("meta", {})


CLASSIFIER_BACKENDS = ("auto", "int8", "onnxruntime", "torch")
#: Classify each face and its mirror image and average (test-time augmentation; about 2x the network time).
FLIP_AVERAGE = True
SOURCE_STAMP = "source_sha256"  # ONNX metadata key: the hash of the .pt a copy was exported from
#: Model metadata (and ONNX metadata) key: {"unmasked": T, "masked": T}, the temperatures fitted on real photos
#: by `python -m fer_mask_ros calibrate`; a face flagged masked takes the masked one.
TEMPERATURES = "temperatures"


def parse_temperatures(value) -> Tuple[float, float]:
    """(unmasked, masked) temperatures from model metadata (a dict or its JSON text); (1, 1) when absent."""
    import json

    if value is None or value == "":
        return 1.0, 1.0
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ModelError(f"unreadable {TEMPERATURES} metadata: {value[:80]!r}") from None
    try:
        pair = float(value["unmasked"]), float(value["masked"])
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"{TEMPERATURES} metadata needs numbers 'unmasked' and 'masked', got {value!r}") from None
    if not all(0.05 <= t <= 20 for t in pair):
        raise ModelError(f"{TEMPERATURES} out of range [0.05, 20]: {pair}")
    return pair


def onnx_path_for(model_path: str) -> str:
    return os.path.splitext(model_path)[0] + ".onnx"


def int8_path_for(model_path: str) -> str:
    return os.path.splitext(model_path)[0] + ".int8.onnx"


def _export_command(model_path: str, int8: bool) -> str:
    """The command that writes a model's ONNX copies (with --calibration, the int8 one too)."""
    return f"python -m fer_mask_ros export {model_path}" + (" --calibration DATASET" if int8 else "")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, K) logits (or log-probabilities)."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class EmotionClassifier:
    """Classify face crops: 7 emotion probabilities plus a mask-present probability."""

    def __init__(self, model_path: Optional[str] = None, num_threads: Optional[int] = None, backend: str = "auto",
                 mask_threshold: float = 0.5, flip_average: bool = FLIP_AVERAGE, calibrated: bool = True) -> None:
        self.model_path = os.path.abspath(model_path or DEFAULT_MODEL)
        self.calibrated = bool(calibrated)  # False: the raw softmax, as trained (evaluate --uncalibrated)
        self.temperatures = (1.0, 1.0)  # (unmasked, masked) from the model's metadata
        self.flip_average = bool(flip_average)
        self.mask_threshold = float(mask_threshold)
        if backend not in CLASSIFIER_BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(CLASSIFIER_BACKENDS)}, got {backend!r}")
        self._session = None
        self._model = None
        self.fallback_reasons: List[str] = []  # why "auto" passed over an ONNX copy
        self._meta: Optional[dict] = None
        if not os.path.isfile(self.model_path):
            raise ModelError(f"model file not found: {self.model_path}")
        if self.model_path.lower().endswith(".onnx"):  # never read an ONNX file as a .pt (issue 32)
            raise ModelError(f"cannot load model {self.model_path}: {model_file_problem(self.model_path)}")
        self.backend = "torch"
        copies = (("int8", int8_path_for(self.model_path)), ("onnxruntime", onnx_path_for(self.model_path)))
        for name, onnx_file in copies:
            if backend not in ("auto", name):
                continue
            if os.path.isfile(onnx_file):
                self._session = self._open_onnx(onnx_file, num_threads, required=(backend == name))
            if self._session is not None:
                self.backend = name
                stamped = self._session.get_modelmeta().custom_metadata_map
                self.temperatures = parse_temperatures(stamped.get(TEMPERATURES))
                break
            if backend == name:
                raise ModelError(f"no usable {'int8 ' if name == 'int8' else ''}ONNX copy of {self.model_path} "
                                 f"at {onnx_file}; make it with `{_export_command(self.model_path, name == 'int8')}`")
        if self._session is None:
            # an ONNX copy was vouched for by the .pt's hash; only the torch runtime loads the .pt (and torch)
            model, self._meta = load_model(self.model_path)
            self.temperatures = parse_temperatures(self._meta.get(TEMPERATURES))
            self._init_torch(model, num_threads)
            problem = self._probe()
            if problem:
                raise ModelError(f"{self.model_path}: {problem}")

    @property
    def meta(self) -> dict:
        """The model file's metadata (read on first use: the ONNX runtimes never need the .pt itself)."""
        if self._meta is None:
            self._meta = load_model(self.model_path)[1]
        return self._meta

    def _probe(self) -> Optional[str]:
        """None when a probe batch gives (N, 7) + (N,) finite outputs, else what is wrong."""
        probe = np.stack([np.zeros((INPUT_SIZE, INPUT_SIZE), np.uint8),
                          np.full((INPUT_SIZE, INPUT_SIZE), 128, np.uint8),
                          (np.arange(INPUT_SIZE * INPUT_SIZE) % 251).astype(np.uint8).reshape(INPUT_SIZE, INPUT_SIZE)])
        try:
            logits, mask = self._raw_forward(probe)
        except Exception as exc:
            return f"the model fails on a probe batch: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        n = len(probe)
        logits, mask = np.asarray(logits), np.asarray(mask)
        if logits.shape != (n, len(EMOTIONS)) or mask.size != n:
            return (f"the model gives outputs of shapes {logits.shape} and {mask.shape} for {n} crops, "
                    f"expected ({n}, {len(EMOTIONS)}) and ({n},)")
        if not (np.all(np.isfinite(logits)) and np.all(np.isfinite(mask))):
            return "the model gives non-finite outputs (NaN or inf) on a probe batch"
        return None

    def _unusable(self, onnx_file: str, why: str, required: bool) -> None:
        if required:
            raise ModelError(f"{onnx_file}: {why}")
        self.fallback_reasons.append(f"{onnx_file}: {why}")
        LOG.warning("not using the ONNX copy %s: %s", onnx_file, why)

    def _open_onnx(self, onnx_file: str, num_threads: Optional[int], required: bool):
        try:
            import onnxruntime as ort
        except ImportError:
            if required:
                raise ModelError("onnxruntime is not installed") from None
            return None
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
            options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(onnx_file, options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            if required:
                raise ModelError(f"cannot load {onnx_file}: {str(exc).splitlines()[0][:300]}") from None
            self._unusable(onnx_file, f"cannot load it: {str(exc).splitlines()[0][:200]}", required)
            return None
        stamp = session.get_modelmeta().custom_metadata_map.get(SOURCE_STAMP)
        if stamp != file_sha256(self.model_path):
            if required:
                raise ModelError(f"{onnx_file} was not exported from {self.model_path}; run "
                                 f"`{_export_command(self.model_path, int8=True)}` again")
            self._unusable(onnx_file, f"stale (not exported from {self.model_path}); run "
                                      f"`{_export_command(self.model_path, int8=True)}` again", required)
            return None
        self._session = session
        problem = self._probe()
        self._session = None
        if problem:
            self._unusable(onnx_file, problem, required)
            return None
        return session

    def _init_torch(self, model, num_threads: Optional[int]) -> None:
        import torch

        from fer_mask_ros.perception.zoo.network import fold_batchnorm

        if num_threads:
            torch.set_num_threads(int(num_threads))
        self._model = fold_batchnorm(model).to(memory_format=torch.channels_last)

    def _raw_forward(self, batch: np.ndarray, flip: Optional[bool] = None) -> Tuple[np.ndarray, np.ndarray]:
        if not (self.flip_average if flip is None else flip):
            return self._net_forward(batch)
        # each face and its mirror image in one batch; the answer is the mean of their log-probabilities
        n = len(batch)
        logits, mask_logit = self._net_forward(np.concatenate([batch, batch[:, :, ::-1]]))
        logits = np.asarray(logits, dtype=np.float64)
        log_probs = logits - logits.max(axis=1, keepdims=True)
        log_probs -= np.log(np.exp(log_probs).sum(axis=1, keepdims=True))
        mask_logit = np.asarray(mask_logit, dtype=np.float64).reshape(-1)
        return (log_probs[:n] + log_probs[n:]) / 2, (mask_logit[:n] + mask_logit[n:]) / 2

    def _net_forward(self, batch: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        x = batch.astype(np.float32)[:, None, :, :] / 255.0
        if self._session is not None:
            logits, mask_logit = self._session.run(None, {"image": x})[:2]
        else:
            import torch

            with torch.inference_mode():
                t = torch.from_numpy(x).to(memory_format=torch.channels_last)
                logits_t, mask_t = self._model(t)
            logits, mask_logit = logits_t.float().numpy(), mask_t.float().numpy()
        return logits, mask_logit

    def _forward(self, batch: np.ndarray, flip: Optional[bool] = None) -> Tuple[np.ndarray, np.ndarray]:
        logits, mask_logit = self._raw_forward(batch, flip)
        mask_prob = _sigmoid(mask_logit.astype(np.float64).reshape(-1))
        logits = logits.astype(np.float64)
        if self.calibrated and self.temperatures != (1.0, 1.0):
            unmasked, masked = self.temperatures
            logits = logits / np.where(mask_prob >= self.mask_threshold, masked, unmasked)[:, None]
        return softmax(logits), mask_prob

    @staticmethod
    def preprocess(crop: np.ndarray) -> np.ndarray:
        return preprocess(crop)

    def predict_batch(self, images: np.ndarray, batch_size: int = 256,
                      flip: Optional[bool] = None) -> Tuple[np.ndarray, np.ndarray]:
        """(N, 48, 48) uint8 grey crops -> probabilities (N, 7) and mask probabilities (N,); `flip` (default:
        the classifier's flip_average) averages each crop with its mirror image."""
        images = np.asarray(images)
        if images.ndim != 3 or images.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"predict_batch needs (N, {INPUT_SIZE}, {INPUT_SIZE}) crops, got {images.shape}")
        if len(images) == 0:
            return np.zeros((0, len(EMOTIONS))), np.zeros((0,))
        probs, masks = [], []
        for start in range(0, len(images), batch_size):
            p, m = self._forward(images[start:start + batch_size], flip)
            probs.append(p)
            masks.append(m)
        return np.concatenate(probs), np.concatenate(masks)

    def predict(self, crops: Sequence[np.ndarray]) -> List[Prediction]:
        """Face crops of any size and colour -> one Prediction each."""
        if len(crops) == 0:
            return []
        batch = np.stack([preprocess(c) for c in crops])
        probs, mask_probs = self.predict_batch(batch)
        return [self.to_prediction(p, m) for p, m in zip(probs, mask_probs)]

    def to_prediction(self, probs: np.ndarray, mask_probability: float) -> Prediction:
        best = int(np.argmax(probs))
        return Prediction(EMOTIONS[best], float(probs[best]), np.asarray(probs, dtype=np.float64),
                          bool(mask_probability >= self.mask_threshold), float(mask_probability))


def load_classifier(model_path, threads=None, backend="auto"):
    """EmotionClassifier for `model_path` (None = shipped model); ModelError with a one-line message."""
    if model_path is not None and not os.path.isfile(model_path):
        raise ModelError(f"model file not found: {model_path}")
    try:
        return EmotionClassifier(model_path=model_path, num_threads=threads, backend=backend)
    except ModelError as exc:
        raise ModelError(str(exc).splitlines()[0]) from None
    except FileNotFoundError as exc:
        raise ModelError(f"model file not found: {exc.filename or model_path}") from None


def progress(total: int, desc: str, disable: bool = False):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="face", file=sys.stderr, disable=disable, dynamic_ncols=True, leave=False)


def predict_in_batches(classifier, images: np.ndarray, batch_size: int, desc: str = "predict",
                       disable_progress: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """predict_batch over (N,48,48) uint8 with a tqdm bar on stderr -> (probs (N,7), mask_prob (N,))."""
    batch_size = max(1, int(batch_size))
    n = int(images.shape[0])
    probs = np.zeros((n, len(EMOTIONS)), dtype=np.float32)
    mask_prob = np.zeros((n,), dtype=np.float32)
    with progress(n, desc, disable_progress) as bar:
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            p, m = classifier.predict_batch(images[start:stop], batch_size=batch_size)
            probs[start:stop] = np.asarray(p, dtype=np.float32).reshape(-1, len(EMOTIONS))
            mask_prob[start:stop] = np.asarray(m, dtype=np.float32).reshape(-1)
            bar.update(stop - start)
    return probs, mask_prob
