"""Where config.py finds models/, config/ and data/: source tree, catkin install space, environment overrides."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_config_copy(package_dir: Path):
    """fer_mask_ros/config.py copied to `package_dir` and imported from there (its __file__ decides the layout)."""
    package_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "fer_mask_ros" / "config.py", package_dir / "config.py")
    spec = importlib.util.spec_from_file_location(f"config_copy_{abs(hash(package_dir))}", package_dir / "config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_share(share: Path) -> Path:
    (share / "models").mkdir(parents=True)
    (share / "config").mkdir()
    (share / "package.xml").write_text("<package/>")
    return share


def clear_env(monkeypatch):
    for name in ("FER_MASK_ROS_SHARE", "FER_MASK_ROS_MODELS", "FER_MASK_ROS_CONFIG", "FER_MASK_ROS_DATA",
                 "ROS_PACKAGE_PATH", "CMAKE_PREFIX_PATH"):
        monkeypatch.delenv(name, raising=False)


def test_source_tree():
    from fer_mask_ros import config  # noqa: PLC0415

    assert config.share_dir() == REPO
    assert Path(config.model_path("centerface.onnx")) == REPO / "models" / "centerface.onnx"
    assert config.CONFIG_DIR == REPO / "config"
    assert (config.DATA_DIR / "demo_clip.avi").is_file()


def test_install_space_layout(tmp_path, monkeypatch):
    """catkin: <prefix>/lib/python3/dist-packages/fer_mask_ros and <prefix>/share/fer_mask_ros, no environment."""
    clear_env(monkeypatch)
    share = make_share(tmp_path / "share" / "fer_mask_ros")
    config = load_config_copy(tmp_path / "lib" / "python3" / "dist-packages" / "fer_mask_ros")
    assert config.share_dir() == share
    assert config.MODELS_DIR == share / "models"
    assert config.CONFIG_DIR == share / "config"


def test_found_through_ros_package_path(tmp_path, monkeypatch):
    clear_env(monkeypatch)
    share = make_share(tmp_path / "elsewhere" / "fer_mask_ros")
    monkeypatch.setenv("ROS_PACKAGE_PATH", f"/nonexistent:{tmp_path / 'elsewhere'}")
    config = load_config_copy(tmp_path / "site" / "fer_mask_ros")
    assert config.share_dir() == share
    monkeypatch.delenv("ROS_PACKAGE_PATH")
    monkeypatch.setenv("CMAKE_PREFIX_PATH", str(tmp_path / "prefix"))
    share2 = make_share(tmp_path / "prefix" / "share" / "fer_mask_ros")
    config = load_config_copy(tmp_path / "site2" / "fer_mask_ros")
    assert config.share_dir() == share2


def test_pip_install_without_share(tmp_path, monkeypatch):
    clear_env(monkeypatch)
    package = tmp_path / "site-packages" / "fer_mask_ros"
    (package / "_shipped" / "models").mkdir(parents=True)
    config = load_config_copy(package)
    assert config.share_dir() is None
    assert config.MODELS_DIR == package / "_shipped" / "models"


def test_environment_overrides(tmp_path):
    share = make_share(tmp_path / "myshare")
    models = tmp_path / "mymodels"
    models.mkdir()
    env = dict(os.environ, FER_MASK_ROS_SHARE=str(share), FER_MASK_ROS_MODELS=str(models))
    out = subprocess.run([sys.executable, "-c", "from fer_mask_ros import config as c; "
                          "print(c.share_dir()); print(c.MODELS_DIR); print(c.CONFIG_DIR)"],
                         env=env, cwd=str(tmp_path), capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(share), str(models), str(share / "config")]
