"""YuNet's output format: anchor-free rows per stride, decoded to boxes, scores and 5 landmarks.

YuNet (libfacedetection, 2023mar release, MIT licence; models/DETECTOR.md) has, for each stride s in
8, 16 and 32, four outputs with one row per cell of the (H/s) x (W/s) grid, row-major:

* ``cls_s`` and ``obj_s`` (N, 1): sigmoid scores; the face score is sqrt(cls * obj);
* ``bbox_s`` (N, 4): centre offsets (cx, cy) in cells, log width, log height in units of s;
* ``kps_s`` (N, 10): 5 x (x, y) offsets in cells.

Its input is BGR float 0..255, NCHW, H and W multiples of 32.  Landmark order is the same as
`Detection.landmarks` (image-left eye first: YuNet's "right eye" is the subject's, seen on the left).
This module is numpy only; `detection.YuNetDetector` runs the network.
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np

STRIDES: Tuple[int, ...] = (8, 16, 32)
#: Output names of one stride, in the order `decode_yunet` takes them.
OUTPUT_KINDS: Tuple[str, ...] = ("cls", "obj", "bbox", "kps")


def output_names(strides: Sequence[int] = STRIDES) -> Tuple[str, ...]:
    """cls_8, obj_8, bbox_8, kps_8, cls_16, ...: the graph's output names, grouped per stride."""
    return tuple(f"{kind}_{s}" for s in strides for kind in OUTPUT_KINDS)


def decode_yunet(
    outputs: Dict[str, np.ndarray],
    input_height: int,
    input_width: int,
    threshold: float,
    strides: Sequence[int] = STRIDES,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """YuNet outputs (by name, see `output_names`) for an input of this size -> candidates above `threshold`.

    Returns boxes (N, 4) x1, y1, x2, y2 (network-input pixels, not clipped), scores (N,) and
    landmarks (N, 5, 2) x, y; no suppression (the caller runs `nms`).
    """
    all_boxes, all_scores, all_points = [], [], []
    for s in strides:
        cols = input_width // s
        rows = input_height // s
        cls = np.clip(np.asarray(outputs[f"cls_{s}"], np.float32).reshape(-1), 0.0, 1.0)
        obj = np.clip(np.asarray(outputs[f"obj_{s}"], np.float32).reshape(-1), 0.0, 1.0)
        if cls.size != rows * cols or obj.size != rows * cols:
            raise ValueError(f"YuNet stride {s}: {cls.size} rows for a {input_width}x{input_height} input "
                             f"(expected {rows * cols})")
        score = np.sqrt(cls * obj)
        idx = np.nonzero(score > threshold)[0]
        if idx.size == 0:
            continue
        bbox = np.asarray(outputs[f"bbox_{s}"], np.float32).reshape(-1, 4)[idx]
        kps = np.asarray(outputs[f"kps_{s}"], np.float32).reshape(-1, 10)[idx]
        cx_cell = (idx % cols).astype(np.float32)
        cy_cell = (idx // cols).astype(np.float32)
        cx = (cx_cell + bbox[:, 0]) * s
        cy = (cy_cell + bbox[:, 1]) * s
        w = np.exp(bbox[:, 2]) * s
        h = np.exp(bbox[:, 3]) * s
        x1, y1 = cx - w / 2.0, cy - h / 2.0
        all_boxes.append(np.stack([x1, y1, x1 + w, y1 + h], axis=1))
        all_scores.append(score[idx])
        pts = kps.reshape(-1, 5, 2).copy()
        pts[:, :, 0] = (pts[:, :, 0] + cx_cell[:, None]) * s
        pts[:, :, 1] = (pts[:, :, 1] + cy_cell[:, None]) * s
        all_points.append(pts)
    if not all_boxes:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32)
    return (np.concatenate(all_boxes).astype(np.float32), np.concatenate(all_scores).astype(np.float32),
            np.concatenate(all_points).astype(np.float32))
