"""Real server processes for tests: a free loopback port, start, wait until ready, always stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(log: Path, chars: int = 3000) -> str:
    """The end of a server's log, for a failure message."""
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def stop(proc: subprocess.Popen[bytes], *, group: bool = False) -> None:
    """SIGTERM (to the process group with ``group``), then SIGKILL after 20 s."""
    if proc.poll() is not None:
        return

    def send(sig: int) -> None:
        try:
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        except ProcessLookupError:
            pass

    send(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(timeout=10)


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, *, timeout: float,
               ready: Callable[[httpx.Response], bool] = lambda r: r.is_success) -> None:
    """Poll ``url`` until ``ready``; fail with the log's end if the process dies or times out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready(httpx.get(url, timeout=2)):
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited ({proc.returncode}):\n{log_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}: not ready within {timeout:.0f} s:\n{log_tail(log)}")
        time.sleep(0.3)


@contextmanager
def server_process(args: Sequence[str], *, ready_url: str, log: Path, timeout: float = 90,
                   env: Mapping[str, str] | None = None, cwd: Path | None = None,
                   group: bool = False) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``args`` with output to ``log``, yield once ``ready_url`` answers; always stopped.

    ``group`` starts the server in its own session and stops the whole process group (for
    servers that start children of their own).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(list(args), stdout=out, stderr=subprocess.STDOUT,
                                env=dict(env) if env is not None else None, cwd=cwd,
                                start_new_session=group)
    try:
        wait_ready(proc, ready_url, log, timeout=timeout)
        yield proc
    finally:
        stop(proc, group=group)
