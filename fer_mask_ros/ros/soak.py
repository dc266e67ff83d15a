"""Soak test: the demo graph (demo.launch: fake NAO -> nao_camera -> face_detector -> emotion_classifier ->
emotion_speech) at 30 fps for N minutes; per minute: EmotionStamped latency p50/p95, processed fps, RSS per
node and the nodes' backlog (received - processed - dropped - skipped, from /diagnostics).

    python -m fer_mask_ros.ros.soak --minutes 10            (make soak MINUTES=10)

Fails (exit 1) when the graph grows: p95 of the last minute more than 20 % above the first minute's
(and above 60 ms), RSS of a node more than 30 MB above its first minute's, or a backlog > 1.
Needs the catkin workspace sourced (`make soak` does it).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

from fer_mask_ros.config import model_path
from fer_mask_ros.errors import MasterError
from fer_mask_ros.ros.bench_graph import (
    REPO,
    _ensure_messages,
    _find_pid,
    _Listener,
    _wait,
    machine_description,
    percentile,
    private_master,
    proc_sample,
    write_performance_md,
)

NODES = ("nao_camera", "face_detector", "emotion_classifier", "emotion_speech", "fake_nao")
RSS_COLUMNS = ("nao_camera", "face_detector", "emotion_classifier", "emotion_speech")
BEGIN, END = "<!-- soak:begin -->", "<!-- soak:end -->"


class _DiagBacklog:
    """Latest received/processed/dropped/bad_input per node from /diagnostics."""

    def __init__(self):
        import rospy  # noqa: PLC0415
        from diagnostic_msgs.msg import DiagnosticArray  # noqa: PLC0415

        self.values: Dict[str, Dict[str, str]] = {}
        self.lock = threading.Lock()
        self.sub = rospy.Subscriber("/diagnostics", DiagnosticArray, self._cb, queue_size=50)

    def _cb(self, msg) -> None:
        with self.lock:
            for s in msg.status:
                self.values[s.name] = {kv.key: kv.value for kv in s.values}

    def backlog(self) -> Dict[str, int]:
        out = {}
        with self.lock:
            for name, v in self.values.items():
                rec = v.get("received", v.get("pairs_received"))
                if rec is None or "processed" not in v:
                    continue
                out[name.rsplit("/", 1)[-1]] = int(rec) - int(v["processed"]) - int(v.get("dropped", 0)) - int(
                    v.get("bad_input", 0))
        return out


def run(minutes: float, fps: float, model: Optional[str], port: int, master_port: int,
        out_md: Optional[Path], out_json: Optional[Path]) -> int:
    machine = machine_description()
    rows: List[Dict] = []
    _ensure_messages()
    try:
        with private_master(master_port, "soak", "fer_soak_") as (env, procs, _tmp):
            if not _soak_minutes(minutes, fps, model, port, machine, env, procs, rows):
                return 2
    except MasterError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    if not rows:
        return 2
    problems = verdict(rows)
    summary = ("soak: OK (no growth)" if not problems else "soak: GROWTH: " + "; ".join(problems))
    print(summary)
    if out_json:
        out_json.write_text(json.dumps({"machine": machine, "fps": fps, "minutes": rows}, indent=1) + "\n")
    if out_md:
        write_md(out_md, rows, machine, fps, summary)
    return 0 if not problems else 1


def _soak_minutes(minutes: float, fps: float, model: Optional[str], port: int, machine: Dict, env: Dict,
                  procs: Dict, rows: List[Dict]) -> bool:
    """demo.launch under `env`, one row per minute into `rows`; False when the graph never answered."""
    launch = ["roslaunch", "fer_mask_ros", "demo.launch", f"fps:={fps:g}", f"port:={port}", "output:=log"]
    if model:
        launch.append(f"model:={model}")
    procs["graph"] = subprocess.Popen(launch, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    listener = _Listener("fer_mask")
    diag = _DiagBacklog()
    if not _wait(lambda: listener.arrays_total > 5, 120):
        print("soak: no EmotionArray within 120 s", file=sys.stderr)
        return False
    pids = {n: _find_pid(f"__name:={n}") for n in NODES}
    print(f"soak: demo graph at {fps:g} fps for {minutes:g} min on {machine['cpu']}, {machine['cores']} cores "
          f"(load {machine['load_before']})", flush=True)
    print("| minute | p50 ms | p95 ms | processed fps | camera fps | RSS MB cam / det / cls / speech | backlog |",
          flush=True)
    print("|---|---|---|---|---|---|---|", flush=True)
    listener.reset()
    for minute in range(1, int(round(minutes)) + 1):
        t0 = time.monotonic()
        time.sleep(60.0)
        with listener.lock:
            lat = list(listener.latencies) or list(listener.frame_latencies)
            arrays, infos = listener.arrays, listener.infos
        dt = time.monotonic() - t0
        listener.reset()
        rss = {n: (s.rss / 2 ** 20 if s else float("nan"))
               for n, s in ((n, proc_sample(p) if p else None) for n, p in pids.items())}
        row = {"minute": minute, "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95),
               "processed_fps": arrays / dt, "camera_fps": infos / dt, "rss_mb": rss, "backlog": diag.backlog()}
        rows.append(row)
        r = " / ".join(f"{rss[n]:.0f}" for n in RSS_COLUMNS)
        print(f"| {minute} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['processed_fps']:.1f} "
              f"| {row['camera_fps']:.1f} | {r} | {row['backlog']} |", flush=True)
    return True


def verdict(rows: List[Dict], p95_growth: float = 0.20, p95_floor_ms: float = 60.0,
            rss_growth_mb: float = 30.0) -> List[str]:
    """What grew between the first and the last minute (empty list: nothing)."""
    first, last = rows[0], rows[-1]
    problems = []
    if last["p95_ms"] > max(first["p95_ms"] * (1 + p95_growth), p95_floor_ms):
        problems.append(f"p95 {first['p95_ms']:.1f} -> {last['p95_ms']:.1f} ms")
    for node, mb in last["rss_mb"].items():
        base = first["rss_mb"].get(node)
        if base == base and mb == mb and base is not None and mb - base > rss_growth_mb:
            problems.append(f"{node} RSS {base:.0f} -> {mb:.0f} MB")
    for node, n in last["backlog"].items():
        if n > 1:
            problems.append(f"{node} backlog {n}")
    return problems


def write_md(path: Path, rows: List[Dict], machine: Dict, fps: float, summary: str) -> None:
    lines = [f"Soak {time.strftime('%Y-%m-%d %H:%M')}: demo graph at {fps:g} fps, {len(rows)} min, {machine['cpu']}, "
             f"{machine['cores']} cores, load before {machine['load_before']}.", "",
             "| minute | p50 ms | p95 ms | processed fps | RSS MB cam / det / cls / speech |", "|---|---|---|---|---|"]
    for row in rows:
        r = " / ".join(f"{row['rss_mb'][n]:.0f}" for n in RSS_COLUMNS)
        lines.append(f"| {row['minute']} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['processed_fps']:.1f} "
                     f"| {r} |")
    lines += ["", summary]
    write_performance_md(path, "\n".join(lines), BEGIN, END)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer_mask_ros.ros.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--model", default=None, help="expression model (default models/fer_mask_net.pt)")
    p.add_argument("--port", type=int, default=19591, help="fake NAO port")
    p.add_argument("--master-port", type=int, default=11491)
    p.add_argument("--write", action="store_true", help="write the table into docs/PERFORMANCE.md (soak section)")
    args = p.parse_args(argv)
    model = args.model or model_path("fer_mask_net.pt")
    if not os.path.isfile(model):
        print(f"soak: expression model {model} not found (--model)", file=sys.stderr)
        return 2
    out_md = REPO / "docs" / "PERFORMANCE.md" if args.write else None
    return run(args.minutes, args.fps, model, args.port, args.master_port, out_md, None)


if __name__ == "__main__":
    sys.exit(main())
