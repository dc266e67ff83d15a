"""`analyze --export elan`: the analysis as an ELAN annotation document (EAF 3.0), linked to its media.

ELAN (The Language Archive, MPI for Psycholinguistics) shows time-aligned annotation tiers under a video.
The document has, for every kept face id (short tracks left out):

* tier ``face N``: its emotion segments, i.e. runs of frames with the same smoothed top emotion (frames.csv's
  `emotion`). A segment lasts from its first frame to the next segment's first frame; where the face is not
  seen for longer than max(0.5 s, 3 x its median frame spacing) it ends one median spacing after its last
  frame. Values come from a controlled vocabulary of the seven emotions ("emotions"), so annotators can
  correct a segment by choosing from a list;
* tier ``face N events``: its events (events.csv), value ``<emotion> peak <p> mean <p>``. Events of one face
  never overlap in practice; if two did, the later one goes to ``face N events 2``.

Times are milliseconds of the input's time axis (frames.csv's `time`), which is the media's own time for
videos. MEDIA_DESCRIPTOR links the input video (absolute file URL, and a path relative to the .eaf, which
ELAN tries first) and the annotated render when there is one, so ELAN plays them side by side. A bag or
an image sequence is no media ELAN plays: then only the render is linked (its frames are the processed
frames at the render's frame rate).
"""
from __future__ import annotations

import datetime
import mimetypes
import os
import pathlib
import urllib.parse
import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.safe_write import shown, write_text

#: The schema ELAN writes into its files (not fetched: the file names it).
EAF_SCHEMA = "http://www.mpi.nl/tools/elan/EAFv3.0.xsd"
EMOTION_TYPE, EVENT_TYPE, VOCABULARY, LANGUAGE = "emotion", "event", "emotions", "eng"
_MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".avi": "video/x-msvideo",
         ".mkv": "video/x-matroska", ".webm": "video/webm", ".mpg": "video/mpeg", ".mpeg": "video/mpeg"}
VIDEO_KIND = "video"

Segment = Tuple[float, float, str]  # (start s, end s, value)


def eaf_name(input_path: str) -> str:
    """<input name without extension>.eaf (ELAN lists documents by file name)."""
    base = os.path.basename(os.path.normpath(input_path)) or "analysis"
    return os.path.splitext(base)[0] + ".eaf"


def emotion_segments(times: Sequence[float], emotions: Sequence[str], min_gap: float = 0.5) -> List[Segment]:
    """Runs of the same emotion over one face's frames (times ascending); see the module docstring."""
    t = np.asarray(times, dtype=np.float64)
    if len(t) == 0:
        return []
    spacing = float(np.median(np.diff(t))) if len(t) > 1 else 0.1
    spacing = spacing if spacing > 0 else 0.1
    hole = max(min_gap, 3.0 * spacing)
    out: List[Segment] = []
    start = 0
    for i in range(1, len(t) + 1):
        ends_here = i == len(t) or t[i] - t[i - 1] > hole or emotions[i] != emotions[start]
        if not ends_here:
            continue
        joined = i < len(t) and t[i] - t[i - 1] <= hole  # the next run follows at once
        out.append((float(t[start]), float(t[i]) if joined else float(t[i - 1]) + spacing, emotions[start]))
        start = i
    return out


def _lanes(segments: Sequence[Segment]) -> List[List[Segment]]:
    """Segments on as few non-overlapping lanes as needed (earliest start first)."""
    lanes: List[List[Segment]] = []
    for seg in sorted(segments):
        for lane in lanes:
            if lane[-1][1] <= seg[0]:
                lane.append(seg)
                break
        else:
            lanes.append([seg])
    return lanes


def _media_descriptor(header: ET.Element, media: str, eaf_dir: str) -> None:
    media = os.path.abspath(media)
    rel = os.path.relpath(media, os.path.abspath(eaf_dir))
    mime = _MIME.get(os.path.splitext(media)[1].lower()) or mimetypes.guess_type(media)[0] or "video/*"
    ET.SubElement(header, "MEDIA_DESCRIPTOR", MEDIA_URL=pathlib.Path(media).as_uri(), MIME_TYPE=mime,
                  RELATIVE_MEDIA_URL=urllib.parse.quote(os.fsencode(rel if rel.startswith("..") else "./" + rel)))


def eaf_document(tiers: Sequence[Tuple[str, str, str, Sequence[Segment]]], media: Sequence[str], eaf_dir: str,
                 properties: Optional[Dict[str, str]] = None) -> ET.Element:
    """The ANNOTATION_DOCUMENT: tiers = [(tier id, participant, linguistic type, segments)]."""
    xsi = "http://www.w3.org/2001/XMLSchema-instance"
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    root = ET.Element("ANNOTATION_DOCUMENT", {"AUTHOR": "fer_mask_ros analyze", "DATE": now, "FORMAT": "3.0",
                                              "VERSION": "3.0", "xmlns:xsi": xsi,
                                              "xsi:noNamespaceSchemaLocation": EAF_SCHEMA})
    header = ET.SubElement(root, "HEADER", MEDIA_FILE="", TIME_UNITS="milliseconds")
    for path in media:
        _media_descriptor(header, path, eaf_dir)
    slots: Dict[int, str] = {}
    ms_pairs: List[List[Tuple[int, int, str]]] = []
    for _, _, _, segments in tiers:
        pairs = []
        for start, end, value in segments:
            a = max(0, int(round(start * 1000)))
            b = max(a + 1, int(round(end * 1000)))
            pairs.append((a, b, value))
            slots.setdefault(a, "")
            slots.setdefault(b, "")
        ms_pairs.append(pairs)
    order = ET.SubElement(root, "TIME_ORDER")
    for k, ms in enumerate(sorted(slots), 1):
        slots[ms] = f"ts{k}"
        ET.SubElement(order, "TIME_SLOT", TIME_SLOT_ID=slots[ms], TIME_VALUE=str(ms))
    n = 0
    for (tier_id, participant, ling_type, _), pairs in zip(tiers, ms_pairs):
        tier = ET.SubElement(root, "TIER", TIER_ID=tier_id, PARTICIPANT=participant, ANNOTATOR="fer_mask_ros",
                             LINGUISTIC_TYPE_REF=ling_type)
        for a, b, value in pairs:
            n += 1
            attrs = {"ANNOTATION_ID": f"a{n}", "TIME_SLOT_REF1": slots[a], "TIME_SLOT_REF2": slots[b]}
            if ling_type == EMOTION_TYPE and value in EMOTIONS:
                attrs["CVE_REF"] = f"cveid_{value}"
            aligned = ET.SubElement(ET.SubElement(tier, "ANNOTATION"), "ALIGNABLE_ANNOTATION", attrs)
            ET.SubElement(aligned, "ANNOTATION_VALUE").text = value
    for key, value in dict(properties or {}, lastUsedAnnotationId=str(n)).items():
        ET.SubElement(header, "PROPERTY", NAME=key).text = value
    ET.SubElement(root, "LINGUISTIC_TYPE", LINGUISTIC_TYPE_ID=EMOTION_TYPE, TIME_ALIGNABLE="true",
                  GRAPHIC_REFERENCES="false", CONTROLLED_VOCABULARY_REF=VOCABULARY)
    ET.SubElement(root, "LINGUISTIC_TYPE", LINGUISTIC_TYPE_ID=EVENT_TYPE, TIME_ALIGNABLE="true",
                  GRAPHIC_REFERENCES="false")
    ET.SubElement(root, "LANGUAGE", LANG_ID=LANGUAGE, LANG_DEF="http://cdb.iso.org/lg/CDB-00138502-001",
                  LANG_LABEL="English (eng)")
    for stereotype, text in (("Time_Subdivision", "Time subdivision of parent annotation's time interval, no time "
                              "gaps allowed within this interval"),
                             ("Symbolic_Subdivision", "Symbolic subdivision of a parent annotation. Annotations "
                              "refering to the same parent are ordered"),
                             ("Symbolic_Association", "1-1 association with a parent annotation"),
                             ("Included_In", "Time alignable annotations within the parent annotation's time "
                              "interval, gaps are allowed")):
        ET.SubElement(root, "CONSTRAINT", STEREOTYPE=stereotype, DESCRIPTION=text)
    vocabulary = ET.SubElement(root, "CONTROLLED_VOCABULARY", CV_ID=VOCABULARY)
    ET.SubElement(vocabulary, "DESCRIPTION", LANG_REF=LANGUAGE).text = \
        "top emotion of the smoothed probabilities (fer_mask_ros)"
    for emotion in EMOTIONS:
        entry = ET.SubElement(vocabulary, "CV_ENTRY_ML", CVE_ID=f"cveid_{emotion}")
        ET.SubElement(entry, "CVE_VALUE", LANG_REF=LANGUAGE).text = emotion
    return root


def _indent(element: ET.Element, level: int = 0) -> None:
    """ElementTree.indent for Python 3.8."""
    pad = "\n" + "    " * level
    if len(element):
        if not (element.text or "").strip():
            element.text = pad + "    "
        for child in element:
            _indent(child, level + 1)
        if not (child.tail or "").strip():
            child.tail = pad
    if level and not (element.tail or "").strip():
        element.tail = pad


def write_eaf(path: str, result: Any, events: Sequence[Any], faces: Sequence[int],
              render_path: Optional[str] = None) -> None:
    """`path` (.eaf) for an Analysis: emotion segments and events of each face in `faces` (see the docstring)."""
    by_face: Dict[int, List[Any]] = {}
    for r in result.records:
        by_face.setdefault(r.face_id, []).append(r)
    tiers = []
    for fid in faces:
        recs = sorted(by_face.get(fid, []), key=lambda r: r.time)
        tiers.append((f"face {fid}", f"face {fid}", EMOTION_TYPE,
                      emotion_segments([r.time for r in recs], [r.emotion for r in recs])))
        mine = [(e.start, e.end, f"{e.emotion} peak {e.peak_confidence:.2f} mean {e.mean_confidence:.2f}")
                for e in events if e.face_id == fid]
        for k, lane in enumerate(_lanes(mine) or [[]]):
            tiers.append((f"face {fid} events" + (f" {k + 1}" if k else ""), f"face {fid}", EVENT_TYPE,
                          [(a, max(b, a + 0.001), v) for a, b, v in lane]))
    media = [result.input] if result.kind == VIDEO_KIND and os.path.isfile(result.input) else []
    if render_path and os.path.isfile(render_path):
        media.append(render_path)
    root = eaf_document(tiers, media, os.path.dirname(os.path.abspath(path)),
                        properties={"fer_mask_ros.input": shown(os.path.abspath(result.input))})
    _indent(root)
    write_text(path, '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n")
