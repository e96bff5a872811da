"""Runs ``scalesim serve`` as a child process on a free loopback port, for the demo and e2e tests.

The server gets its own process group, so stopping it (also on Ctrl-C or an exception in the
caller) reaches SGLang's scheduler and detokenizer too. Readiness is polled on ``/health`` with
a deadline; a server that exits early or never gets ready raises :class:`ServerStartError`
naming the log file.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

_POLL_INTERVAL_S = 0.5
_STOP_GRACE_S = 30.0


def exit_on_signals() -> None:
    """SIGTERM and SIGHUP raise ``SystemExit`` in the main thread, as Ctrl-C raises
    ``KeyboardInterrupt``: every ``with running_server(...)`` block then unwinds and stops its
    server (by default Python dies on SIGTERM without running them, orphaning the servers)."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)


class ServerStartError(RuntimeError):
    """The server exited or did not answer ``/health`` before the deadline."""


@dataclass(frozen=True)
class RunningServer:
    """A healthy server: its OpenAI-compatible base URL, the startup time and its log."""

    base_url: str
    startup_s: float
    log_path: Path

    @property
    def openai_base_url(self) -> str:
        """Base URL for the ``openai`` client."""
        return f"{self.base_url}/v1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(
    serve_args: Sequence[str],
    *,
    log_path: Path,
    port: int | None = None,
    startup_timeout_s: float = 600.0,
) -> Iterator[RunningServer]:
    """Start ``scalesim serve SERVE_ARGS`` on a free port, yield once healthy, always stop it.

    Args:
        serve_args: ``scalesim serve`` arguments (model, ScaleSim and SGLang options), no port.
        log_path: file that receives the server's stdout and stderr.
        port: loopback port to serve on; default a free one.
        startup_timeout_s: seconds to wait for ``/health``.
    """
    port = port or free_port()
    command = [sys.executable, "-m", "scalesim.cli", "serve", *serve_args]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_healthy(process, base_url, log_path=log_path, timeout_s=startup_timeout_s)
        yield RunningServer(base_url, time.monotonic() - started, log_path)
    finally:
        stop_process_group(process)


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's process group, then SIGKILL whatever outlives the grace period."""
    if process.poll() is not None:
        _kill_group(process.pid, signal.SIGKILL)  # children may outlive a dead leader
        return
    _kill_group(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=_STOP_GRACE_S)
    _kill_group(process.pid, signal.SIGKILL)
    process.wait()


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return


def _wait_healthy(
    process: subprocess.Popen[bytes], base_url: str, *, log_path: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _is_healthy(base_url):
            return
        try:
            code = process.wait(timeout=_POLL_INTERVAL_S)
        except subprocess.TimeoutExpired:
            continue
        raise ServerStartError(f"scalesim serve exited with code {code}; log: {log_path}")
    raise ServerStartError(f"scalesim serve not healthy after {timeout_s:.0f} s; log: {log_path}")


def _is_healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=2.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
