"""One long video on several cores: time chunks with an overlap for tracking, stitched afterwards.

Chunk k covers frames [start_k, stop_k); its worker starts `overlap` frames earlier (a fresh tracker and
per-track evidence warm up there) and those warm-up records are dropped. Stitching maps each chunk's face ids to the
previous chunk's by the faces both saw in the overlap (same frame, boxes overlapping by IoU >= 0.5, most
votes wins); an id without a partner gets the next new id. With an overlap of a few seconds the per-track
evidence has converged (its weights halve every `smoothing_half_life_s`) and the numbers match a single pass
closely but not always bit for bit: the full-scan schedule of the detector restarts in each chunk.
"""
from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

from fer_mask_ros.analysis.analyse import Analysis
from fer_mask_ros.perception.detection import iou


def plan(n_frames: int, fps: float, chunk_s: float, overlap_s: float) -> List[Tuple[int, int, int]]:
    """[(warm-up start, start, stop)] frame numbers covering 0 .. n_frames."""
    size = max(1, int(round(chunk_s * fps)))
    overlap = max(0, int(round(overlap_s * fps)))
    n_chunks = max(1, math.ceil(n_frames / size))
    out = []
    for k in range(n_chunks):
        start, stop = k * size, min(n_frames, (k + 1) * size) if k < n_chunks - 1 else n_frames
        out.append((max(0, start - overlap), start, stop))
    return out


def _id_map(prev: Analysis, cur: Analysis, lo: int, hi: int, taken: set) -> Dict[int, int]:
    """cur id -> prev id, from the faces both saw in frames lo .. hi - 1."""
    before: Dict[int, list] = {}
    for r in prev.records:
        if lo <= r.frame < hi:
            before.setdefault(r.frame, []).append(r)
    votes: Dict[Tuple[int, int], int] = {}
    for r in cur.records:
        if lo <= r.frame < hi:
            for p in before.get(r.frame, []):
                if iou(r.box, p.box) >= 0.5:
                    votes[(r.face_id, p.face_id)] = votes.get((r.face_id, p.face_id), 0) + 1
    mapping: Dict[int, int] = {}
    for (cid, pid), _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0])):
        if cid not in mapping and pid not in taken:
            mapping[cid] = pid
            taken.add(pid)
    return mapping


def stitch(parts: Sequence[Analysis], chunks: Sequence[Tuple[int, int, int]]) -> Analysis:
    """One Analysis from the chunks' (in order)."""
    out = Analysis(input=parts[0].input, kind=parts[0].kind)
    next_id = 1
    prev_final = None  # previous chunk with its ids already renamed
    for part, (warm, start, _) in zip(parts, chunks):
        mapping = _id_map(prev_final, part, warm, start, set()) if prev_final is not None else {}
        for fid in sorted({r.face_id for r in part.records}):
            if fid not in mapping:
                mapping[fid] = next_id
                next_id += 1
            next_id = max(next_id, mapping[fid] + 1)
        for r in part.records:  # the key frames' records are these same objects
            r.face_id = mapping[r.face_id]
        prev_final = part
        kept = [r for r in part.records if r.frame >= start]
        out.records.extend(kept)
        out.processed_frames.extend(f for f in part.processed_frames if f >= start)
        out.frames = len(out.processed_frames)
        out.cpu_s += part.cpu_s
        out.wall_s = max(out.wall_s, part.wall_s)
        out.frames_unreadable += part.frames_unreadable
        out.shot_cuts += part.shot_cuts
        out.notes.extend(n for n in part.notes if n not in out.notes)
        for (fid, emotion), kf in part.key_frames.items():
            key = (mapping[fid], emotion)
            if kf[1] >= start and (key not in out.key_frames or out.key_frames[key][0] < kf[0]):
                out.key_frames[key] = kf
        for fid, th in part.thumbnails.items():
            new = mapping[fid]
            if th[2] >= start and (new not in out.thumbnails or out.thumbnails[new][0] < th[0]):
                out.thumbnails[new] = th
    last = parts[-1]
    out.frames_read, out.duration, out.source_fps = last.frames_read, last.duration, last.source_fps
    out.frames_declared = last.frames_declared
    return out
