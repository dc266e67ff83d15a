"""Evaluation maths and plots: accuracy, balanced accuracy, confusion matrices, 4/3-class views.

Pure numpy + matplotlib (Agg canvas, no pyplot state); no model or dataset loading here.

`evaluate_predictions(y_true, probs)` returns a JSON-serialisable dict. Undefined values
(recall of a class with no samples, precision of a class never predicted) are None.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from fer_mask_ros.labels import EMOTIONS, FOUR_CLASS, THREE_CLASS, THREE_CLASS_MAP

MASK_THRESHOLD = 0.5

_FOUR_IDX = np.array([EMOTIONS.index(name) for name in FOUR_CLASS], dtype=np.int64)
# (7, 3) 0/1 matrix: probs @ _THREE_GROUPS sums emotion probabilities per valence group.
_THREE_GROUPS = np.zeros((len(EMOTIONS), len(THREE_CLASS)), dtype=np.float64)
for _i, _name in enumerate(EMOTIONS):
    if THREE_CLASS_MAP[_name] is not None:
        _THREE_GROUPS[_i, THREE_CLASS.index(THREE_CLASS_MAP[_name])] = 1.0
# emotion index -> 3-class index, or -1 for emotions left out of the 3-class view (surprise)
_THREE_OF = np.array(
    [THREE_CLASS.index(THREE_CLASS_MAP[n]) if THREE_CLASS_MAP[n] is not None else -1 for n in EMOTIONS],
    dtype=np.int64,
)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts: rows = true class, columns = predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def _ratio(num: float, den: float) -> Optional[float]:
    return float(num) / float(den) if den else None


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict:
    """Accuracy, balanced accuracy (mean recall over classes present), per-class stats, confusion.

    y_pred -1 marks a sample with no prediction (photo mode: no face found): it counts in the support
    and as wrong, outside the confusion matrix, and in "no_face"."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    missed = y_pred < 0
    cm = confusion_matrix(y_true[~missed], y_pred[~missed], len(labels))
    support = np.bincount(y_true, minlength=len(labels))[: len(labels)]
    predicted = cm.sum(axis=0)
    diag = np.diag(cm)
    per_class: Dict[str, dict] = {}
    recalls: List[float] = []
    for i, name in enumerate(labels):
        recall = _ratio(diag[i], support[i])
        if recall is not None:
            recalls.append(recall)
        per_class[name] = {
            "recall": recall,
            "precision": _ratio(diag[i], predicted[i]),
            "support": int(support[i]),
        }
    return {
        "n": int(y_true.size),
        "accuracy": _ratio(diag.sum(), y_true.size),
        "balanced_accuracy": float(np.mean(recalls)) if recalls else None,
        "labels": list(labels),
        "per_class": per_class,
        "confusion": cm.tolist(),
        "no_face": int(missed.sum()),
    }


def predicted_labels(probs: np.ndarray) -> np.ndarray:
    """argmax per row; -1 for rows that are not finite (NaN = no face found)."""
    probs = np.asarray(probs, dtype=np.float64)
    if not probs.shape[0]:
        return np.zeros(0, dtype=np.int64)
    ok = np.isfinite(probs).all(axis=1)
    return np.where(ok, np.argmax(np.nan_to_num(probs, nan=-1.0), axis=1), -1).astype(np.int64)


def four_class_view(y_true: np.ndarray, probs: np.ndarray) -> dict:
    """Samples whose true label is in FOUR_CLASS; prediction = argmax over those 4 probabilities."""
    y_true = np.asarray(y_true, dtype=np.int64)
    keep = np.isin(y_true, _FOUR_IDX)
    position = {int(e): i for i, e in enumerate(_FOUR_IDX)}
    t = np.array([position[int(v)] for v in y_true[keep]], dtype=np.int64)
    p = predicted_labels(probs[keep][:, _FOUR_IDX])
    return classification_metrics(t, p, FOUR_CLASS)


def three_class_view(y_true: np.ndarray, probs: np.ndarray) -> dict:
    """Valence view: true labels via THREE_CLASS_MAP (surprise dropped); prediction = argmax of
    summed group probabilities (surprise probability ignored)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    t_all = _THREE_OF[y_true] if y_true.size else np.zeros(0, dtype=np.int64)
    keep = t_all >= 0
    grouped = probs[keep] @ _THREE_GROUPS
    p = predicted_labels(grouped)
    return classification_metrics(t_all[keep], p, THREE_CLASS)


def evaluate_predictions(
    y_true: Sequence[int],
    probs: np.ndarray,
    mask_prob: Optional[np.ndarray] = None,
    mask_true=None,
) -> dict:
    """All metrics for one condition.

    y_true: (N,) indices into EMOTIONS. probs: (N, 7) class probabilities.
    mask_prob: optional (N,) predicted probability that a mask is present.
    mask_true: optional bool, or (N,) bools, the true mask flag; with mask_prob gives
    result["mask_flag"]["accuracy"]. Without mask_true only the predicted-masked rate is reported.
    """
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    probs = np.asarray(probs, dtype=np.float64).reshape(-1, len(EMOTIONS))
    if probs.shape[0] != y_true.shape[0]:
        raise ValueError(f"y_true has {y_true.shape[0]} samples but probs has {probs.shape[0]}")
    if y_true.size and (y_true.min() < 0 or y_true.max() >= len(EMOTIONS)):
        raise ValueError(f"y_true must hold indices 0..{len(EMOTIONS) - 1}")
    from fer_mask_ros.interaction.policy import DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_CONFIDENCE_MASKED
    from fer_mask_ros.learning.calibration import expected_calibration_error, risk_coverage, spoken_at

    y_pred = predicted_labels(probs)  # NaN rows (no face found) count as wrong
    result = classification_metrics(y_true, y_pred, EMOTIONS)
    result["four_class"] = four_class_view(y_true, probs)
    result["three_class"] = three_class_view(y_true, probs)
    result["ece"] = expected_calibration_error(y_true, probs)
    result["risk_coverage"] = risk_coverage(y_true, probs)
    if mask_prob is not None:
        mask_prob = np.asarray(mask_prob, dtype=np.float64).reshape(-1)
        if mask_prob.shape[0] != y_true.shape[0]:
            raise ValueError(f"mask_prob has {mask_prob.shape[0]} samples, expected {y_true.shape[0]}")
        found = y_pred >= 0
        truth = None if mask_true is None else np.broadcast_to(np.asarray(mask_true, dtype=bool), found.shape)[found]
        flag = mask_flag_metrics(mask_prob[found], truth)
        if flag["accuracy"] is not None and y_true.size:  # a photo without a face is a miss for the flag too
            flag["accuracy"] *= found.sum() / y_true.size
        flag["no_face"] = int((~found).sum())
        result["mask_flag"] = flag
    # what NAO would say about these faces as stills at the shipped speech-policy thresholds
    flags = np.zeros(len(y_true)) if mask_prob is None else mask_prob
    thresholds = {"min_confidence": DEFAULT_MIN_CONFIDENCE, "min_confidence_masked": DEFAULT_MIN_CONFIDENCE_MASKED}
    result["spoken"] = {**thresholds, **spoken_at(y_true, probs, flags, *thresholds.values())}
    return result


def mask_flag_metrics(mask_prob: np.ndarray, mask_true=None) -> dict:
    """Predicted-masked rate and, when the truth is known, accuracy of the mask flag (p >= 0.5)."""
    mask_prob = np.asarray(mask_prob, dtype=np.float64).reshape(-1)
    flag = mask_prob >= MASK_THRESHOLD
    out = {"n": int(flag.size), "predicted_masked_rate": _ratio(flag.sum(), flag.size), "accuracy": None}
    if mask_true is not None:
        truth = np.broadcast_to(np.asarray(mask_true, dtype=bool), flag.shape)
        out["accuracy"] = _ratio((truth == flag).sum(), flag.size)
    return out


# ---------------------------------------------------------------- plots


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def confusion_png(cm, labels: Sequence[str], path, title: str = "") -> None:
    """Confusion matrix normalised per row (true class) with the raw counts annotated."""
    cm = np.asarray(cm, dtype=np.int64)
    n = len(labels)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=np.float64), where=rows > 0)
    size = 1.2 + 0.75 * n
    fig = _figure(size + 1.2, size)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_yticklabels(labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{norm[i, j]:.2f}\n({cm[i, j]})", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(str(path))


def misclassified_grid_png(
    images: np.ndarray,
    y_true: Sequence[int],
    y_pred: Sequence[int],
    probs: Optional[np.ndarray],
    path,
    max_items: int = 64,
    labels: Sequence[str] = EMOTIONS,
    title: str = "",
) -> int:
    """Grid of misclassified faces, most confident mistakes first; tile text 'true -> pred (p)'.

    Returns the number of tiles drawn (0 writes a small 'no misclassified samples' image).
    """
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    wrong = np.flatnonzero(y_true != y_pred)
    if probs is not None and wrong.size:
        conf = np.asarray(probs, dtype=np.float64)[wrong, y_pred[wrong]]
        wrong = wrong[np.argsort(-conf, kind="stable")]
    wrong = wrong[: max(0, int(max_items))]
    if wrong.size == 0:
        fig = _figure(3, 1)
        fig.text(0.5, 0.5, "no misclassified samples", ha="center", va="center")
        fig.savefig(str(path))
        return 0
    cols = int(min(8, wrong.size))
    rows = int(np.ceil(wrong.size / cols))
    fig = _figure(1.45 * cols, 1.7 * rows + (0.4 if title else 0.0))
    for k, idx in enumerate(wrong):
        ax = fig.add_subplot(rows, cols, k + 1)
        img = np.asarray(images[idx])
        if img.ndim == 3 and img.shape[2] == 3:
            ax.imshow(img[:, :, ::-1])  # BGR -> RGB
        else:
            ax.imshow(img, cmap="gray", vmin=0, vmax=255)
        text = f"t:{labels[y_true[idx]]}\np:{labels[y_pred[idx]]}"
        if probs is not None:
            text += f" {float(probs[idx][y_pred[idx]]):.2f}"
        ax.set_title(text, fontsize=7)
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(str(path))
    return int(wrong.size)


# ---------------------------------------------------------------- tables


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{100.0 * value:.1f}%"


def markdown_table(results: Dict[str, dict]) -> str:
    """Conditions side by side (one column per key of `results`, each an evaluate_predictions dict)."""
    names = list(results)
    lines = ["| metric | " + " | ".join(names) + " |", "| --- | " + " | ".join("---:" for _ in names) + " |"]

    def row(label: str, values: List[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(values) + " |")

    def get(res: dict, *keys):
        for key in keys:
            if not isinstance(res, dict) or key not in res:
                return None
            res = res[key]
        return res

    row("samples", [str(get(results[n], "n")) for n in names])
    row("accuracy", [_pct(get(results[n], "accuracy")) for n in names])
    row("balanced accuracy", [_pct(get(results[n], "balanced_accuracy")) for n in names])
    for emotion in EMOTIONS:
        values = []
        for n in names:
            recall = get(results[n], "per_class", emotion, "recall")
            support = get(results[n], "per_class", emotion, "support")
            values.append(f"{_pct(recall)} (n={support})" if support is not None else "–")
        row(f"recall {emotion}", values)
    row("4-class accuracy", [_pct(get(results[n], "four_class", "accuracy")) for n in names])
    row("4-class balanced accuracy", [_pct(get(results[n], "four_class", "balanced_accuracy")) for n in names])
    row("3-class accuracy", [_pct(get(results[n], "three_class", "accuracy")) for n in names])
    row("3-class balanced accuracy", [_pct(get(results[n], "three_class", "balanced_accuracy")) for n in names])
    if any(get(results[n], "mask_flag") is not None for n in names):
        row("mask flag accuracy", [_pct(get(results[n], "mask_flag", "accuracy")) for n in names])
        row("predicted masked", [_pct(get(results[n], "mask_flag", "predicted_masked_rate")) for n in names])
    return "\n".join(lines) + "\n"
