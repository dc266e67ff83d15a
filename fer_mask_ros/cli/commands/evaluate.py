"""`evaluate`: score a model on a dataset, unmasked and with synthetic masks.

Writes OUTPUT/metrics.json, OUTPUT/metrics.md (also printed), confusion_<condition>.png and
misclassified_<condition>.png for each condition evaluated. The masked condition draws
synthetic masks on the same crops with masking.mask_images(images, seed).

`--mask-flag-dir DIR` (with_mask/ and without_mask/ folders of real photos) adds the accuracy
of the mask flag on each folder, each photo classified whole as a crop.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict

import numpy as np

from fer_mask_ros.cli.commands.classify import add_backend_argument, load_crops, warn_unreadable
from fer_mask_ros.errors import CommandError
from fer_mask_ros.imaging import list_image_files
from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.learning.evaluation import (
    confusion_png,
    evaluate_predictions,
    markdown_table,
    mask_flag_metrics,
    misclassified_grid_png,
)
from fer_mask_ros.perception.classifier import load_classifier, predict_in_batches

USAGES = ("Training", "PublicTest", "PrivateTest")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", metavar="DATASET", help="fer2013.csv(.gz), a FER image folder or <root>/<label>/*")
    parser.add_argument("--usage", choices=USAGES, default=None,
                        help="keep only this FER2013 split (default: every sample in DATASET)")
    parser.add_argument("--model", default=None, metavar="FILE", help="model file (default: the shipped model)")
    parser.add_argument("--output", "-o", default=os.path.join("runs", "evaluate"), metavar="DIR",
                        help="output folder (default runs/evaluate)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--masked", dest="conditions", action="store_const", const=("masked",),
                       help="evaluate only the masked condition (default: unmasked and masked)")
    which.add_argument("--no-masked", dest="conditions", action="store_const", const=("unmasked",),
                       help="evaluate only the unmasked condition")
    parser.set_defaults(conditions=("unmasked", "masked"))
    parser.add_argument("--seed", type=int, default=0, help="seed for synthetic masks and --limit sampling (default 0)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="evaluate a seeded random subset of N samples (kept in dataset order)")
    parser.add_argument("--batch-size", type=int, default=256, help="faces per inference batch (default 256)")
    parser.add_argument("--threads", type=int, default=None, help="inference threads (default: library default)")
    add_backend_argument(parser)
    parser.add_argument("--max-errors", type=int, default=64, help="tiles in each misclassified grid (default 64)")
    parser.add_argument("--mask-flag-dir", default=None, metavar="DIR",
                        help="folder with with_mask/ and without_mask/ real photos: report mask-flag accuracy on each")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _load_dataset(args):
    from fer_mask_ros.errors import DatasetError
    from fer_mask_ros.learning.datasets import load_dataset

    if not os.path.exists(args.dataset):
        raise CommandError(f"dataset not found: {args.dataset}")
    try:
        ds = load_dataset(args.dataset, usage=args.usage)
    except DatasetError as exc:
        raise CommandError(str(exc).splitlines()[0]) from None
    if args.limit is not None:
        if args.limit < 1:
            raise CommandError("--limit must be at least 1")
        if args.limit < len(ds):
            rng = np.random.default_rng(args.seed)
            ds = ds.subset(np.sort(rng.choice(len(ds), size=args.limit, replace=False)))
    return ds


def _mask_flag_on_folders(classifier, root: str, batch_size: int, no_progress: bool) -> Dict[str, dict]:
    """Mask-flag accuracy on real photos: root/with_mask/* (truth: masked) and root/without_mask/*."""
    if not os.path.isdir(root):
        raise CommandError(f"--mask-flag-dir not found: {root}")
    results: Dict[str, dict] = {}
    for folder, truth in (("with_mask", True), ("without_mask", False)):
        path = os.path.join(root, folder)
        if not os.path.isdir(path):
            raise CommandError(f"--mask-flag-dir needs with_mask/ and without_mask/ subfolders; missing {path}")
        files = list_image_files([path])

        ok, crops, skipped = load_crops(classifier, files, warn=warn_unreadable)
        _, mask_prob = predict_in_batches(classifier, crops, batch_size, desc=folder, disable_progress=no_progress)
        res = mask_flag_metrics(mask_prob, truth)
        res["skipped"] = len(skipped)
        results[folder] = res
    return results


def _mask_flag_markdown(results: Dict[str, dict]) -> str:
    lines = ["| real photos | images | mask flag accuracy | predicted masked |", "| --- | ---: | ---: | ---: |"]
    for name, res in results.items():
        acc = "–" if res["accuracy"] is None else f"{100 * res['accuracy']:.1f}%"
        rate = "–" if res["predicted_masked_rate"] is None else f"{100 * res['predicted_masked_rate']:.1f}%"
        lines.append(f"| {name} | {res['n']} | {acc} | {rate} |")
    return "\n".join(lines) + "\n"


def run(args) -> int:
    if args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1")
    if not os.path.exists(args.dataset):
        raise CommandError(f"dataset not found: {args.dataset}")
    if args.mask_flag_dir is not None and not os.path.isdir(args.mask_flag_dir):
        raise CommandError(f"--mask-flag-dir not found: {args.mask_flag_dir}")
    classifier = load_classifier(args.model, args.threads, args.backend)
    ds = _load_dataset(args)
    os.makedirs(args.output, exist_ok=True)
    print(f"evaluating {len(ds)} faces from {args.dataset}" + (f" ({args.usage})" if args.usage else "")
          + f" with {getattr(classifier, 'model_path', args.model) or 'the shipped model'}"
          + f" [{getattr(classifier, 'backend', '?')}]", file=sys.stderr)

    results: Dict[str, dict] = {}
    for condition in args.conditions:
        if condition == "masked":
            from fer_mask_ros.learning.masking import mask_images

            images = mask_images(ds.images, args.seed)
        else:
            images = ds.images
        probs, mask_prob = predict_in_batches(classifier, images, args.batch_size, desc=condition,
                                              disable_progress=args.no_progress)
        res = evaluate_predictions(ds.labels, probs, mask_prob=mask_prob, mask_true=(condition == "masked"))
        results[condition] = res
        confusion_png(res["confusion"], EMOTIONS, os.path.join(args.output, f"confusion_{condition}.png"),
                      f"{condition}: accuracy {100 * (res['accuracy'] or 0):.1f}%, n={res['n']}")
        misclassified_grid_png(images, ds.labels, np.argmax(probs, axis=1), probs,
                               os.path.join(args.output, f"misclassified_{condition}.png"),
                               max_items=args.max_errors, title=f"{condition}: most confident mistakes")

    real = None
    if args.mask_flag_dir is not None:
        real = _mask_flag_on_folders(classifier, args.mask_flag_dir, args.batch_size, args.no_progress)

    model_path = getattr(classifier, "model_path", None) or args.model
    summary = {
        "dataset": args.dataset,
        "usage": args.usage,
        "model": str(model_path) if model_path else None,
        "backend": getattr(classifier, "backend", None),
        "seed": args.seed,
        "limit": args.limit,
        "n": len(ds),
        "class_counts": ds.class_counts(),
        "conditions": results,
    }
    if real is not None:
        summary["mask_flag_real"] = {"dir": args.mask_flag_dir, **real}
    with open(os.path.join(args.output, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)

    md = [f"# Evaluation: {os.path.basename(os.path.normpath(args.dataset))}"
          + (f" ({args.usage})" if args.usage else ""), "",
          f"model: `{summary['model'] or 'shipped model'}` ({summary['backend']}), samples: {len(ds)}, "
          f"mask seed: {args.seed}", "", markdown_table(results)]
    if real is not None:
        md.append(_mask_flag_markdown(real))
    text = "\n".join(md)
    with open(os.path.join(args.output, "metrics.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    print(f"wrote {args.output}/metrics.json, metrics.md and PNGs", file=sys.stderr)
    return 0
