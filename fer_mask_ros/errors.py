"""Every exception the package raises, in one module (it imports nothing from the package).

`UserError` marks the errors a user can fix (a missing file, a bad argument, a missing tool): the
CLI (`python -m fer_mask_ros`) prints any UserError as one line `error: ...` and exits with status 2.
The library raises the specific classes below; the CLI's own argument errors are `CommandError`.
"""
from __future__ import annotations


class UserError(Exception):
    """An error the user can fix; the CLI prints its first line and exits with status 2."""


class CommandError(UserError):
    """A bad command line (argument, path, option combination): raised by fer_mask_ros.cli.commands."""


class UnknownLabelError(ValueError):
    """A label that is not one of the seven emotions (or an alias of one)."""


class DatasetError(UserError, ValueError):
    """A dataset cannot be read; the message names the file (and line)."""


class ImageReadError(DatasetError):
    """An image file cannot be read (missing, empty, not an image); names the file."""


class ModelError(UserError, RuntimeError):
    """The model file is missing, corrupt or of another architecture; names the path."""


class DetectorError(UserError, RuntimeError):
    """The detector model is missing or cannot be loaded."""


class FrameSourceError(UserError, ValueError):
    """The frame source cannot be opened or holds no frames."""


class AnalysisError(UserError):
    """One input cannot be analysed; the message names the input."""


class WriteError(UserError):
    """A derived file (CSV, image, report, video) cannot be written: full disk, not a regular file, no such
    folder; names the file (fer_mask_ros.safe_write)."""


class NaoError(RuntimeError):
    """A NAO/qi failure (never contains a password)."""


class NaoUnavailable(NaoError):
    """The robot is not connected right now."""


class NaoTimeout(NaoError):
    """The robot did not answer a call in time (hung, or the link is stalled)."""


class ImageContainerError(ValueError):
    """The ALVideoDevice image container is malformed or in an unsupported colour space."""


class SpeechBackendError(UserError, RuntimeError):
    """A speech backend cannot be created or used (missing tool, bad name)."""


class MasterError(RuntimeError):
    """A private roscore (benchmarks, soak) did not come up."""
