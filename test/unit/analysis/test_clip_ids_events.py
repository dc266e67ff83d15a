"""The bundled demo clip with the shipped models and default settings (issue #31): six ids, each of one person,
and an event for at least five of the six people, each naming that person's labelled emotion."""
from __future__ import annotations

import csv
import json
import os

import pytest

from fer_mask_ros.cli import main

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fer_mask_ros", "data")
CLIP, LABELS = os.path.join(DATA, "demo_clip.avi"), os.path.join(DATA, "demo_clip.json")

pytestmark = pytest.mark.skipif(not os.path.isfile(CLIP), reason="bundled demo clip missing")


def _people():
    """frame -> [(person, emotion, box)] from the clip's labels; a person = (segment, slot)."""
    with open(LABELS, encoding="utf-8") as handle:
        labels = json.load(handle)
    out = {}
    for seg in labels["segments"]:
        for face in seg["faces"]:
            for k, box in enumerate(face["boxes"]):
                out.setdefault(seg["start_frame"] + k, []).append(((seg["index"], face["slot"]), face["emotion"], box))
    return out


def test_six_ids_one_person_each_and_an_event_per_person(tmp_path):
    pytest.importorskip("onnxruntime")
    assert main(["analyze", "--no-progress", CLIP, "--output", str(tmp_path)]) == 0
    people = _people()
    person_of, emotion_of = {}, {}
    with open(tmp_path / "frames.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            cx = float(row["x"]) + float(row["w"]) / 2
            cy = float(row["y"]) + float(row["h"]) / 2
            hits = [(p, e) for p, e, (x, y, w, h) in people.get(int(row["frame"]), [])
                    if x <= cx <= x + w and y <= cy <= y + h]
            assert len(hits) == 1, row
            person_of.setdefault(int(row["face_id"]), set()).add(hits[0][0])
            emotion_of[hits[0][0]] = hits[0][1]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["faces"] == 6 and len(person_of) == 6
    assert all(len(p) == 1 for p in person_of.values()), person_of  # no id spans two people
    with open(tmp_path / "events.csv", newline="") as handle:
        events = list(csv.DictReader(handle))
    assert len(events) >= 5
    for e in events:  # each event is a real one: the labelled emotion of the id's person
        (person,) = person_of[int(e["face_id"])]
        assert e["emotion"] == emotion_of[person], e
    assert len({e["face_id"] for e in events}) >= 5
