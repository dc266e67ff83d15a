"""The overlay's label and bars go beside the box where there is room, stay whole in the image, and never cover
the lower face (the mouth) of a face that fills the picture."""
from __future__ import annotations

import numpy as np

from fer_mask_ros.analysis.analyse import FaceRecord
from fer_mask_ros.analysis.render import BAR_LABELS, draw_faces, label_rect, panel_rect

PROBS = np.array([0.05, 0.02, 0.03, 0.7, 0.1, 0.05, 0.05])


def test_label_above_else_below_else_inside_and_never_cut():
    assert label_rect((50, 40, 100, 100), (80, 15), (320, 240)) == (50, 25, 130, 40)  # above
    assert label_rect((50, 5, 100, 100), (80, 15), (320, 240)) == (50, 105, 130, 120)  # below
    assert label_rect((0, 0, 320, 240), (80, 15), (320, 240)) == (0, 0, 80, 15)  # inside, top
    assert label_rect((280, 40, 40, 40), (80, 15), (320, 240)) == (240, 25, 320, 40)  # moved left to stay whole


def test_panel_beside_the_box_then_inside_its_top_corner():
    rect, inside = panel_rect((50, 40, 100, 100), (60, 70), (320, 240))
    assert (rect, inside) == ((152, 40, 212, 110), False)  # right of the box
    rect, inside = panel_rect((250, 40, 60, 60), (60, 70), (320, 240))
    assert (rect, inside) == ((188, 40, 248, 110), False)  # left of it
    rect, inside = panel_rect((20, 20, 280, 100), (60, 70), (320, 240))
    assert not inside and rect[1] >= 122  # below it
    rect, inside = panel_rect((0, 0, 320, 240), (60, 70), (320, 240), avoid=(0, 0, 80, 15))
    assert inside and rect == (260, 0, 320, 70)  # the top corner (forehead), away from the label


def test_a_face_that_fills_the_photo_keeps_its_mouth_visible():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (400, 400, 3), dtype=np.uint8)
    rec = FaceRecord(0.0, 0, 1, (5.0, 3.0, 392.0, 394.0), "happy", 0.7, PROBS, True, 0.9)
    out = draw_faces(photo, [rec])
    lower = (slice(200, 390), slice(10, 390))  # the lower face, inside the box's border
    assert np.array_equal(out[lower], photo[lower])
    assert not np.array_equal(out[:20, :60], photo[:20, :60])  # the label, top left
    assert not np.array_equal(out[5:80, 330:395], photo[5:80, 330:395])  # the bars, top right


def test_bars_are_labelled_and_drawn_outside_a_small_face():
    frame = np.full((240, 320, 3), 128, np.uint8)
    rec = FaceRecord(0.0, 0, 1, (40.0, 60.0, 100.0, 100.0), "happy", 0.7, PROBS, False, 0.1)
    out = draw_faces(frame, [rec])
    assert np.array_equal(out[63:158, 43:138], frame[63:158, 43:138])  # inside the box: untouched
    panel = out[60:140, 142:240]
    assert (panel == 30).all(axis=2).sum() > 500  # the dark panel right of the box
    assert BAR_LABELS == ["ang", "dis", "fea", "hap", "neu", "sad", "sur"]
