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
    "export": "write the ONNX copies (fp32, and int8 with --calibration) of a model file",
    "bench": "print speed tables for the detector, the classifier or the graph",
    "fake-nao": "run a simulated NAO (real qi services: camera, speech, LEDs)",
    "make-clip": "build the bundled demo clip from FER2013 test faces",
}


def _module_name(command: str) -> str:
    return "fer_mask_ros.cli.commands." + command.replace("-", "_")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fer_mask_ros", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in COMMANDS.items():
        sub.add_parser(name, help=summary, add_help=False)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser = build_parser()
        if argv and argv[0] not in ("-h", "--help"):
            parser.print_usage(sys.stderr)
            print(f"error: unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
            return 2
        parser.print_help()
        return 0
    command, rest = argv[0], argv[1:]
    module = importlib.import_module(_module_name(command))
    parser = argparse.ArgumentParser(prog=f"python -m fer_mask_ros {command}", description=COMMANDS[command])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
