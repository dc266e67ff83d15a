from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from fer_mask_ros.errors import ImageContainerError, NaoError
from fer_mask_ros.robot import connection as nao
from fer_mask_ros.robot.camera import (
    NaoCamera,
    container_to_rgb,
    parse_colorspace,
    parse_image_container,
    parse_resolution,
    resolution_size,
    rgb_to_image_bytes,
)
from fer_mask_ros.robot.connection import NaoConnection, make_url
from fer_mask_ros.robot.speech import NaoLeds, NaoSpeech

qi = pytest.importorskip("qi")
qi.logging.setLevel(qi.logging.WARNING)

from fer_mask_ros.ports import free_port  # noqa: E402
from fer_mask_ros.simulation.fake_nao import FakeNao  # noqa: E402


def wait_until(condition, timeout=30.0):
    """Wait for an event (condition() true), a generous deadline for a loaded machine; the asserts that follow
    say what was missing."""
    end = time.monotonic() + timeout
    while not condition() and time.monotonic() < end:
        time.sleep(0.01)


def gradient(h=6, w=8):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 30, y * 40, 255 - x * 30], axis=-1).astype(np.uint8)


def container(img, colorspace=11, stamp=(12, 500000)):
    layers, data = rgb_to_image_bytes(img, colorspace)
    h, w = img.shape[:2]
    return [w, h, layers, colorspace, stamp[0], stamp[1], data, 0, 0.49, 0.38, -0.49, -0.38]


# --- pure helpers ---------------------------------------------------------------------------

def test_parse_rgb_and_bgr_containers():
    img = gradient()
    out, stamp = container_to_rgb(container(img, 11))
    assert out.shape == (6, 8, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, img)
    assert stamp == pytest.approx(12.5)
    out, _ = container_to_rgb(container(img, 13))
    np.testing.assert_array_equal(out, img)
    c = parse_image_container(tuple(container(img)))
    assert (c.width, c.height, c.layers, c.colorspace, c.camera_id) == (8, 6, 3, 11, 0)
    assert c.left_angle == pytest.approx(0.49)


def test_parse_accepts_bytearray_and_short_container():
    img = gradient()
    c = container(img)
    c[6] = bytearray(c[6])
    np.testing.assert_array_equal(container_to_rgb(c[:7])[0], img)


def test_yuv_round_trips_are_close():
    img = gradient(6, 8)
    flat = np.full((4, 6, 3), (90, 160, 40), np.uint8)
    for cs, tol in ((10, 2), (9, 3)):
        out, _ = container_to_rgb(container(flat, cs))
        assert np.abs(out.astype(int) - flat.astype(int)).max() <= tol, cs
    gray, _ = container_to_rgb(container(img, 0))
    assert gray.shape == (6, 8, 3) and (gray[..., 0] == gray[..., 1]).all()


@pytest.mark.parametrize(
    "bad, match",
    [
        (None, "no image"),
        ("nope", "must be a list"),
        ([320, 240, 3], "fields"),
        ([4, 2, 3, 11, 0, 0, b"\x00" * 5], "expected 4x2x3=24"),
        ([0, 2, 3, 11, 0, 0, b""], "bad image size"),
        ([2, 2, 1, 11, 0, 0, b"\x00" * 4], "has 3 layers"),
        (["w", 2, 3, 11, 0, 0, b""], "not numeric"),
        ([2, 2, 3, 11, 0, 0, 3.5], "expected bytes"),
    ],
)
def test_bad_containers_are_refused(bad, match):
    with pytest.raises(ImageContainerError, match=match):
        container_to_rgb(bad)


def test_unsupported_colourspace_is_refused_clearly():
    c = [2, 2, 3, 12, 0, 0, b"\x00" * 12]  # kHSYColorSpace
    with pytest.raises(ImageContainerError, match="colour space 12 is not supported"):
        container_to_rgb(c)


def test_resolution_colourspace_url_helpers():
    assert parse_resolution("QVGA") == 1 and parse_resolution("kVGA") == 2 and parse_resolution(3) == 3
    assert parse_resolution("160x120") == 0
    assert resolution_size(1) == (320, 240)
    with pytest.raises(ValueError, match="unsupported camera resolution"):
        parse_resolution(5)
    assert parse_colorspace("RGB") == 11 and parse_colorspace("kBGRColorSpace") == 13
    with pytest.raises(ValueError):
        parse_colorspace("cmyk")
    assert make_url("10.0.0.5") == "tcp://10.0.0.5:9559"
    assert make_url("10.0.0.5", secure=True) == "tcps://10.0.0.5:9503"
    assert make_url("10.0.0.5:9600") == "tcp://10.0.0.5:9600"
    assert make_url("10.0.0.5", 9503) == "tcps://10.0.0.5:9503"
    assert make_url("10.0.0.5:9503") == "tcps://10.0.0.5:9503"
    assert make_url("tcps://robot:9503") == "tcps://robot:9503"


def test_password_never_in_repr_or_errors(monkeypatch, caplog):
    monkeypatch.setenv("NAO_PASSWORD", "s3cr3t-pw")
    assert NaoConnection(ip="10.0.0.5", user="nao").url == "tcps://10.0.0.5:9503"
    conn = NaoConnection("tcps://127.0.0.1:1", user="nao", min_backoff=0.05, max_backoff=0.1, connect_timeout=0.5)
    with caplog.at_level(logging.DEBUG, logger="fer_mask_ros.robot"):
        conn.start()
        wait_until(lambda: conn.failures >= 1)
        conn.close()
    assert conn.failures >= 1
    text = repr(conn) + caplog.text + str(conn.diagnostics()) + str(conn.last_error)
    assert "s3cr3t-pw" not in text
    assert "nao" in repr(conn)
    monkeypatch.delenv("NAO_PASSWORD")
    with pytest.raises(NaoError, match="NAO_PASSWORD"):
        NaoConnection(ip="127.0.0.1", user="nao")


def test_state_changes_logged_once_not_per_retry(caplog):
    states = []
    conn = NaoConnection("tcp://127.0.0.1:1", min_backoff=0.02, max_backoff=0.05, connect_timeout=0.5)
    conn.add_state_callback(states.append)
    with caplog.at_level(logging.INFO, logger="fer_mask_ros.robot"):
        conn.start()
        wait_until(lambda: conn.failures >= 3)
        assert conn.state == "connecting"
        conn.close()
    assert conn.failures >= 3
    assert states == ["connecting", "disconnected"]
    assert caplog.text.count("connecting") == 1


def test_wrong_address_warns_once_per_period(caplog):
    """A wrong nao_ip is never silent: one WARN per warn_every_s (60 s by default) while not connected."""
    conn = NaoConnection("tcp://127.0.0.1:1", min_backoff=0.02, max_backoff=0.05, connect_timeout=0.5,
                         warn_every_s=0.3)
    def warnings():
        return [r for r in caplog.records if "still not connected" in r.getMessage()]

    with caplog.at_level(logging.INFO, logger="fer_mask_ros.robot"):
        conn.start()
        wait_until(lambda: len(warnings()) >= 3)
        conn.close()
    # once per period: consecutive WARNs at least warn_every_s apart (by the records' own times, not a window)
    times = [r.created for r in warnings()]
    assert all(b - a >= 0.3 * 0.9 for a, b in zip(times, times[1:])), (times, caplog.text)
    assert all(r.levelno == logging.WARNING and "attempts" in r.getMessage() for r in warnings())
    assert NaoConnection("tcp://127.0.0.1:1").warn_every_s == 60.0


def test_wrong_address_warns_first_after_first_warn_s(caplog):
    """The first WARN comes after first_warn_s (8 s by default), naming the URL, even while an attempt blocks."""
    conn = NaoConnection("tcp://127.0.0.1:1", min_backoff=0.02, max_backoff=0.05, connect_timeout=0.5,
                         first_warn_s=0.3)
    with caplog.at_level(logging.INFO, logger="fer_mask_ros.robot"):
        started = time.time()
        conn.start()
        wait_until(lambda: any(r.levelno >= logging.WARNING for r in caplog.records))
        conn.close()
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned[0].created - started >= 0.3 * 0.9, caplog.text  # not before first_warn_s
    first = [r.getMessage() for r in caplog.records if "not connected after" in r.getMessage()]
    assert len(first) == 1 and "tcp://127.0.0.1:1" in first[0] and "is nao_ip right" in first[0], caplog.text
    assert NaoConnection("tcp://127.0.0.1:1").first_warn_s == 8.0


# --- real qi round trips against FakeNao ---------------------------------------------------

RED = (220, 20, 20)
BLUE = (20, 20, 220)


def frames():
    return [np.full((60, 80, 3), RED, np.uint8), np.full((60, 80, 3), BLUE, np.uint8)]


@pytest.fixture
def fake():
    with FakeNao(frames(), fps=10, echo=False) as robot:
        yield robot


@pytest.fixture
def conn(fake):
    c = NaoConnection(fake.url, min_backoff=0.1, max_backoff=0.5)
    assert c.start(wait=5.0), c.diagnostics()
    yield c
    c.close()


@pytest.mark.parametrize("resolution, colorspace", [(1, 11), (0, 13), (2, 9)])
def test_camera_round_trip(conn, fake, resolution, colorspace):
    cam = NaoCamera(conn, resolution=resolution, colorspace=colorspace)
    got = cam.grab()
    assert got is not None, cam.last_error
    img, stamp = got
    w, h = resolution_size(resolution)
    assert img.shape == (h, w, 3) and img.dtype == np.uint8
    assert abs(stamp - time.time()) < 5.0
    centre = img[h // 2, w // 2].astype(int)
    assert min(np.abs(centre - RED).max(), np.abs(centre - BLUE).max()) <= 4
    assert fake.stats()["images_served"] >= 1
    cam.close()


def test_camera_frames_follow_wall_time(conn, fake):
    cam = NaoCamera(conn, resolution=0)
    seen = set()
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline and len(seen) < 2:
        img, _ = cam.grab()
        seen.add("red" if img[0, 0, 0] > 128 else "blue")
        time.sleep(0.03)
    assert seen == {"red", "blue"}


def test_speech_and_leds_reach_the_fake_robot(conn, fake):
    speech = NaoSpeech(conn, language="Italian")
    t0 = time.monotonic()
    assert speech.say("Ciao!")
    assert time.monotonic() - t0 < 3.0  # say() does not wait for the robot to finish speaking
    assert fake.wait_for_speech(1, timeout=30)
    assert fake.spoken[0].text == "Ciao!" and fake.spoken[0].service == "ALTextToSpeech"
    assert fake.language == "Italian"
    speech.wait()
    animated = NaoSpeech(conn, service="ALAnimatedSpeech")
    assert animated.say("hello")
    assert fake.wait_for_speech(2, timeout=30)
    assert fake.spoken_texts == ["Ciao!", "hello"]
    leds = NaoLeds(conn)
    assert leds.show_emotion("angry")
    deadline = time.monotonic() + 30
    while not fake.leds and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.leds[0].group == "FaceLeds" and fake.leds[0].rgb == 0xFF0000


def test_speech_is_dropped_not_queued_when_disconnected():
    c = NaoConnection("tcp://127.0.0.1:1", min_backoff=0.5, connect_timeout=0.5)
    speech = NaoSpeech(c)
    assert not speech.say("anyone?")
    assert not speech.say("hello?")
    assert speech.dropped == 2 and speech.sent == 0


def test_speech_busy_drops(fake):
    slow = FakeNao(frames(), echo=False, say_seconds=2.0).start()  # "one" still speaks when "two" comes
    try:
        c = NaoConnection(slow.url)
        assert c.start(wait=5)
        speech = NaoSpeech(c)
        assert speech.say("one")
        time.sleep(0.1)
        assert not speech.say("two")
        assert speech.dropped == 1
        assert speech.wait(30)
        assert speech.say("three")
        assert slow.wait_for_speech(2, timeout=30)
        assert slow.spoken_texts == ["one", "three"]
        c.close()
    finally:
        slow.stop()


def test_reconnect_after_robot_restart_on_same_port():
    # a port from below the ephemeral range: while the robot is away no other socket (nor a reconnect attempt
    # connecting to itself) can take it
    first = FakeNao(frames(), url=f"tcp://127.0.0.1:{free_port()}", echo=False).start()
    url = first.url
    states = []
    c = NaoConnection(url, min_backoff=0.5, max_backoff=5.0)
    c.add_state_callback(states.append)
    assert c.start(wait=5)
    cam = NaoCamera(c, resolution=0)
    assert cam.grab() is not None
    first.stop()
    deadline = time.monotonic() + 30
    while c.state == "connected" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert c.state != "connected"
    assert cam.grab() is None  # no exception while the robot is away
    time.sleep(1.0)  # let the backoff grow a bit
    second = FakeNao(frames(), url=url, echo=False).start()  # same port
    try:
        assert second.url == url
        assert c.wait_connected(30.0), c.diagnostics()  # the backoff is at most 5 s: a loaded machine gets room
        got = cam.grab()
        assert got is not None and got[0].shape == (120, 160, 3)
        assert cam.subscriptions == 2  # resubscribed on the new robot
        assert "FakeNao" not in repr(c)
        assert states == ["connecting", "connected", "disconnected", "connecting", "connected"]
    finally:
        c.close()
        second.stop()


def test_heartbeat_answers_and_call_timeouts(conn):
    """The heartbeat gets answers from a live robot; a call that does not answer in time is a NaoTimeout
    and marks the robot hung: the connection is dropped and made again (generation + 1)."""
    from fer_mask_ros.errors import NaoTimeout

    assert conn.ping() and conn.heartbeat_ms == conn.heartbeat_ms  # answered, a number
    gen = conn.generation

    class _Never:
        def value(self, timeout_ms):
            time.sleep(timeout_ms / 1000.0)
            raise RuntimeError("Future timeout.")

        def cancel(self):
            pass

    with pytest.raises(NaoTimeout, match="robot not answering"):
        conn.call(lambda _async: _Never(), timeout=0.05, what="stuck")
    end = time.monotonic() + 30
    while conn.generation == gen and time.monotonic() < end:
        time.sleep(0.05)
    assert conn.generation == gen + 1 and conn.hangs == 1 and conn.connected


def test_nao_side_never_imports_rospy():
    code = ("import sys, fer_mask_ros.robot.connection, fer_mask_ros.robot.camera, fer_mask_ros.robot.speech, "
            "fer_mask_ros.simulation.fake_nao, fer_mask_ros.interaction.policy, fer_mask_ros.simulation.frame_source;"
            "print('rospy' in sys.modules)")
    root = os.path.dirname(os.path.dirname(os.path.dirname(nao.__file__)))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_login_credentials_are_sent_and_fake_accepts_them(fake):
    # FakeNao cannot check logins (no server-side auth in libqi-python) but the client path is exercised
    c = NaoConnection(fake.url, user="nao", password="pw")
    try:
        assert c.start(wait=5.0), c.diagnostics()
        assert NaoSpeech(c).say("logged in")
        assert fake.wait_for_speech(1)
    finally:
        c.close()
