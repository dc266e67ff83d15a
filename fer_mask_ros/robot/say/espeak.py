"""The espeak say-backend: speaks on this computer with espeak-ng.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
from typing import Any, List, Optional

from fer_mask_ros.errors import SpeechBackendError
from fer_mask_ros.interaction.policy import ESPEAK_VOICES, normalise_language
from fer_mask_ros.robot.say import SpeechBackend

LOG = logging.getLogger(__name__)

class EspeakBackend(SpeechBackend):
    """Speaks on this computer with espeak-ng (argument list + stdin, never a shell).

    Non-blocking: starts espeak-ng and returns; a sentence that arrives while the previous one is
    still playing is dropped (counted in `dropped`).
    """

    name = "espeak"

    def __init__(self, language: str = "en", voice: Optional[str] = None, speed: Optional[int] = None,
                 executable: Optional[str] = None, logger: Optional[logging.Logger] = None, **_ignored: Any):
        self.log = logger or LOG
        exe = executable or shutil.which("espeak-ng") or shutil.which("espeak")
        if exe is None or (executable is not None and shutil.which(executable) is None):
            raise SpeechBackendError("espeak-ng is not installed (apt-get install espeak-ng); "
                                     "use the 'log' or 'qi' speech backend instead")
        self.executable = exe
        self.voice = voice or ESPEAK_VOICES[normalise_language(language)]
        self.speed = speed
        self._proc: Optional[subprocess.Popen] = None
        self.dropped = 0

    def command(self) -> List[str]:
        cmd = [self.executable, "-v", self.voice]
        if self.speed:
            cmd += ["-s", str(int(self.speed))]
        return cmd + ["--stdin"]

    def say(self, text: str) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.dropped += 1
            self.log.warning("espeak: still speaking, dropped %r", text)
            return
        try:
            proc = subprocess.Popen(self.command(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        except OSError as exc:
            raise SpeechBackendError(f"cannot run {self.executable}: {exc}") from exc
        try:
            assert proc.stdin is not None
            proc.stdin.write(text.encode("utf-8") + b"\n")
            proc.stdin.close()
        except OSError:
            pass
        self._proc = proc

    def wait(self, timeout: Optional[float] = None) -> None:
        if self._proc is not None:
            self._proc.wait(timeout)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
