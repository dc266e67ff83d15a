"""Issue 32: what reaches the robot's speech is plain words (defect 2), a sentences file and a sentence have a size
limit (defect 5), and the speech policy refuses NaN, infinities and negative times (defect 4)."""
from __future__ import annotations

import math

import pytest

from fer_mask_ros.config_schema import problems
from fer_mask_ros.interaction.policy import (
    MAX_SENTENCE_CHARS,
    MAX_SENTENCES_FILE_BYTES,
    SentenceBook,
    SpeechPolicy,
    sentence_problem,
)

AUDIT = r"\rspd=400\ \vol=100\ \pau=60000\ You look happy! ^run(animations/Stand/Gestures/Hey_1) ^start(x)"


def write(tmp_path, text: str) -> str:
    path = tmp_path / "sentences.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def one_line_error(path: str) -> str:
    with pytest.raises(ValueError) as info:
        SentenceBook.load(path)
    text = str(info.value)
    assert text.startswith(path) and "\n" not in text, text
    return text


@pytest.mark.parametrize("yaml_text,rule", [
    ("languages:\n  en:\n    happy: '" + AUDIT + "'\n", "backslash"),
    ("languages:\n  en:\n    happy: 'Hi \\\\vol=100\\\\ there'\n", "backslash"),
    ("languages:\n  en:\n    sad: ['Fine.', 'You look sad ^run(animations/Stand/Gestures/Hey_1)']\n", "'^'"),
    ("languages:\n  en:\n    unsure: 'Hmm ^start(x)'\n", "'^'"),
    ('languages:\n  en:\n    happy: "Hi\\x1b[31m there"\n', "control character U+001B"),
    ('languages:\n  it:\n    happy: "Ciao\\u202etu"\n', "control character U+202E"),
    ('languages:\n  en:\n    happy: "a\\tb"\n', "control character U+0009"),
])
def test_a_sentence_that_is_not_plain_words_is_refused_naming_file_sentence_and_rule(tmp_path, yaml_text, rule):
    text = one_line_error(write(tmp_path, yaml_text))
    assert "sentence '" in text and rule in text and "plain words only" in text


def test_the_audit_sentence_never_reaches_a_book(tmp_path):
    text = one_line_error(write(tmp_path, "languages:\n  en:\n    happy: '" + AUDIT + "'\n"))
    assert "languages/en/happy" in text and "rspd=400" in text


@pytest.mark.parametrize("name", ["^run(x)", "animations/Hey_1)", "a\\vol=100\\", "a b", "x\n", "-rf"])
def test_an_animation_name_is_a_plain_path(tmp_path, name):
    path = write(tmp_path, f"animations:\n  happy: {name!r}\n".replace("'", '"') if "\n" in name
                 else f"animations:\n  happy: '{name}'\n")
    assert "animations/happy must be an animation name" in one_line_error(path)


def test_plain_sentences_pass():
    for text in ("You look happy!", "Hai un'espressione felice!", "Even with your mask on, you look calm.",
                 "Ça va? Très bien: 100 %."):
        assert sentence_problem(text) is None, text


def test_a_long_sentence_is_refused(tmp_path):
    text = one_line_error(write(tmp_path, "languages:\n  en:\n    happy: '" + "ha " * 200 + "'\n"))
    assert f"longer than {MAX_SENTENCE_CHARS} characters" in text
    assert sentence_problem("x" * MAX_SENTENCE_CHARS) is None


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "huge.yaml"
    line = "# " + "x" * 98 + "\n"
    path.write_text("languages:\n  en:\n    happy: Hi\n" + line * (MAX_SENTENCES_FILE_BYTES // 100 + 10))
    text = one_line_error(str(path))
    assert "too large" in text and str(MAX_SENTENCES_FILE_BYTES) in text


def test_a_file_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"languages:\n  en:\n    happy: caf\xe9\n")
    assert "not UTF-8" in one_line_error(str(path))


@pytest.mark.parametrize("kwargs", [
    {"cooldown_s": float("nan")}, {"cooldown_s": -5}, {"cooldown_s": math.inf}, {"window_s": math.inf},
    {"min_confidence": float("nan")}, {"repeat_after_s": float("-inf")}, {"min_observations": float("nan")},
    {"min_confidence_masked": float("nan")}, {"repeat_after_s": -1.0},
])
def test_the_policy_refuses_nan_infinities_and_negative_times(kwargs):
    with pytest.raises(ValueError):
        SpeechPolicy(**kwargs)


@pytest.mark.parametrize("values,expect", [
    ({"policy/cooldown_s": -5}, "~policy/cooldown_s = -5 is out of range; allowed: a number in [0, 3600]"),
    ({"policy/cooldown_s": float("nan")}, "~policy/cooldown_s = nan is not a number"),
    ({"policy/min_confidence": 1.5}, "~policy/min_confidence = 1.5 is out of range"),
    ({"policy/max_faces": 10 ** 9}, "~policy/max_faces = 1000000000 is out of range"),
    ({"policy": {"cooldown_s": float("inf")}}, "~policy = {'cooldown_s': inf} is a mapping holding a NaN"),
    ({"nao_ip": float("nan")}, "~nao_ip = nan is not a finite number"),
])
def test_every_policy_key_has_a_declared_range(values, expect):
    lines = problems("emotion_speech", values)
    assert len(lines) == 1 and expect in lines[0], lines
