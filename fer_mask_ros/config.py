"""Where the package's files are, and the defaults in config/*.yaml (the one source of each default).

Models and configuration live at the repository root (models/, config/) so that catkin installs them
as package share files. A plain `pip install .` copies them into the installed package as
fer_mask_ros/_shipped/{models,config} (setup.py), so the same lookups work there without ROS.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
DATA_DIR = PACKAGE_DIR / "data"  # the bundled demo clip and its labels


def shipped_dir(name: str) -> Path:
    """models/ or config/: the repository's (source tree, catkin devel space), else the pip-installed copy."""
    for base in (REPO_ROOT / name, PACKAGE_DIR / "_shipped" / name):
        if base.is_dir():
            return base
    return REPO_ROOT / name


MODELS_DIR = shipped_dir("models")
CONFIG_DIR = shipped_dir("config")


def model_path(name: str) -> str:
    """A shipped model file by name (fer_mask_net.pt, centerface.onnx)."""
    return os.path.join(str(MODELS_DIR), name)


@lru_cache(maxsize=None)
def node_defaults(node: str) -> Dict[str, Any]:
    """The private parameters of a node as config/<node>.yaml sets them (nested dicts for groups like diag)."""
    import yaml  # noqa: PLC0415 - only the nodes and the tools that show the defaults need it

    path = CONFIG_DIR / f"{node}.yaml"
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def node_default(node: str, name: str) -> Any:
    """One default of config/<node>.yaml; `name` may be a group path like "diag/stale_warn_s".
    KeyError naming the file when the yaml does not set it (a default is never invented elsewhere)."""
    value: Any = node_defaults(node)
    for part in name.split("/"):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(f"config/{node}.yaml sets no {name!r}")
        value = value[part]
    return value
