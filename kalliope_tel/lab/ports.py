"""Free loopback ports, so two labs (or a lab and a developer's own) never collide."""

from __future__ import annotations

import random
import socket


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _udp_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_udp_range(size: int = 200, low: int = 20000, high: int = 60000) -> tuple[int, int]:
    """A block of ``size`` UDP ports whose first and last few are free now."""
    rng = random.SystemRandom()
    for _ in range(200):
        start = rng.randrange(low, high - size, 2)
        probes = (start, start + 1, start + size // 2, start + size - 2, start + size - 1)
        if all(_udp_free(p) for p in probes):
            return start, start + size - 1
    raise RuntimeError("no free UDP port range found for RTP")


def free_fixed_tcp_port(low: int = 20000, high: int = 32000, host: str = "127.0.0.1") -> int:
    """A free TCP port below the kernel's ephemeral range (32768 up), for a
    port that is chosen now and listened on later: a port the kernel hands
    out could be taken meanwhile by any listener asking for port 0, or be a
    connection's own source port (a connect to it may then reach itself)."""
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port found below the ephemeral range")
