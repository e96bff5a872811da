"""The demo's comparison report: totals per policy, ScaleSim's saving over stock, the PNG."""

from __future__ import annotations

from pathlib import Path

from scalesim.demo_report import AgentCall, PolicyRun, describe, write_plot


def _run(policy: str, cached: list[int], makespan_s: float) -> PolicyRun:
    calls = tuple(AgentCall(i // 2, 100, c, 8, float(i)) for i, c in enumerate(cached))
    return PolicyRun(policy, calls, startup_s=1.0, makespan_s=makespan_s)


def test_report_compares_recomputed_tokens_and_makespan(tmp_path: Path) -> None:
    stock = _run("stock", [0, 0, 10, 30], makespan_s=20.0)  # 360 of 400 recomputed
    scalesim = _run("scalesim", [0, 0, 90, 90], makespan_s=16.0)  # 220 recomputed
    assert (stock.recomputed_tokens, scalesim.recomputed_tokens) == (360, 220)
    text = describe([stock, scalesim])
    assert "recomputes 39% fewer" in text  # 1 - 220/360
    assert "1.25x" in text
    assert "180 (45.0%)" in text
    write_plot([stock, scalesim], tmp_path / "demo.png")
    assert (tmp_path / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_of_one_policy_has_no_comparison() -> None:
    assert "fewer" not in describe([_run("scalesim", [5], makespan_s=1.0)])
