"""qi connection to a NAO robot (real or fake): login, reconnects, state callbacks.

The camera (robot/camera.py) and the voice and LEDs (robot/speech.py) use one NaoConnection.

No rospy here: the ROS nodes wrap these classes. The same code talks to a real robot
(NAOqi 2.x on tcp://IP:9559, NAOqi >= 2.9 on tcps://IP:9503 with a user and password)
and to fer_mask_ros.simulation.fake_nao.FakeNao.

* `NaoConnection` owns a qi.Session and a background thread that reconnects with
  exponential backoff (0.5 s doubling to 5 s). State changes are logged once each and
  reported to callbacks; `generation` increases on every successful (re)connection so that
  users know when to resubscribe. While not connected, one WARN after `first_warn_s` (8 s, naming
  the URL: a wrong address is never silent), then one per `warn_every_s` (60 s).
* A robot that hangs (process stopped, link stalled) keeps its TCP connection open, so the
  thread also sends a heartbeat (ServiceDirectory.services, every `heartbeat_s`) and treats
  no answer within `heartbeat_timeout_s` as a lost connection: dropped, reported, reconnected.
  `call(method, *args, timeout=)` is a qi call with a timeout (NaoTimeout, and the connection
  is treated the same way); `ping()` checks the robot answers right now (NaoSpeech pings
  before each sentence: a call sent to a hung robot would be executed when it resumes).
* `NaoCamera` (robot/camera.py) subscribes to ALVideoDevice and returns `(rgb HxWx3 uint8, stamp_s)`.
* `NaoSpeech` (robot/speech.py) calls ALTextToSpeech / ALAnimatedSpeech asynchronously; it never queues.
* `NaoLeds` fades LED groups to an RGB colour.

The pure helpers (`parse_image_container`, `container_to_rgb`, `rgb_to_image_bytes`,
`make_url`, ...) need neither qi nor a robot.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from fer_mask_ros.errors import NaoError, NaoTimeout, NaoUnavailable
from fer_mask_ros.robot.qi_exit import close_at_exit

LOG = logging.getLogger(__name__)

DEFAULT_PORT = 9559  # NAOqi, plain tcp
DEFAULT_SECURE_PORT = 9503  # NAOqi >= 2.9, tcps with login
PASSWORD_ENV = "NAO_PASSWORD"
USER_ENV = "NAO_USER"

# --- ALVideoDevice constants (NAOqi vision definitions) ---------------------------------



STATE_DISCONNECTED = "disconnected"
STATE_CONNECTING = "connecting"
STATE_CONNECTED = "connected"


# --- pure helpers -------------------------------------------------------------------------


def make_url(host: Optional[str] = None, port: Optional[int] = None, secure: Optional[bool] = None) -> str:
    """A qi URL from a host (and port): "tcp://host:9559"; "tcps://host:9503" when `secure`.

    `secure=None` (auto) means tcps exactly when the port is 9503, NAOqi 2.9's secure port.
    "host:port" is accepted as host, and full URLs ("tcp://...", "tcps://...") pass through.
    """
    host = (host or "127.0.0.1").strip()
    if "://" in host:
        return host
    if ":" in host and not host.startswith("["):
        h, _, p = host.rpartition(":")
        if p.isdigit():
            host, port = h, int(p)
    if port is None:
        port = DEFAULT_SECURE_PORT if secure else DEFAULT_PORT
    if secure is None:
        secure = int(port) == DEFAULT_SECURE_PORT
    scheme = "tcps" if secure else "tcp"
    return f"{scheme}://{host}:{int(port)}"


# --- connection -----------------------------------------------------------------------------

def _import_qi():
    try:
        import qi  # noqa: PLC0415 - qi is only needed when talking to a robot
    except ImportError as exc:
        raise NaoError("the qi module is missing: pip install qi (libqi-python) to talk to a NAO") from exc
    return qi


class _Authenticator:
    """qi client authenticator (NAOqi >= 2.9): qi calls initialAuthData() once per connection."""

    def __init__(self, user: str, password: str):
        self._user = user
        self._password = password

    def initialAuthData(self) -> Dict[str, str]:  # noqa: N802 - name fixed by libqi
        return {"user": self._user, "token": self._password}

    def __repr__(self) -> str:
        return f"_Authenticator(user={self._user!r}, password=***)"


class _AuthenticatorFactory:
    def __init__(self, user: str, password: str):
        self._user = user
        self._password = password

    def newAuthenticator(self) -> _Authenticator:  # noqa: N802 - name fixed by libqi
        return _Authenticator(self._user, self._password)

    def __repr__(self) -> str:
        return f"_AuthenticatorFactory(user={self._user!r}, password=***)"


def _scrub(message: str, secret: Optional[str]) -> str:
    if secret:
        message = message.replace(secret, "***")
    return message


StateCallback = Callable[[str], None]


class NaoConnection:
    """A qi session to a NAO that reconnects by itself.

    ``NaoConnection("tcp://192.168.1.10:9559")``, ``NaoConnection(ip="192.168.1.10")`` or, for
    NAOqi >= 2.9, ``NaoConnection(ip="192.168.1.10", user="nao")`` (tcps://ip:9503, password
    from the `password` argument or the NAO_PASSWORD environment variable).

    `start()` launches the background thread (and by default waits up to `wait` seconds for the
    first connection); `close()` stops it. Retries back off from `min_backoff` doubling to
    `max_backoff`. Each state change (connecting/connected/disconnected) is logged once and
    passed to the callbacks added with `add_state_callback`.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        ip: Optional[str] = None,
        port: Optional[int] = None,
        user: Optional[str] = None,
        password: Optional[str] = None,
        password_env: str = PASSWORD_ENV,
        min_backoff: float = 0.5,
        max_backoff: float = 5.0,
        connect_timeout: float = 5.0,
        poll_interval: float = 0.2,
        logger: Optional[logging.Logger] = None,
        heartbeat_s: float = 1.0,
        heartbeat_timeout_s: float = 1.5,
        warn_every_s: float = 60.0,
        first_warn_s: float = 8.0,
    ):
        if user is None:
            user = os.environ.get(USER_ENV) or None
        if user is not None and password is None:
            password = os.environ.get(password_env)
            if password is None:
                raise NaoError(f"NAO user {user!r} given but no password: pass it or set ${password_env}")
        if url is None:
            url = make_url(ip, port, secure=(user is not None) if port is None else None)
        elif ip is not None:
            raise ValueError("give either url or ip/port, not both")
        self.url = url
        self.user = user
        self._password = password
        self.min_backoff = float(min_backoff)
        self.max_backoff = float(max_backoff)
        self.connect_timeout = float(connect_timeout)
        self.poll_interval = float(poll_interval)
        self.heartbeat_s = float(heartbeat_s)
        self.heartbeat_timeout_s = float(heartbeat_timeout_s)
        self.warn_every_s = float(warn_every_s)
        self.first_warn_s = float(first_warn_s)
        self._down_token = 0  # changes whenever a period without a connection starts or ends
        self.log = logger or LOG
        self._hung: Optional[str] = None  # why the robot is considered hung (set by any thread)
        self._last_heartbeat = 0.0  # monotonic time of the last answered heartbeat or ping
        self.heartbeat_ms = float("nan")  # round trip of the last heartbeat
        self.hangs = 0  # connections dropped because the robot stopped answering
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected_event = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._session: Any = None
        self._disconnect_link: Any = None  # the session's `disconnected` signal link, unlinked before close
        self._warn_timer: Optional[threading.Timer] = None
        self._services: Dict[str, Any] = {}
        self._callbacks: List[StateCallback] = []
        self._state = STATE_DISCONNECTED
        self.generation = 0  # +1 on each successful connection
        self.attempts = 0
        self.failures = 0
        self.last_error: Optional[str] = None

    def __repr__(self) -> str:
        user = f", user={self.user!r}" if self.user else ""
        return f"NaoConnection({self.url!r}{user}, state={self._state!r})"

    # -- state
    @property
    def state(self) -> str:
        return self._state

    @property
    def connected(self) -> bool:
        return self._state == STATE_CONNECTED

    def add_state_callback(self, callback: StateCallback) -> None:
        self._callbacks.append(callback)

    def _set_state(self, state: str, detail: str = "") -> None:
        with self._lock:
            if state == self._state:
                return
            self._state = state
        if state == STATE_CONNECTED:
            self._connected_event.set()
            self.log.info("NAO %s: connected", self.url)
        else:
            self._connected_event.clear()
            if state == STATE_DISCONNECTED:
                self.log.warning("NAO %s: disconnected%s", self.url, f" ({detail})" if detail else "")
            else:
                self.log.info("NAO %s: connecting", self.url)
        for cb in list(self._callbacks):
            try:
                cb(state)
            except Exception:  # a callback must not kill the reconnect thread
                self.log.exception("NAO state callback failed")

    # -- lifecycle
    def start(self, wait: Optional[float] = 0.0) -> bool:
        """Start the reconnect thread; wait up to `wait` s (None: forever) for a connection. Returns connected."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="nao-connection", daemon=True)
            self._thread.start()
            close_at_exit(self.close)
        if wait is None or wait > 0:
            return self.wait_connected(wait)
        return self.connected

    def wait_connected(self, timeout: Optional[float] = None) -> bool:
        return self._connected_event.wait(timeout)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.connect_timeout + 2.0)
        self._thread = None
        with self._lock:
            timer, self._warn_timer = self._warn_timer, None
        if timer is not None:
            timer.cancel()
        self._drop_session()
        self._set_state(STATE_DISCONNECTED, "closed")

    def __enter__(self) -> NaoConnection:
        self.start(wait=self.connect_timeout)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def mark_broken(self, reason: str = "") -> None:
        """Tell the connection that a call failed in a way that suggests the link is gone."""
        self._wake.set()

    def mark_hung(self, reason: str) -> None:
        """The robot did not answer in time: the connection thread drops the session and reconnects."""
        with self._lock:
            if self._hung is None and self._state == STATE_CONNECTED:
                self._hung = reason
        self._wake.set()

    def call(self, method: Callable[..., Any], *args: Any, timeout: float, what: str = "",
             mark_hung: bool = True) -> Any:
        """`method(*args)` as an asynchronous qi call, waiting at most `timeout` s for its result.
        NaoTimeout when it does not answer in time (and, with `mark_hung`, the robot is treated as hung)."""
        fut = method(*args, _async=True)
        try:
            return fut.value(int(max(0.001, timeout) * 1000))
        except Exception as exc:
            if "timeout" not in str(exc).lower():
                raise
            try:
                fut.cancel()
            except Exception:
                pass
            reason = f"robot not answering ({what or 'a call'} took more than {timeout:g} s)"
            if mark_hung:
                self.mark_hung(reason)
            raise NaoTimeout(reason) from None

    def ping(self, timeout: Optional[float] = None, mark_hung: bool = True) -> bool:
        """True when the robot answers a ServiceDirectory call within `timeout` s (default
        heartbeat_timeout_s); False when it does not (with `mark_hung`, the robot is treated as hung)."""
        timeout = self.heartbeat_timeout_s if timeout is None else float(timeout)
        t0 = time.monotonic()
        try:
            directory = self.service("ServiceDirectory")
            self.call(directory.services, timeout=timeout, what="heartbeat", mark_hung=mark_hung)
        except NaoError:  # NaoTimeout included
            return False
        except Exception as exc:  # the link broke under the call
            self.mark_broken(str(exc))
            return False
        self._last_heartbeat = time.monotonic()
        self.heartbeat_ms = 1000.0 * (self._last_heartbeat - t0)
        return True

    # -- session and services
    def service(self, name: str) -> Any:
        """The qi proxy of service `name` on the current session (cached per connection)."""
        with self._lock:
            session = self._session
            if session is None or self._state != STATE_CONNECTED:
                raise NaoUnavailable(f"NAO {self.url} is not connected ({self._state})")
            proxy = self._services.get(name)
            if proxy is not None:
                return proxy
        try:
            proxy = session.service(name)
        except Exception as exc:
            raise NaoError(f"NAO service {name} unavailable: {_scrub(str(exc), self._password)}") from None
        with self._lock:
            if session is self._session:
                self._services[name] = proxy
        return proxy

    def _drop_session(self) -> None:
        with self._lock:
            session, self._session = self._session, None
            link, self._disconnect_link = self._disconnect_link, None
            self._services = {}
        if session is not None:
            if link is not None:  # no Python callback may run while (or after) the session goes away
                try:
                    session.disconnected.disconnect(link)
                except Exception:
                    pass
            try:
                session.close()
            except Exception:  # already broken
                pass

    def _connect_once(self) -> None:
        qi = _import_qi()
        session = qi.Session()
        if self.user is not None:
            session.setClientAuthenticatorFactory(_AuthenticatorFactory(self.user, self._password or ""))
        self.attempts += 1
        fut = None
        try:
            fut = session.connect(self.url, _async=True)
            fut.value(int(self.connect_timeout * 1000))
        except Exception as exc:
            if fut is not None:
                try:
                    fut.cancel()
                except Exception:
                    pass
            try:
                session.close()
            except Exception:
                pass
            # never chain the qi exception: its text could, in theory, echo credentials
            raise NaoError(_scrub(str(exc), self._password) or type(exc).__name__) from None
        if not session.isConnected():
            raise NaoError("session not connected after connect()")
        link = None
        try:
            link = session.disconnected.connect(lambda *_a: self._wake.set())
        except Exception:  # signal API differences: polling still works
            pass
        with self._lock:
            self._session = session
            self._disconnect_link = link
            self._services = {}
            self.generation += 1

    def _session_alive(self) -> bool:
        with self._lock:
            session = self._session
        if session is None:
            return False
        try:
            return bool(session.isConnected())
        except Exception:
            return False

    def _watch_down(self) -> None:
        """One WARN naming the URL if this period without a connection lasts `first_warn_s` (a timer: a connect
        attempt that blocks for its whole timeout must not delay it)."""
        with self._lock:
            self._down_token += 1
            token = self._down_token
        if self.first_warn_s > 0:
            timer = threading.Timer(self.first_warn_s, self._warn_down, args=(token, time.monotonic()))
            timer.daemon = True
            with self._lock:
                previous, self._warn_timer = self._warn_timer, timer
            if previous is not None:  # its period is over: one waiting timer at most
                previous.cancel()
            timer.start()

    def _warn_down(self, token: int, since: float) -> None:
        with self._lock:
            current = token == self._down_token
        if not current or self._stop.is_set() or self._state == STATE_CONNECTED:
            return
        self.log.warning("NAO %s: not connected after %.0f s (%d attempts; last error: %s) - is nao_ip right, and "
                         "is the robot (or the fake NAO) on and reachable?", self.url, time.monotonic() - since,
                         self.attempts, self.last_error or "none yet, the first attempt is still waiting")

    def _run(self) -> None:
        backoff = self.min_backoff
        down_since = warned_at = time.monotonic()
        self._watch_down()
        beat_tried = 0.0
        while not self._stop.is_set():
            with self._lock:
                hung, self._hung = self._hung, None
            if hung is None and self._session_alive():
                backoff = self.min_backoff
                now = time.monotonic()
                if self.heartbeat_s > 0 and now - max(self._last_heartbeat, beat_tried) >= self.heartbeat_s:
                    beat_tried = now
                    self.ping()
                    continue
                self._wake.wait(self.poll_interval)
                self._wake.clear()
                continue
            if self._state == STATE_CONNECTED:
                self._drop_session()
                if hung is not None:
                    self.hangs += 1
                    self.last_error = hung
                self._set_state(STATE_DISCONNECTED, hung or "connection lost")
                down_since = warned_at = time.monotonic()
                self._watch_down()
            self._set_state(STATE_CONNECTING)
            try:
                self._connect_once()
            except Exception as exc:
                self.failures += 1
                msg = str(exc)
                if msg != self.last_error:
                    self.log.debug("NAO %s: connect failed: %s", self.url, msg)
                self.last_error = msg
                now = time.monotonic()
                if now - warned_at >= self.warn_every_s:  # a wrong address must not be silent
                    warned_at = now
                    self.log.warning("NAO %s: still not connected after %.0f s (%d attempts); last error: %s",
                                     self.url, now - down_since, self.attempts, msg)
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2.0, self.max_backoff)
                continue
            self.last_error = None
            backoff = self.min_backoff
            self._last_heartbeat = time.monotonic()
            with self._lock:
                self._hung = None
                self._down_token += 1
            self._set_state(STATE_CONNECTED)
        self._drop_session()

    def diagnostics(self) -> Dict[str, Any]:
        """Key/values for diagnostic_msgs (no secrets)."""
        return {"url": self.url, "state": self._state, "user": self.user or "", "generation": self.generation,
                "attempts": self.attempts, "failures": self.failures, "last_error": self.last_error or "",
                "heartbeat_ms": self.heartbeat_ms, "hangs": self.hangs}


# --- camera ---------------------------------------------------------------------------------


# --- speech and LEDs ------------------------------------------------------------------------


