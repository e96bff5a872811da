"""The soak benchmark, short: 15 s of load against the real server in CPU mode.

Two simulations tick as fast as the server answers, chat through two threads and delete a
namespace every 30 updates; the run must end with no error of any kind, no lost update (each
namespace's final version is the last one the client got accepted), no update refused by the
scheduler, and nothing left in the runtime's tables once every namespace is deleted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scalesim.bench.soak import main

pytestmark = pytest.mark.e2e

_LOG_TAIL_CHARS = 20_000


def _log_tail(log_path: Path) -> str:
    if not log_path.is_file():
        return "(no server log)"
    return log_path.read_text(encoding="utf-8", errors="replace")[-_LOG_TAIL_CHARS:]


def test_a_short_soak_has_no_error_and_no_lost_update(tmp_path: Path) -> None:
    """Guards against updates lost or refused under concurrent chats, updates and deletes, and
    against a deleted namespace leaving agents or tree ownership behind."""
    log_path = tmp_path / "serve.log"
    argv = ["--duration-s", "15", "--simulations", "2", "--agents", "4", "--chat-threads", "2"]
    argv += ["--episode-ticks", "30", "--sample-s", "1", "--out-dir", str(tmp_path / "out")]
    status = main([*argv, "--log-path", str(log_path)])
    assert status == 0, _log_tail(log_path)

    (result_path,) = (tmp_path / "out").glob("soak-*.json")
    result = json.loads(result_path.read_text())
    totals, context = result["totals"], f"{result['examples']}\n{_log_tail(log_path)}"
    assert result["aborted"] is None, context
    assert totals["errors"] == 0 and totals["lost_updates"] == 0, context
    assert totals["requests"] > 0 and totals["updates"] > 0 and totals["deletes"] > 0, totals
    assert totals["namespaces_checked"] == totals["deletes"], totals
    assert totals["server_rejected_updates"] == 0, totals
    drained = result["drained"]
    assert (drained["namespaces"], drained["agents"], drained["path_owners"]) == (0, 0, 0)
    assert drained["owned_nodes"] == 0, drained
    assert result["samples"] and all(s["rss_bytes"] > 0 for s in result["samples"])
    assert result_path.with_suffix(".md").is_file()
    assert result_path.with_suffix(".png").stat().st_size > 0
