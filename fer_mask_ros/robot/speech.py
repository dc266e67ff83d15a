"""NAO's voice and eyes over qi: text to speech (ALTextToSpeech / ALAnimatedSpeech) and the LEDs (ALLeds).
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Optional, Sequence, Union

from fer_mask_ros.errors import NaoTimeout, NaoUnavailable
from fer_mask_ros.robot.connection import NaoConnection

LOG = logging.getLogger(__name__)

SPEECH_SERVICES = ("ALTextToSpeech", "ALAnimatedSpeech")


def animated_text(text: str, animation: str) -> str:
    """ALAnimatedSpeech's annotated text: NAO starts `animation` as it starts speaking and the speech ends with it."""
    return f"^start({animation}) {text} ^wait({animation})"


class NaoSpeech:
    """Say text on the robot without blocking the caller.

    `say()` starts an asynchronous qi call and returns at once. It never queues: when the robot
    is disconnected, still speaking the previous sentence, or does not answer a ping right before
    (`ping_timeout`; a sentence sent to a hung robot would be spoken whenever it resumes, however
    late), the text is dropped, counted in `dropped` (`last_drop` says why) and warned about (once
    per cause in a row).
    """

    def __init__(
        self,
        connection: NaoConnection,
        service: str = "ALTextToSpeech",
        language: Optional[str] = "English",
        volume: Optional[float] = None,
        logger: Optional[logging.Logger] = None,
        ping_timeout: float = 1.0,
    ):
        if service not in SPEECH_SERVICES:
            raise ValueError(f"unknown speech service {service!r}; use one of {', '.join(SPEECH_SERVICES)}")
        self.connection = connection
        self.service = service
        self.language = language
        self.volume = volume
        self.log = logger or LOG
        self.ping_timeout = float(ping_timeout)
        self._generation = -1
        self._future: Any = None
        self._future_generation = -1
        self._lock = threading.Lock()
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self._last_drop: Optional[str] = None
        self.last_drop = ""

    def _drop(self, why: str, text: str) -> bool:
        self.dropped += 1
        self.last_drop = why
        if why != self._last_drop:
            self.log.warning("NAO speech: dropped %r (%s; %d dropped so far)", text, why, self.dropped)
        self._last_drop = why
        return False

    def _configure(self) -> None:
        tts = self.connection.service("ALTextToSpeech")
        if self.language:
            try:
                self.connection.call(tts.setLanguage, self.language, timeout=2.0, what="setLanguage")
            except (NaoUnavailable, NaoTimeout):
                raise
            except Exception as exc:
                self.log.warning("NAO speech: setLanguage(%r) failed: %s", self.language, exc)
        if self.volume is not None:
            try:
                tts.setVolume(float(self.volume))
            except Exception as exc:
                self.log.warning("NAO speech: setVolume failed: %s", exc)
        self._generation = self.connection.generation

    @property
    def busy(self) -> bool:
        fut = self._future  # a call of an earlier connection never finishes: not busy
        return fut is not None and self._future_generation == self.connection.generation and not fut.isFinished()

    def say(self, text: str) -> bool:
        """Start saying `text`; True if it was sent, False if dropped."""
        text = str(text).strip()
        if not text:
            return False
        with self._lock:
            if not self.connection.connected:
                return self._drop("robot disconnected", text)
            if self.busy:
                return self._drop("still speaking", text)
            if not self.connection.ping(self.ping_timeout, mark_hung=False):  # the heartbeat judges the link
                return self._drop("robot not answering", text)
            try:
                if self._generation != self.connection.generation:
                    self._configure()
                proxy = self.connection.service(self.service)
                self._future = proxy.say(text, _async=True)
                self._future_generation = self.connection.generation
            except NaoUnavailable:
                return self._drop("robot disconnected", text)
            except Exception as exc:
                self.failed += 1
                self.connection.mark_broken()
                return self._drop(f"say failed: {exc}", text)
            self.sent += 1
            self._last_drop = None
            return True

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait for the current sentence to finish; True if finished without error."""
        fut = self._future
        if fut is None:
            return True
        try:
            fut.value(int(timeout * 1000))
            return True
        except Exception:
            return False


class NaoLeds:
    """ALLeds.fadeRGB on a group (default "FaceLeds", the eyes)."""

    def __init__(self, connection: NaoConnection, group: str = "FaceLeds", duration: float = 0.3,
                 logger: Optional[logging.Logger] = None):
        self.connection = connection
        self.group = group
        self.duration = float(duration)
        self.log = logger or LOG
        self.failed = 0

    def fade(self, rgb: Union[int, Sequence[float]], duration: Optional[float] = None) -> bool:
        """Fade to 0xRRGGBB (int) or (r, g, b) floats in 0..1; non-blocking. False if not sent."""
        if not isinstance(rgb, int):
            r, g, b = (min(max(float(v), 0.0), 1.0) for v in rgb)
            rgb = (int(r * 255 + 0.5) << 16) | (int(g * 255 + 0.5) << 8) | int(b * 255 + 0.5)
        try:
            leds = self.connection.service("ALLeds")
            leds.fadeRGB(self.group, int(rgb), float(self.duration if duration is None else duration), _async=True)
        except NaoUnavailable:
            return False
        except Exception as exc:
            self.failed += 1
            self.log.warning("NAO LEDs: fadeRGB failed: %s", exc)
            return False
        return True

    def show_emotion(self, emotion: str) -> bool:
        from fer_mask_ros.interaction.policy import led_colour  # noqa: PLC0415 - only when the LEDs show an emotion

        return self.fade(led_colour(emotion))
