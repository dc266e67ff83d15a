"""Sentences and animations from a YAML file (SentenceBook), and the describe-the-face-now request of the policy."""
from __future__ import annotations

import os

import pytest

from fer_mask_ros.config import CONFIG_DIR
from fer_mask_ros.interaction.policy import NOT_SURE, SENTENCES, UNSURE, SentenceBook, SpeechPolicy
from fer_mask_ros.robot.speech import animated_text

DEFAULT_FILE = os.path.join(str(CONFIG_DIR), "sentences", "default.yaml")


def write(tmp_path, text: str) -> str:
    path = tmp_path / "sentences.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_default_file_is_the_built_in_sentences():
    book = SentenceBook.load(DEFAULT_FILE)
    assert book.sentences == SENTENCES and book.unsure == NOT_SURE and book.animations == {}


def test_a_file_overrides_some_sentences_and_keeps_the_rest(tmp_path):
    path = write(tmp_path, """
languages:
  en:
    happy: ["What a smile!", "What a smile, even behind the mask!"]
    sad: Cheer up.
    unsure: Hmm.
  italian:
    happy: Che sorriso!
animations:
  happy: animations/Stand/Gestures/Enthusiastic_4
""")
    book = SentenceBook.load(path)
    assert book.sentence("happy", False, "en") == "What a smile!"
    assert book.sentence("happy", True, "en") == "What a smile, even behind the mask!"
    assert book.sentence("sad", True, "en") == "Cheer up."
    assert book.sentence(UNSURE, language="en") == "Hmm."
    assert book.sentence("happy", True, "it") == "Che sorriso!"
    assert book.sentence("angry", False, "en") == SENTENCES["en"]["angry"][0]  # kept
    assert book.animation("happy") == "animations/Stand/Gestures/Enthusiastic_4" and book.animation("sad") is None
    assert SentenceBook.builtin().sentence("happy", False, "en") == "You look happy!"  # the built-ins unchanged


@pytest.mark.parametrize("text,message", [
    ("languages:\n  fr:\n    happy: Super\n", "unsupported speech language 'fr'"),
    ("languages:\n  en:\n    bored: Yawn\n", "languages/en/bored: unknown emotion"),
    ("languages:\n  en:\n    happy: [a, b, c]\n", "languages/en/happy must be a text or a list"),
    ("languages:\n  en:\n    happy: ''\n", "languages/en/happy must be a text or a list"),
    ("animations:\n  happy: ^run(x)\n", "animations/happy must be an animation name"),
    ("sentences: {}\n", "expected a mapping with 'languages'"),
    ("languages: [\n", "not valid YAML"),
])
def test_a_bad_file_is_one_clear_error(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as info:
        SentenceBook.load(path)
    assert str(info.value).startswith(path) and message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read sentences file .*nope.yaml"):
        SentenceBook.load(str(tmp_path / "nope.yaml"))


def test_the_policy_speaks_from_its_book(tmp_path):
    book = SentenceBook.load(write(tmp_path, "languages:\n  en:\n    happy: What a smile!\n"))
    policy = SpeechPolicy(sentences=book, min_observations=2)
    for t in (0.0, 0.1, 0.2):
        policy.observe(1, "happy", 0.9, False, t)
    assert policy.decide(0.3) == "What a smile!"


def test_describe_says_the_current_emotion_now_whatever_the_cooldown():
    policy = SpeechPolicy(min_observations=3, cooldown_s=60.0)
    assert policy.describe(0.0) is None  # nobody seen
    for t in (0.0, 0.1, 0.2):
        policy.observe(7, "sad", 0.9, True, t)
    assert policy.decide(0.3) == "Even with your mask on, you look sad."
    policy.observe(8, "happy", 0.4, False, 0.3)  # seen once: not stable, fewer observations
    assert policy.decide(1.0) is None  # cooldown
    d = policy.describe(1.0)
    assert (d.face_id, d.emotion, d.text) == (7, "sad", "Even with your mask on, you look sad.")
    d = policy.describe(1.1, face_id=8)
    assert (d.face_id, d.emotion, d.text) == (8, "happy", "You look happy!")
    assert policy.describe(1.2, face_id=99) is None
    assert policy.describe(10.0) is None  # everyone gone from the window
    assert policy.last_spoken == 1.1  # the cooldown restarted with the last description


def test_animated_text():
    assert animated_text("Hi!", "animations/Stand/Gestures/Hey_1") == \
        "^start(animations/Stand/Gestures/Hey_1) Hi! ^wait(animations/Stand/Gestures/Hey_1)"
