"""Say-backends: small plugins on one short base class (as sound_play's backends), chosen by name.

`make_backend(name, **kwargs)` -> a `SpeechBackend`: "log" (here), "espeak" (robot/say/espeak.py) or
"qi" (robot/say/qi.py, NAO's own voice). A backend's module is imported only when it is chosen, so
espeak-ng or qi are needed only by those who use them. "topic" (std_msgs/String on /speech, for
naoqi_driver) is a ROS backend and lives in the emotion_speech node.
"""
from __future__ import annotations

import importlib
import logging
from typing import Any, List, Optional

from fer_mask_ros.errors import SpeechBackendError

LOG = logging.getLogger(__name__)

SAY_BACKENDS = ("qi", "topic", "espeak", "log")
# name -> (module, class) of the plugins outside this module
PLUGINS = {"espeak": ("fer_mask_ros.robot.say.espeak", "EspeakBackend"),
           "qi": ("fer_mask_ros.robot.say.qi", "QiBackend")}


class SpeechBackend:
    """Something that can say a sentence. `say` must return quickly (never block for the speech)."""

    name = "base"

    def say(self, text: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> SpeechBackend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LogBackend(SpeechBackend):
    """Logs the sentence (and keeps it in `said`): for tests, dry runs and robots without a voice."""

    name = "log"

    def __init__(self, logger: Optional[logging.Logger] = None, **_ignored: Any):
        self.log = logger or LOG
        self.said: List[str] = []

    def say(self, text: str) -> None:
        self.said.append(text)
        self.log.info("NAO says: %s", text)


def make_backend(name: str, **kwargs: Any) -> SpeechBackend:
    """A speech backend by name: qi, espeak or log ('topic' is provided by the ROS node)."""
    key = str(name).strip().lower()
    if key == "log":
        return LogBackend(**kwargs)
    if key in PLUGINS:
        module, cls = PLUGINS[key]
        return getattr(importlib.import_module(module), cls)(**kwargs)
    if key == "topic":
        raise SpeechBackendError("the 'topic' speech backend is provided by the ROS node (it publishes /speech), "
                                 "not by fer_mask_ros.robot.say")
    raise SpeechBackendError(f"unknown speech backend {name!r}; choose from {', '.join(SAY_BACKENDS)}")
