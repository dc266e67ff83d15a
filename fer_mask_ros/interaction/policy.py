"""What NAO says and when: the speech policy, its sentences (en, it) and the emotion LED colours.

Pure logic, no ROS, no robot, no clock: every method takes the time explicitly. The voices that say
the sentences are the say-backends in fer_mask_ros/robot/say/.

Policy (`SpeechPolicy`), per tracked face, over the last `window_s` seconds. Its observations are the
emotion_classifier's messages, i.e. each face's *evidence* (perception/evidence.py: every model's answers for
that face over time, fused), not single frames; `describe` names the same evidence's majority emotion.

* a face is *stable* when it has >= `min_observations` observations in the window, its most
  frequent emotion has agreement (share of observations) >= `min_agreement` and the mean
  confidence of those observations >= `min_confidence` (`min_confidence_masked` for a face masked in most
  of the window; both chosen on real photos from the calibrated model's risk-coverage table);
* `decide(now)` returns one sentence about the best stable face (highest agreement x
  confidence) that has not already been told the same emotion in the last `repeat_after_s`;
  "masked" (majority of the window) switches to the "even with your mask on" sentence;
* if faces are present, none is stable, and a face has been watched for a whole window
  without becoming stable, it returns the "not sure" sentence (also at most once per face
  per `repeat_after_s`);
* nothing is said within `cooldown_s` of the previous sentence; faces not seen for
  `window_s` are forgotten (and so may be greeted again when they come back).

Bounded and thread-safe: one lock guards every method (a subscriber thread may `observe` while a
timer thread `decide`s); at most `max_faces` faces and `max_observations` observations per face are
kept: a new face while `max_faces` are held (after pruning by age) is not recorded, counted in
`rejected` (no thrashing: the faces held keep their history); `observe(..., now=)` clamps a stamp
from the future to `now`, so pruning by age works whatever stamps the messages carry.

With several faces the policy talks about one face at a time (the most confident stable
one); the cooldown then moves on to the next face. It does not summarise groups.
"""
from __future__ import annotations

import logging
import math
import os
import re
import threading
import unicodedata
from collections import deque
from typing import Any, Deque, Dict, List, NamedTuple, Optional, Tuple

from fer_mask_ros.config import node_default
from fer_mask_ros.labels import EMOTIONS, normalise_label

LOG = logging.getLogger(__name__)

# --- languages and sentences --------------------------------------------------------------

LANGUAGES = {"en": "English", "it": "Italian"}
LANGUAGE_ALIASES = {"english": "en", "italian": "it", "italiano": "it", "eng": "en", "ita": "it"}
ESPEAK_VOICES = {"en": "en", "it": "it"}

SENTENCES: Dict[str, Dict[str, Tuple[str, str]]] = {
    # emotion: (unmasked, masked)
    "en": {
        "angry": ("You look angry.", "Even with your mask on, you look angry."),
        "disgust": ("You look disgusted.", "Even with your mask on, you look disgusted."),
        "fear": ("You look scared.", "Even with your mask on, you look scared."),
        "happy": ("You look happy!", "Even with your mask on, you look happy!"),
        "neutral": ("You look calm.", "Even with your mask on, you look calm."),
        "sad": ("You look sad.", "Even with your mask on, you look sad."),
        "surprise": ("You look surprised!", "Even with your mask on, you look surprised!"),
    },
    "it": {
        # "espressione" is feminine, so the adjectives agree with it whoever the person is
        "angry": ("Hai un'espressione arrabbiata.", "Anche con la mascherina, hai un'espressione arrabbiata."),
        "disgust": ("Hai un'espressione disgustata.", "Anche con la mascherina, hai un'espressione disgustata."),
        "fear": ("Hai un'espressione spaventata.", "Anche con la mascherina, hai un'espressione spaventata."),
        "happy": ("Hai un'espressione felice!", "Anche con la mascherina, hai un'espressione felice!"),
        "neutral": ("Hai un'espressione tranquilla.", "Anche con la mascherina, hai un'espressione tranquilla."),
        "sad": ("Hai un'espressione triste.", "Anche con la mascherina, hai un'espressione triste."),
        "surprise": ("Hai un'espressione sorpresa!", "Anche con la mascherina, hai un'espressione sorpresa!"),
    },
}
NOT_SURE = {
    "en": "I am not sure how you feel.",
    "it": "Non sono sicuro di come ti senti.",
}
UNSURE = "unsure"  # pseudo-emotion for the not-sure sentence

# Emotion -> LED colour (0xRRGGBB) for ALLeds.fadeRGB
EMOTION_LED_COLOURS: Dict[str, int] = {
    "angry": 0xFF0000,  # red
    "disgust": 0x00C000,  # green
    "fear": 0x8000FF,  # purple
    "happy": 0xFFD000,  # yellow
    "neutral": 0xFFFFFF,  # white
    "sad": 0x0040FF,  # blue
    "surprise": 0xFF8000,  # orange
    UNSURE: 0x404040,  # dim grey
}


def normalise_language(language: str) -> str:
    """"en", "EN", "en_US", "English" -> "en"; "it", "Italian" -> "it"; anything else ValueError."""
    key = str(language).strip().lower().replace("-", "_")
    key = LANGUAGE_ALIASES.get(key, key)
    key = key.split("_", 1)[0]
    key = LANGUAGE_ALIASES.get(key, key)
    if key not in LANGUAGES:
        supported = ", ".join(f"{code} ({name})" for code, name in LANGUAGES.items())
        raise ValueError(f"unsupported speech language {language!r}; supported: {supported}")
    return key


def naoqi_language(language: str) -> str:
    """The NAOqi ALTextToSpeech.setLanguage name: "en" -> "English", "it" -> "Italian"."""
    return LANGUAGES[normalise_language(language)]


def sentence(emotion: str, masked: bool = False, language: str = "en") -> str:
    """The sentence for an emotion (or "unsure") in a language."""
    lang = normalise_language(language)
    if emotion == UNSURE:
        return NOT_SURE[lang]
    if emotion not in SENTENCES[lang]:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {', '.join(EMOTIONS)}")
    return SENTENCES[lang][emotion][1 if masked else 0]


#: A sentences file larger than this is refused before it is read (a 60 MB file took 1.7 GB and never got ready).
MAX_SENTENCES_FILE_BYTES = 1_000_000
#: A sentence longer than this is refused (NAO would talk for minutes).
MAX_SENTENCE_CHARS = 300
_ANIMATION_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


def sentence_problem(text: str) -> Optional[str]:
    """Why `text` is not plain words NAO may say, or None. NAOqi's text to speech reads `\\tag\\` controls
    (\\vol=100\\, \\rspd=400\\, \\pau=60000\\) and ALAnimatedSpeech `^` annotations (^run(behaviour),
    ^start(...)): a sentence may hold neither, nor control characters (newlines, tabs, escapes)."""
    if len(text) > MAX_SENTENCE_CHARS:
        return f"longer than {MAX_SENTENCE_CHARS} characters ({len(text)})"
    if "\\" in text:
        return "holds a backslash (NAOqi reads \\tag\\ controls such as \\vol=100\\: plain words only)"
    if "^" in text:
        return "holds '^' (ALAnimatedSpeech reads ^run(...) / ^start(...) annotations: plain words only)"
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            return f"holds the control character U+{ord(ch):04X} (plain words only)"
    return None


class SentenceBook:
    """The sentences NAO says, per language and emotion (unmasked, masked) plus the not-sure one, and an optional
    animation per emotion (played with ALAnimatedSpeech). `builtin()` holds SENTENCES / NOT_SURE; `load(path)`
    reads a YAML file (config/sentences.yaml is the default one) over them:

        languages:
          en:
            happy: ["You look happy!", "Even with your mask on, you look happy!"]   # [unmasked, masked]
            sad: "You seem sad."                                                      # one text for both
            unsure: "I cannot tell how you feel."
        animations:
          happy: animations/Stand/Gestures/Enthusiastic_4

    Emotions and languages the file leaves out keep the built-in sentences; anything else is a ValueError
    naming the file and the entry."""

    def __init__(self, sentences: Dict[str, Dict[str, Tuple[str, str]]], unsure: Dict[str, str],
                 animations: Optional[Dict[str, str]] = None, source: str = "built-in") -> None:
        self.sentences = sentences
        self.unsure = unsure
        self.animations = dict(animations or {})
        self.source = source

    @classmethod
    def builtin(cls) -> SentenceBook:
        return cls({lang: dict(table) for lang, table in SENTENCES.items()}, dict(NOT_SURE))

    @classmethod
    def load(cls, path: str) -> SentenceBook:
        import yaml  # noqa: PLC0415

        def bad(what: str) -> ValueError:
            return ValueError(f"{path}: {what}")

        def plain(where: str, text: str) -> None:
            why = sentence_problem(text.strip())
            if why:
                shown = text.strip()
                shown = repr(shown if len(shown) <= 80 else shown[:80] + "...")
                raise bad(f"{where}: sentence {shown} {why}")

        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_SENTENCES_FILE_BYTES + 1)
            if len(raw) > MAX_SENTENCES_FILE_BYTES:
                size = os.path.getsize(path) if os.path.isfile(path) else len(raw)
                raise bad(f"the sentences file is too large ({size} bytes; at most {MAX_SENTENCES_FILE_BYTES})")
            data = yaml.safe_load(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise bad(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except OSError as exc:
            raise ValueError(f"cannot read sentences file {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise bad(f"not valid YAML ({str(exc).splitlines()[0]})") from None
        data = {} if data is None else data
        if not isinstance(data, dict) or set(data) - {"languages", "animations"}:
            raise bad("expected a mapping with 'languages' and optionally 'animations'")
        book = cls.builtin()
        book.source = path
        languages = data.get("languages") or {}
        if not isinstance(languages, dict):
            raise bad("'languages' must map a language (en, it) to its sentences")
        for lang_name, table in languages.items():
            try:
                lang = normalise_language(str(lang_name))
            except ValueError as exc:
                raise bad(str(exc)) from None
            if not isinstance(table, dict):
                raise bad(f"languages/{lang_name} must map emotions to sentences")
            for emotion, text in table.items():
                where = f"languages/{lang_name}/{emotion}"
                if emotion == UNSURE:
                    if not isinstance(text, str) or not text.strip():
                        raise bad(f"{where} must be a non-empty text")
                    plain(where, text)
                    book.unsure[lang] = text.strip()
                    continue
                if emotion not in EMOTIONS:
                    raise bad(f"{where}: unknown emotion; use {', '.join(EMOTIONS)} or {UNSURE}")
                pair = [text, text] if isinstance(text, str) else text
                if (not isinstance(pair, list) or len(pair) != 2
                        or not all(isinstance(t, str) and t.strip() for t in pair)):
                    raise bad(f"{where} must be a text or a list [unmasked, masked] of two texts")
                for text in pair:
                    plain(where, text)
                book.sentences[lang][emotion] = (pair[0].strip(), pair[1].strip())
        animations = data.get("animations") or {}
        if not isinstance(animations, dict):
            raise bad("'animations' must map emotions to NAO animation names")
        for emotion, name in animations.items():
            if emotion not in EMOTIONS and emotion != UNSURE:
                raise bad(f"animations/{emotion}: unknown emotion; use {', '.join(EMOTIONS)} or {UNSURE}")
            if name in (None, ""):
                continue
            if not isinstance(name, str) or not _ANIMATION_NAME.fullmatch(name):
                raise bad(f"animations/{emotion} must be an animation name such as animations/Stand/Gestures/Hey_1")
            book.animations[emotion] = name.strip()
        return book

    def sentence(self, emotion: str, masked: bool = False, language: str = "en") -> str:
        lang = normalise_language(language)
        if emotion == UNSURE:
            return self.unsure[lang]
        if emotion not in self.sentences[lang]:
            raise ValueError(f"unknown emotion {emotion!r}; expected one of {', '.join(EMOTIONS)}")
        return self.sentences[lang][emotion][1 if masked else 0]

    def animation(self, emotion: str) -> Optional[str]:
        return self.animations.get(emotion)


def led_colour(emotion: str) -> int:
    """0xRRGGBB for an emotion (white for unknown names)."""
    return EMOTION_LED_COLOURS.get(emotion, 0xFFFFFF)


# --- policy ---------------------------------------------------------------------------------

class Observation(NamedTuple):
    stamp: float
    emotion: str
    confidence: float
    masked: bool


class FaceSummary(NamedTuple):
    face_id: Any
    emotion: str
    agreement: float  # share of the window's observations with this emotion
    confidence: float  # mean confidence of those observations
    masked: bool
    count: int  # observations in the window
    first_seen: float
    last_seen: float

    @property
    def score(self) -> float:
        return self.agreement * self.confidence


class Decision(NamedTuple):
    text: str
    face_id: Any
    emotion: str  # one of EMOTIONS or "unsure"
    masked: bool
    agreement: float
    confidence: float
    stamp: float


class _Face:
    __slots__ = ("first_seen", "last_seen", "obs")

    def __init__(self, stamp: float, max_observations: int):
        self.first_seen = stamp
        self.last_seen = stamp
        self.obs: Deque[Observation] = deque(maxlen=max_observations)


#: Seconds of observations a decision is based on (config/emotion_speech.yaml).
DEFAULT_WINDOW_S = float(node_default("emotion_speech", "window_s"))
#: Mean confidence a face's majority emotion needs before NAO names it, unmasked and masked. Chosen from the
#: risk-coverage table of a calibrated model on real photos of a source it never trained on (phase 8 on the
#: expressions-lfw hold-out, class-balanced; models/README.md, "Confidence"): there, 0.45 speaks about 48 % of
#: unmasked faces and is right on 73 % of them, 0.40 about 34 % of masked faces, right on 65 %. Below these
#: NAO says "I am not sure" rather than a word that is wrong as often as it is right.
DEFAULT_MIN_CONFIDENCE = 0.45
DEFAULT_MIN_CONFIDENCE_MASKED = 0.40


class SpeechPolicy:
    """Decides when NAO speaks about the faces it sees. Times are seconds (any monotonic clock)."""

    def __init__(
        self,
        window_s: float = DEFAULT_WINDOW_S,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        min_agreement: float = 0.6,
        cooldown_s: float = 8.0,
        language: str = "en",
        repeat_after_s: float = 30.0,
        min_observations: int = 3,
        say_unsure: bool = True,
        max_faces: int = 128,
        max_observations: int = 256,
        sentences: Optional[SentenceBook] = None,
        min_confidence_masked: Optional[float] = DEFAULT_MIN_CONFIDENCE_MASKED,
    ):
        numbers = {"window_s": window_s, "min_confidence": min_confidence, "min_agreement": min_agreement,
                   "cooldown_s": cooldown_s, "repeat_after_s": repeat_after_s, "min_observations": min_observations,
                   "max_faces": max_faces, "max_observations": max_observations,
                   "min_confidence_masked": 0.0 if min_confidence_masked is None else min_confidence_masked}
        for key, value in numbers.items():  # NaN would switch a comparison (the cooldown) off for good
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{key} must be a finite number, got {value!r}")
        if cooldown_s < 0 or repeat_after_s < 0:
            raise ValueError("cooldown_s and repeat_after_s must be >= 0")
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        if min_confidence_masked is None:  # one threshold for every face
            min_confidence_masked = min_confidence
        if not all(0.0 <= v <= 1.0 for v in (min_agreement, min_confidence, min_confidence_masked)):
            raise ValueError("min_agreement, min_confidence and min_confidence_masked must be in [0, 1]")
        self.window_s = float(window_s)
        self.min_confidence = float(min_confidence)
        self.min_confidence_masked = float(min_confidence_masked)
        self.min_agreement = float(min_agreement)
        self.cooldown_s = float(cooldown_s)
        self.language = normalise_language(language)
        self.repeat_after_s = float(repeat_after_s)
        self.min_observations = max(1, int(min_observations))
        self.say_unsure = bool(say_unsure)
        if int(max_faces) < 1 or int(max_observations) < 1:
            raise ValueError("max_faces and max_observations must be >= 1")
        self.max_faces = int(max_faces)
        self.max_observations = int(max_observations)
        self.sentences = sentences if sentences is not None else SentenceBook.builtin()
        self.rejected = 0  # observations of new faces not recorded because max_faces were held
        self._lock = threading.RLock()
        self._faces: Dict[Any, _Face] = {}
        self._said: Dict[Tuple[Any, str], float] = {}  # (face_id, emotion) -> when
        self.last_spoken: Optional[float] = None
        self.last_decision: Optional[Decision] = None

    @property
    def naoqi_language(self) -> str:
        return LANGUAGES[self.language]

    def set_language(self, language: str) -> None:
        self.language = normalise_language(language)

    def reset(self) -> None:
        with self._lock:
            self._faces.clear()
            self._said.clear()
            self.last_spoken = None
            self.last_decision = None

    def sizes(self) -> Tuple[int, int]:
        """(faces held, observations held): both bounded by max_faces and max_observations."""
        with self._lock:
            return len(self._faces), sum(len(f.obs) for f in self._faces.values())

    def observe(self, face_id: Any, emotion: str, confidence: float, masked: bool, stamp: float,
                now: Optional[float] = None) -> None:
        """Record one classification of a tracked face at time `stamp` (clamped to `now` when given).
        ValueError for an unknown emotion name."""
        if emotion not in EMOTIONS:
            if not isinstance(emotion, str) or len(emotion) > 40:
                text = str(emotion)
                raise ValueError(f"unknown emotion label {text[:40]!r}... ({len(text)} characters)")
            emotion = normalise_label(emotion, "SpeechPolicy.observe")  # ValueError for unknown names
        stamp = float(stamp)
        if now is not None and not stamp <= now:  # from the future (or NaN): the node's clock wins
            stamp = float(now)
        with self._lock:
            face = self._faces.get(face_id)
            if face is None:
                if len(self._faces) >= self.max_faces and now is not None:
                    self._prune(float(now))
                if len(self._faces) >= self.max_faces:
                    self.rejected += 1
                    return
                face = self._faces[face_id] = _Face(stamp, self.max_observations)
            face.last_seen = max(face.last_seen, stamp)
            face.obs.append(Observation(stamp, emotion, float(confidence), bool(masked)))

    def _prune(self, now: float) -> None:
        horizon = now - self.window_s
        for fid in list(self._faces):
            face = self._faces[fid]
            if face.last_seen < horizon:
                del self._faces[fid]
                continue
            while face.obs and face.obs[0].stamp < horizon:
                face.obs.popleft()
        stale = now - self.repeat_after_s
        for key in [k for k, t in self._said.items() if t < stale]:
            del self._said[key]

    def faces(self, now: float) -> List[FaceSummary]:
        """Per-face summary of the window ending at `now` (faces with at least one observation)."""
        with self._lock:
            return self._faces_locked(now)

    def _faces_locked(self, now: float) -> List[FaceSummary]:
        self._prune(now)
        out = []
        for fid, face in self._faces.items():
            obs = [o for o in face.obs if o.stamp <= now]
            if not obs:
                continue
            counts: Dict[str, List[Observation]] = {}
            for o in obs:
                counts.setdefault(o.emotion, []).append(o)
            # most frequent emotion; ties broken by higher total confidence
            emotion, hits = max(counts.items(), key=lambda kv: (len(kv[1]), sum(o.confidence for o in kv[1])))
            masked = sum(o.masked for o in obs) * 2 > len(obs)
            out.append(FaceSummary(fid, emotion, len(hits) / len(obs), sum(o.confidence for o in hits) / len(hits),
                                   masked, len(obs), face.first_seen, face.last_seen))
        return out

    def is_stable(self, face: FaceSummary) -> bool:
        needed = self.min_confidence_masked if face.masked else self.min_confidence
        return (face.count >= self.min_observations and face.agreement >= self.min_agreement
                and face.confidence >= needed)

    def _recently_said(self, face_id: Any, emotion: str, now: float) -> bool:
        t = self._said.get((face_id, emotion))
        return t is not None and now - t < self.repeat_after_s

    def decide_detail(self, now: float) -> Optional[Decision]:
        """Like decide() but with the face, emotion and scores behind the sentence."""
        with self._lock:
            return self._decide_locked(now)

    def _decide_locked(self, now: float) -> Optional[Decision]:
        faces = self._faces_locked(now)
        if self.last_spoken is not None and now - self.last_spoken < self.cooldown_s:
            return None
        if not faces:
            return None
        stable = [f for f in faces if self.is_stable(f)]
        fresh = [f for f in stable if not self._recently_said(f.face_id, f.emotion, now)]
        if fresh:
            best = max(fresh, key=lambda f: (f.score, f.count))
            text = self.sentences.sentence(best.emotion, best.masked, self.language)
            return self._spoken(Decision(text, best.face_id, best.emotion, best.masked, best.agreement,
                                         best.confidence, now))
        if stable or not self.say_unsure:
            return None  # someone is stable but was already told; stay quiet
        unsure = [f for f in faces
                  if f.count >= self.min_observations and now - f.first_seen >= self.window_s
                  and not self._recently_said(f.face_id, UNSURE, now)]
        if not unsure:
            return None
        best = max(unsure, key=lambda f: (f.count, f.score))
        text = self.sentences.sentence(UNSURE, language=self.language)
        return self._spoken(Decision(text, best.face_id, UNSURE, best.masked, best.agreement, best.confidence, now))

    def _spoken(self, decision: Decision) -> Decision:
        self.last_spoken = decision.stamp
        self._said[(decision.face_id, decision.emotion)] = decision.stamp
        self.last_decision = decision
        return decision

    def describe(self, now: float, face_id: Any = None) -> Optional[Decision]:
        """The sentence for a face's current emotion (the most frequent one in the window), now, whether or not the
        face is stable and whatever the cooldown: a "describe the face" request. `face_id` None = the face with the
        most observations (then the best score); None when that face was not seen in the window. The cooldown
        restarts, so the policy does not say it again at once."""
        with self._lock:
            faces = [f for f in self._faces_locked(now) if face_id is None or f.face_id == face_id]
            if not faces:
                return None
            best = max(faces, key=lambda f: (f.count, f.score))
            text = self.sentences.sentence(best.emotion, best.masked, self.language)
            return self._spoken(Decision(text, best.face_id, best.emotion, best.masked, best.agreement,
                                         best.confidence, now))

    def decide(self, now: float) -> Optional[str]:
        """One sentence to say now, or None. Saying is assumed: the cooldown starts now."""
        d = self.decide_detail(now)
        return d.text if d is not None else None


# --- backends -------------------------------------------------------------------------------


