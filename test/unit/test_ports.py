"""fer_mask_ros.ports.free_port: a bindable loopback port from below the kernel's ephemeral range."""
from __future__ import annotations

import socket

import pytest

from fer_mask_ros import ports


def test_free_port_is_bindable_and_below_the_ephemeral_range():
    low = ports.ephemeral_range()[0]
    if low - ports.LOWEST <= 1000:
        pytest.skip(f"this kernel's ephemeral range starts at {low}: no room below it")
    for _ in range(20):
        port = ports.free_port()
        assert ports.LOWEST <= port < low and port not in ports.RESERVED
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free: the check did not keep it


def test_a_port_in_use_is_never_returned(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            free = other.getsockname()[1]
        picks = iter([busy, busy, free])
        monkeypatch.setattr(ports, "ephemeral_range", lambda: (65000, 65535))
        monkeypatch.setattr(ports.random.SystemRandom, "randrange", lambda self, a, b: next(picks))
        assert ports.free_port() == free  # the two draws of the taken port were refused


def test_a_low_ephemeral_range_falls_back_to_the_kernels_choice(monkeypatch):
    monkeypatch.setattr(ports, "ephemeral_range", lambda: (ports.LOWEST + 10, 60999))
    monkeypatch.setattr(ports.random.SystemRandom, "randrange", lambda self, a, b: pytest.fail("drew a port"))
    assert ports.free_port() >= ports.LOWEST + 10  # the kernel chose it


def test_ephemeral_range_reads_the_kernel_setting():
    low, high = ports.ephemeral_range()
    assert 1024 <= low < high <= 65535
