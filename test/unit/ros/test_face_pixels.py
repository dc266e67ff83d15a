"""Issue 32 defect 6: a face whose box has no pixel inside the image (outside it, or 0 x 0) is never classified.
The audit's FaceArray roi (5000, 5000, 50, 50) on a 320 x 240 image came out as an emotion with confidence 0.57."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from fer_mask_ros.ros.convert import faces_with_pixels, roi_has_pixels


def roi(x, y, w, h):
    return SimpleNamespace(x_offset=x, y_offset=y, width=w, height=h)


@pytest.mark.parametrize("box,inside", [
    ((0, 0, 320, 240), True), ((300, 200, 100, 100), True), ((319, 239, 1, 1), True), ((0, 0, 1, 1), True),
    ((5000, 5000, 50, 50), False), ((320, 0, 10, 10), False), ((0, 240, 10, 10), False), ((10, 10, 0, 0), False),
    ((10, 10, 0, 50), False), ((10, 10, 50, 0), False), ((4294967295, 4294967295, 40, 40), False),
])
def test_roi_has_pixels(box, inside):
    assert roi_has_pixels(roi(*box), 320, 240) is inside


def test_faces_with_pixels_keeps_the_order_and_drops_the_empty_ones():
    faces = [SimpleNamespace(id=i, roi=roi(*b)) for i, b in
             enumerate([(5000, 5000, 50, 50), (10, 10, 60, 60), (10, 10, 0, 0), (250, 190, 120, 120)])]
    assert [f.id for f in faces_with_pixels(faces, 320, 240)] == [1, 3]


def test_the_face_detectors_roi_is_the_box_clipped_to_the_image():
    """roi_from_box builds the message from the core's perception.hri_face.clipped_roi."""
    pytest.importorskip("sensor_msgs.msg")
    from fer_mask_ros.ros.convert import roi_from_box

    part = roi_from_box((300.4, -20, 100, 100), 320, 240)
    assert (part.x_offset, part.y_offset, part.width, part.height, part.do_rectify) == (300, 0, 20, 80, False)
    assert roi_has_pixels(part, 320, 240)
    for box in [(5000, 5000, 50, 50), (-100, -100, 50, 50), (10, 10, 0, 0)]:
        assert not roi_has_pixels(roi_from_box(box, 320, 240), 320, 240), box
