"""imaging.header_size / decode_image / read_image: the size comes from the header, before decoding."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_mask_ros.errors import ImageReadError
from fer_mask_ros.imaging import MAX_IMAGE_PIXELS, decode_image, header_size, read_image

FORMATS = [".png", ".jpg", ".bmp", ".webp", ".tiff", ".pgm", ".ppm", ".pbm", ".jp2", ".sr", ".hdr", ".pfm"]


@pytest.mark.parametrize("ext", FORMATS)
def test_header_size_matches_what_opencv_decodes(ext):
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    if ext in (".pgm", ".pbm"):
        img = img[:, :, 0]
    if ext in (".hdr", ".pfm"):
        img = img.astype(np.float32) / 255.0
    try:
        ok, buf = cv2.imencode(ext, img)
    except cv2.error:
        ok = False
    if not ok:
        pytest.skip(f"this OpenCV cannot write {ext}")
    assert header_size(buf.tobytes()) == (53, 37)
    assert decode_image(buf.tobytes()).shape[:2] == (37, 53)


def test_progressive_jpeg_and_exif_segments():
    img = np.zeros((21, 34, 3), np.uint8)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok
    data = buf.tobytes()
    app1 = b"\xff\xe1" + (2 + 100).to_bytes(2, "big") + b"E" * 100  # a segment before the frame header
    assert header_size(data[:2] + app1 + data[2:]) == (34, 21)


def test_jpeg_whose_frame_header_follows_large_exif_segments(tmp_path):
    """Camera JPEGs carry EXIF thumbnails and ICC profiles (tens of kB) before the frame header: the
    header check must walk past them, not give up at a fixed prefix (real photos were refused)."""
    img = np.full((21, 34, 3), 90, np.uint8)
    data = cv2.imencode(".jpg", img)[1].tobytes()
    app1 = b"\xff\xe1" + (2 + 60000).to_bytes(2, "big") + b"E" * 60000
    app2 = b"\xff\xe2" + (2 + 30000).to_bytes(2, "big") + b"I" * 30000
    path = tmp_path / "camera.jpg"
    path.write_bytes(data[:2] + app1 + app2 + data[2:])
    assert header_size(path.read_bytes()) == (34, 21)
    assert read_image(str(path)).shape[:2] == (21, 34)


def test_bombs_and_unknown_formats_are_refused_before_decoding(tmp_path):
    import zlib

    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + (zlib.crc32(kind + data) & 0xFFFFFFFF).to_bytes(4, "big")

    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", (60000).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0]))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    assert header_size(bomb) == (60000, 60000)
    with pytest.raises(ValueError, match="too large"):
        decode_image(bomb)
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb)
    with pytest.raises(ImageReadError, match="bomb.png: image too large"):
        read_image(str(path))
    side = int(MAX_IMAGE_PIXELS ** 0.5)
    assert header_size(bomb.replace((60000).to_bytes(4, "big") * 2, side.to_bytes(4, "big") * 2)) == (side, side)
    exr = b"\x76\x2f\x31\x01" + bytes(60)  # OpenEXR: no size reader, so refused
    for junk in (b"", b"\xff\xd8\xff\xe0garbage", b"II*\0" + bytes(64), b"hello world", exr):
        with pytest.raises(ValueError):
            decode_image(junk)
