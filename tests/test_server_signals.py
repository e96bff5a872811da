"""SIGTERM to a command that runs servers (demo, bench live, soak, cluster) unwinds its ``with``
blocks, so the servers stop, as on Ctrl-C (``scalesim.server_process.exit_on_signals``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

_SCRIPT = textwrap.dedent(
    """
    import os, signal, time
    from scalesim.server_process import exit_on_signals
    {install}
    try:
        os.kill(os.getpid(), signal.{name})
        time.sleep(30)
    finally:
        print("unwound", flush=True)
    """
)


def _run(install: str, name: str) -> subprocess.CompletedProcess[str]:
    script = _SCRIPT.format(install=install, name=name)
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_terminating_signal_unwinds_like_ctrl_c(name: str) -> None:
    done = _run("exit_on_signals()", name)
    assert done.returncode == 128 + getattr(signal, name)
    assert "unwound" in done.stdout


def test_without_it_python_dies_without_unwinding() -> None:
    """Regression: `bench live` killed with SIGTERM left its servers running."""
    done = _run("pass", "SIGTERM")
    assert done.returncode == -signal.SIGTERM and "unwound" not in done.stdout
