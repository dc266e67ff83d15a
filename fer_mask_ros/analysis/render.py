"""Pictures of an analysis: overlay on frames, timeline PNG (matplotlib Agg, else OpenCV), self-contained HTML report.

Face records passed in here are duck-typed: anything with ``face_id``, ``box`` (x, y, w, h),
``emotion``, ``confidence``, ``probabilities`` (7, EMOTIONS order), ``masked`` and
``mask_probability`` (fer_mask_ros.analysis.analyse.FaceRecord).
"""
from __future__ import annotations

import base64
import html
import io
import json
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.safe_write import shown

#: One colour per emotion (RGB hex, for matplotlib and HTML).
EMOTION_HEX = {
    "angry": "#d62728", "disgust": "#8c8c00", "fear": "#9467bd", "happy": "#ffb000",
    "neutral": "#9e9e9e", "sad": "#1f77b4", "surprise": "#17becf",
}


def _bgr(hex_colour: str) -> Tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    r, g, b = int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    return (b, g, r)


EMOTION_BGR = {e: _bgr(c) for e, c in EMOTION_HEX.items()}
_FONT = cv2.FONT_HERSHEY_SIMPLEX


#: Bar labels: the first three letters of each emotion.
BAR_LABELS = [e[:3] for e in EMOTIONS]


def _overlaps(a: Tuple[int, ...], b: Tuple[int, ...]) -> bool:
    """Do two (x0, y0, x1, y1) rectangles overlap?"""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


Rect = Tuple[int, int, int, int]


def label_rect(box: Rect, size: Tuple[int, int], image: Tuple[int, int]) -> Rect:
    """Where a label of `size` (w, h) goes for a box (x, y, w, h) in an image (w, h): above the box, else below it,
    else inside its top edge; moved left or right to stay whole in the image. (x0, y0, x1, y1)."""
    x, y, w, h = box
    lw, lh = size
    w_img, h_img = image
    if y - lh >= 0:
        y0 = y - lh
    elif y + h + lh <= h_img:
        y0 = y + h
    else:
        y0 = max(0, y)
    x0 = max(0, min(x, w_img - lw))
    return x0, y0, x0 + lw, y0 + lh


def panel_rect(box: Tuple[int, int, int, int], size: Tuple[int, int], image: Tuple[int, int],
               avoid: Optional[Tuple[int, int, int, int]] = None) -> Tuple[Tuple[int, int, int, int], bool]:
    """Where the bar panel of `size` goes: beside the box (right, then left), below it, above it, never over the box
    or the `avoid` rectangle (the label) while there is room outside; else inside the box's top corner (the
    forehead, not the mouth). ((x0, y0, x1, y1), inside the box?)."""
    x, y, w, h = box
    pw, ph = size
    w_img, h_img = image
    top = max(0, min(y, h_img - ph))
    left = max(0, min(x, w_img - pw))
    candidates = [(x + w + 2, top), (x - pw - 2, top), (left, y + h + 2), (left, y - ph - 2)]
    face = (x, y, x + w, y + h)
    for cx, cy in candidates:
        rect = (cx, cy, cx + pw, cy + ph)
        if cx < 0 or cy < 0 or rect[2] > w_img or rect[3] > h_img or _overlaps(rect, face):
            continue
        if avoid is not None and _overlaps(rect, avoid):
            continue
        return rect, False
    cx = max(0, min(x + w - pw, w_img - pw))
    cy = max(0, min(y, h_img - ph))
    if avoid is not None and _overlaps((cx, cy, cx + pw, cy + ph), avoid):
        cy = max(0, min(avoid[3] + 1, h_img - ph))
    return (cx, cy, cx + pw, cy + ph), True


def draw_faces(frame_bgr: np.ndarray, faces: Sequence, bars: bool = True, time_s: Optional[float] = None,
               highlight: Optional[int] = None) -> np.ndarray:
    """A copy of the frame with a box, "#id emotion conf (mask)" and 7 labelled confidence bars per face, placed
    outside the box where there is room (label_rect, panel_rect), so they cover neither the face nor the image edge.
    `highlight`: this face id gets a thick black and white frame around its box and the others a thin box only."""
    out = np.ascontiguousarray(frame_bgr).copy()
    h_img, w_img = out.shape[:2]
    scale = max(0.35, min(1.0, w_img / 900.0))
    faces = sorted(faces, key=lambda f: f.face_id == highlight)  # the highlighted face drawn last, on top
    for f in faces:
        x, y, w, h = (int(round(float(v))) for v in f.box)
        colour = EMOTION_BGR.get(f.emotion, (0, 255, 0))
        if highlight is not None and f.face_id != highlight:
            cv2.rectangle(out, (x, y), (x + w, y + h), colour, 1)
            continue
        if highlight is not None:  # a black and white frame: visible on light and dark backgrounds
            cv2.rectangle(out, (x - 5, y - 5), (x + w + 5, y + h + 5), (0, 0, 0), 5)
            cv2.rectangle(out, (x - 5, y - 5), (x + w + 5, y + h + 5), (255, 255, 255), 2)
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, 2)
        text = f"#{f.face_id} {f.emotion} {float(f.confidence):.2f}" + (" mask" if f.masked else "")
        (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
        label = label_rect((x, y, w, h), (tw + 3, th + base + 3), (w_img, h_img))
        cv2.rectangle(out, (label[0], label[1]), (label[2] - 1, label[3] - 1), colour, -1)
        cv2.putText(out, text, (label[0] + 1, label[3] - base - 1), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
        if bars:
            _draw_bars(out, f, (x, y, w, h), scale, label)
    if time_s is not None:
        cv2.putText(out, f"{time_s:7.2f} s", (4, h_img - 6), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _draw_bars(out: np.ndarray, f, box: Tuple[int, int, int, int], scale: float,
               label: Tuple[int, int, int, int]) -> None:
    """Seven horizontal bars, one per emotion (EMOTIONS order, emotion colours), each labelled with its emotion's
    first letters, in a dark panel beside the box (panel_rect); half-transparent when it must go inside the box."""
    h_img, w_img = out.shape[:2]
    small = scale * 0.8
    (lw, lh), _ = cv2.getTextSize("sur", _FONT, small, 1)
    row = lh + 3
    bar_len = max(20, int(70 * scale))
    pw, ph = lw + bar_len + 8, row * len(EMOTIONS) + 4
    (x0, y0, x1, y1), inside = panel_rect(box, (pw, ph), (w_img, h_img), avoid=label)
    x1, y1 = min(x1, w_img), min(y1, h_img)
    if x1 <= x0 or y1 <= y0:
        return
    region = out[y0:y1, x0:x1]
    panel = region.copy()
    panel[:] = (30, 30, 30)
    probs = np.asarray(f.probabilities, dtype=np.float64).reshape(-1)
    for k, (emotion, name) in enumerate(zip(EMOTIONS, BAR_LABELS)):
        top = 2 + k * row
        cv2.putText(panel, name, (2, top + lh), _FONT, small, (235, 235, 235), 1, cv2.LINE_AA)
        v = float(np.clip(probs[k] if k < probs.size else 0.0, 0, 1))
        length = int(round(v * bar_len))
        if length > 0:
            cv2.rectangle(panel, (lw + 5, top + 1), (lw + 5 + length, top + row - 2), EMOTION_BGR[emotion], -1)
    region[:] = cv2.addWeighted(panel, 0.65, region, 0.35, 0) if inside else panel


# ----------------------------------------------------------------------------- timeline


def _segments(times: np.ndarray, gap: float) -> List[slice]:
    """Contiguous stretches of a face's samples (split where the time step exceeds gap)."""
    if len(times) == 0:
        return []
    cuts = np.nonzero(np.diff(times) > gap)[0] + 1
    bounds = [0] + cuts.tolist() + [len(times)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def timeline_faces(series: Dict[int, Tuple[np.ndarray, np.ndarray]], events: Sequence = (),
                   max_faces: int = 8) -> List[int]:
    """The faces the timeline shows: every face with an event, then the most seen others up to max_faces;
    in order of first appearance."""
    with_events = {ev.face_id for ev in events if ev.face_id in series}
    others = sorted((f for f in series if f not in with_events), key=lambda fid: (-len(series[fid][0]), fid))
    faces = sorted(with_events) + others[:max(0, max_faces - len(with_events))]
    return sorted(faces, key=lambda fid: (float(np.min(series[fid][0])) if len(series[fid][0]) else 0.0, fid))


def timeline_png(series: Dict[int, Tuple[np.ndarray, np.ndarray]], events: Sequence = (),
                 duration: Optional[float] = None, title: str = "", max_faces: int = 8) -> bytes:
    """PNG bytes: one subplot per face: stacked smoothed probabilities per emotion, the top-emotion
    confidence as a black line, events as bars on top.  Every face with an event is shown; faces
    without events fill up to max_faces rows, most seen first; rows in order of first appearance.

    series: {face_id: (times (N,), probs (N, 7))}.
    Without matplotlib (an extra: `pip install fer_mask_ros[plots]`) the same rows are drawn with OpenCV.
    """
    try:
        import matplotlib
    except ImportError:
        return _timeline_png_cv2(series, events, duration, title, max_faces)

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    faces = timeline_faces(series, events, max_faces)
    n = max(1, len(faces))
    fig = Figure(figsize=(10, 1.2 + 1.7 * n), dpi=90)
    axes = [fig.add_subplot(n, 1, i + 1) for i in range(n)]
    all_t = np.concatenate([series[f][0] for f in faces]) if faces else np.zeros(0)
    t_max = float(duration) if duration else (float(all_t.max()) if all_t.size else 1.0)
    t_max = max(t_max, 1e-3)
    colours = [EMOTION_HEX[e] for e in EMOTIONS]
    for ax, fid in zip(axes, faces):
        times, probs = (np.asarray(a, dtype=np.float64) for a in series[fid])
        order = np.argsort(times, kind="stable")
        times, probs = times[order], probs[order].reshape(len(times), -1)
        spacing = float(np.median(np.diff(times))) if len(times) > 1 else 0.1
        for seg in _segments(times, max(0.5, 3 * spacing)):
            t = times[seg]
            if len(t) == 1:  # a lone sample: give it one frame of width
                t = np.array([t[0], t[0] + spacing])
                p = np.repeat(probs[seg], 2, axis=0)
            else:
                p = probs[seg]
            ax.stackplot(t, p.T, colors=colours, linewidth=0, alpha=0.85)
            ax.plot(t, p.max(axis=1), color="black", linewidth=0.8)
        for ev in events:
            if ev.face_id == fid:
                ax.barh(1.08, max(ev.end - ev.start, spacing), left=ev.start, height=0.1,
                        color=EMOTION_HEX.get(ev.emotion, "#000"), edgecolor="black", linewidth=0.5, clip_on=False)
        ax.set_xlim(0, t_max)
        ax.set_ylim(0, 1.15)
        ax.set_yticks([0, 0.5, 1])
        ax.set_ylabel(f"face {fid}")
        ax.grid(axis="x", alpha=0.3)
    if not faces:
        axes[0].text(0.5, 0.5, "no faces found", ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_xlim(0, t_max)
        axes[0].set_yticks([])
    axes[-1].set_xlabel("time (s)")
    hidden = len(series) - len(faces)
    head = shown(title) + (f"  ({hidden} more faces without events not shown)" if hidden > 0 else "")
    if head:
        axes[0].set_title(head, fontsize=10)
    from matplotlib.lines import Line2D

    handles = [Patch(color=EMOTION_HEX[e], label=e) for e in EMOTIONS]
    handles += [Line2D([], [], color="black", linewidth=0.8, label="confidence of the top emotion"),
                Patch(facecolor="white", edgecolor="black", label="bar on top: an event (its emotion's colour)")]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=8, frameon=False)
    bottom = min(0.3, 0.55 / (1.2 + 1.7 * n))
    fig.tight_layout(rect=(0, bottom, 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _timeline_png_cv2(series: Dict[int, Tuple[np.ndarray, np.ndarray]], events: Sequence = (),
                      duration: Optional[float] = None, title: str = "", max_faces: int = 8) -> bytes:
    """timeline_png drawn with OpenCV alone (no matplotlib): the same rows, stacked probabilities, the
    top-emotion confidence as a black line, events as bars on top, a time axis and a legend."""
    faces = timeline_faces(series, events, max_faces)
    width, left, right, row_h, gap, top = 900, 70, 20, 110, 26, 34
    legend_h = 52
    n = max(1, len(faces))
    height = top + n * (row_h + gap) + 24 + legend_h
    img = np.full((height, width, 3), 255, np.uint8)
    all_t = np.concatenate([np.asarray(series[f][0], np.float64) for f in faces]) if faces else np.zeros(0)
    t_max = max(float(duration) if duration else (float(all_t.max()) if all_t.size else 1.0), 1e-3)
    plot_w = width - left - right

    def x_of(t):
        return (left + np.clip(np.asarray(t, np.float64) / t_max, 0, 1) * plot_w).astype(np.int32)

    hidden = len(series) - len(faces)
    head = shown(title) + (f"  ({hidden} more faces without events not shown)" if hidden > 0 else "")
    if head:
        cv2.putText(img, head[:110], (left, 20), _FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    steps = [m * 10.0 ** e for e in range(-1, 6) for m in (1, 2, 5)]
    step = max([s for s in steps if t_max / s >= 5] or steps[:1])  # 5 to 10 ticks
    for r in range(n):
        y0 = top + r * (row_h + gap) + 12  # 12 px above the plot for event bars
        y1 = y0 + row_h
        cv2.rectangle(img, (left, y0), (left + plot_w, y1), (120, 120, 120), 1)
        for t in np.arange(0.0, t_max + 1e-9, step):
            cv2.line(img, (int(x_of(t)), y0), (int(x_of(t)), y1), (225, 225, 225), 1)
        if not faces:
            cv2.putText(img, "no faces found", (left + plot_w // 2 - 60, (y0 + y1) // 2), _FONT, 0.55, (0, 0, 0), 1,
                        cv2.LINE_AA)
            continue
        fid = faces[r]
        cv2.putText(img, f"face {fid}", (6, (y0 + y1) // 2 + 5), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        times, probs = (np.asarray(a, dtype=np.float64) for a in series[fid])
        order = np.argsort(times, kind="stable")
        times, probs = times[order], probs[order].reshape(len(times), -1)
        spacing = float(np.median(np.diff(times))) if len(times) > 1 else 0.1
        for seg in _segments(times, max(0.5, 3 * spacing)):
            t, p = times[seg], probs[seg]
            if len(t) == 1:
                t, p = np.array([t[0], t[0] + spacing]), np.repeat(p, 2, axis=0)
            xs = x_of(t)
            below = np.zeros(len(t))
            for k, emotion in enumerate(EMOTIONS[:p.shape[1]]):
                above = below + np.clip(p[:, k], 0, 1)
                lower, upper = np.stack([xs, y1 - below * row_h], 1), np.stack([xs, y1 - above * row_h], 1)
                poly = np.concatenate([lower, upper[::-1]])
                cv2.fillPoly(img, [poly.astype(np.int32)], EMOTION_BGR[emotion], cv2.LINE_AA)
                below = above
            line = np.stack([xs, y1 - p.max(axis=1) * row_h], 1).astype(np.int32)
            cv2.polylines(img, [line], False, (0, 0, 0), 1, cv2.LINE_AA)
        for ev in events:
            if ev.face_id == fid:
                xa, xb = int(x_of(ev.start)), int(x_of(ev.start + max(ev.end - ev.start, spacing)))
                cv2.rectangle(img, (xa, y0 - 10), (max(xb, xa + 2), y0 - 2), EMOTION_BGR.get(ev.emotion, (0, 0, 0)), -1)
                cv2.rectangle(img, (xa, y0 - 10), (max(xb, xa + 2), y0 - 2), (0, 0, 0), 1)
    axis_y = top + n * (row_h + gap) + 4
    for t in np.arange(0.0, t_max + 1e-9, step):
        cv2.putText(img, f"{t:g}", (int(x_of(t)) - 8, axis_y + 8), _FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "time (s)", (left + plot_w // 2 - 30, axis_y + 24), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    x, y = left, height - legend_h + 24
    for emotion in EMOTIONS:
        cv2.rectangle(img, (x, y - 10), (x + 14, y + 2), EMOTION_BGR[emotion], -1)
        cv2.putText(img, emotion, (x + 18, y), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        x += 30 + 9 * len(emotion)
    cv2.putText(img, "black line: confidence of the top emotion; bar on top: an event (its emotion's colour)",
                (left, y + 20), _FONT, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise ValueError("cannot encode the timeline PNG")
    return buf.tobytes()


# ----------------------------------------------------------------------------- report


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def encode_jpeg(image_bgr: np.ndarray, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("cannot encode a JPEG")
    return buf.tobytes()


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}img{max-width:100%}
.frames{display:flex;flex-wrap:wrap;gap:12px}.frames figure{margin:0;max-width:340px}
figcaption{font-size:.85em;color:#555}.sw{display:inline-block;width:.9em;height:.9em;vertical-align:middle}
.people{display:flex;flex-wrap:wrap;gap:10px}.people figure{margin:0;width:130px;text-align:center}
.people img{width:112px;height:112px;object-fit:contain;background:#eee;border:3px solid #ccc}
.legend li{margin:.2em 0}
"""

_BROWSER_VIDEO = {".mp4": "video/mp4", ".webm": "video/webm"}


def _legend(video: bool) -> str:
    swatches = " ".join(f"<span class='sw' style='background:{EMOTION_HEX[m]}'></span> {m}" for m in EMOTIONS)
    items = [f"Colours, everywhere in this report: {swatches}.",
             "Timeline: one row per face; the coloured areas are the smoothed probability of each emotion "
             "(stacked, they sum to 1); the black line is the confidence of the top emotion; a bar above the "
             "row is an event, in its emotion's colour, from its start to its end.",
             "Key frames" + (" and the video" if video else "") + ": each face has a box in the colour of its "
             "top emotion, labelled <code>#id emotion confidence</code> (+ <code>mask</code> when it wears one), "
             "and seven small bars under it: the probabilities of " + ", ".join(EMOTIONS) + ", in that order. "
             "In a key frame the face of the event has a black and white frame; other faces only a thin box.",
             "People: the best view of each face id (highest detector score, large enough), with its "
             "frames, when it was seen and its most frequent emotion."]
    return "<h2>Legend</h2><ul class='legend'>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def report_html(summary: dict, events: Sequence, timeline: Optional[bytes],
                key_frames: Sequence[Tuple[str, bytes]] = (), max_events: int = 200,
                people: Sequence[dict] = (), video: Optional[str] = None) -> str:
    """One self-contained HTML page (images as base64 data URIs; the annotated video, if any, by file name)."""
    e = html.escape
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
             f"<title>fer_mask_ros analysis: {e(str(summary.get('input', '')))}</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>Emotion analysis</h1><p><b>{e(str(summary.get('input', '')))}</b></p>"]
    short = summary.get("short_tracks") or {}
    facts = [("frames processed", summary.get("frames")), ("duration (s)", summary.get("duration")),
             ("processing speed (frames/s)", summary.get("fps_processed")), ("faces", summary.get("faces"))]
    if short.get("tracks"):
        facts.append(("short tracks left out", f"{short['tracks']} face ids seen in fewer than "
                      f"{short['min_track_frames']} frames ({short['frames']} face-frames, still in frames.csv)"))
    if summary.get("shot_cuts"):
        facts.append(("shot cuts (every track ends)", summary.get("shot_cuts")))
    if summary.get("frames_unreadable"):
        facts.append(("unreadable frames", f"{summary['frames_unreadable']} of {summary.get('frames_declared')} "
                      "declared"))
    facts += [("events", summary.get("events")), ("model", summary.get("model"))]
    for role, entry in sorted((summary.get("models") or {}).items()):
        if entry.get("sha256"):
            facts.append((f"{role} sha256", f"{entry['sha256']} ({entry.get('path')})"))
    recorded = summary.get("absolute_time") or {}
    if recorded.get("start_utc"):
        facts.append(("recording started (UTC)", f"{recorded['start_utc']} ({recorded.get('source')})"))
    if summary.get("faces_topic"):
        facts.append(("frames and face ids from", summary.get("faces_topic")))
    if summary.get("live_agreement") is not None:
        facts.append(("agreement with the live graph", json.dumps(summary.get("live_agreement"))))
    parts.append("<table>" + "".join(f"<tr><th class='l'>{e(k)}</th><td class='l'>{e(str(v))}</td></tr>"
                                     for k, v in facts) + "</table>")
    for note in summary.get("notes") or []:
        parts.append(f"<p><b>Note:</b> {e(str(note))}</p>")
    if people:
        parts.append(f"<h2>People ({len(people)} face ids)</h2><div class='people'>")
        for p in people:
            img = (f"<img alt='face {p['face_id']}' src='{data_uri(p['thumbnail'], 'image/jpeg')}' "
                   f"style='border-color:{EMOTION_HEX.get(p['top_emotion'], '#ccc')}'>" if p.get("thumbnail")
                   else "<div style='height:112px'>no view</div>")
            parts.append(f"<figure>{img}<figcaption><b>face {p['face_id']}</b><br>{p['frames']} frames, "
                         f"{p['first']:.1f} - {p['last']:.1f} s<br>mostly {e(p['top_emotion'])}, "
                         f"{p['events']} event{'' if p['events'] == 1 else 's'}</figcaption></figure>")
        parts.append("</div>")
    parts.append(_legend(bool(video)))
    if timeline:
        parts.append(f"<h2>Timeline</h2><img alt='timeline' src='{data_uri(timeline, 'image/png')}'>")
    shares = summary.get("emotion_shares") or {}
    if shares:
        parts.append("<h2>Emotion share per face</h2><table><tr><th class='l'>face</th>"
                     + "".join(f"<th><span class='sw' style='background:{EMOTION_HEX[m]}'></span> {m}</th>"
                               for m in EMOTIONS) + "</tr>")
        for fid, share in shares.items():
            parts.append(f"<tr><td class='l'>{e(str(fid))}</td>"
                         + "".join(f"<td>{100.0 * float(share.get(m, 0.0)):.1f}%</td>" for m in EMOTIONS) + "</tr>")
        parts.append("</table>")
    if key_frames:
        parts.append("<h2>Key frames</h2><div class='frames'>")
        for caption, jpeg in key_frames:
            parts.append(f"<figure><img alt='{e(caption)}' src='{data_uri(jpeg, 'image/jpeg')}'>"
                         f"<figcaption>{e(caption)}</figcaption></figure>")
        parts.append("</div>")
    if video:
        ext = video[video.rfind("."):].lower() if "." in video else ""
        codec = e(str(summary.get("video_codec") or ""))
        if ext in _BROWSER_VIDEO:
            parts.append(f"<h2>Annotated video</h2><video controls preload='metadata' style='max-width:100%'>"
                         f"<source src='{e(video)}' type='{_BROWSER_VIDEO[ext]}'></video>"
                         f"<p><a href='{e(video)}'>{e(video)}</a>, codec: {codec}</p>")
        else:
            parts.append(f"<h2>Annotated video</h2><p><a href='{e(video)}'>{e(video)}</a>, codec: {codec} (browsers "
                         "do not play it; open it with a video player)</p>")
    parts.append(f"<h2>Events ({len(events)})</h2>")
    if events:
        parts.append("<table><tr><th>start (s)</th><th>end (s)</th><th>face</th><th class='l'>emotion</th>"
                     "<th>peak</th><th>mean</th><th>frames</th></tr>")
        for ev in list(events)[:max_events]:
            parts.append(f"<tr><td>{ev.start:.2f}</td><td>{ev.end:.2f}</td><td>{ev.face_id}</td>"
                         f"<td class='l'><span class='sw' style='background:{EMOTION_HEX.get(ev.emotion, '#000')}'>"
                         f"</span> {e(ev.emotion)}</td><td>{ev.peak_confidence:.2f}</td>"
                         f"<td>{ev.mean_confidence:.2f}</td><td>{ev.frames}</td></tr>")
        parts.append("</table>")
        if len(events) > max_events:
            parts.append(f"<p>{len(events) - max_events} more events in events.csv</p>")
    else:
        parts.append("<p>No events (see the thresholds below).</p>")
    params = summary.get("event_params")
    if params:
        parts.append("<h2>Settings</h2><pre>" + e(json.dumps({"event_params": params,
                                                               "sampling": summary.get("sampling"),
                                                               "short_tracks": summary.get("short_tracks"),
                                                               "tracker": summary.get("tracker")}, indent=1))
                     + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
