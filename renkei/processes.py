"""Child processes of the stack: start them in their own process group, stop them for sure."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1") -> int:
    """A free port below the kernel's ephemeral range.

    A port the kernel picks for ``bind(0)`` comes from the ephemeral range, which outgoing
    connections draw from too: between our asking and the server's binding, a client socket
    could take it. Below that range only listeners live, and each port is handed out once
    per process so two servers set up side by side never get the same one.
    """
    low, _ = _ephemeral_range()
    candidates = range(20000, low) if low > 21000 else range(0)
    for _ in range(200):
        if not candidates:
            break
        port = random.choice(candidates)
        if port not in _handed_out and port_is_free(port, host):
            _handed_out.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    _handed_out.add(port)
    return port


class PortAllocator:
    """Hands out the preferred port when it is free, another free port when it is not."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._given: set[int] = set()
        self.notes: list[str] = []

    def take(self, preferred: int, what: str) -> int:
        if preferred not in self._given and port_is_free(preferred, self.host):
            port = preferred
        else:
            port = free_port(self.host)
            while port in self._given:
                port = free_port(self.host)
            self.notes.append(f"port {preferred} for {what} is taken; using {port}")
        self._given.add(port)
        return port


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), to tell a reused PID apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def is_running(pid: int, started: int | None) -> bool:
    """The same process is still there (and not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return False
    return started is None or int(fields[19]) == started


def spawn(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    finally:
        log.close()


def stop(processes: list[tuple[int, int | None]], grace_seconds: float = 10.0) -> list[int]:
    """SIGTERM each process group, SIGKILL what is left after the grace period; returns survivors."""
    alive = [(pid, started) for pid, started in processes if is_running(pid, started)]
    for pid, _ in alive:
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        _reap(alive)
        alive = [(pid, started) for pid, started in alive if is_running(pid, started)]
    for pid, _ in alive:
        _signal_group(pid, signal.SIGKILL)
    time.sleep(0.2)
    _reap(alive)
    return [pid for pid, started in alive if is_running(pid, started)]


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # each child leads its own session, so this reaches its children too
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _reap(processes: list[tuple[int, int | None]]) -> None:
    for pid, _ in processes:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
