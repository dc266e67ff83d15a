from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fer_mask_ros.errors import FrameSourceError
from fer_mask_ros.simulation.frame_source import FrameSource, find_demo_clip, load_frames, open_frame_source

qi = pytest.importorskip("qi")
qi.logging.setLevel(qi.logging.WARNING)

from fer_mask_ros.simulation.fake_nao import FakeNao, fetch_spoken  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


def solid(value, h=30, w=40):
    return np.full((h, w, 3), value, np.uint8)


# --- frame source -----------------------------------------------------------------------

def test_frame_source_loops_at_fps():
    src = FrameSource([solid(0), solid(100), solid(200)], fps=10)
    assert [src.index_at(t) for t in (-1.0, 0.0, 0.05, 0.1, 0.25, 0.3, 0.41)] == [0, 0, 0, 1, 2, 0, 1]
    assert src.duration == pytest.approx(0.3)
    assert src.frame_at(0.15)[0, 0, 0] == 100


def test_frame_source_validation():
    with pytest.raises(FrameSourceError, match="no frames"):
        FrameSource([])
    with pytest.raises(FrameSourceError, match="fps"):
        FrameSource([solid(0)], fps=0)
    gray = FrameSource([np.zeros((5, 6), np.uint8)])
    assert gray.frames[0].shape == (5, 6, 3)
    with pytest.raises(FrameSourceError, match="does not exist"):
        open_frame_source("/nonexistent/video.mp4")


def test_folder_and_video_sources(tmp_path, caplog):
    cv2 = pytest.importorskip("cv2")
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, v in enumerate((10, 120, 240)):
        cv2.imwrite(str(folder / f"{i:02d}.png"), solid(v))
    (folder / "notes.txt").write_text("ignored")
    frames = load_frames(folder)
    assert [int(f[0, 0, 0]) for f in frames] == [10, 120, 240]
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (40, 30))
    for v in (0, 255, 0, 255):
        writer.write(solid(v))
    writer.release()
    src = open_frame_source(str(video), fps=5)
    assert len(src) == 4 and src.frames[0].shape == (30, 40, 3) and src.fps == 5
    assert src.frames[1].mean() > 200 > 50 > src.frames[0].mean()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FrameSourceError, match="no images"):
        load_frames(tmp_path / "empty")

    one_frame = 30 * 40 * 3  # solid() frames are 30x40 RGB
    with caplog.at_level("WARNING", logger="fer_mask_ros.simulation.frame_source"):
        assert len(load_frames(video, max_bytes=2 * one_frame + 1)) == 2
        assert len(load_frames(folder, max_bytes=one_frame)) == 1
        assert len(load_frames(video, max_bytes=1)) == 1  # always at least one frame
    assert sum("larger than" in r.getMessage() for r in caplog.records) == 3


def test_missing_demo_clip_is_a_clear_error(tmp_path):
    assert find_demo_clip(tmp_path) is None
    (tmp_path / "demo_clip.mp4").write_bytes(b"")
    assert find_demo_clip(tmp_path) == tmp_path / "demo_clip.mp4"
    if find_demo_clip() is None:
        with pytest.raises(FrameSourceError, match="demo clip .* is missing"):
            open_frame_source("clip")


# --- the qi services, seen by a plain qi client ------------------------------------------

@pytest.fixture
def fake():
    frames = [solid((200, 30, 30)), solid((30, 200, 30))]
    with FakeNao(frames, fps=10, echo=False) as robot:
        yield robot


@pytest.fixture
def client(fake):
    session = qi.Session()
    session.connect(fake.url)
    yield session
    session.close()


def test_listens_on_loopback_with_an_actual_port(fake):
    assert fake.url.startswith("tcp://127.0.0.1:")
    assert int(fake.url.rsplit(":", 1)[1]) > 0
    assert fake.running and "running" in repr(fake)
    assert 0 <= time.time() - fake.start_time < 5


def test_image_container_is_the_naoqi_layout(client):
    video = client.service("ALVideoDevice")
    handle = video.subscribeCamera("test", 0, 1, 11, 10)
    assert handle == "test_0"
    assert video.subscribeCamera("test", 0, 0, 13, 10) == "test_1"
    img = video.getImageRemote(handle)
    assert len(img) == 12
    width, height, layers, colorspace, sec, usec, data = img[:7]
    assert (width, height, layers, colorspace) == (320, 240, 3, 11)
    assert isinstance(data, (bytes, bytearray)) and len(data) == 320 * 240 * 3
    assert abs(sec + usec * 1e-6 - time.time()) < 5 and 0 <= usec < 1_000_000
    assert img[7] == 0 and img[8] > 0 > img[10] and img[9] > 0 > img[11]
    rgb = np.frombuffer(bytes(data), np.uint8).reshape(240, 320, 3)
    assert tuple(rgb[120, 160]) in ((200, 30, 30), (30, 200, 30))
    bgr = video.getImageRemote("test_1")
    assert bgr[:4] == [160, 120, 3, 13] or tuple(bgr[:4]) == (160, 120, 3, 13)
    yuv = video.getImageRemote(video.subscribeCamera("yuv", 0, 0, 9, 10))
    assert (yuv[2], len(yuv[6])) == (2, 160 * 120 * 2)
    assert sorted(video.getSubscribers()) == ["test_0", "test_1", "yuv_0"]
    assert video.unsubscribe(handle) is True
    assert video.unsubscribe(handle) is False
    with pytest.raises(RuntimeError, match="unknown subscriber handle"):
        video.getImageRemote(handle)
    with pytest.raises(RuntimeError, match="unsupported camera resolution"):
        video.subscribeCamera("bad", 0, 5, 11, 10)
    video.setParam(40, 1)
    assert video.getParam(40) == 1


def test_speech_is_recorded_and_queryable_over_qi(client, fake, capsys):
    tts = client.service("ALTextToSpeech")
    tts.setLanguage("Italian")
    assert tts.getLanguage() == "Italian"
    assert "English" in tts.getAvailableLanguages()
    with pytest.raises(RuntimeError, match="not installed"):
        tts.setLanguage("Klingon")
    tts.say("Ciao")
    client.service("ALAnimatedSpeech").say("hello", {"bodyLanguageMode": "contextual"})
    client.service("ALAnimatedSpeech").say("again")
    tts.setVolume(0.5)
    assert tts.getVolume() == pytest.approx(0.5)
    assert fake.spoken_texts == ["Ciao", "hello", "again"]
    rows = tts.getSpoken()
    assert [r[2] for r in rows] == ["Ciao", "hello", "again"]
    assert rows[0][1] == "ALTextToSpeech" and rows[1][1] == "ALAnimatedSpeech" and rows[0][3] == "Italian"
    assert [u.text for u in fetch_spoken(fake.url)] == ["Ciao", "hello", "again"]
    client.service("FakeNaoRecorder").clear()
    assert fake.spoken == []


def test_echo_prints_nao_says(capsys):
    with FakeNao([solid(0)]) as robot:
        s = qi.Session()
        s.connect(robot.url)
        s.service("ALTextToSpeech").say("You look happy!")
        s.close()
    assert "NAO says: You look happy!" in capsys.readouterr().out


def test_leds_are_recorded(client, fake):
    leds = client.service("ALLeds")
    leds.fadeRGB("FaceLeds", 0x00FF00, 0.2)
    leds.fadeRGB("ChestLeds", 1.0, 0.0, 0.0, 0.1)
    leds.fadeRGB("FaceLeds", "blue", 0.3)
    with pytest.raises(RuntimeError, match="unknown colour"):
        leds.fadeRGB("FaceLeds", "chartreuse", 0.3)
    assert [(e.group, e.rgb) for e in fake.leds] == [("FaceLeds", 0x00FF00), ("ChestLeds", 0xFF0000),
                                                     ("FaceLeds", 0x0000FF)]
    events = client.service("FakeNaoRecorder").getLedEvents()
    assert [e[2] for e in events] == [0x00FF00, 0xFF0000, 0x0000FF]
    assert client.service("FakeNaoRecorder").getStats()["led_events"] == 3


def test_stop_closes_the_port(fake):
    url = fake.url
    fake.stop()
    s = qi.Session()
    with pytest.raises(RuntimeError):
        s.connect(url)


# --- CLI ----------------------------------------------------------------------------------

def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _lines(stream):
    q = queue.Queue()
    threading.Thread(target=lambda: [q.put(line) for line in stream], daemon=True).start()

    def next_line(timeout=15.0):
        try:
            return q.get(timeout=timeout)
        except queue.Empty:
            return "<timeout>"

    return next_line


def test_cli_serves_until_sigterm(tmp_path):
    cv2 = pytest.importorskip("cv2")
    cv2.imwrite(str(tmp_path / "a.png"), solid(50))
    proc = subprocess.Popen([sys.executable, "-m", "fer_mask_ros", "fake-nao", "--source", str(tmp_path),
                             "--port", "0"], cwd=str(ROOT), env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = _lines(proc.stdout), _lines(proc.stderr)
    try:
        line = out()
        assert line.startswith("fake NAO listening on tcp://127.0.0.1:"), line
        url = line.split()[4]
        s = qi.Session()
        s.connect(url)
        s.service("ALTextToSpeech").say("hello from the test")
        assert [r[2] for r in s.service("FakeNaoRecorder").getSpoken()] == ["hello from the test"]
        s.close()
        assert out().strip() == "NAO says: hello from the test"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        errors = []
        while not errors or errors[-1] != "<timeout>":  # the stream ends with the process
            errors.append(err(5.0))
        assert any("fake NAO stopped (1 utterances)" in e for e in errors), errors
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_cli_user_errors():
    bad = subprocess.run([sys.executable, "-m", "fer_mask_ros", "fake-nao", "--source", "/nonexistent/x.mp4",
                          "--port", "0"], cwd=str(ROOT), env=_env(), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "does not exist" in bad.stderr
