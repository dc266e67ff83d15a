"""Synthetic face masks: the `mask` command's overlay and the training-time augmentation.

A mask is a polygon in a face-relative frame (u across the face in [-1, 1], v down the mask
in [0, 1]) that is placed either from 5 landmarks (eyes, nose, mouth corners) or
geometrically on an aligned crop, then filled with a colour and a texture and blended with
soft edges. Kinds differ in outline (surgical, cloth, KN95, N95, bandana/flat) and surface
(pleats, seams, prints, fabric noise). Everything draws from the given numpy Generator, so a
seed reproduces the output exactly.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

MASK_KINDS = ("surgical", "cloth", "kn95", "n95", "flat")
_KIND_WEIGHTS = (0.32, 0.26, 0.16, 0.12, 0.14)

# Colours (BGR) that masks commonly come in; grey images use their luminance.
_PALETTE = (
    (235, 235, 235), (250, 250, 250), (220, 200, 170), (230, 210, 160), (200, 180, 140),  # white, light blue
    (40, 40, 40), (20, 20, 20), (70, 70, 70),  # black, dark grey
    (160, 160, 160), (120, 120, 120),  # grey
    (200, 170, 230), (150, 120, 200), (90, 60, 150),  # pinks / reds
    (60, 120, 60), (140, 160, 90), (60, 80, 130), (40, 70, 120), (180, 130, 80),  # greens, browns, denim
)


def _face_frame_from_landmarks(
    landmarks: np.ndarray, rng: np.random.Generator
) -> Tuple[np.ndarray, float, float, float]:
    """Centre of the mask's top edge, the mask width, height and angle from 5 landmarks."""
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    left_eye, right_eye, nose, mouth_l, mouth_r = pts
    eye_mid = (left_eye + right_eye) / 2.0
    eye_vec = right_eye - left_eye
    eye_dist = max(float(np.hypot(*eye_vec)), 1.0)
    angle = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    down = np.array([-eye_vec[1], eye_vec[0]]) / eye_dist
    if down[1] < 0:
        down = -down
    mouth_mid = (mouth_l + mouth_r) / 2.0
    eye_to_nose = max(float(np.dot(nose - eye_mid, down)), 0.3 * eye_dist)
    eye_to_mouth = max(float(np.dot(mouth_mid - eye_mid, down)), eye_to_nose * 1.2)
    top_depth = eye_to_nose * rng.uniform(0.45, 0.8)
    chin_depth = eye_to_mouth + (eye_to_mouth - eye_to_nose) * rng.uniform(1.4, 2.2)
    centre_u = float(np.dot(nose - eye_mid, eye_vec / eye_dist)) * rng.uniform(0.2, 0.6)
    top_centre = eye_mid + down * top_depth + (eye_vec / eye_dist) * centre_u
    width = eye_dist * rng.uniform(2.0, 2.6)
    height = chin_depth - top_depth
    return top_centre, width, height, angle


def _face_frame_geometric(shape: Tuple[int, int], rng: np.random.Generator) -> Tuple[np.ndarray, float, float, float]:
    """Placement on an aligned, FER-style crop (eyes near 0.4 H, chin near the bottom)."""
    h, w = shape
    top = h * rng.uniform(0.47, 0.63)
    bottom = h * rng.uniform(0.96, 1.12)
    width = w * rng.uniform(0.78, 1.0)
    cx = w * (0.5 + rng.uniform(-0.05, 0.05))
    angle = rng.uniform(-8.0, 8.0)
    return np.array([cx, top]), width, bottom - top, angle


def _outline(kind: str, rng: np.random.Generator, n: int = 24) -> np.ndarray:
    """Polygon in the mask frame: u in [-1, 1], v in [0, 1] (v=0 top edge at the nose)."""
    t = np.linspace(0.0, 1.0, n)
    if kind == "kn95" or kind == "n95":
        peak = rng.uniform(0.08, 0.2)
        top = np.stack([-1 + 2 * t, peak * (np.abs(-1 + 2 * t)) - peak * 0.3], 1)
        if kind == "kn95":  # pointed chin
            side = rng.uniform(0.75, 0.9)
            bottom = np.stack([1 - 2 * t, 0.7 + 0.3 * (1 - np.abs(1 - 2 * t)) ** 1.3], 1)
            bottom[:, 0] *= side
        else:  # n95: rounded cup
            u = 1 - 2 * t
            bottom = np.stack([u * 0.92, 0.55 + 0.45 * np.sqrt(np.clip(1 - u ** 2, 0, 1))], 1)
        return np.concatenate([top, bottom])
    if kind == "cloth":
        u = -1 + 2 * t
        arch = rng.uniform(0.05, 0.18)
        top = np.stack([u, arch * u ** 2 - arch * 0.2], 1)
        u2 = 1 - 2 * t
        bottom = np.stack([u2 * rng.uniform(0.85, 0.98), 0.6 + 0.4 * np.sqrt(np.clip(1 - u2 ** 2, 0, 1))], 1)
        return np.concatenate([top, bottom])
    if kind == "flat":  # a plain rectangle or bandana-like trapezoid
        spread = rng.uniform(0.0, 0.25)
        return np.array([[-1, 0], [1, 0], [1 + spread, 1.0], [-1 - spread, 1.0]], dtype=np.float64)
    # surgical: a rectangle with a slight nose-wire bump and a rounded bottom
    u = -1 + 2 * t
    bump = rng.uniform(0.0, 0.08)
    top = np.stack([u, -bump * np.exp(-(u / 0.35) ** 2)], 1)
    u2 = 1 - 2 * t
    sag = rng.uniform(0.03, 0.12)
    bottom = np.stack([u2 * rng.uniform(0.86, 0.97), 0.88 + sag * (1 - u2 ** 2)], 1)
    return np.concatenate([top, bottom])


def _texture(kind: str, h: int, w: int, colour: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """A (h, w, 3) float texture: base colour, fabric noise and a pattern for the kind."""
    tex = np.empty((h, w, 3), dtype=np.float32)
    tex[:] = colour
    noise_amp = rng.uniform(2.0, 14.0)
    noise = rng.normal(0.0, noise_amp, size=(h, w, 1)).astype(np.float32)
    if rng.random() < 0.5:
        noise = cv2.GaussianBlur(noise, (3, 3), 0)[:, :, None]
    tex += noise
    pattern = rng.random()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind in ("cloth", "flat") and pattern < 0.45:
        accent = np.asarray(_PALETTE[rng.integers(len(_PALETTE))], dtype=np.float32)
        period = max(2.0, scale * rng.uniform(0.08, 0.25))
        theta = rng.uniform(0, math.pi)
        phase = (xx * math.cos(theta) + yy * math.sin(theta)) / period
        if rng.random() < 0.5:  # stripes
            stripe = (np.sin(phase * 2 * math.pi) > rng.uniform(-0.3, 0.6)).astype(np.float32)
        else:  # dots / checks
            phase2 = (-xx * math.sin(theta) + yy * math.cos(theta)) / period
            stripe = ((np.floor(phase) + np.floor(phase2)) % 2).astype(np.float32)
        tex = tex * (1 - stripe[:, :, None]) + accent * stripe[:, :, None]
    elif pattern < (0.8 if kind in ("cloth", "flat") else 0.12):
        tex = _print(tex, rng, scale)
    shade = 1.0 + rng.uniform(-0.25, 0.25) * (yy / max(h, 1) - 0.5) + rng.uniform(-0.15, 0.15) * (xx / max(w, 1) - 0.5)
    return tex * shade[:, :, None]


def _accent(rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        return np.asarray(_PALETTE[rng.integers(len(_PALETTE))], dtype=np.float32)
    return rng.uniform(0, 255, size=3).astype(np.float32)


def _print(tex: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """A printed fabric over `tex`: flowers / scattered motifs, curls (paisley-like) or camouflage blotches."""
    h, w = tex.shape[:2]
    style = rng.integers(3)
    if style == 2:  # camouflage: thresholded smooth noise in 2-3 colours
        out = tex.copy()
        for _ in range(int(rng.integers(1, 3))):
            cell = max(2, int(scale * rng.uniform(0.1, 0.3)))
            field = cv2.resize(rng.random((h // cell + 2, w // cell + 2)).astype(np.float32), (w, h),
                               interpolation=cv2.INTER_CUBIC)
            blob = (field > rng.uniform(0.45, 0.65)).astype(np.float32)[:, :, None]
            out = out * (1 - blob) + _accent(rng) * blob
        return out
    layer = np.zeros((h, w, 3), np.float32)
    cover = np.zeros((h, w), np.float32)
    motifs = int(rng.integers(6, 30))
    size = max(1.0, scale * rng.uniform(0.04, 0.16))
    colours = [_accent(rng) for _ in range(int(rng.integers(1, 4)))]
    for _ in range(motifs):
        cx, cy = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        colour = tuple(float(c) for c in colours[rng.integers(len(colours))])
        r = max(1, int(size * rng.uniform(0.6, 1.4)))
        if style == 0:  # flower: petals around a centre
            petals = int(rng.integers(4, 7))
            turn = rng.uniform(0, 2 * math.pi)
            for k in range(petals):
                a = turn + 2 * math.pi * k / petals
                px, py = int(cx + r * math.cos(a)), int(cy + r * math.sin(a))
                for target, value in ((layer, colour), (cover, 1.0)):
                    cv2.ellipse(target, (px, py), (r, max(1, r // 2)), math.degrees(a), 0, 360, value, -1)
            for target, value in ((layer, colours[0] * 0.6), (cover, 1.0)):
                cv2.circle(target, (cx, cy), max(1, r // 2), tuple(float(v) for v in np.ravel(value)), -1)
        else:  # curls: short thick arcs
            start = rng.uniform(0, 360)
            for target, value in ((layer, colour), (cover, 1.0)):
                cv2.ellipse(target, (cx, cy), (r * 2, r), rng.uniform(0, 180), start, start + rng.uniform(120, 300),
                            value, max(1, r // 2))
    cover = cover[:, :, None]
    return tex * (1 - cover) + layer * cover


def _to_image(points: np.ndarray, top_centre: np.ndarray, width: float, height: float, angle: float) -> np.ndarray:
    rad = math.radians(angle)
    across = np.array([math.cos(rad), math.sin(rad)])
    down = np.array([-math.sin(rad), math.cos(rad)])
    return top_centre + np.outer(points[:, 0] * width / 2.0, across) + np.outer(points[:, 1] * height, down)


def mask_alpha(
    shape: Tuple[int, int], rng: np.random.Generator, landmarks: Optional[np.ndarray] = None, kind: Optional[str] = None
) -> Tuple[np.ndarray, dict]:
    """The coverage map (float32 in [0, 1]) of one mask and the parameters that drew it."""
    h, w = shape
    kind = kind or MASK_KINDS[rng.choice(len(MASK_KINDS), p=_KIND_WEIGHTS)]
    if kind not in MASK_KINDS:
        raise ValueError(f"unknown mask kind {kind!r}; choose from {', '.join(MASK_KINDS)}")
    if landmarks is not None:
        top_centre, width, height, angle = _face_frame_from_landmarks(landmarks, rng)
    else:
        top_centre, width, height, angle = _face_frame_geometric((h, w), rng)
    outline = _to_image(_outline(kind, rng), top_centre, width, height, angle)
    ss = 4  # supersampling for smooth edges on tiny crops
    canvas = np.zeros((h * ss, w * ss), dtype=np.uint8)
    cv2.fillPoly(canvas, [np.round(outline * ss).astype(np.int32)], 255, lineType=cv2.LINE_AA)
    alpha = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    params = {"kind": kind, "top_centre": top_centre, "width": width, "height": height, "angle": angle,
              "outline": outline}
    return alpha, params


def _draw_details(tex: np.ndarray, kind: str, params: dict, rng: np.random.Generator, colour: np.ndarray) -> None:
    """Pleats, seams and ear loops, drawn onto the texture in place."""
    top_centre, width, height, angle = params["top_centre"], params["width"], params["height"], params["angle"]
    thickness = max(1, int(round(height * 0.03)))
    darker = tuple(float(c) for c in colour * rng.uniform(0.55, 0.85))
    if kind == "surgical":
        for v in np.linspace(0.3, 0.8, int(rng.integers(2, 4))):
            line = _to_image(np.array([[-0.95, v], [0.95, v]]), top_centre, width, height, angle)
            p0, p1 = (tuple(int(round(c)) for c in p) for p in line)
            cv2.line(tex, p0, p1, darker, thickness, cv2.LINE_AA)
    elif kind in ("kn95", "cloth") and rng.random() < 0.8:
        seam = _to_image(np.array([[0.0, 0.0], [0.0, 1.0]]), top_centre, width, height, angle)
        p0, p1 = (tuple(int(round(c)) for c in p) for p in seam)
        cv2.line(tex, p0, p1, darker, thickness, cv2.LINE_AA)


def _ear_loops(image: np.ndarray, params: dict, rng: np.random.Generator, colour: np.ndarray) -> None:
    top_centre, width, height, angle = params["top_centre"], params["width"], params["height"], params["angle"]
    thickness = max(1, int(round(height * rng.uniform(0.02, 0.05))))
    col = tuple(float(c) for c in colour)
    for side in (-1, 1):
        corner = _to_image(np.array([[side * 0.98, 0.05], [side * 0.95, 0.8]]), top_centre, width, height, angle)
        ear = _to_image(np.array([[side * 1.35, -0.25]]), top_centre, width, height, angle)[0]
        for p in corner:
            cv2.line(image, tuple(int(round(c)) for c in p), tuple(int(round(c)) for c in ear), col, thickness,
                     cv2.LINE_AA)


def apply_mask(
    image: np.ndarray,
    rng: np.random.Generator,
    landmarks: Optional[np.ndarray] = None,
    kind: Optional[str] = None,
    return_alpha: bool = False,
):
    """Draw one synthetic mask over the lower face; returns a new image of the same shape.

    `image` is grey (H, W) or BGR (H, W, 3) uint8. Without landmarks the image is taken as an
    aligned face crop. With `return_alpha` the coverage map comes back too.
    """
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or image.size == 0 or (
            image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"apply_mask needs a non-empty uint8 grey or BGR image, got {image.dtype} {image.shape}")
    grey = image.ndim == 2
    h, w = image.shape[:2]
    alpha, params = mask_alpha((h, w), rng, landmarks, kind)
    colour = np.asarray(_PALETTE[rng.integers(len(_PALETTE))], dtype=np.float32)
    if rng.random() < 0.25:  # any colour at all
        colour = rng.uniform(0, 255, size=3).astype(np.float32)
    tex = _texture(params["kind"], h, w, colour, rng, scale=params["height"])
    _draw_details(tex, params["kind"], params, rng, colour)
    base = image.astype(np.float32)
    if grey:
        base = base[:, :, None]
        tex = (tex @ np.array([0.114, 0.587, 0.299], dtype=np.float32))[:, :, None]
    # Light from the face shows through as soft shading (folds, cheek shape).
    face_light = cv2.GaussianBlur(base, (0, 0), sigmaX=max(1.0, h / 16.0)).reshape(h, w, -1).mean(axis=2, keepdims=True)
    shading = 1.0 + rng.uniform(0.0, 0.35) * (face_light / 128.0 - 1.0)
    tex = tex * shading
    if rng.random() < 0.3:
        tex = cv2.GaussianBlur(tex, (3, 3), 0).reshape(tex.shape)
    a = alpha[:, :, None] * rng.uniform(0.93, 1.0)
    out = base * (1.0 - a) + tex * a
    if rng.random() < 0.6:
        loop_colour = colour * rng.uniform(0.7, 1.1)
        if grey:
            loop_colour = np.full(1, float(loop_colour @ np.array([0.114, 0.587, 0.299])))
        _ear_loops(out, params, rng, loop_colour)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if grey:
        out = out[:, :, 0]
    return (out, alpha) if return_alpha else out


def mask_images(images: np.ndarray, seed: int, kinds: Optional[Sequence[str]] = None) -> np.ndarray:
    """Masked copies of a batch of aligned grey crops (N, H, W); image i uses rng([seed, i])."""
    out = np.empty_like(images)
    for i in range(images.shape[0]):
        rng = np.random.default_rng([seed, i])
        kind = None if not kinds else kinds[i % len(kinds)]
        out[i] = apply_mask(images[i], rng, kind=kind)
    return out
