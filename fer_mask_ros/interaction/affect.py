"""Our seven emotions in the ROS4HRI (REP-155) vocabulary: expression name, valence, arousal, confidence.

REP-155's hri_msgs/Expression names an expression ("happy", "scared", ...) and places it on the
valence/arousal plane, both in [-1, 1]. Valence and arousal here are the probability-weighted mean of
one fixed point per class on Russell's circumplex (Russell 1980, "A circumplex model of affect"):

    class      expression   valence  arousal
    angry      angry         -0.6     0.6
    disgust    disgusted     -0.6     0.3
    fear       scared        -0.6     0.7
    happy      happy          0.8     0.5
    neutral    neutral        0.0     0.0
    sad        sad           -0.6    -0.4
    surprise   surprised      0.3     0.8

The points keep the circumplex's order (fear and anger unpleasant and aroused, sadness unpleasant and
calm, happiness pleasant, surprise aroused and mildly pleasant); they are a documented design choice,
rounded to one decimal and close to the pleasure/arousal ratings of Russell & Mehrabian (1977), not a
measurement of ours. A weighted mean of points in [-1, 1] stays in [-1, 1]. The expression name and
confidence are those of the top class, exactly as the `emotions` topic gives them (never recomputed).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence, Tuple

from fer_mask_ros.labels import EMOTIONS

#: our label -> REP-155 Expression constant (hri_msgs/Expression: ANGRY, DISGUSTED, SCARED, ...)
REP155_EXPRESSIONS = {
    "angry": "angry", "disgust": "disgusted", "fear": "scared", "happy": "happy",
    "neutral": "neutral", "sad": "sad", "surprise": "surprised",
}

#: our label -> (valence, arousal) on the circumplex; see the module docstring
CIRCUMPLEX = {
    "angry": (-0.6, 0.6), "disgust": (-0.6, 0.3), "fear": (-0.6, 0.7), "happy": (0.8, 0.5),
    "neutral": (0.0, 0.0), "sad": (-0.6, -0.4), "surprise": (0.3, 0.8),
}

assert set(REP155_EXPRESSIONS) == set(CIRCUMPLEX) == set(EMOTIONS)


class Affect(NamedTuple):
    expression: str  # REP-155 expression name
    valence: float  # [-1, 1]
    arousal: float  # [-1, 1]
    confidence: float  # [0, 1]


def rep155_expression(emotion: str) -> str:
    """One of our labels -> its REP-155 expression name; ValueError for anything else."""
    try:
        return REP155_EXPRESSIONS[emotion]
    except KeyError:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {', '.join(EMOTIONS)}") from None


def valence_arousal(labels: Sequence[str], probabilities: Sequence[float]) -> Tuple[float, float]:
    """Probability-weighted mean of the classes' circumplex points. The probabilities are renormalised
    (they need not sum to 1); non-finite or negative ones count as 0; no usable mass gives (0, 0).
    ValueError when the lengths differ or a label is unknown."""
    if len(labels) != len(probabilities):
        raise ValueError(f"{len(labels)} labels but {len(probabilities)} probabilities")
    total = valence = arousal = 0.0
    for label, p in zip(labels, probabilities):
        if label not in CIRCUMPLEX:
            raise ValueError(f"unknown emotion {label!r}; expected one of {', '.join(EMOTIONS)}")
        p = float(p)
        if not math.isfinite(p) or p <= 0.0:
            continue
        v, a = CIRCUMPLEX[label]
        total += p
        valence += p * v
        arousal += p * a
    if total <= 0.0:
        return 0.0, 0.0
    return _clip(valence / total, -1.0, 1.0), _clip(arousal / total, -1.0, 1.0)


def affect(emotion: str, confidence: float, labels: Sequence[str], probabilities: Sequence[float]) -> Affect:
    """The REP-155 view of one face's (smoothed) classification: the top class `emotion` and its
    `confidence` as published, valence and arousal from all the class probabilities."""
    valence, arousal = valence_arousal(labels, probabilities)
    c = float(confidence)
    return Affect(rep155_expression(emotion), valence, arousal, _clip(c, 0.0, 1.0) if math.isfinite(c) else 0.0)


def _clip(x: float, low: float, high: float) -> float:
    return min(high, max(low, x))
