"""The held-out mask family: what it draws, and that training can never reach it."""
from __future__ import annotations

import ast
import os

import numpy as np
import pytest

from fer_mask_ros.learning import masking
from fer_mask_ros.learning.unseen_masks import UNSEEN_KINDS, apply_unseen_mask, unseen_mask_images

PACKAGE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fer_mask_ros")


def test_masks_cover_the_lower_face_only(make_face):
    crops = np.stack([make_face(label, seed=label) for label in range(7)])
    out = unseen_mask_images(crops, seed=0)
    assert out.shape == crops.shape and out.dtype == np.uint8
    changed = np.abs(out.astype(int) - crops.astype(int)) > 8
    assert changed[:, 32:, :].mean() > 0.5  # mouth and chin hidden
    assert changed[:, :12, :].mean() < 0.02  # forehead untouched
    assert np.array_equal(out, unseen_mask_images(crops, seed=0))  # seeded


def test_every_kind_draws_on_photos_with_landmarks(make_face):
    photo = np.dstack([make_face(3, size=160)] * 3)
    landmarks = np.array([[62, 57], [98, 57], [80, 85], [66, 110], [94, 110]], dtype=float)
    for kind in UNSEEN_KINDS:
        out = apply_unseen_mask(photo, np.random.default_rng(1), landmarks=landmarks, kind=kind)
        assert out.shape == photo.shape
        assert (np.abs(out.astype(int) - photo.astype(int)).sum(axis=2) > 20)[100:130, 60:100].mean() > 0.5
    with pytest.raises(ValueError, match="held-out mask kind"):
        apply_unseen_mask(photo, np.random.default_rng(1), kind="surgical")


def test_kinds_differ_from_the_training_generator():
    assert not set(UNSEEN_KINDS) & set(masking.MASK_KINDS)


def _imports(path: str):
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            yield node.level, base, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield 0, alias.name, []


def test_training_cannot_reach_the_held_out_family():
    """The import closure of the training code (every import, function-level ones included) never
    contains unseen_masks: training cannot draw these masks, on purpose or by accident."""
    seen, todo = set(), ["fer_mask_ros.learning.training", "fer_mask_ros.cli.commands.train"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        rel = name.split(".")[1:]
        path = os.path.join(PACKAGE, *rel) + ".py"
        if not os.path.isfile(path):
            path = os.path.join(PACKAGE, *rel, "__init__.py")
            if not os.path.isfile(path):
                continue
        package = name.rsplit(".", 1)[0] if not path.endswith("__init__.py") else name
        for level, module, names in _imports(path):
            if level:
                base = package.split(".")
                base = base[: len(base) - (level - 1)]
                module = ".".join(base + ([module] if module else []))
            if not module.startswith("fer_mask_ros"):
                continue
            todo.append(module)
            todo.extend(f"{module}.{n}" for n in names)
    assert "fer_mask_ros.learning.unseen_masks" not in seen
    assert "fer_mask_ros.learning.masking" in seen  # the walk does reach training's own generator
