"""REP-155 expression names, valence and arousal from the seven class probabilities."""
from __future__ import annotations

import math

import pytest

from fer_mask_ros.interaction.affect import (
    CIRCUMPLEX,
    REP155_EXPRESSIONS,
    affect,
    rep155_expression,
    valence_arousal,
)
from fer_mask_ros.labels import EMOTIONS

# the constants of hri_msgs/Expression 0.9.0 (msg/Expression.msg), the vocabulary we must stay inside
HRI_EXPRESSIONS = {"neutral", "angry", "sad", "happy", "surprised", "disgusted", "scared", "pleading", "vulnerable",
                   "despaired", "guilty", "disappointed", "embarrassed", "horrified", "skeptical", "annoyed",
                   "furious", "suspicious", "rejected", "bored", "tired", "asleep", "confused", "amazed", "excited"}


def one_hot(label):
    return [1.0 if e == label else 0.0 for e in EMOTIONS]


def test_every_class_has_a_rep155_name_and_a_point_in_the_square():
    assert set(REP155_EXPRESSIONS) == set(EMOTIONS) == set(CIRCUMPLEX)
    assert set(REP155_EXPRESSIONS.values()) <= HRI_EXPRESSIONS
    assert len(set(REP155_EXPRESSIONS.values())) == len(EMOTIONS)
    assert rep155_expression("fear") == "scared"
    assert rep155_expression("surprise") == "surprised"
    assert rep155_expression("disgust") == "disgusted"
    for v, a in CIRCUMPLEX.values():
        assert -1.0 <= v <= 1.0 and -1.0 <= a <= 1.0


def test_a_certain_class_gives_its_own_point():
    for label in EMOTIONS:
        assert valence_arousal(EMOTIONS, one_hot(label)) == pytest.approx(CIRCUMPLEX[label])


def test_circumplex_order():
    va = {e: valence_arousal(EMOTIONS, one_hot(e)) for e in EMOTIONS}
    assert va["happy"][0] > va["surprise"][0] > va["neutral"][0] > max(va[e][0] for e in ("angry", "sad", "fear"))
    assert va["sad"][1] < va["neutral"][1] < min(va[e][1] for e in ("angry", "fear", "surprise", "happy"))
    assert va["neutral"] == (0.0, 0.0)


def test_weighted_mean_and_renormalisation():
    probs = [0.0] * 7
    probs[EMOTIONS.index("happy")] = 0.5
    probs[EMOTIONS.index("sad")] = 0.5
    v, a = valence_arousal(EMOTIONS, probs)
    assert v == pytest.approx((0.8 - 0.6) / 2) and a == pytest.approx((0.5 - 0.4) / 2)
    # the same proportions, not summing to 1 (e.g. rounding in a message): the same point
    assert valence_arousal(EMOTIONS, [2 * p for p in probs]) == pytest.approx((v, a))
    # the label order comes with the message, not from EMOTIONS
    assert valence_arousal(list(reversed(EMOTIONS)), list(reversed(probs))) == pytest.approx((v, a))


def test_bad_probabilities_never_leave_the_square():
    assert valence_arousal(EMOTIONS, [0.0] * 7) == (0.0, 0.0)
    assert valence_arousal(EMOTIONS, [math.nan] * 7) == (0.0, 0.0)
    probs = one_hot("angry")
    probs[EMOTIONS.index("happy")] = math.inf
    probs[EMOTIONS.index("sad")] = -3.0
    assert valence_arousal(EMOTIONS, probs) == pytest.approx(CIRCUMPLEX["angry"])
    with pytest.raises(ValueError, match="7 labels but 6"):
        valence_arousal(EMOTIONS, [0.1] * 6)
    with pytest.raises(ValueError, match="unknown emotion 'contempt'"):
        valence_arousal(["contempt"], [1.0])


def test_affect_keeps_the_published_top_class_and_confidence():
    probs = [0.1, 0.05, 0.05, 0.4, 0.2, 0.1, 0.1]
    got = affect("happy", 0.4, EMOTIONS, probs)
    assert got.expression == "happy" and got.confidence == pytest.approx(0.4)
    assert (got.valence, got.arousal) == pytest.approx(valence_arousal(EMOTIONS, probs))
    assert affect("sad", 1.7, EMOTIONS, probs).confidence == 1.0
    assert affect("sad", math.nan, EMOTIONS, probs).confidence == 0.0
    with pytest.raises(ValueError, match="unknown emotion 'bored'"):
        affect("bored", 0.5, EMOTIONS, probs)
