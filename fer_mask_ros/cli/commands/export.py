"""`export`: write the ONNX copies of a model file that the classifier runs through onnxruntime.

MODEL.onnx (fp32) always; with --calibration DATASET also MODEL.int8.onnx, its convolutions in
int8, activation ranges calibrated on --calibration-size face crops of DATASET (the Training
split when DATASET is FER2013), half of them with synthetic masks. Both copies are stamped
with the hash of MODEL, so a retrained .pt never runs with an old copy.
"""
from __future__ import annotations

import argparse
import os
import sys

from fer_mask_ros.errors import CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model file (.pt) to export")
    parser.add_argument("--calibration", metavar="DATASET", default=None,
                        help="fer2013.csv(.gz) or an image folder: also write the int8 copy, calibrated on it")
    parser.add_argument("--calibration-size", type=int, default=512, metavar="N",
                        help="crops used to calibrate the int8 copy (default 512)")
    parser.add_argument("--seed", type=int, default=0, help="picks the calibration crops and their masks (default 0)")


def run(args: argparse.Namespace) -> int:
    from fer_mask_ros.errors import DatasetError, ModelError
    from fer_mask_ros.learning.datasets import calibration_crops
    from fer_mask_ros.learning.export import export_onnx, quantize_onnx

    if not os.path.isfile(args.model):
        raise CommandError(f"model file not found: {args.model}")
    if args.calibration_size < 32:
        raise CommandError(f"--calibration-size must be at least 32, got {args.calibration_size}")
    try:
        print(f"wrote {export_onnx(args.model)}")
    except ModelError as exc:
        raise CommandError(str(exc)) from None
    if args.calibration:
        try:
            crops = calibration_crops(args.calibration, args.calibration_size, args.seed)
        except DatasetError as exc:
            raise CommandError(str(exc)) from None
        print(f"calibrating on {len(crops)} crops of {args.calibration}", file=sys.stderr)
        print(f"wrote {quantize_onnx(args.model, crops)}")
    return 0
