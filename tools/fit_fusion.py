"""Fit and check the zoo's mask-aware fusion (models/fusion.json) by leave-one-source-out.

    collect  every member's log-probabilities on a source, per condition -> runs/fusion/<source>.npz
             photos (labelled folders, --holdout: only the people training never saw): the photo pipeline's
             detector on the unmasked photo places the mask, then the detector runs again on the masked photo
             and each member reads the face it finds there (as `classify PHOTO` does); FER2013 crops: FER framing.
    fit      weights and a temperature per condition, class-balanced NLL, on one source; reports on the others.

    PYTHONPATH=. python tools/fit_fusion.py collect data/expressions-lfw --photos --holdout --name lfw
    PYTHONPATH=. python tools/fit_fusion.py collect data/fer2013 --usage PublicTest --name fer_public
    PYTHONPATH=. python tools/fit_fusion.py fit --fit lfw --report fer_public --output models/fusion.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from tqdm import tqdm

MEMBERS = ("fer_mask_net", "faceapi", "mobilefacenet")
CONDITIONS = ("unmasked", "masked", "unseen mask")
OUT = "runs/fusion"


ALIGNMENTS = {"eyes_nose": [0, 1, 2], "eyes": [0, 1]}


def align_points(image, landmarks, idx):
    """align_face from a subset of the 5 landmarks (the rest are where the template puts them)."""
    import cv2

    from fer_mask_ros.perception.real_face_teacher import ARCFACE_TEMPLATE, FACE_SIZE, similarity_transform

    m = similarity_transform(np.asarray(landmarks, float)[idx], ARCFACE_TEMPLATE[idx])
    face = cv2.warpAffine(image, m, (FACE_SIZE, FACE_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(face, cv2.COLOR_BGR2RGB)


def _zoo(threads):
    from fer_mask_ros.perception.zoo import make_member

    return {m: make_member(m, threads) for m in MEMBERS}


def _eye_distance(lm):
    return float(np.hypot(*(lm[1] - lm[0]))) if lm is not None else np.nan


def collect_photos(root, holdout, limit, seed, threads):
    from fer_mask_ros.imaging import read_image, to_bgr
    from fer_mask_ros.learning.cross_source import masked_copy
    from fer_mask_ros.learning.photo_sources import is_holdout, labelled_photos
    from fer_mask_ros.perception.detection import make_detector
    from fer_mask_ros.perception.photo import detect_photo_faces

    paths, labels = labelled_photos(root)
    keep = [i for i, p in enumerate(paths) if (is_holdout(p) if holdout else True)]
    if limit:
        keep = sorted(np.random.default_rng(seed).choice(keep, size=min(limit, len(keep)), replace=False).tolist())
    paths, labels = [paths[i] for i in keep], labels[keep]
    detector = make_detector(None, num_threads=threads)
    members = _zoo(threads)
    n = len(paths)
    out = {"labels": labels, "paths": np.array(paths)}
    for c in CONDITIONS:
        for m in MEMBERS:
            out[f"{c}/{m}"] = np.full((n, 7), np.nan)
        out[f"{c}/mask_prob"] = np.full(n, np.nan)
        out[f"{c}/face_px"] = np.full(n, np.nan)
        out[f"{c}/landmark_error"] = np.full(n, np.nan)  # detector landmarks on this image vs on the plain photo
        out[f"{c}/landmarks"] = np.full((n, 5, 2), np.nan)
        out[f"{c}/score"] = np.full(n, np.nan)
        for points in ALIGNMENTS:
            out[f"{c}/mobilefacenet@{points}"] = np.full((n, 7), np.nan)
    for i in tqdm(range(n), desc="photos", file=sys.stderr):
        try:
            bgr = to_bgr(read_image(paths[i]))
        except Exception:
            continue
        faces = detect_photo_faces(detector, bgr)
        if not faces:
            continue
        plain = faces[0]
        for ci, c in enumerate(CONDITIONS):
            if c == "unmasked":
                image, det = bgr, plain
            else:
                image = masked_copy(bgr, c, np.random.default_rng([seed, i, ci]), plain.landmarks)
                found = detect_photo_faces(detector, image)
                if not found:
                    continue
                det = found[0]
            for m, member in members.items():
                o = member.predict_faces(image, [det], flip=(m != "mobilefacenet"))
                out[f"{c}/{m}"][i] = o.log_probs[0]
                if o.mask_prob is not None:
                    out[f"{c}/mask_prob"][i] = o.mask_prob[0]
            out[f"{c}/face_px"][i] = float(det.box[3])
            out[f"{c}/score"][i] = float(det.score)
            if det.landmarks is not None:
                out[f"{c}/landmarks"][i] = det.landmarks
                for points, idx in ALIGNMENTS.items():
                    face = align_points(image, det.landmarks, idx)
                    mfn = members["mobilefacenet"].predict_inputs(face[None])
                    out[f"{c}/mobilefacenet@{points}"][i] = mfn.log_probs[0]
            if det.landmarks is not None and plain.landmarks is not None:
                err = np.linalg.norm(det.landmarks - plain.landmarks, axis=1).mean()
                out[f"{c}/landmark_error"][i] = err / max(1e-6, _eye_distance(plain.landmarks))
    return out


def collect_stand_in(root, holdout, model, key, seed, threads):
    """Our-net-family model `model` (.pt) on the same faces, masks and seeds as collect_photos -> {cond/key}."""
    from fer_mask_ros.imaging import read_image, to_bgr
    from fer_mask_ros.learning.cross_source import masked_copy
    from fer_mask_ros.learning.photo_sources import is_holdout, labelled_photos
    from fer_mask_ros.perception.classifier import EmotionClassifier
    from fer_mask_ros.perception.detection import make_detector
    from fer_mask_ros.perception.photo import detect_photo_faces
    from fer_mask_ros.perception.zoo.fer_mask_net import FerMaskNetMember

    paths, labels = labelled_photos(root)
    keep = [i for i, p in enumerate(paths) if (is_holdout(p) if holdout else True)]
    paths, labels = [paths[i] for i in keep], labels[keep]
    detector = make_detector(None, num_threads=threads)
    member = FerMaskNetMember(EmotionClassifier(model, num_threads=threads, backend="torch"))
    out = {"labels": labels}
    for c in CONDITIONS:
        out[f"{c}/{key}"] = np.full((len(paths), 7), np.nan)
    for i in tqdm(range(len(paths)), desc=key, file=sys.stderr):
        bgr = to_bgr(read_image(paths[i]))
        faces = detect_photo_faces(detector, bgr)
        if not faces:
            continue
        for ci, c in enumerate(CONDITIONS):
            if c == "unmasked":
                image, det = bgr, faces[0]
            else:
                image = masked_copy(bgr, c, np.random.default_rng([seed, i, ci]), faces[0].landmarks)
                found = detect_photo_faces(detector, image)
                if not found:
                    continue
                det = found[0]
            out[f"{c}/{key}"][i] = member.predict_faces(image, [det], flip=True).log_probs[0]
    return out


def collect_crops(root, usage, limit, seed, threads):
    from fer_mask_ros.learning.cross_source import crop_conditions
    from fer_mask_ros.learning.datasets import load_dataset
    from fer_mask_ros.perception.real_face_teacher import FER_CROP_LANDMARKS, align_face
    from fer_mask_ros.perception.zoo.base import log_softmax
    from fer_mask_ros.perception.zoo.faceapi import padded_square

    data = load_dataset(root, usage=usage)
    images, labels = np.asarray(data.images), np.asarray(data.labels)
    if limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(labels), size=min(limit, len(labels)), replace=False))
        images, labels = images[keep], labels[keep]
    members = _zoo(threads)
    out = {"labels": labels}
    for c, crops in crop_conditions(images, CONDITIONS, seed).items():
        o = members["fer_mask_net"].predict_crops(crops, flip=True)
        out[f"{c}/fer_mask_net"], out[f"{c}/mask_prob"] = o.log_probs, o.mask_prob
        rgb = [np.stack([padded_square(np.dstack([x] * 3), (0, 0, 48, 48)) for x in crops[s:s + 256]])
               for s in range(0, len(crops), 256)]
        out[f"{c}/faceapi"] = np.concatenate([members["faceapi"].predict_inputs(b, flip=True).log_probs for b in rgb])
        mfn = members["mobilefacenet"].net
        logits = [mfn.logits(align_face(x, FER_CROP_LANDMARKS)[None])[0] for x in tqdm(crops, desc=c, file=sys.stderr)]
        out[f"{c}/mobilefacenet"] = log_softmax(np.array(logits))
        out[f"{c}/face_px"] = np.full(len(labels), 48.0)
    return out


# ----------------------------------------------------------------------------------------------- fitting


def features(data, condition, members):
    """(N, M, 7) member log-probs, labels, mask_prob; rows where any used member is missing are dropped."""
    x = np.stack([data[f"{condition}/{m}"] for m in members], axis=1)
    ok = np.all(np.isfinite(x.reshape(len(x), -1)), axis=1)
    return x, data["labels"], data[f"{condition}/mask_prob"], ok


def fit_coefficients(x, y, sample_weight=None, balanced=True, l2=1e-3, iters=1500, lr=0.05):
    """a >= 0 (one per member) minimising the (class-balanced) NLL of softmax(sum_m a_m x_m): projected Adam."""
    n, k, _ = x.shape
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float).copy()
    if balanced:
        counts = np.bincount(y, weights=sw, minlength=7)
        sw = sw * (sw.sum() / (7 * np.maximum(counts, 1e-12)))[y]
    sw /= sw.sum()
    onehot = np.eye(7)[y]
    a = np.full(k, 1.0 / k)
    m1, m2 = np.zeros(k), np.zeros(k)
    for t in range(1, iters + 1):
        z = np.einsum("nmc,m->nc", x, a)
        p = softmax(z)
        grad = np.einsum("nmc,nc->m", x, sw[:, None] * (p - onehot)) + 2 * l2 * a
        m1 = 0.9 * m1 + 0.1 * grad
        m2 = 0.999 * m2 + 0.001 * grad ** 2
        a = np.clip(a - lr * (m1 / (1 - 0.9 ** t)) / (np.sqrt(m2 / (1 - 0.999 ** t)) + 1e-8), 0.0, 10.0)
    return a


def score(probs, y, balanced=False):
    pred = probs.argmax(1)
    if not balanced:
        return float((pred == y).mean())
    return float(np.mean([(pred[y == c] == c).mean() for c in range(7) if (y == c).any()]))


def ece(probs, y, bins=15):
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            total += sel.mean() * abs((pred[sel] == y[sel]).mean() - conf[sel].mean())
    return float(total)


def spoken(probs, y, threshold):
    conf, pred = probs.max(1), probs.argmax(1)
    sel = conf >= threshold
    return (float((pred[sel] == y[sel]).mean()) if sel.any() else float("nan")), float(sel.mean())


def softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


GROUPS = {"unmasked": ("unmasked",), "masked": ("masked", "unseen mask")}
VARIANTS = {
    "fer_mask_net": ("fer_mask_net",),
    "faceapi": ("faceapi",),
    "mobilefacenet": ("mobilefacenet",),
    "ours+mfn": ("fer_mask_net", "mobilefacenet"),
    "ours+faceapi": ("fer_mask_net", "faceapi"),
    "all three": ("fer_mask_net", "faceapi", "mobilefacenet"),
}
THRESHOLDS = {"unmasked": 0.45, "masked": 0.40}


#: member -> the collected key it reads (set by --alignment: the MobileFaceNet aligned from the eyes alone)
MEMBER_KEYS = {}


def load(name):
    with np.load(os.path.join(OUT, f"{name}.npz")) as d:
        data = {k: d[k] for k in d.files}
    for member, key in MEMBER_KEYS.items():
        for c in CONDITIONS:
            if f"{c}/{key}" in data:
                data[f"{c}/{member}"] = data[f"{c}/{key}"]
    return data


def stacked(sources, conditions, members):
    """Pooled (x, y, source weight) over sources and conditions; each source weighs the same in total."""
    xs, ys, ws = [], [], []
    for data in sources:
        for c in conditions:
            x, y, _, ok = features(data, c, members)
            x = np.where(np.isfinite(x), x, 0.0)
            xs.append(x)
            ys.append(y)
            ws.append(np.full(len(y), 1.0 / (len(y) * len(sources))))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)


def evaluate(data, condition, members, coef):
    """Scores of a fitted variant on one source and condition; a face the detector missed counts as wrong."""
    x, y, _, ok = features(data, condition, members)
    probs = np.full((len(y), 7), np.nan)
    probs[ok] = softmax(np.einsum("nmc,m->nc", x[ok], coef))
    found = np.isfinite(probs).all(1)
    acc = float((probs[found].argmax(1) == y[found]).sum() / len(y))
    bal = float(np.mean([((probs[found].argmax(1) == c) & (y[found] == c)).sum() / max(1, (y == c).sum())
                         for c in range(7) if (y == c).any()]))
    e = ece(probs[found], y[found])
    group = "unmasked" if condition == "unmasked" else "masked"
    right, share = spoken(probs[found], y[found], THRESHOLDS[group])
    return acc, bal, e, right, share * found.mean()


def fit_report(fit_names, report_names, variants=VARIANTS):
    fit_sets = [load(n) for n in fit_names]
    rows = []
    fitted = {}
    for variant, members in variants.items():
        for group, conditions in GROUPS.items():
            x, y, w = stacked(fit_sets, conditions, members)
            coef = fit_coefficients(x, y, w)
            fitted[(variant, group)] = coef
            for name in report_names:
                data = load(name)
                for c in conditions:
                    acc, bal, e, right, share = evaluate(data, c, members, coef)
                    rows.append((variant, name, c, acc, bal, e, right, share, coef))
    print(f"fitted on {', '.join(fit_names)}; class-balanced NLL, coefficients a_m >= 0 (a_m = w_m / T)")
    print("| variant | source | condition | acc | balanced | ECE | spoken right / share | coefficients |")
    print("| --- | --- | --- | ---: | ---: | ---: | --- | --- |")
    for variant, name, c, acc, bal, e, right, share, coef in rows:
        print(f"| {variant} | {name} | {c} | {100 * acc:.1f} | {100 * bal:.1f} | {e:.3f} | "
              f"{100 * right:.0f} % on {100 * share:.0f} % | {' '.join(f'{v:.2f}' for v in coef)} |")
    return fitted


def fit_fusion(fit_name, stand_in, members=MEMBERS):
    """Weights and temperatures per condition, fitted on `fit_name` with our net replaced by `stand_in` (a copy of
    our net's family that never trained on that source, e.g. phase 8 on expressions-lfw), so that no member of
    the fitted fusion knows the source. Our shipped net is calibrated for strangers, so its coefficient carries
    over in calibrated units: a_joint(stand-in) / a_alone(stand-in). The others are the shipped models themselves."""
    data = load(fit_name)
    extra = np.load(os.path.join(OUT, f"{fit_name}_{stand_in}.npz"))
    for c in CONDITIONS:
        data[f"{c}/{stand_in}"] = extra[f"{c}/{stand_in}"]
    used = tuple(stand_in if m == "fer_mask_net" else m for m in members)
    weights, temperatures, detail = {}, {}, {}
    for group, conditions in GROUPS.items():
        x, y, w = stacked([data], conditions, used)
        joint = fit_coefficients(x, y, w)
        xs, ys, ws = stacked([data], conditions, (stand_in,))
        alone = fit_coefficients(xs, ys, ws)[0]
        coef = {m: float(joint[i] / alone) if m == "fer_mask_net" else float(joint[i]) for i, m in enumerate(members)}
        total = sum(coef.values())
        weights[group] = {m: round(v / total, 4) for m, v in coef.items()}
        temperatures[group] = round(1.0 / total, 4)
        detail[group] = {"joint": [round(float(v), 4) for v in joint], "stand_in_alone": round(float(alone), 4)}
    return weights, temperatures, detail


def report(fusion, names, members=MEMBERS):
    """The fusion and each member alone, on each collected source and condition."""
    rows = []
    for name in names:
        data = load(name)
        for c in CONDITIONS:
            group = "unmasked" if c == "unmasked" else "masked"
            variants = {m: np.array([1.0 if k == m else 0.0 for k in members]) for m in members}
            variants["fusion"] = np.array([fusion.weights[group].get(m, 0.0) for m in members]) / \
                fusion.temperatures[group]
            for label, coef in variants.items():
                acc, bal, e, right, share = evaluate(data, c, members, coef)
                rows.append((name, c, label, acc, bal, e, right, share))
    print("| source | condition | model | accuracy | balanced | ECE | spoken at 0.45 / 0.40: right on share |")
    print("| --- | --- | --- | ---: | ---: | ---: | --- |")
    for name, c, label, acc, bal, e, right, share in rows:
        print(f"| {name} | {c} | {label} | {100 * acc:.1f} % | {100 * bal:.1f} % | {e:.3f} | "
              f"{100 * right:.0f} % on {100 * share:.0f} % |")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("source")
    c.add_argument("--name", required=True)
    c.add_argument("--photos", action="store_true")
    c.add_argument("--holdout", action="store_true")
    c.add_argument("--usage", default=None)
    c.add_argument("--limit", type=int, default=0)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("--stand-in", nargs=2, metavar=("MODEL", "KEY"), default=None,
                   help="instead of the members: this .pt of our net's family on the same faces -> <name>.npz "
                        "under <condition>/KEY (fit --stand-in KEY reads runs/fusion/<fit>_KEY.npz)")
    f = sub.add_parser("fit")
    f.add_argument("--fit", nargs="+", required=True, help="collected source names to fit on")
    f.add_argument("--report", nargs="*", default=[], help="collected source names to report on")
    f.add_argument("--alignment", default=None, choices=sorted(ALIGNMENTS),
                   help="read the MobileFaceNet aligned from these landmarks only (collected alongside)")
    f.add_argument("--output", default=None, help="write the fusion file (models/fusion.json)")
    f.add_argument("--stand-in", default=None,
                   help="fit with runs/fusion/<fit>_<stand-in>.npz in place of our net (a copy that never trained on "
                        "the fit source); without it, print the leave-one-source-out table of every variant")
    args = parser.parse_args(argv)
    os.makedirs(OUT, exist_ok=True)
    if args.cmd == "collect":
        t0 = time.time()
        if args.stand_in:
            out = collect_stand_in(args.source, args.holdout, args.stand_in[0], args.stand_in[1], args.seed,
                                   args.threads)
        elif args.photos:
            out = collect_photos(args.source, args.holdout, args.limit, args.seed, args.threads)
        else:
            out = collect_crops(args.source, args.usage, args.limit, args.seed, args.threads)
        np.savez_compressed(os.path.join(OUT, f"{args.name}.npz"), **out)
        print(f"{args.name}: {len(out['labels'])} items in {time.time() - t0:.0f} s -> {OUT}/{args.name}.npz")
        return 0
    if args.alignment:
        MEMBER_KEYS["mobilefacenet"] = f"mobilefacenet@{args.alignment}"
    if not args.stand_in:
        fit_report(args.fit, args.report)
        return 0
    from fer_mask_ros.perception.fusion import Fusion

    weights, temperatures, detail = fit_fusion(args.fit[0], args.stand_in)
    fusion = Fusion(weights, temperatures, provenance={
        "fitted_on": f"{args.fit[0]} (runs/fusion/{args.fit[0]}.npz)", "stand_in_for_fer_mask_net": args.stand_in,
        "method": "class-balanced NLL of sum_m a_m log p_m, a_m >= 0, per condition (unmasked; masked = training's "
                  "masks + the unseen-mask family); our net's coefficient in calibrated units "
                  "(a_joint / a_alone of the stand-in)", "coefficients": detail,
        "command": "PYTHONPATH=. python tools/fit_fusion.py " + " ".join(argv or sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d")})
    print(fusion.describe())
    report(fusion, args.report or args.fit)
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(fusion.to_json(), handle, indent=1)
            handle.write("\n")
        print(f"-> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
