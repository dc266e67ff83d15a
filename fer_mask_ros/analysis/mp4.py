"""MP4 / QuickTime boxes: move the index (moov) to the front ("faststart"), read the creation time.

An MP4 is a sequence of boxes (ISO/IEC 14496-12): 4-byte big-endian size (1: a 64-bit size follows the type,
0: up to the end of the file), 4-byte type, payload. OpenCV's FFmpeg writer puts the index, `moov`, after the
media data, `mdat`, so a browser must load the whole file before it can play it. `faststart` rewrites the file
as ftyp, moov, then the other boxes in their order; every chunk offset in moov's `stco` (32-bit) and `co64`
(64-bit) tables that points behind the moved moov grows by moov's size. That is what `ffmpeg -movflags
+faststart` does, without needing ffmpeg.

`creation_time` reads `moov/mvhd`'s creation time (seconds since 1904-01-01 UTC); 0 means "not set".
"""
from __future__ import annotations

import os
import shutil
import struct
from typing import BinaryIO, List, Optional, Tuple

#: Boxes whose payload is made of boxes, on the way from moov to the chunk offset tables.
_CONTAINERS = (b"moov", b"trak", b"mdia", b"minf", b"stbl")
#: 1904-01-01 (the MP4 epoch) in Unix seconds.
MP4_EPOCH = -2082844800

Box = Tuple[bytes, int, int]  # (type, offset of the box, size of the box)


def top_level_boxes(handle: BinaryIO) -> List[Box]:
    """The file's top-level boxes; ValueError when it is not a well-formed box sequence."""
    handle.seek(0, os.SEEK_END)
    end = handle.tell()
    boxes, pos = [], 0
    while pos < end:
        handle.seek(pos)
        head = handle.read(8)
        if len(head) < 8:
            raise ValueError(f"truncated box header at byte {pos}")
        size, kind = struct.unpack(">I4s", head)
        if size == 1:
            size = struct.unpack(">Q", handle.read(8))[0]
        elif size == 0:
            size = end - pos
        if size < 8 or pos + size > end:
            raise ValueError(f"box {kind!r} at byte {pos} has a bad size {size}")
        boxes.append((kind, pos, size))
        pos += size
    return boxes


def _children(data: bytes, start: int, stop: int) -> List[Box]:
    """Boxes inside data[start:stop] (in memory: moov is small)."""
    out, pos = [], start
    while pos + 8 <= stop:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = stop - pos
        if size < header or pos + size > stop:
            raise ValueError(f"box {kind!r} inside moov has a bad size {size}")
        out.append((kind, pos, size))
        pos += size
    return out


def _offset_tables(moov: bytearray) -> List[Tuple[bytes, int]]:
    """(stco or co64, offset of the box in moov) for every chunk offset table in moov."""
    found: List[Tuple[bytes, int]] = []

    def walk(start: int, stop: int) -> None:
        for kind, pos, size in _children(moov, start, stop):
            if kind in (b"stco", b"co64"):
                found.append((kind, pos))
            elif kind in _CONTAINERS:
                walk(pos + 8, pos + size)

    walk(8, len(moov))
    return found


def is_faststart(path: str) -> bool:
    """Does moov come before mdat (or is there no mdat)?"""
    with open(path, "rb") as handle:
        kinds = [kind for kind, _, _ in top_level_boxes(handle)]
    if b"moov" not in kinds:
        return False
    return b"mdat" not in kinds or kinds.index(b"moov") < kinds.index(b"mdat")


def faststart(path: str) -> bool:
    """Rewrite the MP4 at `path` (in place, through a temporary file beside it) with moov first.
    True when it was rewritten, False when moov already came first; ValueError on a file it cannot parse
    (left as it was), including offsets that no longer fit 32 bits (a file near 4 GB)."""
    with open(path, "rb") as src:
        boxes = top_level_boxes(src)
        kinds = [b[0] for b in boxes]
        if b"moov" not in kinds or b"mdat" not in kinds:
            raise ValueError("not an MP4 with moov and mdat boxes")
        m = kinds.index(b"moov")
        if m < kinds.index(b"mdat"):
            return False
        _, moov_at, moov_size = boxes[m]
        src.seek(moov_at)
        moov = bytearray(src.read(moov_size))
        if struct.unpack_from(">I", moov, 0)[0] == 1:
            raise ValueError("a moov box with a 64-bit size is not supported")
        head = 1 if kinds[0] == b"ftyp" else 0  # ftyp stays first
        moved_from = boxes[head][1]  # offsets at or after here (and before moov) shift by moov's size
        for kind, pos in _offset_tables(moov):
            count = struct.unpack_from(">I", moov, pos + 12)[0]
            width, fmt = (4, ">I") if kind == b"stco" else (8, ">Q")
            for k in range(count):
                at = pos + 16 + k * width
                value = struct.unpack_from(fmt, moov, at)[0]
                if moved_from <= value < moov_at:
                    value += moov_size
                    if width == 4 and value >= 1 << 32:
                        raise ValueError("chunk offsets would exceed 32 bits")
                    struct.pack_into(fmt, moov, at, value)
        tmp = path + ".faststart"
        try:
            with open(tmp, "wb") as dst:
                order = boxes[:head] + [boxes[m]] + boxes[head:m] + boxes[m + 1:]
                for kind, pos, size in order:
                    if kind == b"moov" and pos == moov_at:
                        dst.write(moov)
                        continue
                    src.seek(pos)
                    _copy(src, dst, size)
            shutil.copymode(path, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return True


def _copy(src: BinaryIO, dst: BinaryIO, size: int, block: int = 1 << 20) -> None:
    while size > 0:
        data = src.read(min(block, size))
        if not data:
            raise ValueError("the file ended inside a box")
        dst.write(data)
        size -= len(data)


def creation_time(path: str) -> Optional[float]:
    """Unix time of moov/mvhd's creation time, or None (not an MP4/MOV, no mvhd, or the field is 0)."""
    try:
        with open(path, "rb") as handle:
            boxes = top_level_boxes(handle)
            for kind, pos, size in boxes:
                if kind != b"moov":
                    continue
                handle.seek(pos)
                moov = handle.read(size)
                for child, at, _ in _children(moov, 8, len(moov)):
                    if child != b"mvhd":
                        continue
                    version = moov[at + 8]
                    value = struct.unpack_from(">Q" if version == 1 else ">I", moov, at + 12)[0]
                    return float(value + MP4_EPOCH) if value else None
    except (OSError, ValueError, struct.error, IndexError):
        return None
    return None
