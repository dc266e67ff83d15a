"""`evaluate`: score a model on one or more sources, unmasked and masked, side by side.

A SOURCE is FER2013 (CSV or image folders; `--usage` picks a split) or any labelled folder
`<root>/<label>/*`. Crops are classified as they are; with `--photos`, labelled folders hold whole
photos that go through the photo pipeline exactly as `classify PHOTO` and the live graph run them
(detector, aligned crop, classifier); a photo with no face found counts as wrong and is counted.

Conditions (`--conditions`): unmasked, masked (training's own mask generator; on photos placed from
the detected landmarks) and unseen (a held-out mask family training never sees, learning/unseen_masks.py).
`--holdout` keeps only the part of a photo source that training never sees (photo_sources.is_holdout).
`--peer-python` runs the PyPI `fer` peer (make bench-peer) on the same images in the same run.

Writes OUTPUT/metrics.json, OUTPUT/metrics.md (also printed: one cross-source table with accuracy,
balanced accuracy, 4/3-class views, mask flag, per-class recall), and per source and condition
confusion_<source>_<condition>.png (misclassified_<condition>.png too, for crop sources).

`--mask-flag-dir DIR` (with_mask/ and without_mask/ folders of real photos) adds the mask flag's
accuracy on each folder two ways: each photo squeezed whole into a crop (as `classify --crops`) and
through the photo pipeline (as `classify PHOTO`; a photo without a face counts as a miss).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List

import numpy as np

from fer_mask_ros.cli.commands.classify import add_backend_argument, load_crops, warn_unreadable
from fer_mask_ros.cli.commands.detect import add_detector_argument
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
CONDITION_NAMES = {"unmasked": "unmasked", "masked": "masked", "unseen": "unseen mask"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="fer2013.csv(.gz), a FER image folder or a labelled folder <root>/<label>/*; several "
                             "sources are reported side by side")
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
    which.add_argument("--conditions", dest="conditions", type=_conditions, metavar="LIST",
                       help="comma-separated: unmasked, masked, unseen (default unmasked,masked)")
    parser.set_defaults(conditions=("unmasked", "masked"))
    parser.add_argument("--photos", action="store_true",
                        help="labelled folders hold whole photos: run the photo pipeline (detector, aligned crop, "
                             "classifier); a photo with no face found counts as wrong")
    parser.add_argument("--holdout", action="store_true",
                        help="photo sources: only the part training never sees (fixed hash of the person's name); "
                             "--mask-flag-dir: only the photos training holds out (fixed hash of the file name)")
    add_detector_argument(parser)
    parser.add_argument("--teacher", metavar="ONNX",
                        help="also score the real-face teacher alone (the RAF-DB MobileFaceNet ONNX file) on the same "
                             "faces: photos aligned from the detector's landmarks, crops from FER2013's framing")
    parser.add_argument("--peer-python", metavar="PYTHON",
                        help="python of a venv with the PyPI `fer` package (make bench-peer: .venv-peer/bin/python): "
                             "score the peer on the same images")
    parser.add_argument("--seed", type=int, default=0, help="seed for synthetic masks and --limit sampling (default 0)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="evaluate a seeded random subset of N samples (kept in dataset order)")
    parser.add_argument("--batch-size", type=int, default=256, help="faces per inference batch (default 256)")
    parser.add_argument("--threads", type=int, default=None, help="inference threads (default: library default)")
    add_backend_argument(parser)
    parser.add_argument("--max-errors", type=int, default=64, help="tiles in each misclassified grid (default 64)")
    parser.add_argument("--mask-flag-dir", default=None, metavar="DIR",
                        help="folder with with_mask/ and without_mask/ real photos: report mask-flag accuracy on each")
    parser.add_argument("--uncalibrated", action="store_true",
                        help="score the raw softmax, without the model's fitted temperatures (see `calibrate`)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _conditions(text: str):
    names = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in names if c not in CONDITION_NAMES]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown condition {', '.join(bad) or text!r}; "
                                         f"choose from {', '.join(CONDITION_NAMES)}")
    return tuple(dict.fromkeys(names))


def _subsample(n: int, args) -> np.ndarray:
    if args.limit is None or args.limit >= n:
        return np.arange(n)
    rng = np.random.default_rng(args.seed)
    return np.sort(rng.choice(n, size=args.limit, replace=False))


def _load_dataset(path: str, args):
    from fer_mask_ros.errors import DatasetError
    from fer_mask_ros.learning.datasets import load_dataset

    try:
        ds = load_dataset(path, usage=args.usage)
    except DatasetError as exc:
        raise CommandError(str(exc).splitlines()[0]) from None
    return ds.subset(_subsample(len(ds), args))


def _is_fer_layout(path: str) -> bool:
    """FER2013 CSV, or its train/ and test/ image folders (those are always crops)."""
    return os.path.isfile(path) or any(os.path.isdir(os.path.join(path, sub)) for sub in ("train", "test"))


def _source_name(path: str, args, taken: Dict[str, object]) -> str:
    name = os.path.basename(os.path.normpath(path)) or "source"
    if args.usage and _is_fer_layout(path):
        name += f" {args.usage}"
    elif args.photos and args.holdout:
        name += " hold-out"
    base, k = name, 2
    while name in taken:
        name, k = f"{base} ({k})", k + 1
    return name


def _evaluate_crops(path: str, name: str, classifier, args) -> dict:
    from fer_mask_ros.learning.cross_source import crop_conditions, peer_on_crops

    ds = _load_dataset(path, args)
    images = crop_conditions(ds.images, [CONDITION_NAMES[c] for c in args.conditions], args.seed)
    out = {"path": path, "kind": "crops", "n": len(ds), "class_counts": ds.class_counts(), "conditions": {},
           "peer": {}}
    peer = peer_on_crops(args.peer_python, images) if args.peer_python else {}
    teacher = _teacher(args)
    for condition, crops in images.items():
        zoo = getattr(args, "_zoo", None)
        crop_model = zoo.crop_classifier() if zoo is not None and zoo.name != "fer_mask_net" else classifier
        probs, mask_prob = predict_in_batches(crop_model, crops, args.batch_size, desc=f"{name}: {condition}",
                                              disable_progress=args.no_progress)
        res = evaluate_predictions(ds.labels, probs, mask_prob=mask_prob, mask_true=(condition != "unmasked"))
        out["conditions"][condition] = res
        if condition in peer:
            out["peer"][condition] = evaluate_predictions(ds.labels, peer[condition])
        if teacher is not None:
            alone = teacher.probabilities_of_crops(crops)
            out.setdefault("teacher", {})[condition] = evaluate_predictions(ds.labels, alone)
        _confusion(res, args.output, name, condition)
        suffix = condition.replace(" ", "_")
        if _can_plot():
            misclassified_grid_png(crops, ds.labels, np.argmax(probs, axis=1), probs,
                                   os.path.join(args.output, f"misclassified_{_slug(name)}_{suffix}.png"),
                                   max_items=args.max_errors, title=f"{name}, {condition}: most confident mistakes")
    return out


def _evaluate_photos(path: str, name: str, classifier, args) -> dict:
    import tempfile

    from fer_mask_ros.errors import DatasetError
    from fer_mask_ros.learning.cross_source import predict_photos, run_peer
    from fer_mask_ros.learning.photo_sources import is_holdout, labelled_photos

    try:
        paths, labels = labelled_photos(path)
    except DatasetError as exc:
        raise CommandError(str(exc).splitlines()[0]) from None
    if args.holdout:
        keep = np.array([is_holdout(p) for p in paths])
        paths, labels = [p for p, k in zip(paths, keep) if k], labels[keep]
    chosen = _subsample(len(paths), args)
    paths, labels = [paths[i] for i in chosen], labels[chosen]
    pipeline = _photo_pipeline(classifier, args)
    conditions = [CONDITION_NAMES[c] for c in args.conditions]
    out = {"path": path, "kind": "photos", "n": len(paths), "holdout": bool(args.holdout),
           "class_counts": {e: int((labels == i).sum()) for i, e in enumerate(EMOTIONS)}, "conditions": {},
           "peer": {}}
    with tempfile.TemporaryDirectory(prefix="fer-eval-") as tmp:
        progress = None
        if not args.no_progress:
            from tqdm import tqdm

            def progress(it, total):
                return tqdm(it, total=total, desc=f"{name}: photos", unit="photo", file=sys.stderr, leave=False,
                            dynamic_ncols=True)

        teacher = _teacher(args)
        teacher_probs: Dict[str, np.ndarray] = {}
        probs, mask_prob, files = predict_photos(paths, pipeline, conditions, seed=args.seed,
                                                 keep_images=tmp if args.peer_python else None, progress=progress,
                                                 second=None if teacher is None else teacher.probabilities_of_face,
                                                 second_probs=teacher_probs)
        for condition, p in teacher_probs.items():
            out.setdefault("teacher", {})[condition] = evaluate_predictions(labels, p)
        for condition in conditions:
            res = evaluate_predictions(labels, probs[condition], mask_prob=mask_prob[condition],
                                       mask_true=(condition != "unmasked"))
            out["conditions"][condition] = res
            _confusion(res, args.output, name, condition)
            if args.peer_python:  # the same files; no masked copy (no face for our landmarks) is a miss for both
                peer = np.full((len(labels), len(EMOTIONS)), np.nan)
                placed = [k for k, f in enumerate(files[condition]) if f is not None]
                if placed:
                    peer[placed] = run_peer(args.peer_python, [{"path": files[condition][k], "crop": False}
                                                               for k in placed], tmp)
                out["peer"][condition] = evaluate_predictions(labels, peer)
    return out


def _teacher(args):
    """The real-face teacher for --teacher (made once per run), or None."""
    if not getattr(args, "teacher", None):
        return None
    if getattr(args, "_teacher", None) is None:
        from fer_mask_ros.perception.real_face_teacher import RealFaceTeacher

        args._teacher = RealFaceTeacher(args.teacher, num_threads=args.threads or 1)
    return args._teacher


def _photo_pipeline(classifier, args):
    from fer_mask_ros.perception.detection import make_detector
    from fer_mask_ros.perception.pipeline import FacePipeline

    if getattr(args, "_pipeline", None) is None:  # the detector `classify PHOTO` uses (--detector picks another)
        detector = make_detector(getattr(args, "detector", None), num_threads=args.threads or 1)
        args._pipeline = FacePipeline(detector=detector, classifier=getattr(args, "_zoo", None) or classifier)
    return args._pipeline


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_") or "source"


_PLOTS: List[bool] = []  # [matplotlib importable], decided (and said) once per process


def _can_plot() -> bool:
    """matplotlib is an extra (`pip install fer_mask_ros[plots]`): without it the figures are left out, said once."""
    if not _PLOTS:
        import importlib.util  # noqa: PLC0415

        _PLOTS.append(importlib.util.find_spec("matplotlib") is not None)
        if not _PLOTS[0]:
            print("evaluate: confusion matrices and mistake grids not drawn: matplotlib is not installed "
                  "(pip install 'fer_mask_ros[plots]'); the metrics are complete", file=sys.stderr)
    return _PLOTS[0]


def _confusion(res: dict, output: str, name: str, condition: str) -> None:
    if not _can_plot():
        return
    missed = f", {res['no_face']} without a face" if res.get("no_face") else ""
    confusion_png(res["confusion"], EMOTIONS,
                  os.path.join(output, f"confusion_{_slug(name)}_{condition.replace(' ', '_')}.png"),
                  f"{name}, {condition}: accuracy {100 * (res['accuracy'] or 0):.1f}%, "
                  f"balanced {100 * (res['balanced_accuracy'] or 0):.1f}%, n={res['n']}{missed}")


def _mask_flag_on_folders(classifier, root: str, batch_size: int, no_progress: bool, args=None) -> Dict[str, dict]:
    """Mask-flag accuracy on real photos: root/with_mask/* (truth: masked) and root/without_mask/*, each photo
    as a crop and (with args) through the photo pipeline."""
    if not os.path.isdir(root):
        raise CommandError(f"--mask-flag-dir not found: {root}")
    results: Dict[str, dict] = {}
    for folder, truth in (("with_mask", True), ("without_mask", False)):
        path = os.path.join(root, folder)
        if not os.path.isdir(path):
            raise CommandError(f"--mask-flag-dir needs with_mask/ and without_mask/ subfolders; missing {path}")
        files = list_image_files([path])
        if args is not None and args.holdout:  # the photos the mask head never trained on
            from fer_mask_ros.learning.training import held_out

            files = [f for f in files if held_out(f)]

        ok, crops, skipped = load_crops(classifier, files, warn=warn_unreadable)
        _, mask_prob = predict_in_batches(classifier, crops, batch_size, desc=folder, disable_progress=no_progress)
        res = mask_flag_metrics(mask_prob, truth)
        res["skipped"] = len(skipped)
        results[folder] = res  # each photo squeezed whole into a crop
        if args is not None:
            results[f"{folder} (photo pipeline)"] = _mask_flag_photo_mode(classifier, files, truth, args)
    return results


def _mask_flag_photo_mode(classifier, files: List[str], truth: bool, args) -> dict:
    """The flag of each photo's best face through the photo pipeline; a photo without a face is a miss."""
    from fer_mask_ros.learning.cross_source import predict_photos

    _, mask_prob, _ = predict_photos(files, _photo_pipeline(classifier, args), ["unmasked"])
    found = np.isfinite(mask_prob["unmasked"])
    res = mask_flag_metrics(mask_prob["unmasked"][found], truth)
    if res["accuracy"] is not None:
        res["accuracy"] *= found.sum() / len(files)
    res.update(n=len(files), no_face=int((~found).sum()))
    return res


def _mask_flag_markdown(results: Dict[str, dict]) -> str:
    lines = ["| real photos | images | mask flag accuracy | predicted masked |", "| --- | ---: | ---: | ---: |"]
    for name, res in results.items():
        acc = "–" if res["accuracy"] is None else f"{100 * res['accuracy']:.1f}%"
        rate = "–" if res["predicted_masked_rate"] is None else f"{100 * res['predicted_masked_rate']:.1f}%"
        missed = f" ({res['no_face']} without a face)" if res.get("no_face") else ""
        lines.append(f"| {name} | {res['n']}{missed} | {acc} | {rate} |")
    return "\n".join(lines) + "\n"


def cross_source_table(sources: Dict[str, dict]) -> str:
    """Every source and condition in one table (ours and, when measured, the peer), then per-class recall."""
    def pct(v):
        return "–" if v is None else f"{100 * v:.1f}"

    head = ("| source | condition | model | n | no face | accuracy | balanced | 4-class | 3-class | mask flag | ECE "
            "| spoken | spoken right |\n"
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows, recall_rows = [head], ["| source | condition | model | " + " | ".join(EMOTIONS) + " |",
                                 "| --- | --- | --- | " + " | ".join("---:" for _ in EMOTIONS) + " |"]
    for name, src in sources.items():
        for condition, res in src["conditions"].items():
            others = (("RAF-DB teacher", src.get("teacher", {}).get(condition)),
                      ("fer (peer)", src["peer"].get(condition)))
            for who, r in (("fer_mask_ros", res),) + others:
                if r is None:
                    continue
                flag = (r.get("mask_flag") or {}).get("accuracy")
                ece = "–" if r.get("ece") is None else f"{r['ece']:.3f}"
                spoken = r.get("spoken") or {}
                rows.append(f"| {name} | {condition} | {who} | {r['n']} | {r.get('no_face', 0)} | "
                            f"{pct(r['accuracy'])} | {pct(r['balanced_accuracy'])} | "
                            f"{pct(r['four_class']['accuracy'])} | {pct(r['three_class']['accuracy'])} | {pct(flag)} | "
                            f"{ece} | {pct(spoken.get('coverage'))} | {pct(spoken.get('accuracy'))} |")
                recall_rows.append(f"| {name} | {condition} | {who} | " + " | ".join(
                    pct(r["per_class"][e]["recall"]) for e in EMOTIONS) + " |")
    note = ("\nECE: expected calibration error (15 bins). spoken / spoken right: as stills, the share of faces whose "
            "confidence reaches the speech policy's threshold (min_confidence, min_confidence_masked for faces "
            "flagged masked) and the share of those named right; a photo without a face is never spoken about.\n")
    return ("\n".join(rows) + "\n" + note + "\nRecall per class (%):\n\n" + "\n".join(recall_rows) + "\n\n"
            + risk_coverage_table(sources))


def risk_coverage_table(sources: Dict[str, dict]) -> str:
    """Per source and condition (ours): at each min_confidence, the share of faces spoken about and how many
    of those are right."""
    lines = ["Risk-coverage (ours): at each min_confidence, faces spoken about % / of those right %:", ""]
    first = next((res for src in sources.values() for res in src["conditions"].values() if res.get("risk_coverage")),
                 None)
    if first is None:
        return ""
    thresholds = [row["min_confidence"] for row in first["risk_coverage"]]
    lines.append("| source | condition | " + " | ".join(f"{t:.2f}" for t in thresholds) + " |")
    lines.append("| --- | --- | " + " | ".join("---:" for _ in thresholds) + " |")
    for name, src in sources.items():
        for condition, res in src["conditions"].items():
            cells = []
            for row in res.get("risk_coverage", []):
                acc = "–" if row["accuracy"] is None else f"{100 * row['accuracy']:.0f}"
                cells.append(f"{100 * row['coverage']:.0f} / {acc}")
            lines.append(f"| {name} | {condition} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(args) -> int:
    if args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1")
    if args.limit is not None and args.limit < 1:
        raise CommandError("--limit must be at least 1")
    for path in args.sources:
        if not os.path.exists(path):
            raise CommandError(f"dataset not found: {path}")
    if args.mask_flag_dir is not None and not os.path.isdir(args.mask_flag_dir):
        raise CommandError(f"--mask-flag-dir not found: {args.mask_flag_dir}")
    if args.teacher and not os.path.isfile(args.teacher):
        raise CommandError(f"--teacher not found: {args.teacher}")
    if args.peer_python and not (os.path.isfile(args.peer_python) and os.access(args.peer_python, os.X_OK)):
        raise CommandError(f"--peer-python is not an executable: {args.peer_python} (make bench-peer builds one)")
    classifier = load_classifier(args.model, args.threads, args.backend)
    classifier.calibrated = not args.uncalibrated
    from fer_mask_ros.perception.zoo import default_classifier, make_zoo

    args._zoo = make_zoo(getattr(args, "classifier", None) or default_classifier(still=bool(args.photos)),
                         args.threads, classifier=classifier)
    os.makedirs(args.output, exist_ok=True)
    model_path = getattr(classifier, "model_path", None) or args.model
    print(f"evaluating {len(args.sources)} source(s) with {args._zoo.name}: {model_path or 'the shipped model'}"
          f" [{getattr(classifier, 'backend', '?')}]", file=sys.stderr)

    sources: Dict[str, dict] = {}
    for path in args.sources:
        name = _source_name(path, args, sources)
        photos = args.photos and not _is_fer_layout(path)
        sources[name] = (_evaluate_photos if photos else _evaluate_crops)(path, name, classifier, args)

    real = None
    if args.mask_flag_dir is not None:
        real = _mask_flag_on_folders(classifier, args.mask_flag_dir, args.batch_size, args.no_progress, args)

    summary = {
        "sources_given": list(args.sources),
        "usage": args.usage,
        "model": str(model_path) if model_path else None,
        "backend": getattr(classifier, "backend", None),
        "classifier": args._zoo.name,
        "fusion": args._zoo.fusion.describe(),
        "seed": args.seed,
        "limit": args.limit,
        "sources": sources,
    }
    if len(sources) == 1:  # the single-source keys of earlier versions
        only = next(iter(sources.values()))
        summary.update(dataset=args.sources[0], n=only["n"], class_counts=only["class_counts"],
                       conditions=only["conditions"])
    if real is not None:
        summary["mask_flag_real"] = {"dir": args.mask_flag_dir, **real}
    from fer_mask_ros.safe_write import write_text  # atomic; a full disk is one error line

    write_text(os.path.join(args.output, "metrics.json"), json.dumps(summary, indent=2))

    md = ["# Evaluation: " + ", ".join(sources), "",
          f"model: `{summary['model'] or 'shipped model'}` ({summary['backend']}), mask seed: {args.seed}"
          + (", peer: PyPI `fer` (Haar + mini-Xception) on the same images" if args.peer_python else ""), "",
          cross_source_table(sources)]
    if len(sources) == 1:
        md += ["", markdown_table(next(iter(sources.values()))["conditions"])]
    if real is not None:
        md.append(_mask_flag_markdown(real))
    text = "\n".join(md)
    write_text(os.path.join(args.output, "metrics.md"), text)
    print(text)
    print(f"wrote {args.output}/metrics.json, metrics.md and PNGs", file=sys.stderr)
    return 0
