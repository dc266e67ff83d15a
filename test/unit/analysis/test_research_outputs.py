"""Research outputs of `analyze`: COLUMNS.md, raw and smoothed probabilities, valence/arousal, absolute time,
model hashes, the ELAN export (EAF 3.0) and a faststart MP4 render."""
from __future__ import annotations

import csv
import datetime
import json
import os
import struct
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from fer_mask_ros.analysis import clock, mp4
from fer_mask_ros.analysis.analyse import Analysis, FaceRecord
from fer_mask_ros.analysis.elan import emotion_segments, write_eaf
from fer_mask_ros.analysis.events import Event
from fer_mask_ros.analysis.report import EVENTS_HEADER, FRAMES_HEADER, write_batch_table
from fer_mask_ros.cli import main
from fer_mask_ros.imaging import read_video
from fer_mask_ros.interaction.affect import valence_arousal
from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.perception.classifier import file_sha256

CLIP = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fer_mask_ros", "data", "demo_clip.avi")
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def full_box(kind: bytes, payload: bytes, version: int = 0) -> bytes:
    return box(kind, bytes([version, 0, 0, 0]) + payload)


def mvhd(created: int, version: int = 0) -> bytes:
    if version == 1:
        return full_box(b"mvhd", struct.pack(">QQIQ", created, created, 1000, 0) + bytes(80), 1)
    return full_box(b"mvhd", struct.pack(">IIII", created, created, 1000, 0) + bytes(80))


def set_creation_time(path: str, unix_s: int) -> None:
    """Write `unix_s` into the mvhd box of the MP4 at `path` (OpenCV writes 0: not set)."""
    data = bytearray(open(path, "rb").read())
    at = data.index(b"mvhd") - 4
    version = data[at + 8]
    struct.pack_into(">Q" if version == 1 else ">I", data, at + 12, unix_s - mp4.MP4_EPOCH)
    open(path, "wb").write(bytes(data))


def box_order(path: str):
    with open(path, "rb") as handle:
        return [kind for kind, _, _ in mp4.top_level_boxes(handle)]


# ----------------------------------------------------------------------------- faststart


def test_faststart_patches_stco_and_co64_offsets():
    """A hand-made MP4 (ftyp, mdat, moov with a 32- and a 64-bit chunk table): after faststart every offset
    still points at the same bytes, and moov comes before mdat."""
    ftyp = box(b"ftyp", b"isom" + bytes(4) + b"isommp41")
    chunks = [b"CHUNK-A!", b"chunk-b?", b"ccccCCCC"]
    mdat = box(b"mdat", b"".join(chunks))
    first = len(ftyp) + 8
    offsets = [first + 8 * k for k in range(3)]
    stco = full_box(b"stco", struct.pack(">I", 3) + b"".join(struct.pack(">I", o) for o in offsets))
    co64 = full_box(b"co64", struct.pack(">I", 3) + b"".join(struct.pack(">Q", o) for o in offsets))
    trak = lambda table: box(b"trak", box(b"mdia", box(b"minf", box(b"stbl", table))))  # noqa: E731
    moov = box(b"moov", mvhd(0) + trak(stco) + trak(co64))
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "v.mp4")
        open(path, "wb").write(ftyp + mdat + moov)
        assert not mp4.is_faststart(path)
        assert mp4.faststart(path) is True
        assert box_order(path) == [b"ftyp", b"moov", b"mdat"]
        data = open(path, "rb").read()
        assert len(data) == len(ftyp + mdat + moov)
        at = data.index(b"stco") + 8
        new32 = struct.unpack_from(">3I", data, at + 4)
        at = data.index(b"co64") + 8
        new64 = struct.unpack_from(">3Q", data, at + 4)
        assert new32 == new64 == tuple(o + len(moov) for o in offsets)
        assert [data[o:o + 8] for o in new32] == chunks
        assert mp4.faststart(path) is False  # already first: left alone
        assert mp4.is_faststart(path)


def test_faststart_refuses_what_it_cannot_parse(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(box(b"ftyp", b"isom") + struct.pack(">I4s", 999, b"mdat") + b"short")
    before = path.read_bytes()
    with pytest.raises(ValueError):
        mp4.faststart(str(path))
    assert path.read_bytes() == before


def test_opencv_mp4_becomes_faststart_and_decodes_the_same(tmp_path):
    path = str(tmp_path / "v.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"avc1"), 10.0, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV build writes no H.264")
    frames = [np.random.RandomState(i).randint(0, 255, (48, 64, 3), np.uint8) for i in range(12)]
    for f in frames:
        writer.write(f)
    writer.release()
    order = box_order(path)
    assert order.index(b"moov") > order.index(b"mdat")  # what OpenCV writes: the index at the end
    before = read_video(path)
    assert mp4.faststart(path)
    order = box_order(path)
    assert order.index(b"moov") < order.index(b"mdat")
    after = read_video(path)
    assert len(after) == len(before) == 12 and all(np.array_equal(a, b) for a, b in zip(before, after))


# ----------------------------------------------------------------------------- absolute time


@pytest.mark.parametrize("version", [0, 1])
def test_creation_time_from_mvhd(tmp_path, version):
    path = tmp_path / "c.mov"
    path.write_bytes(box(b"ftyp", b"qt  ") + box(b"moov", mvhd(T0 - mp4.MP4_EPOCH, version)) + box(b"mdat", b""))
    assert mp4.creation_time(str(path)) == T0
    start, source = clock.recording_start(str(path), "video")
    assert start == T0 and "mvhd" in source
    path.write_bytes(box(b"ftyp", b"qt  ") + box(b"moov", mvhd(0, version)))
    assert mp4.creation_time(str(path)) is None  # 0: not set


def test_recording_start_per_kind(tmp_path):
    assert clock.recording_start("x.bag", "rosbag", T0 + 0.25) == (T0 + 0.25, "rosbag: the first image's header stamp")
    start, why = clock.recording_start("x.bag", "rosbag", 12.5)  # simulated time: not a date
    assert start is None and "not a date" in why
    assert clock.recording_start(str(tmp_path), "images")[0] is None


def test_iso_utc_round_trip():
    assert clock.iso_utc(T0 + 0.1234) == "2023-11-14T22:13:20.123Z"
    assert clock.iso_utc(None) == ""
    assert clock.parse_iso("2023-11-14T22:13:20.123456789Z") == pytest.approx(T0 + 0.123456, abs=1e-6)
    assert clock.parse_iso("2023-11-14T22:13:20Z") == T0
    assert clock.parse_iso("yesterday") is None


# ----------------------------------------------------------------------------- ELAN


def test_emotion_segments_are_runs_that_meet_and_end_at_holes():
    times = [0.0, 0.1, 0.2, 0.3, 0.4, 2.0, 2.1]
    emotions = ["happy", "happy", "sad", "sad", "sad", "sad", "happy"]
    segments = [(round(a, 6), round(b, 6), v) for a, b, v in emotion_segments(times, emotions)]
    assert segments == [(0.0, 0.2, "happy"), (0.2, 0.5, "sad"),  # meet at the next run; a hole ends a frame later
                        (2.0, 2.1, "sad"), (2.1, 2.2, "happy")]
    assert emotion_segments([], []) == []


XSD = os.environ.get("FER_MASK_EAF_XSD")  # a local copy of EAFv3.0.xsd: also validated by lxml when set


def check_eaf(path: str) -> ET.Element:
    """The EAF 3.0 schema's rules that our documents can break (element order, required attributes, types,
    xsd:ID uniqueness, key references), checked without the schema file; and with it, when FER_MASK_EAF_XSD
    names it and lxml is installed."""
    root = ET.parse(path).getroot()
    assert root.tag == "ANNOTATION_DOCUMENT"
    order = ["LICENSE", "HEADER", "TIME_ORDER", "TIER", "LINGUISTIC_TYPE", "LOCALE", "LANGUAGE", "CONSTRAINT",
             "CONTROLLED_VOCABULARY", "LEXICON_REF", "REF_LINK_SET", "EXTERNAL_REF"]
    ranks = [order.index(child.tag) for child in root]
    assert ranks == sorted(ranks) and ranks.count(1) == 1 and ranks.count(2) == 1
    for attr in ("DATE", "AUTHOR", "VERSION"):
        assert root.get(attr), attr
    datetime.datetime.fromisoformat(root.get("DATE"))  # xsd:dateTime
    header = root.find("HEADER")
    assert header.get("TIME_UNITS") == "milliseconds"
    head_ranks = [["MEDIA_DESCRIPTOR", "LINKED_FILE_DESCRIPTOR", "PROPERTY"].index(c.tag) for c in header]
    assert head_ranks == sorted(head_ranks)
    for media in header.findall("MEDIA_DESCRIPTOR"):
        assert media.get("MEDIA_URL").startswith("file:///") and media.get("MIME_TYPE")
    ids = [e.get(a) for e in root.iter() for a in ("TIME_SLOT_ID", "ANNOTATION_ID", "LANG_ID", "STEREOTYPE",
                                                   "LANGUAGE_CODE") if e.get(a) is not None]
    assert len(ids) == len(set(ids)) and all(i[0].isalpha() and " " not in i for i in ids)  # xsd:ID: unique NCNames
    slots = {s.get("TIME_SLOT_ID"): int(s.get("TIME_VALUE")) for s in root.iter("TIME_SLOT")}
    assert all(v >= 0 for v in slots.values())
    types = {t.get("LINGUISTIC_TYPE_ID"): t for t in root.findall("LINGUISTIC_TYPE")}
    vocabularies = {cv.get("CV_ID"): {e.get("CVE_ID") for e in cv.findall("CV_ENTRY_ML")}
                    for cv in root.findall("CONTROLLED_VOCABULARY")}
    languages = {lang.get("LANG_ID") for lang in root.findall("LANGUAGE")}
    assert all(e.get("LANG_REF") in languages for e in root.iter() if e.get("LANG_REF") is not None)
    tier_ids = [t.get("TIER_ID") for t in root.findall("TIER")]
    assert len(tier_ids) == len(set(tier_ids))
    for tier in root.findall("TIER"):
        ling = types[tier.get("LINGUISTIC_TYPE_REF")]
        assert ling.get("TIME_ALIGNABLE") == "true"
        spans = []
        for annotation in tier.findall("ANNOTATION"):
            (aligned,) = list(annotation)
            assert aligned.tag == "ALIGNABLE_ANNOTATION" and aligned.find("ANNOTATION_VALUE") is not None
            a, b = slots[aligned.get("TIME_SLOT_REF1")], slots[aligned.get("TIME_SLOT_REF2")]
            assert a < b
            spans.append((a, b))
            if aligned.get("CVE_REF") is not None:
                assert aligned.get("CVE_REF") in vocabularies[ling.get("CONTROLLED_VOCABULARY_REF")]
        spans.sort()
        assert all(s[1] <= t[0] for s, t in zip(spans, spans[1:])), f"{tier.get('TIER_ID')}: overlapping"
    if XSD:
        etree = pytest.importorskip("lxml.etree")
        schema = etree.XMLSchema(etree.parse(XSD))
        assert schema.validate(etree.parse(path)), str(schema.error_log)
    return root


def _record(t, fid, emotion):
    probs = np.full(len(EMOTIONS), 0.05)
    probs[EMOTIONS.index(emotion)] = 0.7
    return FaceRecord(t, int(round(t * 10)), fid, (1.0, 2.0, 30.0, 30.0), emotion, 0.7, probs, False, 0.1)


def test_eaf_has_a_tier_of_segments_and_one_of_events_per_face(tmp_path):
    video = tmp_path / "session one.avi"
    video.write_bytes(b"not read")
    result = Analysis(input=str(video), kind="video")
    result.records = ([_record(i / 10, 1, "happy" if i < 12 else "neutral") for i in range(20)]
                      + [_record(i / 10, 2, "sad") for i in range(5, 15)])
    events = [Event(1, "happy", 0.0, 1.1, 0.9, 0.8, 12), Event(2, "sad", 0.5, 1.4, 0.7, 0.6, 10),
              Event(2, "fear", 1.0, 1.2, 0.6, 0.6, 3)]  # overlaps the sad one: a second events tier
    out = tmp_path / "out"
    out.mkdir()
    path = str(out / "session one.eaf")
    write_eaf(path, result, events, [1, 2])
    root = check_eaf(path)
    tiers = {t.get("TIER_ID"): t for t in root.findall("TIER")}
    assert sorted(tiers) == ["face 1", "face 1 events", "face 2", "face 2 events", "face 2 events 2"]

    def values(tier):
        slots = {s.get("TIME_SLOT_ID"): int(s.get("TIME_VALUE")) for s in root.iter("TIME_SLOT")}
        return [(slots[a.get("TIME_SLOT_REF1")], slots[a.get("TIME_SLOT_REF2")], a.findtext("ANNOTATION_VALUE"))
                for a in tiers[tier].iter("ALIGNABLE_ANNOTATION")]

    assert values("face 1") == [(0, 1200, "happy"), (1200, 2000, "neutral")]
    assert values("face 2") == [(500, 1500, "sad")]
    assert values("face 1 events") == [(0, 1100, "happy peak 0.90 mean 0.80")]
    assert [v[2].split()[0] for v in values("face 2 events") + values("face 2 events 2")] == ["sad", "fear"]
    (media,) = root.find("HEADER").findall("MEDIA_DESCRIPTOR")
    assert media.get("MEDIA_URL") == video.as_uri() and media.get("RELATIVE_MEDIA_URL") == "../session%20one.avi"
    assert media.get("MIME_TYPE") == "video/x-msvideo"


# ----------------------------------------------------------------------------- analyze, end to end


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """The demo clip's first 40 frames as an H.264 MP4 with a creation time, analysed with --render and
    --export elan by the shipped models."""
    if not os.path.isfile(CLIP):
        pytest.skip("bundled demo clip missing")
    tmp = tmp_path_factory.mktemp("research")
    video = str(tmp / "session.mp4")
    frames = read_video(CLIP, max_frames=40)
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"avc1"), 10.0, frames[0].shape[1::-1])
    if not writer.isOpened():
        pytest.skip("this OpenCV build writes no H.264")
    for f in frames:
        writer.write(f)
    writer.release()
    set_creation_time(video, T0)
    out = tmp / "out"
    assert main(["analyze", video, "--output", str(out), "--render", "--export", "elan", "--no-progress",
                 "--min-track-frames", "5"]) == 0
    return out


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_columns_are_described_in_columns_md_and_summary(analysed):
    summary = json.loads((analysed / "summary.json").read_text())
    text = (analysed / "COLUMNS.md").read_text()
    for name, header in (("frames.csv", FRAMES_HEADER), ("events.csv", EVENTS_HEADER)):
        with open(analysed / name) as handle:
            assert next(csv.reader(handle)) == header
        assert list(summary["columns"][name]) == header
        assert all(summary["columns"][name][c] for c in header)
        section = text.split(f"## {name}")[1].split("\n## ")[0]
        assert [line.split("`")[1] for line in section.splitlines() if line.startswith("| `")] == header
    assert "COLUMNS.md" in summary["outputs"]


def test_raw_and_smoothed_probabilities_valence_arousal_and_utc(analysed):
    rows = read_rows(analysed / "frames.csv")
    assert rows
    differ = 0
    for row in rows:
        smooth = [float(row[f"p_{e}"]) for e in EMOTIONS]
        raw = [float(row[f"raw_p_{e}"]) for e in EMOTIONS]
        assert sum(raw) == pytest.approx(1.0, abs=2e-3) and sum(smooth) == pytest.approx(1.0, abs=2e-3)
        assert row["raw_emotion"] == EMOTIONS[int(np.argmax(raw))] and float(row["raw_confidence"]) == max(raw)
        assert 0 <= float(row["raw_mask_probability"]) <= 1
        differ += row["raw_emotion"] != row["emotion"] or max(abs(a - b) for a, b in zip(raw, smooth)) > 1e-3
        valence, arousal = valence_arousal(EMOTIONS, smooth)
        assert float(row["valence"]) == pytest.approx(valence, abs=1e-3)
        assert float(row["arousal"]) == pytest.approx(arousal, abs=1e-3)
        assert clock.parse_iso(row["utc"]) == pytest.approx(T0 + float(row["time"]), abs=1e-3)
    assert differ > 0  # smoothing shows: the raw values are not a copy of the smoothed ones
    summary = json.loads((analysed / "summary.json").read_text())
    assert summary["absolute_time"] == {"start_utc": "2023-11-14T22:13:20.000Z",
                                        "source": "video container: creation time (MP4 mvhd box)"}


def test_summary_names_the_models_by_sha256(analysed):
    models = json.loads((analysed / "summary.json").read_text())["models"]
    for role in ("classifier", "detector"):
        assert models[role]["sha256"] == file_sha256(models[role]["path"]), role
    runs = models["classifier"].get("runs")
    if runs:  # the ONNX copy the runtime ran
        assert runs["sha256"] == file_sha256(runs["path"])
    page = (analysed / "report.html").read_text()
    assert models["classifier"]["sha256"] in page and "2023-11-14T22:13:20.000Z" in page


def test_model_files_of_a_zoo_hash_every_member(tmp_path):
    from fer_mask_ros.analysis.report import model_files

    (tmp_path / "a.onnx").write_bytes(b"member a")
    (tmp_path / "fusion.json").write_text("{}")

    class Zoo:
        name = "fusion"

        def model_files(self):
            return {"a": str(tmp_path / "a.onnx"), "fusion": str(tmp_path / "fusion.json")}

    entry = model_files(None, Zoo())["classifier"]
    assert entry["name"] == "fusion" and sorted(entry["files"]) == ["a", "fusion"]
    assert entry["files"]["a"]["sha256"] == file_sha256(str(tmp_path / "a.onnx"))


def test_export_elan_and_faststart_render(analysed):
    summary = json.loads((analysed / "summary.json").read_text())
    assert "session.eaf" in summary["outputs"]
    root = check_eaf(str(analysed / "session.eaf"))
    faces = [t.get("TIER_ID") for t in root.findall("TIER") if t.get("LINGUISTIC_TYPE_REF") == "emotion"]
    assert faces == [f"face {f}" for f in summary["face_ids"]] and faces
    urls = [m.get("RELATIVE_MEDIA_URL") for m in root.iter("MEDIA_DESCRIPTOR")]
    assert urls == ["../session.mp4", "./annotated.mp4"]
    order = box_order(str(analysed / "annotated.mp4"))
    assert order.index(b"moov") < order.index(b"mdat")


def test_batch_folder_describes_summary_csv(tmp_path):
    write_batch_table(str(tmp_path / "summary.csv"), [])
    text = (tmp_path / "COLUMNS.md").read_text()
    assert "## summary.csv" in text and "`dominant_emotion`" in text and "`share_happy`" in text
