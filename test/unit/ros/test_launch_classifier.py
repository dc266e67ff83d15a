"""`classifier:=` in every launch file reaches the emotion_classifier node's ~classifier (parsed by roslaunch)."""
from __future__ import annotations

import os

import pytest

roslaunch_config = pytest.importorskip("roslaunch.config")
xmlloader = pytest.importorskip("roslaunch.xmlloader")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def classifier_param(name, *argv):
    config = roslaunch_config.ROSLaunchConfig()
    xmlloader.XmlLoader().load(os.path.join(REPO, "launch", name), config, argv=list(argv), verbose=False)
    return {k: p.value for k, p in config.params.items() if k.endswith("/emotion_classifier/classifier")}


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> str:
    rosbag = pytest.importorskip("rosbag")
    from sensor_msgs.msg import Image

    path = tmp_path_factory.mktemp("bag") / "session.bag"
    with rosbag.Bag(str(path), "w") as out:
        out.write("/fer_mask/camera/front/image_raw", Image())
    return str(path)


@pytest.mark.parametrize("launch", ["nao.launch", "demo.launch", "webcam.launch", "replay.launch"])
def test_classifier_arg_reaches_the_node(launch, bag):
    from fer_mask_ros.config import node_default

    extra = [f"bag:={bag}"] if launch == "replay.launch" else []
    default = classifier_param(launch, *extra)
    assert list(default.values()) == [node_default("emotion_classifier", "classifier")]  # config/*.yaml's
    chosen = classifier_param(launch, "classifier:=mobilefacenet", *extra)
    assert list(chosen.values()) == ["mobilefacenet"]


def test_an_unknown_classifier_is_refused_by_the_schema():
    from fer_mask_ros.config_schema import problems
    from fer_mask_ros.perception.zoo import CLASSIFIER_NAMES

    assert all(not problems("emotion_classifier", {"classifier": name}) for name in CLASSIFIER_NAMES)
    (line,) = problems("emotion_classifier", {"classifier": "nope"})
    assert "~classifier = 'nope'" in line and "fusion" in line
