"""A free TCP port on loopback for a server started a moment later (a demo's master, a fake NAO, a test's graph).

The port comes from below the kernel's ephemeral range. A port the kernel hands out for `bind(0)` is ephemeral, so
between the check and the server's bind any socket of the starting graph (each ROS node's XML-RPC server, every
outgoing connection) may take it: a fake NAO then dies with "address already in use". Below the range only a
program that names the port can take it.
"""
from __future__ import annotations

import random
import socket
from typing import Tuple

EPHEMERAL_FALLBACK = (32768, 60999)  # Linux's default net.ipv4.ip_local_port_range
LOWEST = 20000  # below: ports that services are often configured on
RESERVED = frozenset({9559, 11311})  # NAOqi's and ROS's default ports, which a user's own robot or master may want


def ephemeral_range() -> Tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as handle:
            low, high = (int(x) for x in handle.read().split())
        return low, high
    except (OSError, ValueError):
        return EPHEMERAL_FALLBACK


def _bindable(port: int, host: str) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1", attempts: int = 200) -> int:
    """A port nothing listens on or is bound to now, outside the ephemeral range where there is room for one; else
    (a machine whose ephemeral range starts low) the kernel's own choice."""
    low = ephemeral_range()[0]
    rng = random.SystemRandom()
    if low - LOWEST > 1000:
        for _ in range(attempts):
            port = rng.randrange(LOWEST, low)
            if port not in RESERVED and _bindable(port, host):
                return port
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
