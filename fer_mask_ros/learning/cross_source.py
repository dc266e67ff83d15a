"""Evaluation across sources: FER2013 crops and labelled photo folders, side by side.

A source is either face crops (FER2013 CSV / image folders, classified as they are) or, with
`photos=True`, a `<root>/<label>/*` folder of whole photos run through the photo pipeline exactly as
`classify PHOTO` and the live graph run them (detector, aligned crop, classifier; face 1 = the
detector's best face). A photo with no face found counts as wrong.

Conditions: "unmasked"; "masked" (training's own mask generator; on photos placed from the detected
landmarks, then the masked photo goes through the whole pipeline again); "unseen mask" (the
held-out family of unseen_masks.py, which training never sees).

Predictions come back as (N, 7) probabilities with NaN rows for "no face", so
evaluation.evaluate_predictions counts them as wrong.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

CONDITIONS = ("unmasked", "masked", "unseen mask")


@dataclass
class SourcePredictions:
    labels: np.ndarray
    probs: Dict[str, np.ndarray] = field(default_factory=dict)  # condition -> (N, 7), NaN = no face
    mask_prob: Dict[str, np.ndarray] = field(default_factory=dict)  # condition -> (N,), NaN = no face
    peer_probs: Dict[str, np.ndarray] = field(default_factory=dict)
    images: Dict[str, List[str]] = field(default_factory=dict)  # condition -> files the peer reads


def masked_copy(image: np.ndarray, condition: str, rng: np.random.Generator,
                landmarks: Optional[np.ndarray] = None) -> np.ndarray:
    """The image under a condition's mask (landmarks place it on a photo; None = an aligned crop)."""
    if condition == "unmasked":
        return image
    if condition == "masked":
        from fer_mask_ros.learning.masking import apply_mask

        return apply_mask(image, rng, landmarks=landmarks)
    if condition == "unseen mask":
        from fer_mask_ros.learning.unseen_masks import apply_unseen_mask

        return apply_unseen_mask(image, rng, landmarks=landmarks)
    raise ValueError(f"unknown condition {condition!r}; choose from {', '.join(CONDITIONS)}")


def predict_photos(paths: Sequence[str], pipeline, conditions: Sequence[str], seed: int = 0,
                   keep_images: Optional[str] = None, progress: Optional[Callable] = None,
                   second: Optional[Callable] = None, second_probs: Optional[Dict[str, np.ndarray]] = None):
    """Photo pipeline per photo and condition -> ({condition: probs}, {condition: mask_prob}, {condition: files}).

    With `second(image, detection) -> probs`, another model looks at the same face of the same pixels (the
    real-face teacher); its answers go into `second_probs[condition]` (NaN where no face was found).

    Masks are placed from the landmarks the detector finds on the unmasked photo; a photo without a
    face there has no masked version (it counts as a miss in every masked condition; its file is None).
    With keep_images, the masked photos are written there (PNG) so a peer can read the same pixels.
    """
    from fer_mask_ros.errors import ImageReadError
    from fer_mask_ros.imaging import read_image, to_bgr
    from fer_mask_ros.perception.photo import classify_image
    from fer_mask_ros.safe_write import write_image

    n = len(paths)
    probs = {c: np.full((n, 7), np.nan) for c in conditions}
    mask_prob = {c: np.full(n, np.nan) for c in conditions}
    files: Dict[str, List[Optional[str]]] = {c: list(paths) for c in conditions}
    if second is not None and second_probs is not None:
        second_probs.update({c: np.full((n, 7), np.nan) for c in conditions})
    for i in (progress or (lambda it, **_: it))(range(n), total=n):
        try:
            bgr = to_bgr(read_image(paths[i]))
        except (ImageReadError, ValueError):
            continue  # unreadable: no face, counted as wrong
        results = classify_image(pipeline, bgr)
        landmarks = results[0].detection.landmarks if results else None
        for condition in conditions:
            if condition == "unmasked":
                found = results
            elif landmarks is None:
                files[condition][i] = None  # no face to place a mask on: a miss, for the peer too
                continue
            else:
                image = masked_copy(bgr, condition, np.random.default_rng([seed, i, CONDITIONS.index(condition)]),
                                    landmarks)
                if keep_images:
                    target = os.path.join(keep_images, condition.replace(" ", "_"), f"{i:06d}.png")
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    write_image(target, image)  # never cv2.imwrite: it segfaults on a path that is not UTF-8
                    files[condition][i] = target
                found = classify_image(pipeline, image)
            if found:
                probs[condition][i] = found[0].prediction.probabilities
                mask_prob[condition][i] = found[0].prediction.mask_probability
                if second is not None and second_probs is not None:
                    second_probs[condition][i] = second(bgr if condition == "unmasked" else image, found[0].detection)
    return probs, mask_prob, files


def crop_conditions(crops: np.ndarray, conditions: Sequence[str], seed: int = 0) -> Dict[str, np.ndarray]:
    """Aligned grey crops under each condition (image i of a condition uses rng([seed, i]))."""
    out = {}
    for condition in conditions:
        if condition == "unmasked":
            out[condition] = crops
        elif condition == "masked":
            from fer_mask_ros.learning.masking import mask_images

            out[condition] = mask_images(crops, seed)
        else:
            from fer_mask_ros.learning.unseen_masks import unseen_mask_images

            out[condition] = unseen_mask_images(crops, seed)
    return out


def run_peer(peer_python: str, items: List[dict], work_dir: str) -> np.ndarray:
    """The `fer` peer's probabilities (N, 7), NaN where it found no face; runs peer_eval.py in its venv."""
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "peer_eval.py")
    manifest = os.path.join(work_dir, "peer_manifest.json")
    out = os.path.join(work_dir, "peer_out.json")
    with open(manifest, "w") as handle:
        json.dump({"items": items}, handle)
    proc = subprocess.run([peer_python, script, manifest, out], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"peer failed ({peer_python}): {tail[0]}")
    with open(out) as handle:
        raw = json.load(handle)["probs"]
    return np.array([[np.nan] * 7 if p is None else p for p in raw], dtype=np.float64)


def write_crops(crops: np.ndarray, folder: str) -> List[str]:
    """Crops as PNG files (for the peer), in order."""
    from fer_mask_ros.safe_write import write_image

    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, crop in enumerate(crops):
        path = os.path.join(folder, f"{i:06d}.png")
        write_image(path, crop)
        paths.append(path)
    return paths


def peer_on_crops(peer_python: str, images: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="fer-peer-") as tmp:
        out = {}
        for condition, crops in images.items():
            paths = write_crops(crops, os.path.join(tmp, condition.replace(" ", "_")))
            out[condition] = run_peer(peer_python, [{"path": p, "crop": True} for p in paths], tmp)
        return out
