"""The allowed range of every node parameter, declared beside its default in config/<node>.yaml.

A parameter's range is the first thing in its yaml comment:

    fps: 10              # [1, 30] frames per second ...          numbers, ends included; ( ) excludes an end,
    period_s: 0.2        # (0, 60] how often ...                  inf allowed: [0, inf). An int default means
                                                                  the value must be a whole number.
    resolution: 1        # {0, 1, 2} 0 = QQVGA ...                one of these (numbers or words)
    frame_id: ""         # <text> ...                             any string (or number)
    speech_topic: speech # <name> ...                             a ROS name: letters, digits, _ / ~
    model: ""            # <file> empty = the shipped one         empty, or an existing non-empty regular file
    policy: {}           # <map> ...                              a mapping; its keys may be declared below it,
      # cooldown_s: 8.0  # [0, 3600] ...                          indented and commented out ("policy/cooldown_s")
    leds: false          # ...                                    a bool default needs no range: true / false

A parameter with no default in the yaml (the node has its own fallback) is declared on a commented-out line
with its range:  `# score_threshold: 0.2   # (0, 1] ...`. Groups (`diag:`, `tracker:`) nest by indentation;
their members are named "diag/stale_warn_s". `runtime.use_config(node)` checks every declared parameter
that is set at start-up (one FATAL line naming it and its range, exit 2); test/unit/test_config_schema.py
fails for a parameter that has no range.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

_KEY = re.compile(r"^(?P<indent>[ ]*)(?P<off>#[ ]*)?(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?P<rest>.*)$")
_NAME = re.compile(r"^[~/]?[A-Za-z][A-Za-z0-9_/]*$")
_KINDS = ("text", "name", "file", "map", "bool")


@dataclass
class Spec:
    """One parameter's declared range (text: as written in the yaml)."""

    name: str
    text: str
    default: Any = None
    has_default: bool = True

    def check(self, value: Any) -> Optional[str]:
        """None when `value` is allowed, else why not (a few words)."""
        text = self.text
        if text == "<bool>" or (text == "" and isinstance(self.default, bool)):
            return None if isinstance(value, bool) else "not true or false"
        if text.startswith("<"):
            return _check_kind(text[1:-1], value)
        if text.startswith("{"):
            choices = [c.strip().strip("\"'") for c in text[1:-1].split(",")]
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                return "not one of the choices"
            shown = str(value) if not isinstance(value, float) or not value.is_integer() else str(int(value))
            return None if shown in choices else "not one of the choices"
        if text and text[0] in "[(":
            return _check_interval(text, value, whole=isinstance(self.default, int)
                                   and not isinstance(self.default, bool))
        return "no range declared"

    def allowed(self) -> str:
        """The range for a message."""
        if self.text == "" and isinstance(self.default, bool):
            return "true or false"
        kind = self.text[1:-1] if self.text.startswith("<") else ""
        words = {"text": "any text", "name": "a ROS name (letters, digits, _, /, ~)",
                 "file": "empty (the default) or an existing, non-empty file", "map": "a mapping {key: value}",
                 "bool": "true or false"}
        if kind in words:
            return words[kind]
        if self.text.startswith("{"):
            return "one of " + self.text
        whole = isinstance(self.default, int) and not isinstance(self.default, bool)
        return ("a whole number in " if whole else "a number in ") + self.text


def _non_finite(value: Any) -> bool:
    """True when `value` is, or (in a mapping or list) holds, a NaN or an infinity."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_non_finite(v) for v in value)
    return False


def _check_kind(kind: str, value: Any) -> Optional[str]:
    if kind in ("text", "map") and _non_finite(value):
        return "not a finite number" if isinstance(value, float) else "a mapping holding a NaN or an infinity"
    if kind == "text":
        return None if isinstance(value, (str, int, float)) and not isinstance(value, bool) else "not text"
    if kind == "name":
        if not isinstance(value, str) or not _NAME.match(value):
            return "not a ROS name"
        return None
    if kind == "map":
        return None if isinstance(value, dict) else "not a mapping"
    if kind == "bool":
        return None if isinstance(value, bool) else "not true or false"
    if kind == "file":
        if not isinstance(value, str):
            return "not a file name"
        return None if value == "" else file_problem(value)
    return f"unknown range kind <{kind}>"


def file_problem(path: str) -> Optional[str]:
    """Why `path` cannot be a model or data file (missing, a folder, not a regular file, empty), or None."""
    import stat  # noqa: PLC0415

    try:
        st = os.stat(os.path.expanduser(path))
    except OSError as exc:
        return f"no such file ({exc.strerror})" if exc.errno == 2 else (exc.strerror or str(exc))
    if stat.S_ISDIR(st.st_mode):
        return "a folder, not a file"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size == 0:
        return "an empty file"
    if not os.access(os.path.expanduser(path), os.R_OK):
        return "not readable"
    return None


def _number(token: str) -> float:
    token = token.strip()
    if token in ("inf", "+inf"):
        return math.inf
    if token == "-inf":
        return -math.inf
    return float(token)


def parse_interval(text: str) -> Tuple[float, float, bool, bool]:
    """'[a, b)' -> (a, b, low end included, high end included); ValueError when malformed."""
    if len(text) < 5 or text[0] not in "[(" or text[-1] not in "])" or text.count(",") != 1:
        raise ValueError(f"malformed range {text!r}")
    lo, hi = (_number(t) for t in text[1:-1].split(","))
    if lo > hi:
        raise ValueError(f"empty range {text!r}")
    return lo, hi, text[0] == "[", text[-1] == "]"


def _check_interval(text: str, value: Any, whole: bool) -> Optional[str]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "not a number"
    if math.isnan(value):
        return "not a number"
    if whole and not float(value).is_integer():
        return "not a whole number"
    lo, hi, lo_in, hi_in = parse_interval(text)
    if value < lo or (value == lo and not lo_in) or value > hi or (value == hi and not hi_in):
        return "out of range"
    return None


def _split_comment(rest: str) -> Tuple[str, str]:
    """'value   # comment' -> (value, comment), a '#' inside quotes kept."""
    quote = None
    for i, ch in enumerate(rest):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or rest[i - 1] in " \t"):
            return rest[:i].strip(), rest[i + 1:].strip()
    return rest.strip(), ""


def _spec_text(comment: str) -> str:
    """The range at the start of a comment ('' when there is none)."""
    if not comment:
        return ""
    closing = {"[": "])", "(": "])", "{": "}", "<": ">"}.get(comment[0])
    if closing is None:
        return ""
    for i, ch in enumerate(comment):
        if i and ch in closing:
            return comment[:i + 1]
    return ""


def parse_schema(text: str) -> Dict[str, Spec]:
    """name ("diag/stale_warn_s" for group members) -> Spec, from a config yaml's text. Parameters without a
    range get Spec(text="") (bools need none); Spec.check says "no range declared" for the others."""
    import yaml  # noqa: PLC0415

    defaults = yaml.safe_load(text) or {}
    specs: Dict[str, Spec] = {}
    groups: List[Tuple[int, str]] = []  # (indent, key) of the enclosing groups
    for line in text.splitlines():
        m = _KEY.match(line)
        if not m:
            continue
        indent, key = len(m.group("indent")), m.group("key")
        value, comment = _split_comment(m.group("rest"))
        spec = _spec_text(comment)
        if m.group("off") and not spec:
            continue  # a comment that only looks like a key
        while groups and groups[-1][0] >= indent:
            groups.pop()
        path = "/".join([g[1] for g in groups] + [key])
        if not m.group("off") and value == "":
            groups.append((indent, key))  # a group (diag:, tracker:)
            continue
        if not m.group("off") and spec == "<map>":
            groups.append((indent, key))  # a mapping: its keys may be declared below it, commented out
        if m.group("off"):  # declared without a default: the commented value gives the type
            try:
                default, has_default = yaml.safe_load(value), False
            except yaml.YAMLError:
                default, has_default = None, False
        else:
            default, has_default = _lookup(defaults, path)
        specs[path] = Spec(path, spec, default, has_default)
    return specs


def _lookup(tree: Any, path: str) -> Tuple[Any, bool]:
    for part in path.split("/"):
        if not isinstance(tree, dict) or part not in tree:
            return None, False
        tree = tree[part]
    return tree, True


def node_schema(node: str) -> Dict[str, Spec]:
    """The declared parameters of config/<node>.yaml."""
    from fer_mask_ros.config import CONFIG_DIR  # noqa: PLC0415

    with open(os.path.join(str(CONFIG_DIR), f"{node}.yaml"), encoding="utf-8") as handle:
        return parse_schema(handle.read())


def problems(node: str, values: Dict[str, Any], schema: Optional[Dict[str, Spec]] = None) -> List[str]:
    """One line per parameter in `values` (name -> value as set) outside its declared range, naming the
    parameter, the value and the range: what a node prints as FATAL."""
    schema = node_schema(node) if schema is None else schema
    out = []
    for name, value in values.items():
        spec = schema.get(name)
        if spec is None:
            continue
        try:
            why = spec.check(value)
        except ValueError as exc:  # a malformed range in the yaml (the unit test catches it first)
            why = f"checked against a malformed range ({exc})"
        if why:
            shown = repr(value) if not isinstance(value, str) or len(value) < 200 else repr(value[:200]) + "..."
            out.append(f"{node}: parameter ~{name} = {shown} is {why}; allowed: {spec.allowed()} "
                       f"(config/{node}.yaml)")
    return out
