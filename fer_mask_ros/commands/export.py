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

import numpy as np

from ..cli import CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model file (.pt) to export")
    parser.add_argument("--calibration", metavar="DATASET", default=None,
                        help="fer2013.csv(.gz) or an image folder: also write the int8 copy, calibrated on it")
    parser.add_argument("--calibration-size", type=int, default=512, metavar="N",
                        help="crops used to calibrate the int8 copy (default 512)")
    parser.add_argument("--seed", type=int, default=0, help="picks the calibration crops and their masks (default 0)")


def calibration_crops(dataset_path: str, count: int, seed: int) -> np.ndarray:
    """`count` crops of the dataset (its Training split where it has one), the second half masked."""
    from ..datasets import load_dataset
    from ..masking import mask_images

    data = load_dataset(dataset_path)
    usages = np.asarray(data.usages)
    if (usages == "Training").any():
        data = data.subset(usages == "Training")
    if len(data) == 0:
        raise CommandError(f"{dataset_path}: no images to calibrate on")
    rng = np.random.default_rng(seed)
    picked = data.images[np.sort(rng.permutation(len(data))[:count])]
    half = len(picked) // 2
    return np.concatenate([picked[:half], mask_images(picked[half:], seed)])


def run(args: argparse.Namespace) -> int:
    from ..classifier import ModelError, export_onnx, quantize_onnx
    from ..datasets import DatasetError

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
