"""Where the commands write their CSV: a file or stdout, with file names that are not UTF-8 kept.

A file name in bytes that are not valid UTF-8 (possible on Linux) arrives in Python with surrogate
escapes; writing it with the default "strict" errors raised UnicodeEncodeError and lost the batch.
Both outputs use errors="surrogateescape", so such a name is written back as the very bytes it has.
A file goes through fer_mask_ros.safe_write.TextOutput: it appears complete or not at all.
"""
from __future__ import annotations

import os
import sys
from typing import IO, Tuple

from fer_mask_ros.errors import CommandError


def open_csv_output(path: str) -> Tuple[IO[str], bool]:
    """(text handle, whether the caller must close it) for `path`; '-' is stdout."""
    if path == "-":
        reconfigure = getattr(sys.stdout, "reconfigure", None)
        if callable(reconfigure):
            try:
                reconfigure(errors="surrogateescape")
            except (ValueError, OSError):  # a replaced stdout (tests) that cannot
                pass
        return sys.stdout, False
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CommandError(f"output folder does not exist: {parent}")
    from fer_mask_ros.safe_write import TextOutput  # atomic; a full disk is one error line, not a traceback

    return TextOutput(path), True  # type: ignore[return-value]
