"""The launch files, parsed by roslaunch itself (nothing is started): namespaces, relative names, the camera
topic derived from `camera`, /use_sim_time, the args demo/replay forward, machines, record.launch topics."""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Dict, List

import pytest

roslaunch_config = pytest.importorskip("roslaunch.config")
xmlloader = pytest.importorskip("roslaunch.xmlloader")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
GRAPH = {"face_detector", "emotion_classifier", "emotion_speech"}


def load(name: str, *argv: str):
    config = roslaunch_config.ROSLaunchConfig()
    xmlloader.XmlLoader().load(os.path.join(REPO, "launch", name), config, argv=list(argv), verbose=False)
    return config


def resolve(name: str, ns: str) -> str:
    return name if name.startswith("/") else ns.rstrip("/") + "/" + name


def nodes(config) -> Dict[str, object]:
    return {n.name: n for n in config.nodes}


def remaps(node) -> Dict[str, str]:
    return {src: resolve(dst, node.namespace) for src, dst in node.remap_args}


#: the camera topics the tests below replay (check_bag wants messages on the one replay.launch plays)
BAG_TOPICS = ("/fer_mask/camera/front/image_raw", "/r7/camera/front/image_raw", "/robot1/camera/front/image_raw",
              "/robot1/camera/bottom/image_raw/compressed")


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> str:
    rosbag = pytest.importorskip("rosbag")
    from sensor_msgs.msg import CompressedImage, Image

    path = tmp_path_factory.mktemp("bag") / "session.bag"
    with rosbag.Bag(str(path), "w") as out:
        for topic in BAG_TOPICS:
            out.write(topic, CompressedImage(format="jpeg") if topic.endswith("/compressed") else Image())
    return str(path)


@pytest.mark.parametrize("camera,name,frame", [("0", "front", "CameraTop"), ("1", "bottom", "CameraBottom")])
def test_image_topic_follows_camera(camera, name, frame):
    config = load("nao.launch", f"camera:={camera}", "ns:=robot2")
    n = nodes(config)
    topic = f"/robot2/camera/{name}/image_raw"
    assert remaps(n["nao_camera"])["image_raw"] == topic
    assert remaps(n["nao_camera"])["camera_info"] == f"/robot2/camera/{name}/camera_info"
    assert remaps(n["face_detector"])["image"] == topic
    assert remaps(n["emotion_classifier"])["image"] == topic
    assert config.params["/robot2/nao_camera/camera"].value == int(camera)
    # frame_id: empty in the yaml, the node takes naoqi_driver's frame of the camera (checked in namespaces.test)
    assert config.params["/robot2/nao_camera/frame_id"].value == ""
    assert frame  # documented pair


def test_naoqi_driver_topics():
    n = nodes(load("nao.launch", "driver:=naoqi_driver", "camera:=1", "speech_backend:=topic"))
    assert "nao_camera" not in n
    assert remaps(n["face_detector"])["image"] == "/naoqi_driver/camera/bottom/image_raw"


@pytest.mark.parametrize("launch,argv", [
    ("nao.launch", ["ns:=robot1"]),
    ("demo.launch", ["ns:=robot1"]),
    ("replay.launch", ["ns:=robot1"]),
])
def test_everything_in_its_namespace(launch, argv, bag):
    if launch == "replay.launch":
        argv = argv + [f"bag:={bag}"]
    config = load(launch, *argv)
    for node in config.nodes:
        assert node.namespace == "/robot1/", f"{node.name} runs in {node.namespace}"
        for _src, dst in node.remap_args:
            assert dst.startswith("/robot1/") or not dst.startswith("/") or dst == "/clock", f"{node.name}: {dst}"
    assert GRAPH <= set(nodes(config))
    speech = config.params["/robot1/emotion_speech/speech_topic"].value
    assert not speech.startswith("/")


@pytest.mark.parametrize("launch,sim", [("nao.launch", False), ("demo.launch", False), ("replay.launch", True)])
def test_use_sim_time(launch, sim, bag):
    config = load(launch, f"bag:={bag}") if launch == "replay.launch" else load(launch)
    assert config.params["/use_sim_time"].value is sim


@pytest.mark.parametrize("launch", ["demo.launch", "replay.launch"])
def test_forwarded_args(launch, bag):
    argv = ["ns:=r7", "leds:=true", "model:=/m/x.pt"] + ([f"bag:={bag}"] if launch == "replay.launch" else [])
    config = load(launch, *argv)
    assert config.params["/r7/emotion_speech/leds"].value is True
    assert config.params["/r7/emotion_classifier/model"].value == "/m/x.pt"


def test_replay_plays_the_ns_camera_and_stops_at_the_end(bag):
    config = load("replay.launch", f"bag:={bag}", "ns:=robot1", "camera:=1", "compressed:=true")
    play = nodes(config)["rosbag_play"]
    assert play.required
    assert play.type == "play_bag" and "--stop-launch" in play.args.split()  # a clean end at the bag's end
    assert ["clock", "/clock"] in play.remap_args  # rosbag play in a namespace must still drive /clock
    assert "--topics /robot1/camera/bottom/image_raw/compressed" in " ".join(play.args.split())
    assert config.params["/robot1/face_detector/transport"].value == "compressed"
    assert config.params["/robot1/replay_bag"].value.strip() == bag  # check_bag ran while parsing


def test_replay_refuses_a_missing_bag(tmp_path):
    with pytest.raises(Exception, match="check_bag"):
        load("replay.launch", f"bag:={tmp_path / 'missing.bag'}")


def test_replay_refuses_a_file_that_is_not_a_bag(tmp_path):
    jpeg = tmp_path / "photo.jpg"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 64)
    with pytest.raises(Exception, match="check_bag"):
        load("replay.launch", f"bag:={jpeg}")
    proc = subprocess.run([os.path.join(REPO, "scripts", "check_bag"), str(jpeg)], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"replay.launch: cannot replay bag:={jpeg}: not a ROS 1 bag"), lines


def test_replay_refuses_a_bag_without_the_camera_topic(bag):
    proc = subprocess.run([os.path.join(REPO, "scripts", "check_bag"), bag, "/robot9/camera/front/image_raw"],
                          capture_output=True, text=True, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    want = "no messages on /robot9/camera/front/image_raw; its image topics: " + ", ".join(sorted(BAG_TOPICS))
    assert want in lines[0], lines[0]
    with pytest.raises(Exception, match="check_bag"):
        load("replay.launch", f"bag:={bag}", "ns:=robot9")


def test_machines():
    config = load("nao.launch", "machine_host:=10.0.0.7", "machine_user:=robo", "machine_env_loader:=/opt/env.sh",
                  "classifier_machine:=remote")
    assert config.machines["remote"].address == "10.0.0.7"
    assert config.machines["remote"].env_loader == "/opt/env.sh"
    n = nodes(config)
    assert n["emotion_classifier"].machine_name == "remote"
    assert not n["face_detector"].machine_name


def record_topics(*argv: str) -> List[str]:
    node = next(iter(load("record.launch", *argv).nodes))
    return node.args.split()


def test_record_camera_and_compression():
    top = record_topics()
    assert "/fer_mask/camera/front/image_raw" in top and "/fer_mask/camera/front/camera_info" in top
    bottom = record_topics("camera:=1", "ns:=robot2", "compressed:=true")
    assert "/robot2/camera/bottom/image_raw/compressed" in bottom
    assert "/robot2/camera/bottom/camera_info" in bottom
    assert "/robot2/camera/bottom/image_raw" not in bottom


def test_detector_arg_reaches_both_nodes():
    from fer_mask_ros.perception.detection import DETECTORS, detector_from_settings

    config = load("nao.launch", "detector:=yunet")
    for node in ("face_detector", "emotion_classifier"):
        assert config.params[f"/fer_mask/{node}/detector"].value == "yunet"
    settings = {k.rsplit("/", 1)[1]: p.value for k, p in config.params.items()
                if k.startswith("/fer_mask/face_detector/")}
    assert type(detector_from_settings(settings)) is DETECTORS["yunet"]
    from fer_mask_ros.config import node_default

    default = load("nao.launch")  # no arg: config/face_detector.yaml's detector (the launch sets no empty value)
    assert default.params["/fer_mask/face_detector/detector"].value == node_default("face_detector", "detector")


def test_rep155_bridge_is_opt_in_and_follows_the_namespace():
    assert "hri_bridge" not in nodes(load("nao.launch"))
    config = load("demo.launch", "ns:=robot2", "rep155:=true", "hri_prefix:=/robot2/humans")
    bridge = nodes(config)["hri_bridge"]
    assert bridge.namespace == "/robot2/"
    assert remaps(bridge)["image"] == "/robot2/camera/front/image_raw"
    assert config.params["/robot2/hri_bridge/prefix"].value == "/robot2/humans"
    assert config.params["/robot2/hri_bridge/forget_after_s"].value > 0  # config/hri_bridge.yaml loaded


#: the study hooks every launch file that starts the graph takes, with a value each, and the emotion_speech
#: parameter each one sets (README "Launch arguments")
HOOKS = {"sentences": "/study/sentences.yaml", "speech_service": "ALAnimatedSpeech", "min_confidence": "0.55",
         "min_confidence_masked": "0.35", "cooldown_s": "4.5"}
HOOK_PARAMS = {"sentences": ("sentences", "/study/sentences.yaml"),
               "speech_service": ("speech_service", "ALAnimatedSpeech"),
               "min_confidence": ("policy/min_confidence", 0.55),
               "min_confidence_masked": ("policy/min_confidence_masked", 0.35),
               "cooldown_s": ("policy/cooldown_s", 4.5)}


@pytest.mark.parametrize("launch", ["nao.launch", "demo.launch", "webcam.launch", "replay.launch"])
def test_study_hooks_reach_emotion_speech(launch, bag):
    extra = [f"bag:={bag}"] if launch == "replay.launch" else []
    argv = [f"{k}:={v}" for k, v in HOOKS.items()] + ["policy:={min_agreement: 0.7, say_unsure: false}", "ns:=r7"]
    params = load(launch, *argv, *extra).params
    for name, value in HOOK_PARAMS.values():
        assert params[f"/r7/emotion_speech/{name}"].value == value, (launch, name)
    assert params["/r7/emotion_speech/policy/min_agreement"].value == 0.7
    assert params["/r7/emotion_speech/policy/say_unsure"].value is False
    # without them: config/emotion_speech.yaml's values (the launch files set no second default)
    from fer_mask_ros.config import node_default

    default = load(launch, *extra).params
    assert default["/fer_mask/emotion_speech/speech_service"].value == node_default("emotion_speech", "speech_service")
    assert default["/fer_mask/emotion_speech/sentences"].value == node_default("emotion_speech", "sentences")
    assert not [k for k in default if k.startswith("/fer_mask/emotion_speech/policy/")]


def test_study_hooks_make_a_working_speech_policy(monkeypatch, tmp_path):
    """The dict the node reads back (~policy) is one SpeechPolicy takes; a relative sentences file is the caller's."""
    from fer_mask_ros.interaction.policy import SpeechPolicy

    monkeypatch.setenv("PWD", str(tmp_path))
    params = load("demo.launch", "sentences:=mine.yaml", "min_confidence:=0.55", "cooldown_s:=4.5",
                  "policy:={min_agreement: 0.7}").params
    assert params["/fer_mask/emotion_speech/sentences"].value == str(tmp_path / "mine.yaml")
    prefix = "/fer_mask/emotion_speech/policy/"
    policy = {k[len(prefix):]: p.value for k, p in params.items() if k.startswith(prefix)}
    assert policy == {"min_confidence": 0.55, "cooldown_s": 4.5, "min_agreement": 0.7}
    SpeechPolicy(**policy)


def test_relative_bag_paths_are_the_callers(monkeypatch, tmp_path, bag):
    """record.launch bag:=rel.bag writes, and replay.launch bag:=rel.bag plays, the file in the caller's folder
    (not $ROS_HOME, where rosbag runs); ~ is the home folder."""
    shutil.copy(bag, tmp_path / "session.bag")
    monkeypatch.setenv("PWD", str(tmp_path))
    assert f"-O {tmp_path / 'rel.bag'}" in " ".join(record_topics("bag:=rel.bag"))
    assert f"-O {os.path.expanduser('~')}/b.bag" in " ".join(record_topics("bag:=~/b.bag"))
    assert "-O /abs/c.bag" in " ".join(record_topics("bag:=/abs/c.bag"))
    config = load("replay.launch", "bag:=session.bag")
    assert config.params["/fer_mask/replay_bag"].value.strip() == str(tmp_path / "session.bag")  # check_bag's
    assert str(tmp_path / "session.bag") in nodes(config)["rosbag_play"].args.split()


def test_a_refused_bag_is_one_line_from_roslaunch(tmp_path):
    """roslaunch itself (not a test's parser): check_bag's one line, a non-zero exit, no RLException after it."""
    if not shutil.which("roslaunch"):
        pytest.skip("roslaunch not on PATH")
    env = dict(os.environ, ROS_HOME=str(tmp_path / "ros_home"), PWD=str(tmp_path))
    proc = subprocess.run(["roslaunch", os.path.join(REPO, "launch", "replay.launch"), "bag:=missing.bag"],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "RLException" not in proc.stdout + proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"replay.launch: cannot replay bag:={tmp_path / 'missing.bag'}: no such file"], proc.stderr


def check_args_module():
    import importlib.util
    from importlib.machinery import SourceFileLoader

    loader = SourceFileLoader("check_args", os.path.join(REPO, "scripts", "check_args"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("check_args", loader))
    loader.exec_module(module)
    return module


def test_check_args_checks_only_the_file_roslaunch_was_given(tmp_path):
    mod = check_args_module()
    demo, nao = (os.path.join(REPO, "launch", n) for n in ("demo.launch", "nao.launch"))
    argv = ["--no-summary", "fer_mask_ros", "demo.launch", "bogus:=1", "ns:=r1"]
    assert mod.unknown_args(demo, argv, "/") == ["bogus"]
    assert mod.unknown_args(demo, ["fer_mask_ros", "demo.launch", "min_confidance:=0.5", "_p:=1"], "/") == [
        "min_confidance"]
    assert mod.unknown_args(demo, [demo, "bogus:=1"], "/") == ["bogus"]  # by path
    assert mod.unknown_args(demo, ["launch/demo.launch", "bogus:=1"], REPO) == ["bogus"]  # relative to roslaunch's
    assert mod.unknown_args(nao, ["fer_mask_ros", "demo.launch", "source:=clip"], "/") == []  # nao.launch included
    assert mod.unknown_args(demo, ["my_study", "demo.launch", "bogus:=1"], "/") == []  # another package's demo.launch
    assert mod.unknown_args(demo, ["fer_mask_ros", "demo.launch", "fer_mask_ros", "record.launch", "bag:=x"], "/") == []
    assert mod.unknown_args(demo, ["fer_mask_ros", "demo.launch", "duration:=3", "min_confidence:=0.5"], "/") == []


@pytest.mark.parametrize("launch", ["demo.launch", "nao.launch", "webcam.launch", "replay.launch", "record.launch"])
def test_an_unknown_argument_is_one_line_from_roslaunch(launch, tmp_path):
    """roslaunch itself ignores `bogus:=1`; the launch files make it one line naming it, a non-zero exit, nothing
    started (--nodes: parse only) and no RLException. Known arguments, also those only an included file has, pass."""
    if not shutil.which("roslaunch"):
        pytest.skip("roslaunch not on PATH")
    env = dict(os.environ, ROS_HOME=str(tmp_path / "ros_home"))
    path = os.path.join(REPO, "launch", launch)
    bag = ["bag:=session.bag"] if launch == "replay.launch" else []  # its one argument without a default
    proc = subprocess.run(["roslaunch", "--nodes", path, "bogus:=1", "ns:=r1", *bag], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and proc.stdout == "", proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{launch}: unknown argument bogus (roslaunch would ignore it); "
                                                   f"{launch} takes: "), proc.stderr
    assert " ns, " in lines[0] or lines[0].endswith(" ns (roslaunch --ros-args fer_mask_ros " + launch + ")")
    if launch == "demo.launch":  # every declared argument passes; nao.launch, included, is not checked against them
        ok = subprocess.run(["roslaunch", "--nodes", path, "source:=clip", "min_confidence:=0.5", "ns:=r1"],
                            cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
        assert ok.returncode == 0 and "/r1/emotion_speech" in ok.stdout, ok.stdout + ok.stderr
