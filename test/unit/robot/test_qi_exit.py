"""A process that leaves a robot connection and a fake NAO open, with a say() still running, exits cleanly: the
qi sessions are closed at exit, before the interpreter finalizes (libqi threads calling into a finalizing Python
abort the process)."""
from __future__ import annotations

import gc
import os
import subprocess
import sys

import pytest

from fer_mask_ros.robot import qi_exit

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class _Closable:
    def __init__(self, name, calls, fail=False):
        self.name, self.calls, self.fail = name, calls, fail

    def close(self):
        self.calls.append(self.name)
        if self.fail:
            raise RuntimeError("already broken")


def test_close_all_newest_first_past_failures_and_only_live_objects(monkeypatch):
    monkeypatch.setattr(qi_exit, "_closers", [])
    monkeypatch.setattr(qi_exit, "SETTLE_S", 0.0)
    calls = []
    server, client, broken = _Closable("server", calls), _Closable("client", calls), _Closable("broken", calls, True)
    gone = _Closable("gone", calls)
    for obj in (server, gone, broken, client):
        qi_exit.close_at_exit(obj.close)
    del gone
    gc.collect()
    assert qi_exit.close_all() == 2  # the broken one raised, the gone one was never kept alive
    assert calls == ["client", "broken", "server"]
    assert qi_exit.close_all() == 0  # each closer runs once


EXITS_WHILE_SPEAKING = """
import logging
import numpy as np
logging.basicConfig(level=logging.INFO)
from fer_mask_ros.robot.connection import NaoConnection
from fer_mask_ros.simulation.fake_nao import FakeNao
nao = FakeNao([np.zeros((120, 160, 3), np.uint8)], say_seconds=30.0, echo=False).start()
conn = NaoConnection(nao.url)
assert conn.start(wait=30)
conn.service("ALTextToSpeech").say("hello", _async=True)
assert nao.wait_for_speech(1, timeout=30)
print("exiting while the robot speaks", flush=True)
"""


def test_a_process_exits_cleanly_with_sessions_open_and_a_call_in_flight():
    pytest.importorskip("qi")
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", EXITS_WHILE_SPEAKING], env=env, capture_output=True, text=True,
                          timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "exiting while the robot speaks" in out
    # closed at exit, client first; the 30 s say() ended with the fake robot instead of outliving it
    assert out.index("disconnected (closed)") < out.index(" stopped"), out[-3000:]
    assert "still runs 5 s after stop" not in out and "terminate called" not in out
