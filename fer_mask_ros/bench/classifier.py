"""Classifier speed table: ms per face at batch 1 on one core, and batch throughput.

For each available backend (int8 and onnxruntime through the model's int8 and fp32 ONNX copies,
torch) the
classifier is built with num_threads=1 (torch.set_num_threads(1), onnxruntime
intra_op_num_threads=1). Timed call: `predict_batch` on preprocessed 48x48 crops (the
network plus softmax/sigmoid), after warm-up runs. When the model has no valid ONNX copy
beside it, a temporary one is exported (needs the `onnx` package); the int8 copy needs calibration
data, so without one its row says how to make it (`export MODEL --calibration DATASET`).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from typing import List, Optional, Sequence

import numpy as np

BENCH_BACKENDS = ("int8", "onnxruntime", "torch")


def _add_once(parser, *flags: str, **kwargs) -> None:
    """add_argument unless another bench section already defined one of the flags."""
    existing = getattr(parser, "_option_string_actions", {})
    if any(flag in existing for flag in flags):
        return
    parser.add_argument(*flags, **kwargs)


def add_classifier_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("classifier bench")
    _add_once(group, "--runs", type=int, default=500, help="timed batch-1 runs per backend (default 500)")
    _add_once(group, "--warmup", type=int, default=20, help="untimed warm-up runs (default 20)")
    _add_once(group, "--classifier-model", default=None, metavar="FILE",
              help="classifier model (default: the shipped model)")
    _add_once(group, "--classifier-backend", choices=("all",) + BENCH_BACKENDS, default="all",
              help="backend(s) to time (default all available)")
    _add_once(group, "--classifier-batches", default="16,64", metavar="B,B",
              help="batch sizes for the throughput columns (default 16,64)")
    _add_once(group, "--classifier-threads", type=int, default=1, help="threads per backend (default 1)")


def _batch_sizes(value) -> List[int]:
    if isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [v for v in str(value).replace(" ", "").split(",") if v]
    try:
        sizes = [int(v) for v in items]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        from fer_mask_ros.errors import CommandError

        raise CommandError(f"--classifier-batches must be positive integers separated by commas, got {value!r}")
    return sizes


def _time_calls(fn, runs: int, warmup: int) -> np.ndarray:
    for _ in range(max(0, warmup)):
        fn()
    times = np.empty(max(1, runs), dtype=np.float64)
    for i in range(times.size):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return times


def _open_backend(model_path: str, backend: str, threads: int, workdir: List[Optional[str]]):
    """EmotionClassifier on `backend`, exporting a temporary ONNX copy if needed; (clf, note)."""
    from fer_mask_ros.errors import ModelError
    from fer_mask_ros.learning.export import export_onnx
    from fer_mask_ros.perception.classifier import EmotionClassifier

    try:
        return EmotionClassifier(model_path, num_threads=threads, backend=backend), ""
    except ModelError as exc:
        if backend != "onnxruntime":
            raise
        first_error = exc
    try:  # no (valid) ONNX copy beside the model: export one into a temp folder
        if workdir[0] is None:
            workdir[0] = tempfile.mkdtemp(prefix="fer_bench_")
        tmp_model = os.path.join(workdir[0], os.path.basename(model_path))
        if not os.path.isfile(tmp_model):
            shutil.copyfile(model_path, tmp_model)
            export_onnx(tmp_model)
        return EmotionClassifier(tmp_model, num_threads=threads, backend=backend), "temporary ONNX export"
    except Exception as exc:  # onnx missing, export failure...
        raise ModelError(f"{str(first_error).splitlines()[0]}; export failed: {exc}") from None


def bench_backend(clf, runs: int, warmup: int, batches: Sequence[int], seed: int = 0, budget_s: float = 2.0) -> dict:
    """Batch-1 latency percentiles (ms) and faces/s per batch size (about budget_s of timing each)."""
    rng = np.random.default_rng(seed)
    crops = rng.integers(0, 256, size=(max(list(batches) + [1]), 48, 48), dtype=np.uint8)
    one = crops[:1]
    t = _time_calls(lambda: clf.predict_batch(one, batch_size=1), runs, warmup) * 1000.0
    row = {"p50_ms": float(np.percentile(t, 50)), "p95_ms": float(np.percentile(t, 95)), "mean_ms": float(t.mean()),
           "runs": int(t.size), "throughput": {}}
    for b in batches:
        batch = crops[:b]
        call = lambda batch=batch, b=b: clf.predict_batch(batch, batch_size=b)  # noqa: E731
        once = float(_time_calls(call, 1, 1)[0])
        reps = int(np.clip(np.ceil(budget_s / max(once, 1e-6)), 3, max(3, min(50, runs // 10))))
        tb = _time_calls(call, reps, 0)
        row["throughput"][int(b)] = float(b / np.median(tb))
    return row


def format_table(rows: dict, batches: Sequence[int]) -> str:
    head = ["backend", "batch 1 p50 ms", "p95 ms", "mean ms"] + [f"batch {b} faces/s" for b in batches]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for backend, row in rows.items():
        if "error" in row:
            lines.append(f"| {backend} | unavailable: {row['error']} |" + " |" * (len(head) - 2))
            continue
        cells = [backend + (f" ({row['note']})" if row.get("note") else ""),
                 f"{row['p50_ms']:.3f}", f"{row['p95_ms']:.3f}", f"{row['mean_ms']:.3f}"]
        cells += [f"{row['throughput'][b]:.0f}" for b in batches]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_classifier_bench(args) -> int:
    import torch

    from fer_mask_ros.errors import CommandError, ModelError
    from fer_mask_ros.perception.classifier import DEFAULT_MODEL

    model_path = getattr(args, "classifier_model", None) or DEFAULT_MODEL
    if not os.path.isfile(model_path):
        raise CommandError(f"classifier model not found: {model_path}")
    runs = int(getattr(args, "runs", 500))
    warmup = int(getattr(args, "warmup", 20))
    threads = int(getattr(args, "classifier_threads", 1) or 1)
    if runs < 1:
        raise CommandError("--runs must be at least 1")
    batches = _batch_sizes(getattr(args, "classifier_batches", "16,64"))
    wanted = getattr(args, "classifier_backend", "all")
    backends = BENCH_BACKENDS if wanted == "all" else (wanted,)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    rows: dict = {}
    workdir: List[Optional[str]] = [None]
    try:
        for backend in backends:
            try:
                clf, note = _open_backend(model_path, backend, threads, workdir)
            except ModelError as exc:
                rows[backend] = {"error": str(exc).splitlines()[0]}
                continue
            row = bench_backend(clf, runs, warmup, batches)
            row["note"] = note
            rows[backend] = row
            if backend == "int8" and getattr(clf, "flip_average", False):
                # stills average each face with its mirror image (the rows above); streams take one pass
                clf.flip_average = False
                rows["int8, one pass (streams)"] = bench_backend(clf, runs, warmup, batches)
    finally:
        torch.set_num_threads(previous_threads)
        if workdir[0] is not None:
            shutil.rmtree(workdir[0], ignore_errors=True)
    if all("error" in r for r in rows.values()):
        raise CommandError("no classifier backend could be loaded: "
                           + "; ".join(f"{b}: {r['error']}" for b, r in rows.items()))
    print(f"## Classifier: {model_path}")
    print(f"{threads} thread(s); batch 1: {runs} timed runs after {warmup} warm-up; predict_batch on 48x48 crops "
          "as a still is classified (each face with its mirror image); the last row as streams are (one pass)\n")
    print(format_table(rows, batches))
    sys.stdout.flush()
    return 0
