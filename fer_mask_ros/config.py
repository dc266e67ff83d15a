"""Where the package's files are, and the defaults in config/*.yaml (the one source of each default).

Models and configuration live at the repository root (models/, config/); catkin installs them as
share files (<prefix>/share/fer_mask_ros/{models,config}) while the Python package goes to
<prefix>/lib/python3/dist-packages, so they are looked up through the package's share directory,
found without importing ROS (see `share_dir`). A plain `pip install .` copies them into the
installed package as fer_mask_ros/_shipped/{models,config} (setup.py). Overrides, first match wins:
$FER_MASK_ROS_MODELS / $FER_MASK_ROS_CONFIG / $FER_MASK_ROS_DATA (one folder each) and
$FER_MASK_ROS_SHARE (a share directory holding models/ and config/); single files: the nodes'
~model / ~detector_model parameters, the CLI's --model / --detector-model, $FER_MASK_DETECTOR_MODEL.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

PACKAGE_NAME = "fer_mask_ros"
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent  # the source tree (and the catkin devel space, which runs from it)
ENV_SHARE = "FER_MASK_ROS_SHARE"
ENV_DIRS = {"models": "FER_MASK_ROS_MODELS", "config": "FER_MASK_ROS_CONFIG", "data": "FER_MASK_ROS_DATA"}


def _share_candidates() -> Iterator[Path]:
    """Share directories of the catkin package fer_mask_ros, most explicit first."""
    if os.environ.get(ENV_SHARE):
        yield Path(os.environ[ENV_SHARE])
    yield REPO_ROOT  # source tree / devel space: the repository root is the package
    # install space: <prefix>/lib/python3/dist-packages/fer_mask_ros -> <prefix>/share/fer_mask_ros
    for up in (3, 4):
        if len(PACKAGE_DIR.parents) > up:
            yield PACKAGE_DIR.parents[up] / "share" / PACKAGE_NAME
    # what rospack would search (ROS_PACKAGE_PATH), then the catkin prefixes (CMAKE_PREFIX_PATH)
    for entry in filter(None, os.environ.get("ROS_PACKAGE_PATH", "").split(os.pathsep)):
        yield Path(entry) if Path(entry).name == PACKAGE_NAME else Path(entry) / PACKAGE_NAME
    for entry in filter(None, os.environ.get("CMAKE_PREFIX_PATH", "").split(os.pathsep)):
        yield Path(entry) / "share" / PACKAGE_NAME


@lru_cache(maxsize=None)
def share_dir() -> Optional[Path]:
    """The package's share directory (a folder with package.xml and models/), or None (pip install)."""
    for base in _share_candidates():
        if (base / "package.xml").is_file() and (base / "models").is_dir():
            return base
    return None


def shipped_dir(name: str) -> Path:
    """models/, config/ or data/: the environment override, the share directory, else the pip-installed copy."""
    candidates: List[Path] = []
    if os.environ.get(ENV_DIRS.get(name, "")):
        return Path(os.environ[ENV_DIRS[name]])
    share = share_dir()
    if name == "data":  # the demo clip ships inside the Python package (package_data)
        candidates.append(PACKAGE_DIR / "data")
    if share is not None:
        candidates.append(share / name)
    candidates.append(PACKAGE_DIR / "_shipped" / name)
    for base in candidates:
        if base.is_dir():
            return base
    return candidates[0]


MODELS_DIR = shipped_dir("models")
CONFIG_DIR = shipped_dir("config")
DATA_DIR = shipped_dir("data")  # the bundled demo clip and its labels


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
