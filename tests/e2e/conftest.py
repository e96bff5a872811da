"""Attaches the server log to the report of every failed e2e test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

_LOG_TAIL_CHARS = 20_000
_LOG_PATH_KEY = pytest.StashKey[Path]()


@pytest.fixture(scope="module")
def server_log_path(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """Where the module's server writes its log; attached to failed test reports."""
    path = tmp_path_factory.mktemp("server") / "scalesim-serve.log"
    pytestconfig.stash[_LOG_PATH_KEY] = path
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    log_path = item.config.stash.get(_LOG_PATH_KEY, None)
    if report.failed and log_path is not None and log_path.is_file():
        text = log_path.read_text(encoding="utf-8", errors="replace")
        report.sections.append((f"scalesim serve log ({log_path})", text[-_LOG_TAIL_CHARS:]))
