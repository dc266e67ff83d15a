"""Held-out mask family for evaluation only: masks that training never sees.

The training generator (masking.py) draws polygon outlines (surgical, cloth, KN95, N95, flat) placed
between the nose and the chin, in a fixed palette with pleats, seams and ear loops. This module draws
different masks with its own geometry, colours and textures:

* shapes: a neck gaiter pulled up over the nose (wider than the face, wavy top edge, no ear loops),
  a bandana knotted behind the head (a triangle pointing below the chin), and a duckbill respirator
  (a wide hexagon with a horizontal fold and a bright valve);
* placement: higher (up to the nose bridge) and deeper (below the chin) than training's;
* surfaces: plaid, stripes, polka dots and camouflage in saturated colours outside training's
  palette, with cylindrical shading and a cast shadow on the face above the edge.

Nothing under training may import it (test/unit checks the import closure): scores on it say how
the model does on a mask style it could not have learned.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import cv2
import numpy as np

UNSEEN_KINDS = ("gaiter", "bandana", "duckbill")
SURFACES = ("plaid", "stripes", "dots", "camo")
_COLOURS = (  # BGR, saturated
    (30, 30, 200), (40, 160, 240), (200, 60, 40), (60, 180, 60), (160, 40, 160), (20, 200, 200),
    (120, 0, 60), (0, 90, 0), (90, 20, 20), (210, 190, 40),
)


def _frame(shape: Tuple[int, int], rng: np.random.Generator, landmarks: Optional[np.ndarray]):
    """Top-edge centre, across and down unit vectors, width and height of the mask in image pixels."""
    h, w = shape
    if landmarks is None:  # an aligned FER-style crop: eyes near 0.4 H, nose tip near 0.6 H
        angle = math.radians(rng.uniform(-6, 6))
        top = np.array([w * (0.5 + rng.uniform(-0.03, 0.03)), h * rng.uniform(0.44, 0.52)])
        return top, angle, w * rng.uniform(1.0, 1.15), h * rng.uniform(0.62, 0.72)
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    eye_mid = (pts[0] + pts[1]) / 2
    eye_vec = pts[1] - pts[0]
    eye_dist = max(float(np.hypot(*eye_vec)), 1.0)
    angle = math.atan2(eye_vec[1], eye_vec[0])
    down = np.array([-math.sin(angle), math.cos(angle)])
    mouth_mid = (pts[3] + pts[4]) / 2
    eye_to_nose = max(float(np.dot(pts[2] - eye_mid, down)), 0.3 * eye_dist)
    eye_to_mouth = max(float(np.dot(mouth_mid - eye_mid, down)), eye_to_nose * 1.2)
    top_depth = eye_to_nose * rng.uniform(0.3, 0.5)
    bottom_depth = eye_to_mouth * rng.uniform(1.9, 2.3)
    return eye_mid + down * top_depth, angle, eye_dist * rng.uniform(2.5, 2.9), bottom_depth - top_depth


def _coverage(kind: str, u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1 inside the mask, in mask coordinates (u across in [-1, 1], v down from the top edge in [0, 1])."""
    if kind == "gaiter":
        wave = 0.04 * np.sin(u * rng.uniform(6, 10) + rng.uniform(0, 6.3))
        return (np.abs(u) <= 1.0) & (v >= wave) & (v <= 1.15)
    if kind == "bandana":
        return (v >= 0.05 * u ** 2) & (v <= 1.2 - 0.55 * np.abs(u)) & (np.abs(u) <= 1.0)
    # duckbill: a wide hexagon
    return (v >= 0.1 * np.abs(u)) & (v <= 0.95 - 0.25 * np.abs(u) ** 2) & (np.abs(u) <= 0.95)


def _surface(kind: str, u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """BGR float texture over the grid."""
    c1 = np.asarray(_COLOURS[rng.integers(len(_COLOURS))], dtype=np.float32)
    c2 = np.asarray(_COLOURS[rng.integers(len(_COLOURS))], dtype=np.float32)
    if np.abs(c1 - c2).sum() < 60:
        c2 = 255 - c1
    surface = SURFACES[rng.integers(len(SURFACES))]
    f = rng.uniform(3, 7)
    if surface == "plaid":
        t = 0.5 * ((np.sin(u * f * math.pi) > 0.3).astype(np.float32) + (np.sin(v * f * math.pi) > 0.3))
    elif surface == "stripes":
        t = (np.sin((u * math.cos(0.7) + v * math.sin(0.7)) * f * math.pi) > 0).astype(np.float32)
    elif surface == "dots":
        t = ((np.sin(u * f * math.pi) * np.sin(v * f * math.pi * 1.5)) > 0.6).astype(np.float32)
    else:
        small = rng.random((6, 6)).astype(np.float32)
        t = cv2.resize(small, (u.shape[1], u.shape[0]), interpolation=cv2.INTER_CUBIC)
        t = (t > 0.5).astype(np.float32)
    tex = c1[None, None, :] * (1 - t[..., None]) + c2[None, None, :] * t[..., None]
    shade = 0.65 + 0.35 * np.cos(np.clip(u, -1, 1) * math.pi / 2)  # rounded over the cheeks
    if kind == "duckbill":
        shade = shade * np.where(np.abs(v - 0.45) < 0.03, 0.6, 1.0)  # the fold
        valve = ((u - 0.45) ** 2 + (v - 0.55) ** 2) < 0.012
        tex[valve] = (240, 240, 240)
    return tex * shade[..., None]


def apply_unseen_mask(image: np.ndarray, rng: np.random.Generator, landmarks: Optional[np.ndarray] = None,
                      kind: Optional[str] = None) -> np.ndarray:
    """One held-out mask over the lower face of a grey or BGR uint8 image (an aligned crop without
    landmarks; a photo with its 5 detected landmarks)."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"apply_unseen_mask needs a uint8 grey or BGR image, got {image.dtype} {image.shape}")
    kind = kind or UNSEEN_KINDS[rng.integers(len(UNSEEN_KINDS))]
    if kind not in UNSEEN_KINDS:
        raise ValueError(f"unknown held-out mask kind {kind!r}; choose from {', '.join(UNSEEN_KINDS)}")
    h, w = image.shape[:2]
    top, angle, width, height = _frame((h, w), rng, landmarks)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xs - top[0], ys - top[1]
    u = (dx * math.cos(angle) + dy * math.sin(angle)) / (width / 2)
    v = (-dx * math.sin(angle) + dy * math.cos(angle)) / height
    inside = _coverage(kind, u, v, rng).astype(np.float32)
    sigma = max(0.6, min(h, w) / 80)
    alpha = cv2.GaussianBlur(inside, (0, 0), sigma)
    shadow = cv2.GaussianBlur(inside, (0, 0), sigma * 3)
    base = image.astype(np.float32) if image.ndim == 3 else image.astype(np.float32)[..., None]
    tex = _surface(kind, u, v, rng)
    if image.ndim == 2:
        tex = (tex @ np.array([0.114, 0.587, 0.299], dtype=np.float32))[..., None]
    base = base * (1 - 0.35 * np.clip(shadow - alpha, 0, 1))[..., None]  # shadow above the edge
    out = base * (1 - alpha[..., None]) + tex * alpha[..., None]
    out = np.clip(out, 0, 255).astype(np.uint8)
    return out[..., 0] if image.ndim == 2 else out


def unseen_mask_images(images: np.ndarray, seed: int) -> np.ndarray:
    """Held-out masks on a batch of aligned grey crops (N, H, W); image i uses rng([seed, i])."""
    out = np.empty_like(images)
    for i in range(images.shape[0]):
        out[i] = apply_unseen_mask(images[i], np.random.default_rng([seed, 7919, i]))
    return out
