"""Pick the shipped weights from a fine-tuning run: interpolation with the start model and a prior shift.

    python tools/select_weights.py START.pt TUNED.pt FER2013_DIR --photo-source DIR [--output best.pt]

Scores every (lambda, alpha) on the selection sources only: FER2013 PublicTest (accuracy, unmasked and
with training's masks) and each photo source's hold-out (balanced accuracy, unmasked and masked; a photo
without a face counts as wrong). Selection never sees PrivateTest, nor the held-out mask family.
Prints a table and writes the best model (its metadata names lambda, alpha and the scores).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("start")
    parser.add_argument("tuned")
    parser.add_argument("fer2013")
    parser.add_argument("--photo-source", action="append", default=[])
    parser.add_argument("--lambdas", default="0,0.25,0.4,0.5,0.6,0.75,0.9,1")
    parser.add_argument("--alphas", default="0,0.25,0.5,0.75,1")
    parser.add_argument("--output")
    args = parser.parse_args(argv)

    import torch

    from fer_mask_ros.labels import EMOTIONS
    from fer_mask_ros.learning.datasets import load_dataset
    from fer_mask_ros.learning.evaluation import classification_metrics
    from fer_mask_ros.learning.masking import mask_images
    from fer_mask_ros.learning.training import photo_source_crops
    from fer_mask_ros.learning.weights import interpolate, shift_prior
    from fer_mask_ros.perception.classifier import load_model, save_model

    torch.set_num_threads(2)
    start, _ = load_model(args.start)
    tuned, meta = load_model(args.tuned)
    val = load_dataset(args.fer2013, usage="PublicTest")
    train_labels = load_dataset(args.fer2013, usage="Training").labels
    prior = np.bincount(train_labels, minlength=7) + 1.0
    log_prior = np.log(prior / prior.sum())
    sets = [("PublicTest", val.images, val.labels, None, "acc"),
            ("PublicTest masked", mask_images(val.images, 12345), val.labels, None, "acc")]
    for root, (_, _, hx, hy, found) in zip(args.photo_source, photo_source_crops(args.photo_source)):
        name = root.rstrip("/").split("/")[-1]
        sets += [(f"{name}", hx, hy, found, "bacc"), (f"{name} masked", mask_images(hx, 12345), hy, found, "bacc")]

    def logits(model, images):
        out = []
        with torch.no_grad():
            for s in range(0, len(images), 512):
                x = torch.from_numpy(images[s:s + 512]).float().unsqueeze(1) / 255.0
                out.append(model(x)[0].float().numpy())
        return np.concatenate(out)

    print("| lambda | alpha | " + " | ".join(f"{n} ({m})" for n, _, _, _, m in sets) + " | score |")
    print("| ---: | ---: | " + " | ".join("---:" for _ in sets) + " | ---: |")
    best = (-1.0, None)
    for lam in (float(v) for v in args.lambdas.split(",")):
        model = interpolate(start, tuned, lam)
        cached = [logits(model, images) for _, images, _, _, _ in sets]
        for alpha in (float(v) for v in args.alphas.split(",")):
            scores = []
            for (_, _, labels, found, metric), raw in zip(sets, cached):
                pred = (raw + alpha * log_prior).argmax(1)
                if found is not None:
                    pred = np.where(found, pred, -1)
                metrics = classification_metrics(labels, pred, EMOTIONS)
                scores.append(metrics["accuracy"] if metric == "acc" else metrics["balanced_accuracy"])
            score = float(np.mean(scores))
            cells = " | ".join(f"{100 * s:.1f}" for s in scores)
            print(f"| {lam:.2f} | {alpha:.2f} | {cells} | {100 * score:.2f} |", flush=True)
            if score > best[0]:
                best = (score, (lam, alpha, scores))
    lam, alpha, scores = best[1]
    print(f"best: lambda {lam}, alpha {alpha}, score {100 * best[0]:.2f}")
    if args.output:
        model = shift_prior(interpolate(start, tuned, lam), log_prior, alpha)
        meta = dict(meta, selection={"start": args.start, "tuned": args.tuned, "lambda": lam, "alpha": alpha,
                                     "scores": {n: s for (n, *_), s in zip(sets, scores)}})
        save_model(model, args.output, meta)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
