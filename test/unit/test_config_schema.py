"""Every parameter of every node has a declared range in config/<node>.yaml (fer_mask_ros.config_schema), its
default lies inside it, values outside are refused with a line naming the parameter and the range, and every
parameter a node reads is declared. Table-driven: a new parameter without a range fails here."""
from __future__ import annotations

import glob
import math
import os
import re

import pytest

from fer_mask_ros.config_schema import node_schema, parse_interval, parse_schema, problems

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODES = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(REPO, "config", "*.yaml")))
PARAMS = [(node, name) for node in NODES for name in sorted(node_schema(node))]


def test_there_are_nodes_and_parameters():
    assert {"nao_camera", "face_detector", "emotion_classifier", "emotion_speech"} <= set(NODES)
    assert len(PARAMS) > 50


@pytest.mark.parametrize("node,name", PARAMS)
def test_every_parameter_has_a_range_and_its_default_is_inside(node, name):
    spec = node_schema(node)[name]
    assert spec.text or isinstance(spec.default, bool), (
        f"config/{node}.yaml: {name} declares no range: start its comment with [lo, hi], {{a, b}}, <text>, <name>, "
        "<file> or <map> (docs: fer_mask_ros/config_schema.py)")
    assert spec.check(spec.default) is None, f"config/{node}.yaml: {name}'s default {spec.default!r} is outside " \
                                             f"{spec.allowed()}"


def _bad_values(spec, tmp_path):
    """Values the declared range must refuse."""
    text = spec.text
    if text == "" or text == "<bool>":
        return ["yes", 1, None]
    if text.startswith("{"):
        return ["not_a_choice", 99, -1, True, None]
    if text == "<file>":
        empty = tmp_path / "empty.pt"
        empty.write_bytes(b"")
        return ["/nonexistent/model.pt", str(tmp_path), str(empty), 5]
    if text == "<name>":
        return ["has space", "1digit", "", 5]
    if text == "<map>":
        return ["text", 3, [1, 2]]
    if text == "<text>":
        return [[1, 2], {"a": 1}, True, None]
    lo, hi, lo_in, hi_in = parse_interval(text)
    out = ["abc", True, float("nan"), None]
    if math.isfinite(lo):
        out.append(lo if not lo_in else lo - 1)
    if math.isfinite(hi):
        out.append(hi if not hi_in else hi + 1)
    if isinstance(spec.default, int) and not isinstance(spec.default, bool):
        out.append((max(lo, 0) if math.isfinite(lo) else 0) + 0.5)
    return out


@pytest.mark.parametrize("node,name", PARAMS)
def test_values_outside_the_range_are_refused_naming_it(node, name, tmp_path):
    schema = node_schema(node)
    spec = schema[name]
    for value in _bad_values(spec, tmp_path):
        lines = problems(node, {name: value}, schema)
        assert len(lines) == 1, (name, value)
        assert f"~{name} = " in lines[0] and spec.allowed() in lines[0] and "\n" not in lines[0], lines[0]
    if spec.has_default:
        assert problems(node, {name: spec.default}, schema) == []


@pytest.mark.parametrize("name,value,ok", [
    ("fps", -5, False), ("fps", 0, False), ("fps", 31, False), ("fps", 10, True), ("fps", 30, True),
    ("fps", "abc", False), ("resolution", 7, False), ("resolution", 99, False), ("resolution", "abc", False),
    ("resolution", 2, True), ("camera", 2, False), ("nao_port", 0, False), ("nao_port", 9559, True),
    ("diag/drop_warn_ratio", 1.5, False), ("diag/stale_warn_s", 0, False),
])
def test_issue_27_nao_camera_cases(name, value, ok):
    lines = problems("nao_camera", {name: value})
    assert (lines == []) == ok, lines
    if not ok:
        assert lines[0].startswith(f"nao_camera: parameter ~{name} = ")


def test_model_paths(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty.pt").write_bytes(b"")
    for value, why in (("/nonexistent.pt", "no such file"), (str(tmp_path / "folder"), "a folder"),
                       (str(tmp_path / "empty.pt"), "an empty file")):
        lines = problems("emotion_classifier", {"model": value})
        assert len(lines) == 1 and why in lines[0] and "~model" in lines[0], lines
    assert problems("emotion_classifier", {"model": ""}) == []


def test_a_parameter_without_a_range_is_caught():
    schema = parse_schema("a: 1  # [0, 2] fine\nb: 2  # no range here\nc: true\n# d: 3  # [1, 4] optional\n"
                          "g:\n  e: 0.5  # (0, 1]\n")
    assert schema["a"].check(1) is None and schema["c"].check(False) is None
    assert schema["b"].check(2) == "no range declared"
    assert schema["d"].check(5) == "out of range" and not schema["d"].has_default
    assert schema["g/e"].check(0.0) == "out of range" and schema["g/e"].check(1.0) is None
    assert schema["a"].check(1.5) == "not a whole number"


def _node_params(path):
    """(config node, names read by param("...")) of a node script that calls use_config."""
    text = open(path, encoding="utf-8").read()
    m = re.search(r'use_config\("(\w+)"\)', text)
    return (m.group(1) if m else None), set(re.findall(r'\bparam\(\s*"([\w/]+)"', text))


@pytest.mark.parametrize("script", sorted(glob.glob(os.path.join(REPO, "nodes", "*"))))
def test_every_parameter_a_node_reads_is_declared(script):
    node, names = _node_params(script)
    if node is None:
        pytest.skip(f"{os.path.basename(script)} takes no config/*.yaml")
    schema = node_schema(node)
    groups = {n.split("/")[0] for n in schema if "/" in n}
    undeclared = sorted(n for n in names if n not in schema and n not in groups)
    assert not undeclared, f"nodes/{os.path.basename(script)} reads {undeclared}: declare them in config/{node}.yaml"
