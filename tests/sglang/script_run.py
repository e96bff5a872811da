"""A test script run in its own process, started early, whose last stdout line is JSON.

Who uses it: tests whose cases need torch or SGLang globals changed (the CPU HiCache layer) or a
fresh interpreter; the subprocess starts before SGLang is imported in the test process, so the
two imports overlap. Imports no SGLang itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


class ScriptRun:
    """``python SCRIPT`` with this folder on ``PYTHONPATH``; :meth:`results` waits for its JSON."""

    def __init__(self, script: Path, *, timeout_s: float) -> None:
        here = str(Path(__file__).resolve().parent)
        path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
        self._script, self._timeout_s = script, timeout_s
        self._process = subprocess.Popen(
            [sys.executable, str(script)],
            env={**os.environ, "PYTHONPATH": path},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._results: dict[str, Any] | None = None

    def results(self) -> dict[str, Any]:
        if self._results is None:
            out, err = self._process.communicate(timeout=self._timeout_s)
            assert self._process.returncode == 0, f"{self._script.name} failed:\n{err[-4000:]}"
            self._results = json.loads(out.strip().splitlines()[-1])
        return self._results

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.communicate()
