"""Writers of an analysis: frames.csv, events.csv, summary.json, report.html (+ timeline) and the batch table.
"""
from __future__ import annotations

import csv
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from fer_mask_ros.analysis.analyse import Analysis, FaceRecord, face_frame_counts, summarise
from fer_mask_ros.analysis.events import Event, EventParams, detect_events
from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.safe_write import atomic_output, shown, write_bytes, write_text

#: Face ids seen in fewer processed frames are short (flicker) tracks: no events, share, timeline row, thumbnail.
DEFAULT_MIN_TRACK_FRAMES = 10

FRAMES_HEADER = (["time", "frame", "face_id", "x", "y", "w", "h", "emotion", "confidence"]
                 + [f"p_{e}" for e in EMOTIONS] + ["masked", "mask_probability"])
EVENTS_HEADER = ["start", "end", "face_id", "emotion", "peak_confidence", "mean_confidence", "frames"]


def write_frames_csv(path: str, records: Sequence[FaceRecord]) -> None:
    with atomic_output(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(FRAMES_HEADER)
        writer.writerows(r.row() for r in records)


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
        for e in events:
            writer.writerow([f"{e.start:.4f}", f"{e.end:.4f}", e.face_id, e.emotion, f"{e.peak_confidence:.4f}",
                             f"{e.mean_confidence:.4f}", e.frames])


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


def write_outputs(out_dir: str, result: Analysis, model_path: str, params: EventParams,
                  sampling: Dict[str, Any], min_track_frames: int = 1) -> Dict[str, Any]:
    """frames.csv, events.csv, timeline.png, report.html, then summary.json (last: its presence marks a
    finished input, see analysis/batch.py) into out_dir; returns the summary. Every file is written
    atomically (fer_mask_ros.safe_write); summary.json records the row counts of the two CSVs so that a
    finished input can be checked against its files. WriteError (a full disk) leaves no summary.json.

    Faces seen in fewer than `min_track_frames` processed frames (flicker tracks) keep their rows in
    frames.csv but get no events, no share, no timeline row and no thumbnail."""
    from fer_mask_ros.analysis.render import report_html, timeline_png

    os.makedirs(out_dir, exist_ok=True)
    counts = face_frame_counts(result.records)
    series = {f: s for f, s in result.series().items() if counts[f] >= min_track_frames}
    events = detect_events(series, params)
    summary = summarise(result, events, model_path, params, sampling, min_track_frames)
    write_frames_csv(os.path.join(out_dir, "frames.csv"), result.records)
    write_events_csv(os.path.join(out_dir, "events.csv"), events)
    png = timeline_png({f: (s[0], s[1]) for f, s in series.items()}, events, duration=result.duration or None,
                       title=os.path.basename(result.input))
    write_bytes(os.path.join(out_dir, "timeline.png"), png)
    outputs = ["frames.csv", "events.csv", "timeline.png", "summary.json", "report.html"]
    render_path = getattr(result, "render_path", None)
    if render_path:
        outputs.append(os.path.basename(render_path))
    summary["outputs"] = outputs
    summary["csv_rows"] = {"frames.csv": len(result.records), "events.csv": len(events)}
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
    """DIR/summary.csv; returns the same table as markdown (fewer columns)."""
    with atomic_output(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=BATCH_HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
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
