"""`python -m fer_mask_ros <command>`: one entry point over the core library.

Each command lives in fer_mask_ros/cli/commands/<name>.py and defines
`add_arguments(parser)` and `run(args) -> int`. Modules load lazily so that
`detect` never imports torch and `mask` never imports onnxruntime.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from fer_mask_ros.errors import CommandError, UserError

__all__ = ["COMMANDS", "CommandError", "build_parser", "main"]

COMMANDS = {
    "mask": "write masked copies of face images or dataset folders",
    "train": "train the masked-face expression model",
    "evaluate": "evaluate a model on a dataset (tables, JSON, confusion matrix, error grid)",
    "classify": "classify face crops (--crops) or detect and classify faces in photos",
    "detect": "detect faces and landmarks in images, one CSV row per face",
    "analyze": "analyse videos and rosbags: per-frame emotions, events, timeline, report",
    "live": "a webcam (or a video) through the pipeline: overlay, console lines, speech; no ROS needed",
    "calibrate": "fit the model's confidence to real photos (temperatures for unmasked and masked faces)",
    "export": "write the ONNX copies (fp32, and int8 with --calibration) of a model file",
    "bench": "print speed tables for the detector, the classifier or the graph",
    "fake-nao": "run a simulated NAO (real qi services: camera, speech, LEDs)",
    "make-clip": "build the bundled demo clip from FER2013 test faces",
    "ros2": "the demo graph on ROS 2 (rclpy; make setup-ros2): `ros2 demo`",
}


def _module_name(command: str) -> str:
    return "fer_mask_ros.cli.commands." + command.replace("-", "_")


#: third-party modules only some commands need -> what to install for them
OPTIONAL_MODULES = {"torch": "pip install 'fer_mask_ros[train]' (or: pip install torch)",
                    "torchvision": "pip install torchvision",
                    "onnx": "pip install 'fer_mask_ros[export]' (or: pip install onnx)"}


def version() -> str:
    """The package version: the installed distribution's (pip), else package.xml's (catkin, source tree)."""
    import re

    try:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        return dist_version("fer_mask_ros")
    except (ImportError, PackageNotFoundError):
        pass
    from fer_mask_ros.config import share_dir

    share = share_dir()
    if share is not None:
        found = re.search(r"<version>\s*([^<\s]+)\s*</version>", (share / "package.xml").read_text(encoding="utf-8"))
        if found:
            return found.group(1)
    return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fer_mask_ros", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"fer_mask_ros {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in COMMANDS.items():
        sub.add_parser(name, help=summary, add_help=False)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--version":
        print(f"fer_mask_ros {version()}")
        return 0
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser = build_parser()
        if argv and argv[0] not in ("-h", "--help"):
            parser.print_usage(sys.stderr)
            print(f"error: unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
            return 2
        parser.print_help()
        return 0
    command, rest = argv[0], argv[1:]
    try:
        module = importlib.import_module(_module_name(command))
        parser = argparse.ArgumentParser(prog=f"python -m fer_mask_ros {command}", description=COMMANDS[command])
        module.add_arguments(parser)
        args = parser.parse_args(rest)
        return int(module.run(args) or 0)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top not in OPTIONAL_MODULES:
            raise
        print(f"error: {command} needs {top}, which is not installed: {OPTIONAL_MODULES[top]}", file=sys.stderr)
        return 2
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader is gone; no traceback, and none again at exit
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
