"""Emotion labels, name aliases and the coarse 4- and 3-class views."""
from __future__ import annotations

from fer_mask_ros.errors import UnknownLabelError

EMOTIONS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
EMOTION_INDEX = {name: i for i, name in enumerate(EMOTIONS)}

# Kaggle fer2013.csv order: 0=Angry 1=Disgust 2=Fear 3=Happy 4=Sad 5=Surprise 6=Neutral
FER2013_CSV_ORDER = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

ALIASES = {
    "anger": "angry", "angry": "angry", "mad": "angry",
    "disgust": "disgust", "disgusted": "disgust", "contempt": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "smile": "happy",
    "neutral": "neutral", "calm": "neutral",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise",
}

FOUR_CLASS = ("neutral", "happy", "angry", "surprise")
THREE_CLASS = ("positive", "negative", "neutral")
THREE_CLASS_MAP = {
    "happy": "positive",
    "angry": "negative", "disgust": "negative", "fear": "negative", "sad": "negative",
    "neutral": "neutral",
    "surprise": None,  # surprise has no valence in the 3-class view; it is left out
}


def normalise_label(name: str, where: str = "") -> str:
    """Map a dataset's label spelling to one of EMOTIONS, or raise naming `where`."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key in ALIASES:
        return ALIASES[key]
    suffix = f" in {where}" if where else ""
    raise UnknownLabelError(
        f"unknown emotion label {name!r}{suffix}; expected one of {', '.join(EMOTIONS)} "
        f"or an alias ({', '.join(sorted(set(ALIASES) - set(EMOTIONS)))})"
    )
