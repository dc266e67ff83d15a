"""Hostile image files for robustness tests: PNG "bombs" that declare huge sizes."""
from __future__ import annotations

import struct
import zlib


def png_bomb(width: int, height: int, zero_rows: bool = False) -> bytes:
    """An 8-bit grey PNG whose header declares width x height: no pixel data (~70 bytes), or every row
    present and zero (a few hundred kB that decode to width x height bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    z = zlib.compressobj(9)
    idat = b""
    if zero_rows:
        block = bytes((width + 1) * 256)
        for start in range(0, height, 256):
            idat += z.compress(block[: (width + 1) * min(256, height - start)])
    idat += z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
