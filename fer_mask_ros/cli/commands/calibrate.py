"""`calibrate`: fit the model's confidence to real photos (one temperature for unmasked, one for masked faces).

The hold-out of each labelled photo source (`<root>/<label>/*`, the part training never sees) goes through the
photo pipeline, unmasked and under training's own mask generator (placed from the detected landmarks), with the
raw (uncalibrated) softmax. The faces the model flags unmasked and those it flags masked each get the temperature
T that minimises their class-balanced negative log-likelihood (every expression weighs the same, as on a posed
set, not as often as a source happens to show it). Written into a copy of the model file's metadata
(`temperatures`), which `export` carries into the ONNX copies; the classifier divides the logits by T.

A hold-out of a source the model trained on is not a new source: the model is more accurate there than on
people from elsewhere, so a temperature fitted there leaves it over-sure on them. `--source-shift U,M`
multiplies the fitted temperatures by what a new source costs, measured leave-one-source-out on a model that
never saw the photo source (models/README.md, "Confidence"): `--fer` fits on FER2013 PublicTest crops, a split
of a source that model trained on, and the photo source's hold-out is then a source it never saw.

Prints ECE before and after, and the class-balanced risk-coverage table the speech policy's thresholds are
chosen from (interaction/policy.py).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict

import numpy as np

from fer_mask_ros.errors import CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model file (.pt) to calibrate; its ONNX copies are used when "
                                                     "current (export it first)")
    parser.add_argument("sources", nargs="*", metavar="PHOTO_SOURCE",
                        help="labelled photo folders <root>/<label>/*; only their hold-out is used")
    parser.add_argument("--fer", metavar="DIR",
                        help="also (or only) FER2013's PublicTest crops (a FER2013 folder or CSV), unmasked and masked")
    parser.add_argument("--source-shift", metavar="U,M", default="1,1",
                        help="multiply the fitted unmasked and masked temperatures by these factors: what a source "
                             "the model never trained on costs (default 1,1: none)")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="calibrated model file to write (default: MODEL itself); re-run `export` after")
    parser.add_argument("--report", metavar="JSON", help="also write the fit and the tables as JSON here")
    from fer_mask_ros.cli.commands.detect import add_detector_argument

    add_detector_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic masks (default 0)")
    parser.add_argument("--threads", type=int, default=None, help="inference threads (default: library default)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _predictions(classifier, sources, seed: int, no_progress: bool, fer=None, detector=None) -> Dict[str, np.ndarray]:
    from fer_mask_ros.errors import DatasetError
    from fer_mask_ros.learning.cross_source import predict_photos
    from fer_mask_ros.learning.photo_sources import is_holdout, labelled_photos
    from fer_mask_ros.perception.detection import make_detector
    from fer_mask_ros.perception.pipeline import FacePipeline

    labels, probs, mask_prob, condition = [], [], [], []
    if fer:
        from fer_mask_ros.learning.cross_source import crop_conditions
        from fer_mask_ros.learning.datasets import load_dataset
        from fer_mask_ros.perception.classifier import predict_in_batches

        try:
            data = load_dataset(fer, usage="PublicTest")
        except DatasetError as exc:
            raise CommandError(str(exc).splitlines()[0]) from None
        if not len(data):
            raise CommandError(f"{fer}: no PublicTest crops")
        for name, crops in crop_conditions(data.images, ("unmasked", "masked"), seed).items():
            p, m = predict_in_batches(classifier, crops, 256, desc=f"PublicTest: {name}", disable_progress=no_progress)
            labels.append(data.labels)
            probs.append(p.astype(np.float64))
            mask_prob.append(m.astype(np.float64))
            condition += [name] * len(data)
    pipeline = FacePipeline(detector=make_detector(detector, num_threads=1), classifier=classifier) if sources else None
    for root in sources:
        try:
            paths, y = labelled_photos(root)
        except DatasetError as exc:
            raise CommandError(str(exc).splitlines()[0]) from None
        keep = np.array([is_holdout(p) for p in paths])
        paths, y = [p for p, k in zip(paths, keep) if k], y[keep]
        if not paths:
            raise CommandError(f"{root}: no hold-out photos to calibrate on")
        progress = None
        if not no_progress:
            from tqdm import tqdm

            def progress(it, total, desc=f"{os.path.basename(os.path.normpath(root))}: photos"):
                return tqdm(it, total=total, desc=desc,
                            unit="photo", file=sys.stderr, leave=False, dynamic_ncols=True)

        p, m, _ = predict_photos(paths, pipeline, ("unmasked", "masked"), seed=seed, progress=progress)
        for name in ("unmasked", "masked"):
            labels.append(y)
            probs.append(p[name])
            mask_prob.append(m[name])
            condition += [name] * len(y)
    return {"labels": np.concatenate(labels), "probs": np.concatenate(probs), "mask_prob": np.concatenate(mask_prob),
            "condition": np.asarray(condition)}


def calibration_report(labels, probs, mask_prob, condition, temperatures) -> dict:
    """ECE before/after and the risk-coverage table after, class-balanced, per true condition."""
    from fer_mask_ros.learning.calibration import (
        class_balanced_weights,
        expected_calibration_error,
        risk_coverage,
        temper,
    )

    unmasked_t, masked_t = temperatures
    flagged = np.nan_to_num(mask_prob) >= 0.5
    calibrated = np.where(flagged[:, None], temper(probs, masked_t), temper(probs, unmasked_t))
    out = {}
    for name in ("unmasked", "masked"):
        rows = condition == name
        w = class_balanced_weights(labels[rows])
        out[name] = {
            "n": int(rows.sum()),
            "ece_before": expected_calibration_error(labels[rows], probs[rows], weights=w),
            "ece_after": expected_calibration_error(labels[rows], calibrated[rows], weights=w),
            "risk_coverage": risk_coverage(labels[rows], calibrated[rows], weights=w),
        }
    return out


def run(args: argparse.Namespace) -> int:
    from fer_mask_ros.learning.calibration import class_balanced_weights, fit_temperature
    from fer_mask_ros.perception.classifier import TEMPERATURES, EmotionClassifier, load_model, save_model

    if not os.path.isfile(args.model):
        raise CommandError(f"model file not found: {args.model}")
    for root in args.sources:
        if not os.path.isdir(root):
            raise CommandError(f"photo source not found: {root}")
    if not args.sources and not args.fer:
        raise CommandError("nothing to calibrate on: give a photo source and/or --fer")
    if args.fer and not os.path.exists(args.fer):
        raise CommandError(f"--fer not found: {args.fer}")
    try:
        shift = tuple(float(v) for v in args.source_shift.split(","))
    except ValueError:
        shift = ()
    if len(shift) != 2 or not all(0.2 <= v <= 5 for v in shift):
        raise CommandError(f"--source-shift must be two factors U,M in [0.2, 5], got {args.source_shift!r}")
    classifier = EmotionClassifier(args.model, num_threads=args.threads, calibrated=False)
    on = [f"the hold-out of {r}" for r in args.sources] + ([f"{args.fer} PublicTest"] if args.fer else [])
    print(f"calibrating {args.model} [{classifier.backend}] on {', '.join(on)}", file=sys.stderr)
    data = _predictions(classifier, args.sources, args.seed, args.no_progress, fer=args.fer, detector=args.detector)
    labels, probs, mask_prob = data["labels"], data["probs"], data["mask_prob"]
    with np.errstate(divide="ignore"):
        log_probs = np.log(np.clip(probs, 1e-12, 1.0))
    flagged = np.nan_to_num(mask_prob) >= 0.5
    temperatures = []
    for rows in (~flagged, flagged):
        found = rows & np.all(np.isfinite(probs), axis=1)
        if found.sum() < 20:
            raise CommandError(f"only {int(found.sum())} faces to fit a temperature on; give more photos")
        fitted = fit_temperature(labels[found], log_probs[found], weights=class_balanced_weights(labels[found]))
        temperatures.append(fitted * shift[len(temperatures)])
    report = calibration_report(labels, probs, mask_prob, data["condition"], tuple(temperatures))
    for name, res in report.items():
        print(f"{name}: {res['n']} faces, class-balanced ECE {res['ece_before']:.3f} -> {res['ece_after']:.3f}")
        print("  min_confidence  coverage  accuracy")
        for row in res["risk_coverage"]:
            acc = "-" if row["accuracy"] is None else f"{100 * row['accuracy']:.1f} %"
            print(f"  {row['min_confidence']:>14.2f}  {100 * row['coverage']:>6.1f} %  {acc:>8}")
    model, meta = load_model(args.model)
    meta = dict(meta)
    fitted_on = [os.path.basename(os.path.normpath(r)) + " hold-out" for r in args.sources]
    meta[TEMPERATURES] = {"unmasked": round(temperatures[0], 4), "masked": round(temperatures[1], 4),
                          "fitted_on": fitted_on + (["FER2013 PublicTest"] if args.fer else []),
                          "source_shift": list(shift), "weighting": "class-balanced", "mask_seed": args.seed}
    out = args.output or args.model
    save_model(model, out, meta)
    note = "" if shift == (1.0, 1.0) else f" (fitted x source shift {shift[0]:g}, {shift[1]:g})"
    print(f"temperatures: unmasked {temperatures[0]:.3f}, masked {temperatures[1]:.3f}{note}; wrote {out}")
    print(f"now run: python -m fer_mask_ros export {out} --calibration <FER2013 folder>   # the ONNX copies")
    if args.report:
        with open(args.report, "w", encoding="utf-8") as handle:
            json.dump({"temperatures": meta[TEMPERATURES], "report": report}, handle, indent=2)
    return 0
