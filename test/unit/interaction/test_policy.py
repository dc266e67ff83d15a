from __future__ import annotations

import logging

import pytest

from fer_mask_ros.errors import SpeechBackendError
from fer_mask_ros.interaction.policy import (
    EMOTION_LED_COLOURS,
    NOT_SURE,
    SENTENCES,
    SpeechPolicy,
    led_colour,
    naoqi_language,
    normalise_language,
    sentence,
)
from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.robot.say import LogBackend, make_backend
from fer_mask_ros.robot.say.espeak import EspeakBackend


def feed(policy, face_id, emotion, t0, t1, conf=0.9, masked=False, step=0.1):
    t = t0
    while t <= t1 + 1e-9:
        policy.observe(face_id, emotion, conf, masked, t)
        t += step


def test_stable_confident_face_speaks_once():
    p = SpeechPolicy(window_s=3.0, cooldown_s=8.0, repeat_after_s=30.0)
    feed(p, 1, "happy", 0.0, 1.0)
    assert p.decide(1.0) == "You look happy!"
    feed(p, 1, "happy", 1.1, 20.0)
    # same face, same emotion: not repeated even after the cooldown
    assert all(p.decide(t) is None for t in (2.0, 9.5, 15.0, 20.0))


def test_cooldown_between_utterances():
    p = SpeechPolicy(window_s=1.0, cooldown_s=8.0)
    feed(p, 1, "happy", 0.0, 0.5)
    assert p.decide(0.5) is not None
    feed(p, 1, "sad", 0.6, 7.0)
    assert p.decide(7.0) is None  # sad is stable but we are in the cooldown
    feed(p, 1, "sad", 7.1, 8.6)
    assert p.decide(8.6) == "You look sad."


def test_repeat_after():
    p = SpeechPolicy(window_s=2.0, cooldown_s=1.0, repeat_after_s=10.0)
    feed(p, 1, "angry", 0.0, 1.0)
    assert p.decide(1.0) == "You look angry."
    feed(p, 1, "angry", 1.1, 10.5)
    assert p.decide(10.5) is None
    feed(p, 1, "angry", 10.6, 11.2)
    assert p.decide(11.2) == "You look angry."


def test_not_confident_or_disagreeing_gives_not_sure_after_a_window():
    p = SpeechPolicy(window_s=2.0, min_confidence=0.5, min_agreement=0.6)
    emotions = ["happy", "sad", "angry"]
    for i in range(30):
        p.observe(7, emotions[i % 3], 0.9, False, i * 0.1)
    assert p.decide(1.0) is None  # watched less than a window: give it time
    assert p.decide(2.9) == NOT_SURE["en"]
    p2 = SpeechPolicy(window_s=2.0, min_confidence=0.5)
    feed(p2, 1, "happy", 0.0, 2.5, conf=0.3)  # agreeing but not confident
    assert p2.decide(2.5) == NOT_SURE["en"]
    p3 = SpeechPolicy(window_s=2.0, say_unsure=False)
    feed(p3, 1, "happy", 0.0, 2.5, conf=0.3)
    assert p3.decide(2.5) is None


def test_no_faces_no_speech_and_forgetting():
    p = SpeechPolicy(window_s=3.0, cooldown_s=0.0, repeat_after_s=100.0)
    assert p.decide(0.0) is None
    feed(p, 1, "happy", 0.0, 1.0)
    assert p.decide(1.0) == "You look happy!"
    assert p.faces(3.9)
    assert p.faces(4.1) == []  # not seen for a window: forgotten
    assert p.decide(4.1) is None
    # the repeat memory is per face id: a new track id is a new person and is greeted
    feed(p, 2, "happy", 5.0, 6.0)
    assert p.decide(6.0) == "You look happy!"


def test_masked_sentence_and_italian():
    p = SpeechPolicy(language="Italian")
    feed(p, 1, "surprise", 0.0, 1.0, masked=True)
    text = p.decide(1.0)
    assert text == "Anche con la mascherina, hai un'espressione sorpresa!"
    assert p.naoqi_language == "Italian"
    assert sentence("happy", masked=True, language="en") == "Even with your mask on, you look happy!"
    assert sentence("unsure", language="it") == NOT_SURE["it"]


def test_most_confident_stable_face_first_then_the_other():
    p = SpeechPolicy(window_s=3.0, cooldown_s=2.0)
    feed(p, "a", "sad", 0.0, 1.0, conf=0.6)
    feed(p, "b", "happy", 0.0, 1.0, conf=0.95)
    d = p.decide_detail(1.0)
    assert (d.face_id, d.emotion) == ("b", "happy")
    feed(p, "a", "sad", 1.1, 3.5, conf=0.6)
    feed(p, "b", "happy", 1.1, 3.5, conf=0.95)
    d = p.decide_detail(3.5)
    assert (d.face_id, d.emotion) == ("a", "sad")


def test_aliases_and_unknown_emotion():
    p = SpeechPolicy()
    feed(p, 1, "Happiness", 0.0, 1.0)
    assert p.decide(1.0) == "You look happy!"
    with pytest.raises(ValueError, match="unknown emotion"):
        p.observe(1, "bored", 0.9, False, 1.0)


def test_languages():
    assert normalise_language("EN") == "en"
    assert normalise_language("en_US") == "en"
    assert normalise_language("italian") == "it"
    assert naoqi_language("it") == "Italian"
    assert naoqi_language("English") == "English"
    with pytest.raises(ValueError, match=r"unsupported speech language 'klingon'.*en \(English\).*it \(Italian\)"):
        SpeechPolicy(language="klingon")
    for lang, table in SENTENCES.items():
        assert set(table) == set(EMOTIONS), lang
        for plain, masked in table.values():
            assert plain and masked and plain != masked


def test_led_colours_cover_emotions():
    assert set(EMOTIONS) <= set(EMOTION_LED_COLOURS)
    assert led_colour("angry") == 0xFF0000
    assert led_colour("nonsense") == 0xFFFFFF


def test_make_backend(caplog):
    b = make_backend("log", logger=logging.getLogger("t"))
    with caplog.at_level(logging.INFO, logger="t"):
        b.say("hello")
    assert isinstance(b, LogBackend)
    assert b.said == ["hello"] and "NAO says: hello" in caplog.text
    with pytest.raises(SpeechBackendError, match="provided by the ROS node"):
        make_backend("topic")
    with pytest.raises(SpeechBackendError, match="qi, topic, espeak, log"):
        make_backend("telepathy")
    with pytest.raises(SpeechBackendError, match="espeak-ng is not installed"):
        EspeakBackend(executable="/nonexistent/espeak-ng")


def test_espeak_command_is_an_argument_list(tmp_path):
    # a fake espeak-ng that records its arguments and stdin: no shell, text never on the command line
    log = tmp_path / "args.txt"
    exe = tmp_path / "espeak-ng"
    exe.write_text(f'#!/bin/sh\necho "$@" > {log}\ncat >> {log}\n')
    exe.chmod(0o755)
    b = EspeakBackend(language="it", executable=str(exe))
    b.say("ciao; rm -rf / $(echo x)")
    b.wait(60)
    out = log.read_text().splitlines()
    assert out[0] == "-v it --stdin"
    assert out[1] == "ciao; rm -rf / $(echo x)"
    b.close()


def test_observe_and_decide_from_two_threads():
    """A subscriber thread observing 100 face ids while a timer thread decides (issue #17: the timer died
    with "deque mutated during iteration")."""
    import threading
    import time

    policy = SpeechPolicy(window_s=3.0, cooldown_s=0.0, repeat_after_s=0.0)
    stop, errors = threading.Event(), []

    def observe():
        t = 0.0
        while not stop.is_set():
            for fid in range(100):
                policy.observe(fid, "happy" if fid % 2 else "sad", 0.9, False, t)
            t += 0.001

    def decide():
        try:
            while not stop.is_set():
                policy.decide(1.0)
        except Exception as exc:  # noqa: BLE001 - the failure under test
            errors.append(exc)

    threads = [threading.Thread(target=observe), threading.Thread(target=decide)]
    for th in threads:
        th.start()
    time.sleep(3.0)
    stop.set()
    for th in threads:
        th.join()
    assert errors == []


def test_memory_is_bounded_by_count_and_by_the_callers_clock():
    policy = SpeechPolicy(window_s=3.0, max_faces=8, max_observations=5)
    for fid in range(100):  # stamps 10^6 s in the future, clamped to now=10
        for _ in range(20):
            policy.observe(fid, "happy", 0.9, False, 1e6, now=10.0)
    faces, observations = policy.sizes()
    assert faces == 8 and observations == 8 * 5 and policy.rejected == 92 * 20
    assert {f.face_id for f in policy.faces(10.0)} == set(range(8))  # the faces held keep their history
    policy.decide(13.5)  # a window later by the caller's clock: all forgotten
    assert policy.sizes() == (0, 0)
    policy.observe(99, "sad", 0.9, False, 14.0, now=14.0)  # room again
    assert policy.sizes() == (1, 1)


def test_unknown_or_huge_emotion_names_raise_a_short_value_error():
    policy = SpeechPolicy()
    with pytest.raises(ValueError, match="klingon"):
        policy.observe(1, "klingon", 0.9, False, 0.0)
    with pytest.raises(ValueError) as info:
        policy.observe(1, "x" * 100000, 0.9, False, 0.0)
    assert len(str(info.value)) < 200
    with pytest.raises(ValueError):
        SpeechPolicy(max_faces=0)


def test_masked_faces_need_their_own_confidence_and_the_defaults_are_the_calibrated_ones():
    from fer_mask_ros.interaction.policy import DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_CONFIDENCE_MASKED

    p = SpeechPolicy(window_s=2.0)
    assert (p.min_confidence, p.min_confidence_masked) == (DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_CONFIDENCE_MASKED)
    p = SpeechPolicy(window_s=2.0, min_confidence=0.4, min_confidence_masked=0.7, cooldown_s=0.0)
    feed(p, 1, "happy", 0.0, 2.5, conf=0.55, masked=True)  # confident enough unmasked, not masked
    assert p.decide(2.5) == NOT_SURE["en"]
    feed(p, 2, "happy", 0.0, 2.5, conf=0.55, masked=False)
    assert p.decide(2.6) == "You look happy!"
    feed(p, 3, "sad", 0.0, 2.5, conf=0.75, masked=True)
    assert p.decide(2.7) == "Even with your mask on, you look sad."
    assert SpeechPolicy(min_confidence=0.3, min_confidence_masked=None).min_confidence_masked == 0.3
    with pytest.raises(ValueError, match="min_confidence_masked"):
        SpeechPolicy(min_confidence_masked=1.5)
