"""Batch analysis helpers: output names, shards, finished inputs, the batch summary, how many jobs.

A batch writes DIR/<input name>/ per input. An input is finished when its summary.json exists (it is
written last, atomically) and names that input; a failed input leaves DIR/<input name>/failed.json.
`collect` rebuilds DIR/summary.csv from those files, so shards run anywhere (a Slurm array, several
machines on a shared disk) are summarised afterwards with `analyze --summarize DIR`.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from fer_mask_ros.analysis.report import batch_row, csv_rows, write_batch_table
from fer_mask_ros.safe_write import write_text

FAILED_FILE = "failed.json"
#: Memory one analysis worker needs (models, one QVGA-VGA frame pipeline, key frames), with a margin.
WORKER_MEMORY_MB = 600


def out_names(inputs: Sequence[str]) -> Dict[str, str]:
    """Input path -> sub-folder name (file name without extension, _2, _3 ... on clashes, in list order)."""
    names, used = {}, set()
    for path in inputs:
        base = os.path.splitext(os.path.basename(os.path.normpath(path)))[0] or "input"
        name, n = base, 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        names[path] = name
    return names


def parse_shard(text: str) -> Tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N."""
    try:
        k, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise ValueError(f"--shard: expected K/N such as 1/4, got {text!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"--shard: need 1 <= K <= N, got {text!r}")
    return k, n


def shard(inputs: Sequence[str], k: int, n: int) -> List[str]:
    """The K-th of N deterministic slices of the sorted inputs (every N-th, from the K-th)."""
    return sorted(inputs)[k - 1::n]


def largest_first(inputs: Sequence[str]) -> List[str]:
    """Inputs by file size, largest first (then by name): with several jobs the long inputs start first, so
    the batch does not end on one worker finishing a long input while the others idle (LPT scheduling)."""
    def size(path: str) -> int:
        try:
            return os.path.getsize(path)
        except OSError:
            return 0

    return sorted(inputs, key=lambda p: (-size(p), p))


def finished_summary(out_dir: str, input_path: str) -> Optional[Dict[str, Any]]:
    """The summary of a finished analysis of `input_path` in out_dir, else None. Finished = summary.json
    names that input, and the CSVs it lists hold the rows it counted (a frames.csv from another, killed run
    is not taken for this one's)."""
    try:
        with open(os.path.join(out_dir, "summary.json"), encoding="utf-8", errors="surrogateescape") as handle:
            summary = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict):
        return None
    if os.path.abspath(str(summary.get("input", ""))) != os.path.abspath(input_path):
        return None
    return summary if files_agree(out_dir, summary) else None


def files_agree(out_dir: str, summary: Dict[str, Any]) -> bool:
    """Whether the CSVs a summary.json lists hold the rows it counted."""
    rows = summary.get("csv_rows")
    if not isinstance(rows, dict) or "frames.csv" not in rows:
        return False
    return all(csv_rows(os.path.join(out_dir, os.path.basename(str(name)))) == count for name, count in rows.items())


def mark_failed(out_dir: str, input_path: str, error: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    write_text(os.path.join(out_dir, FAILED_FILE), json.dumps({"input": input_path, "error": error}) + "\n")


def clear_partials(out_dir: str) -> None:
    """Remove the temporary files (safe_write's ".partial-*") a killed run left in out_dir: only the run
    that analyses an input writes into its folder."""
    from fer_mask_ros.safe_write import TEMP_PREFIX

    try:
        names = os.listdir(out_dir)
    except OSError:
        return
    for name in names:
        if name.startswith(TEMP_PREFIX):
            try:
                os.remove(os.path.join(out_dir, name))
            except OSError:
                pass


def exit_with_parent(parent: Optional[int] = None, poll_s: float = 0.2) -> None:
    """In a worker process: exit at once when the process that started it is gone (SIGKILLed). A pool worker
    otherwise outlives a killed parent for good (it holds both ends of its queue, so it never sees EOF) and
    may still be writing while a resumed run redoes the same input.

    parent: the starting process's pid, as it passed it (default: the current parent). Pass it: a spawned
    worker runs this only after its imports, and a parent killed before that has already been replaced."""
    import threading
    import time

    parent = os.getppid() if parent is None else int(parent)
    if os.getppid() != parent:
        os._exit(70)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(70)

    threading.Thread(target=watch, name="exit_with_parent", daemon=True).start()


def clear_failed(out_dir: str) -> None:
    try:
        os.remove(os.path.join(out_dir, FAILED_FILE))
    except OSError:
        pass


def collect(out_root: str) -> Tuple[List[Dict[str, str]], int]:
    """Rows of every sub-folder of out_root with a summary.json or failed.json, sorted by input; and how
    many failed."""
    rows, failed = [], 0
    for name in sorted(os.listdir(out_root)) if os.path.isdir(out_root) else []:
        sub = os.path.join(out_root, name)
        if not os.path.isdir(sub):
            continue
        for fname in ("summary.json", FAILED_FILE):
            try:
                with open(os.path.join(sub, fname), encoding="utf-8") as handle:
                    data = json.load(handle)
            except (OSError, ValueError):
                continue
            if fname == "summary.json":
                if not isinstance(data, dict) or not files_agree(sub, data):
                    continue
                rows.append(batch_row(str(data.get("input", name)), sub, data))
            else:
                failed += 1
                rows.append(batch_row(str(data.get("input", name)), sub, None, str(data.get("error", ""))))
            break
    rows.sort(key=lambda r: r["input"])
    return rows, failed


def summarize(out_root: str) -> Tuple[str, int, int]:
    """Write out_root/summary.csv from its finished sub-folders; (markdown table, rows, failed)."""
    rows, failed = collect(out_root)
    table = write_batch_table(os.path.join(out_root, "summary.csv"), rows)
    return table, len(rows), failed


def available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def available_memory_mb() -> Optional[float]:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_jobs(n_inputs: int, threads: int = 1) -> Tuple[int, str]:
    """Workers for n_inputs: the cores available (/ threads per worker), at most one per input, and no
    more than the available memory holds (WORKER_MEMORY_MB each); with the reason."""
    cpus = max(1, available_cpus() // max(1, threads))
    jobs, why = min(cpus, max(1, n_inputs)), f"{available_cpus()} cores available"
    mem = available_memory_mb()
    if mem is not None:
        fit = max(1, int(mem // WORKER_MEMORY_MB))
        if fit < jobs:
            jobs, why = fit, f"memory guard: {mem:.0f} MB available, {WORKER_MEMORY_MB} MB per job"
    return jobs, why
