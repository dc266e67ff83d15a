"""The qi say-backend: speaks on the robot through robot.speech.NaoSpeech.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

from fer_mask_ros.errors import SpeechBackendError
from fer_mask_ros.interaction.policy import naoqi_language
from fer_mask_ros.robot.connection import NaoConnection
from fer_mask_ros.robot.say import SpeechBackend
from fer_mask_ros.robot.speech import NaoSpeech


class QiBackend(SpeechBackend):
    """Speaks on the robot through robot.speech.NaoSpeech (ALTextToSpeech or ALAnimatedSpeech).

    Give an existing `connection` (robot.connection.NaoConnection, shared with the camera) or a `url`
    (and optional user/password) for a private connection that this backend owns.
    """

    name = "qi"

    def __init__(self, connection: Any = None, url: Optional[str] = None, service: str = "ALTextToSpeech",
                 language: str = "en", user: Optional[str] = None, password: Optional[str] = None,
                 logger: Optional[logging.Logger] = None, **_ignored: Any):
        self._own = connection is None
        if connection is None:
            if url is None:
                raise SpeechBackendError("the qi speech backend needs a NAO connection or url")
            connection = NaoConnection(url, user=user, password=password, logger=logger)
            connection.start()
        self.connection = connection
        self.speech = NaoSpeech(connection, service=service, language=naoqi_language(language), logger=logger)

    @property
    def dropped(self) -> int:
        return self.speech.dropped

    @property
    def last_drop(self) -> str:
        return self.speech.last_drop

    def say(self, text: str) -> None:
        self.speech.say(text)

    def close(self) -> None:
        if self._own:
            self.connection.close()
