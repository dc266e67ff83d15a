"""Writers of an analysis: frames.csv, events.csv, summary.json, report.html (+ timeline) and the batch table.
"""
from __future__ import annotations

import csv
import json
import os
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from fer_mask_ros.analysis.analyse import Analysis, FaceRecord, face_frame_counts, summarise
from fer_mask_ros.analysis.events import Event, EventParams, detect_events
from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.safe_write import atomic_output, shown, write_bytes, write_text

#: Face ids seen in fewer processed frames are short (flicker) tracks: no events, share, timeline row, thumbnail.
DEFAULT_MIN_TRACK_FRAMES = 10


class Column(NamedTuple):
    """One CSV column: its name, what it means (COLUMNS.md, summary.json's "columns"), and its cell:
    cell(record, start) -> text, where start is the Unix time of the input's first frame (None: unknown)."""
    name: str
    meaning: str
    cell: Callable[[Any, Optional[float]], str]


def _f4(value: Optional[float]) -> str:
    return "" if value is None else f"{float(value):.4f}"


def _per_record(compute: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """compute(record), computed once for consecutive cells of the same record (one row)."""
    last: List[Any] = [None, None]

    def cached(r: Any) -> Any:
        if last[0] is not r:
            last[0], last[1] = r, compute(r)
        return last[1]

    return cached


@_per_record
def _raw_top(r: FaceRecord) -> Optional[int]:
    return None if r.raw_probabilities is None else int(np.argmax(r.raw_probabilities))


@_per_record
def _affect(r: FaceRecord) -> Tuple[float, float]:
    from fer_mask_ros.interaction.affect import valence_arousal

    return valence_arousal(EMOTIONS, r.probabilities)


def _utc(r: FaceRecord, start: Optional[float]) -> str:
    from fer_mask_ros.analysis.clock import iso_utc

    return "" if start is None else iso_utc(start + r.time)


#: frames.csv, one row per face per processed frame. A new column is one more entry here (its meaning goes
#: into COLUMNS.md and summary.json with it); new columns go at the end, so that old scripts keep working.
FRAMES_COLUMNS: List[Column] = [
    Column("time", "seconds since the input's first frame (videos: frame / fps; bags: header stamp minus the "
           "first image's stamp)", lambda r, _: f"{r.time:.4f}"),
    Column("frame", "frame number in the video, image number of a sequence, or message number on a bag's image "
           "topic", lambda r, _: str(r.frame)),
    Column("face_id", "the tracker's face id, from 1 (as the live graph's Face.id; a new id after a shot cut)",
           lambda r, _: str(r.face_id)),
    Column("x", "face box, left edge (pixels of the input image)", lambda r, _: f"{r.box[0]:.1f}"),
    Column("y", "face box, top edge (pixels)", lambda r, _: f"{r.box[1]:.1f}"),
    Column("w", "face box width (pixels)", lambda r, _: f"{r.box[2]:.1f}"),
    Column("h", "face box height (pixels)", lambda r, _: f"{r.box[3]:.1f}"),
    Column("emotion", "top emotion of the smoothed probabilities (what the live graph publishes on `emotions`)",
           lambda r, _: r.emotion),
    Column("confidence", "smoothed probability of `emotion`", lambda r, _: f"{r.confidence:.4f}"),
] + [
    Column(f"p_{e}", f"smoothed probability of {e} (per-face exponential moving average over frames; the seven "
           "sum to 1)", lambda r, _, k=k: f"{float(r.probabilities[k]):.4f}") for k, e in enumerate(EMOTIONS)
] + [
    Column("masked", "1 when the smoothed mask_probability >= 0.5, else 0", lambda r, _: "1" if r.masked else "0"),
    Column("mask_probability", "smoothed probability that the face wears a mask", lambda r, _: _f4(r.mask_probability)),
    Column("raw_emotion", "top emotion of this frame alone (unsmoothed classifier output; the newest one when "
           "fresh is 0)",
           lambda r, _: "" if _raw_top(r) is None else EMOTIONS[_raw_top(r)]),
    Column("raw_confidence", "probability of `raw_emotion` in this frame alone",
           lambda r, _: "" if _raw_top(r) is None else _f4(r.raw_probabilities[_raw_top(r)])),
] + [
    Column(f"raw_p_{e}", f"probability of {e} in this frame alone (unsmoothed; the seven sum to 1)",
           lambda r, _, k=k: "" if r.raw_probabilities is None else _f4(r.raw_probabilities[k]))
    for k, e in enumerate(EMOTIONS)
] + [
    Column("raw_mask_probability", "mask probability in this frame alone (unsmoothed)",
           lambda r, _: _f4(r.raw_mask_probability)),
    Column("valence", "pleasantness in [-1, 1] from the smoothed p_*: the probability-weighted mean of one fixed "
           "point per emotion on Russell's circumplex (table below; fer_mask_ros.interaction.affect)",
           lambda r, _: f"{_affect(r)[0]:.4f}"),
    Column("arousal", "activation in [-1, 1] from the smoothed p_*, the same way", lambda r, _: f"{_affect(r)[1]:.4f}"),
    Column("utc", "absolute time of the frame, ISO 8601 UTC (2026-12-06T18:12:57.123Z): the recording's start "
           "(summary.json absolute_time says where it came from) + time; empty when the input records none",
           _utc),
    Column("fresh", "1 when a model classified this face in this frame, 0 when the row carries the face's evidence "
           "from earlier frames (the per-face schedule, --classify-hz; raw_* are then the newest earlier answers)",
           lambda r, _: "1" if r.fresh else "0"),
]
FRAMES_HEADER = [c.name for c in FRAMES_COLUMNS]

EVENTS_COLUMNS: List[Column] = [
    Column("start", "time (s, as frames.csv) of the event's first frame", lambda e, _: f"{e.start:.4f}"),
    Column("end", "time (s) of the event's last frame", lambda e, _: f"{e.end:.4f}"),
    Column("face_id", "face id, as in frames.csv", lambda e, _: str(e.face_id)),
    Column("emotion", "the emotion whose smoothed probability made the event", lambda e, _: e.emotion),
    Column("peak_confidence", "largest smoothed probability of `emotion` over the event's frames",
           lambda e, _: f"{e.peak_confidence:.4f}"),
    Column("mean_confidence", "mean smoothed probability of `emotion` over the event's frames",
           lambda e, _: f"{e.mean_confidence:.4f}"),
    Column("frames", "processed frames in the event", lambda e, _: str(e.frames)),
]
EVENTS_HEADER = [c.name for c in EVENTS_COLUMNS]


def write_frames_csv(path: str, records: Sequence[FaceRecord], start: Optional[float] = None) -> None:
    """frames.csv; `start`: Unix time of the input's first frame, for the utc column (None: left empty)."""
    with atomic_output(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(FRAMES_HEADER)
        writer.writerows([c.cell(r, start) for c in FRAMES_COLUMNS] for r in records)


def csv_rows(path: str) -> Optional[int]:
    """Data rows of a CSV written here (lines after the header), or None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return max(0, sum(1 for _ in handle) - 1)
    except OSError:
        return None


def write_events_csv(path: str, events: Sequence[Event]) -> None:
    with atomic_output(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(EVENTS_HEADER)
        writer.writerows([c.cell(e, None) for c in EVENTS_COLUMNS] for e in events)


def key_frame_images(result: Analysis, events: Sequence[Event], limit: int = 12) -> List[Tuple[str, bytes]]:
    """Annotated JPEGs of the peak frames of the strongest events (one per face and emotion; first the
    strongest event of every face, then the others), the event's face marked."""
    from fer_mask_ros.analysis.render import draw_faces, encode_jpeg

    ranked = sorted(events, key=lambda e: -e.peak_confidence)
    firsts, seen_faces = [], set()
    for ev in ranked:
        if ev.face_id not in seen_faces:
            seen_faces.add(ev.face_id)
            firsts.append(ev)
    out, seen = [], set()
    for ev in firsts + ranked:
        pair = (ev.face_id, ev.emotion)
        if pair in seen or pair not in result.key_frames:
            continue
        seen.add(pair)
        conf, index, small, recs, scale = result.key_frames[pair]
        scaled = [FaceRecord(r.time, r.frame, r.face_id, tuple(v * scale for v in r.box), r.emotion, r.confidence,
                             r.probabilities, r.masked, r.mask_probability) for r in recs]
        t = recs[0].time if recs else 0.0
        caption = f"face {ev.face_id} {ev.emotion} {conf:.2f} at {t:.2f} s (frame {index})"
        out.append((caption, encode_jpeg(draw_faces(small, scaled, time_s=t, highlight=ev.face_id))))
        if len(out) >= limit:
            break
    return out


def people(result: Analysis, faces: Sequence[int], events: Sequence[Event]) -> List[Dict[str, Any]]:
    """One entry per kept face: best-view thumbnail (JPEG), frames, first/last seen, top emotion, events."""
    from fer_mask_ros.analysis.render import encode_jpeg

    counts = face_frame_counts(result.records)
    spans: Dict[int, List[float]] = {}
    tops: Dict[int, Dict[str, int]] = {}
    for r in result.records:
        span = spans.setdefault(r.face_id, [r.time, r.time])
        span[0], span[1] = min(span[0], r.time), max(span[1], r.time)
        top = tops.setdefault(r.face_id, {})
        top[r.emotion] = top.get(r.emotion, 0) + 1
    out = []
    for fid in faces:
        thumb = result.thumbnails.get(fid)
        out.append({"face_id": fid, "frames": counts.get(fid, 0), "first": spans[fid][0], "last": spans[fid][1],
                    "top_emotion": max(sorted(tops[fid]), key=lambda e: tops[fid][e]),
                    "events": sum(1 for e in events if e.face_id == fid),
                    "thumbnail": encode_jpeg(thumb[3]) if thumb is not None else None,
                    "thumbnail_at": (thumb[1], thumb[2]) if thumb is not None else None})
    return out


def model_files(detector: Any, classifier: Any) -> Dict[str, Dict[str, Any]]:
    """summary.json's "models": path and sha256 of the classifier (and of the ONNX copy its runtime runs) and
    of the detector, so that a result names the exact weights, not only a path."""
    from fer_mask_ros.perception.classifier import int8_path_for, onnx_path_for

    out: Dict[str, Dict[str, Any]] = {}
    zoo = classifier if callable(getattr(classifier, "model_files", None)) else None
    if zoo is not None:  # a perception.zoo.Zoo: our net (the mask flag's member) first, then every member's file
        classifier = getattr(getattr(zoo, "members", {}).get(getattr(zoo, "mask_member", "")), "classifier", None)
    path = getattr(classifier, "model_path", None)
    if path:
        entry = _file_entry(path)
        backend = getattr(classifier, "backend", None)
        runs = {"int8": int8_path_for, "onnxruntime": onnx_path_for}.get(str(backend))
        if backend:
            entry["backend"] = backend
        if runs is not None and os.path.abspath(runs(path)) != os.path.abspath(path):
            entry["runs"] = _file_entry(runs(path))
        out["classifier"] = entry
    if zoo is not None:
        out.setdefault("classifier", {}).update(
            name=getattr(zoo, "name", type(zoo).__name__),
            files={n: _file_entry(f) for n, f in sorted(zoo.model_files().items()) if f})
    path = getattr(detector, "model_path", None)
    if path:
        out["detector"] = dict(_file_entry(path), kind=type(detector).__name__)
    return out


_HASHES: Dict[Tuple[str, int, int], str] = {}


def _file_entry(path: str) -> Dict[str, Any]:
    """{"path", "sha256"} (sha256 None when the file cannot be read); hashed once per file version."""
    from fer_mask_ros.perception.classifier import file_sha256

    path = os.path.abspath(path)
    try:
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
        if key not in _HASHES:
            _HASHES[key] = file_sha256(path)
        return {"path": path, "sha256": _HASHES[key]}
    except OSError:
        return {"path": path, "sha256": None}


#: DIR/summary.csv (batch mode), one row per input.
BATCH_MEANINGS = {
    "input": "the input file (or folder of frames)",
    "status": "ok, partial (some frames could not be decoded) or failed",
    "output": "the input's output folder",
    "frames": "processed frames",
    "duration": "input duration (s)",
    "fps_processed": "processing speed, frames per wall-clock second",
    "faces": "face ids kept (short tracks left out)",
    "events": "emotion events",
    "dominant_emotion": "the most frequent smoothed top emotion over all kept faces' frames",
    **{f"share_{e}": f"share of the kept faces' frames whose top emotion is {e}" for e in EMOTIONS},
    "error": "why the input failed (or frames unreadable)",
}


def column_meanings(files: Sequence[str]) -> Dict[str, Dict[str, str]]:
    """{file: {column: meaning}} for the CSVs among `files` (summary.json's "columns")."""
    known = {"frames.csv": {c.name: c.meaning for c in FRAMES_COLUMNS},
             "events.csv": {c.name: c.meaning for c in EVENTS_COLUMNS},
             "summary.csv": {k: BATCH_MEANINGS[k] for k in BATCH_HEADER}}
    return {name: known[name] for name in files if name in known}


def columns_markdown(files: Sequence[str], absolute_time: Optional[Dict[str, Any]] = None) -> str:
    """COLUMNS.md: every column of every CSV among `files`, the circumplex points and where times come from."""
    from fer_mask_ros.interaction.affect import CIRCUMPLEX

    lines = ["# Columns of the CSV files in this folder", "",
             "Written by `python -m fer_mask_ros analyze` (docs/ANALYSIS.md)."
             + (" The same descriptions are in summary.json under \"columns\"." if "summary.json" in files else ""),
             ""]
    for name, meanings in column_meanings(files).items():
        lines += [f"## {name}", "", "| column | meaning |", "| --- | --- |"]
        lines += [f"| `{col}` | {text.replace('|', '/')} |" for col, text in meanings.items()]
        lines.append("")
    if "frames.csv" in files:
        lines += ["## Valence and arousal", "",
                  "`valence` and `arousal` are sum(p_e x point_e) over the seven emotions, with these fixed points "
                  "(Russell's circumplex, rounded; a design choice, not a measurement):", "",
                  "| emotion | valence | arousal |", "| --- | ---: | ---: |"]
        lines += [f"| {e} | {CIRCUMPLEX[e][0]:+.1f} | {CIRCUMPLEX[e][1]:+.1f} |" for e in EMOTIONS]
        lines.append("")
        if absolute_time is not None:
            start = absolute_time.get("start_utc")
            lines += ["## Absolute time", "",
                      (f"`utc` = {start} (the first frame) + `time`; from: {absolute_time.get('source')}." if start
                       else f"`utc` is empty: {absolute_time.get('source')}."), ""]
    return "\n".join(lines)


def write_outputs(out_dir: str, result: Analysis, model_path: str, params: EventParams,
                  sampling: Dict[str, Any], min_track_frames: int = 1, models: Optional[Dict[str, Any]] = None,
                  export: Sequence[str] = ()) -> Dict[str, Any]:
    """frames.csv, events.csv, timeline.png, report.html, COLUMNS.md (+ the `export` formats: "elan"), then
    summary.json (last: its presence marks a finished input, see analysis/batch.py) into out_dir; returns the
    summary. Every file is written atomically (fer_mask_ros.safe_write); summary.json records the row counts of
    the two CSVs so that a finished input can be checked against its files. WriteError (a full disk) leaves no
    summary.json. `models`: summary.json's "models" (model_files: paths and sha256).

    Faces seen in fewer than `min_track_frames` processed frames (flicker tracks) keep their rows in
    frames.csv but get no events, no share, no timeline row and no thumbnail."""
    from fer_mask_ros.analysis.clock import iso_utc, recording_start
    from fer_mask_ros.analysis.render import report_html, timeline_png

    os.makedirs(out_dir, exist_ok=True)
    counts = face_frame_counts(result.records)
    series = {f: s for f, s in result.series().items() if counts[f] >= min_track_frames}
    events = detect_events(series, params)
    summary = summarise(result, events, model_path, params, sampling, min_track_frames)
    start, source = recording_start(result.input, result.kind, result.start_stamp)
    summary["absolute_time"] = {"start_utc": iso_utc(start) or None, "source": source}
    if models:
        summary["models"] = models
    write_frames_csv(os.path.join(out_dir, "frames.csv"), result.records, start)
    write_events_csv(os.path.join(out_dir, "events.csv"), events)
    png = timeline_png({f: (s[0], s[1]) for f, s in series.items()}, events, duration=result.duration or None,
                       title=os.path.basename(result.input))
    write_bytes(os.path.join(out_dir, "timeline.png"), png)
    outputs = ["frames.csv", "events.csv", "timeline.png", "summary.json", "report.html", "COLUMNS.md"]
    render_path = getattr(result, "render_path", None)
    if render_path:
        outputs.append(os.path.basename(render_path))
    if "elan" in export:
        from fer_mask_ros.analysis.elan import eaf_name, write_eaf

        name = eaf_name(result.input)
        write_eaf(os.path.join(out_dir, name), result, events, summary["face_ids"], render_path=render_path)
        outputs.append(name)
    summary["outputs"] = outputs
    summary["csv_rows"] = {"frames.csv": len(result.records), "events.csv": len(events)}
    summary["columns"] = column_meanings(outputs)
    write_text(os.path.join(out_dir, "COLUMNS.md"), columns_markdown(outputs, summary["absolute_time"]))
    page = report_html(summary, events, png, key_frame_images(result, events),
                       people=people(result, summary["face_ids"], events),
                       video=os.path.basename(render_path) if render_path else None)
    write_text(os.path.join(out_dir, "report.html"), page)
    write_text(os.path.join(out_dir, "summary.json"), json.dumps(summary, indent=1) + "\n")
    return summary


BATCH_HEADER = (["input", "status", "output", "frames", "duration", "fps_processed", "faces", "events",
                 "dominant_emotion"] + [f"share_{e}" for e in EMOTIONS] + ["error"])


def batch_row(input_path: str, out_dir: str, summary: Optional[Dict[str, Any]], error: str = "") -> Dict[str, str]:
    row = {k: "" for k in BATCH_HEADER}
    row.update(input=input_path, output=out_dir, status="ok" if summary is not None else "failed", error=error)
    if summary is not None and summary.get("frames_unreadable"):
        row.update(status="partial", error=f"{summary['frames_unreadable']} frames unreadable")
    if summary is not None:
        totals = {e: 0.0 for e in EMOTIONS}
        for fid, share in summary["emotion_shares"].items():
            n = summary["frames_per_face"].get(fid, 0)
            for e in EMOTIONS:
                totals[e] += share[e] * n
        n_all = sum(totals.values())
        row.update(frames=str(summary["frames"]), duration=f"{summary['duration']:.2f}",
                   fps_processed=f"{summary['fps_processed']:.1f}", faces=str(summary["faces"]),
                   events=str(summary["events"]))
        if n_all > 0:
            row["dominant_emotion"] = max(EMOTIONS, key=lambda e: totals[e])
            for e in EMOTIONS:
                row[f"share_{e}"] = f"{totals[e] / n_all:.3f}"
    return row


def write_batch_table(path: str, rows: Sequence[Dict[str, str]]) -> str:
    """DIR/summary.csv and DIR/COLUMNS.md; returns the same table as markdown (fewer columns)."""
    with atomic_output(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=BATCH_HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    write_text(os.path.join(os.path.dirname(path), "COLUMNS.md"), columns_markdown(["summary.csv"]))
    cols = ["input", "status", "frames", "duration", "fps_processed", "faces", "events", "dominant_emotion"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        cells = [r[c] if c != "status" or not r["error"] else f"failed: {r['error']}" for c in cols]
        lines.append("| " + " | ".join(shown(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def face_table(records: Sequence[Any]) -> str:
    """A text table, one row per face: frames seen, first and last time, most frequent emotion, its share and mean
    confidence, share of frames masked. Records are duck-typed: face_id, time, emotion, confidence, masked."""
    from collections import Counter

    by_face: Dict[Any, List[Any]] = {}
    for r in records:
        by_face.setdefault(r.face_id, []).append(r)
    lines = [f"{'face':>4}  {'frames':>6}  {'first s':>7}  {'last s':>7}  {'emotion':<8}  {'share':>5}  "
             f"{'conf':>4}  {'mask':>4}"]
    for face_id, rs in sorted(by_face.items()):
        emotion, n = Counter(r.emotion for r in rs).most_common(1)[0]
        hits = [float(r.confidence) for r in rs if r.emotion == emotion]
        masked = sum(bool(r.masked) for r in rs) / len(rs)
        lines.append(f"{face_id:>4}  {len(rs):>6}  {rs[0].time:>7.2f}  {rs[-1].time:>7.2f}  {emotion:<8}  "
                     f"{n / len(rs):>5.0%}  {sum(hits) / len(hits):>4.2f}  {masked:>4.0%}")
    return "\n".join(lines)
