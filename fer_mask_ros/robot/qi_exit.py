"""A clean exit for processes that use libqi: every live qi session closed, and libqi's threads stopped, before
the interpreter finalizes.

libqi runs native threads of its own. One that calls into Python while the interpreter finalizes (a service
handler that is still running, a signal callback, the release of a Python object) is ended by pthread_exit, and the
forced unwind through libqi's C++ aborts the whole process ("terminate called without an active exception",
"FATAL: exception not rethrown"): a program that ran well would exit with SIGABRT. So everything that owns a qi
session registers its closer here (`close_at_exit`): at `atexit`, while such threads can still finish, the closers
run, and then the interpreter waits a moment, GIL released, for libqi to finish what the closing set off.
No qi.Application is made for this: libqi-python stops it at exit with the GIL held, and its destructor then joined
a libqi thread that was waiting for the GIL to release a Python object (a hang, seen in this package's tests).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from typing import Callable, List

LOG = logging.getLogger(__name__)

_lock = threading.Lock()
_closers: List[weakref.WeakMethod] = []
_registered = False
SETTLE_S = 0.3  # after closing at exit


def close_at_exit(bound_method: Callable[[], None]) -> None:
    """Call `bound_method` (e.g. ``conn.close``) at interpreter exit unless its object is gone by then.
    Holds only a weak reference: registering never keeps an object alive."""
    global _registered
    with _lock:
        _closers[:] = [ref for ref in _closers if ref() is not None]
        if not any(ref() == bound_method for ref in _closers):  # a restarted connection: still one closer
            _closers.append(weakref.WeakMethod(bound_method))
        if not _registered:
            atexit.register(close_all)
            _registered = True


def close_all() -> int:
    """Close what is still registered, newest first (clients before the servers they talk to); the count closed."""
    with _lock:
        methods = [ref() for ref in reversed(_closers)]
        _closers.clear()
    closed = 0
    for method in methods:
        if method is None:
            continue
        try:
            method()
            closed += 1
        except Exception as exc:  # exiting: one failure must not keep the others open
            LOG.debug("closing %r at exit: %s", method, exc)
    if closed:
        time.sleep(SETTLE_S)  # the GIL released: libqi's threads release the Python objects the closing freed
    return closed
