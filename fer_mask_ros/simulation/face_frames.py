"""Synthetic camera frames for the benchmarks: the bundled clip's faces pasted on a background, moving.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np


def clip_face_patches(margin: float = 0.18) -> List[np.ndarray]:
    """BGR crops (face box + margin) of every distinct face of the bundled clip, in clip order."""
    from fer_mask_ros.imaging import read_video  # noqa: PLC0415
    from fer_mask_ros.simulation import clip  # noqa: PLC0415

    labels = clip.load_labels()
    frames = read_video(clip.DATA_DIR / labels["video"])
    if not frames:
        raise RuntimeError("cannot read the bundled demo clip")
    patches = []
    for seg in labels["segments"]:
        for face in seg["faces"]:
            k = len(face["boxes"]) // 2  # middle of the segment
            x, y, w, h = face["boxes"][k]
            img = frames[min(len(frames) - 1, seg["start_frame"] + k)]
            m = int(round(margin * max(w, h)))
            x0, y0 = max(0, x - m), max(0, y - m)
            x1, y1 = min(img.shape[1], x + w + m), min(img.shape[0], y + h + m)
            patches.append(img[y0:y1, x0:x1].copy())
    return patches


def clip_background(width: int, height: int) -> np.ndarray:
    """The clip's plain background (its first frame's left column strip, stretched) at width x height."""
    import cv2  # noqa: PLC0415

    from fer_mask_ros.simulation import clip  # noqa: PLC0415

    rng = np.random.default_rng(7)
    return cv2.resize(clip.background(rng), (width, height), interpolation=cv2.INTER_LINEAR)


class FaceFrames:
    """Frames of `faces` masked clip faces on a width x height background, moving a little per frame.

    `frame(i)` -> BGR uint8; `boxes(i)` -> the faces' (x, y, w, h) boxes in that frame. Faces sit
    on a grid (up to 5 per row) sized so that they fill their cells; `n_frames` distinct frames loop.
    """

    def __init__(self, width: int, height: int, faces: int, n_frames: int = 40, seed: int = 0,
                 patches: Optional[Sequence[np.ndarray]] = None):
        import cv2  # noqa: PLC0415

        self.width, self.height, self.faces = int(width), int(height), int(faces)
        self.n_frames = max(1, int(n_frames))
        patches = list(patches) if patches is not None else clip_face_patches()
        bg = clip_background(self.width, self.height)
        cols = min(self.faces, 5) if self.faces else 1
        rows = max(1, math.ceil(self.faces / cols))
        cell_w, cell_h = self.width / cols, self.height / rows
        side = int(min(cell_w, cell_h) * 0.78)
        rng = np.random.default_rng(seed)
        self._frames: List[np.ndarray] = []
        self._boxes: List[List[Tuple[int, int, int, int]]] = []
        slack_x, slack_y = cell_w - side, cell_h - side
        phases = rng.uniform(0, 2 * math.pi, size=(max(1, self.faces), 2))
        tiles = [cv2.resize(patches[i % len(patches)], (side, side), interpolation=cv2.INTER_AREA)
                 for i in range(self.faces)]
        for t in range(self.n_frames):
            frame = bg.copy()
            boxes = []
            for i in range(self.faces):
                r, c = divmod(i, cols)
                a = 2 * math.pi * t / self.n_frames
                x = int(c * cell_w + slack_x * (0.5 + 0.4 * math.sin(a + phases[i, 0])))
                y = int(r * cell_h + slack_y * (0.5 + 0.4 * math.cos(a + phases[i, 1])))
                frame[y:y + side, x:x + side] = tiles[i]
                boxes.append((x, y, side, side))
            self._frames.append(frame)
            self._boxes.append(boxes)

    def frame(self, i: int) -> np.ndarray:
        return self._frames[i % self.n_frames]

    def boxes(self, i: int) -> List[Tuple[int, int, int, int]]:
        return list(self._boxes[i % self.n_frames])

    @property
    def frames(self) -> List[np.ndarray]:
        return list(self._frames)
