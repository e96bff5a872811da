"""End to end: ``scalesim bench live`` on a small generated town trace, stock and ScaleSim.

Runs the real command (``bench gen``, then ``bench live`` with the tiny model preset, one
adapter per agent and two adapter slots), each server in CPU development mode without a GPU,
and checks what api.md section 5 promises of the JSON, plus the Markdown and PNG beside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

_KEYS = {
    "requests",
    "errors",
    "prompt_tokens",
    "cached_tokens",
    "recomputed_tokens",
    "makespan_s",
    "p50_latency_s",
    "p99_latency_s",
    "kv_prefetch_tokens",
    "lora_loads_blocking",
}


def _scalesim(args: list[str], *, home: Path, timeout_s: float) -> str:
    env = {**os.environ, "SCALESIM_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "scalesim.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        logs = "".join(
            f"\n--- {log}\n{log.read_text(errors='replace')[-5000:]}"
            for log in sorted((home / "bench-live").glob("*.log"))
        )
        pytest.fail(f"scalesim {args[:2]} exited {done.returncode}\n{done.stderr[-5000:]}{logs}")
    return done.stdout


def test_bench_live_runs_a_trace_on_both_policies(tmp_path: Path) -> None:
    trace = tmp_path / "town.jsonl"
    gen = ["bench", "gen", "--workload", "town", "--agents", "6", "--steps", "2300"]
    _scalesim([*gen, "--loras", "-o", str(trace)], home=tmp_path, timeout_s=120)
    n_calls = sum(1 for line in trace.read_text().splitlines() if '"type":"call"' in line)
    out = tmp_path / "results" / "live.json"
    live = ["bench", "live", str(trace), "--policies", "stock,scalesim", "--model-size", "tiny"]
    live += ["--memory-ratio", "0.25", "--lora-slots", "2", "--max-output-tokens", "4"]
    stdout = _scalesim([*live, "--json", str(out)], home=tmp_path, timeout_s=900)

    document = json.loads(out.read_text())
    assert {"machine", "params", "results", "replay_prediction"} <= set(document)
    assert set(document["results"]) == {"stock", "scalesim"}
    assert document["params"]["cpu_attention"] == "prefix"  # both servers, the default
    if document["machine"]["gpu"] is None:
        serve_args = document["params"]["serve_args"]
        assert serve_args[serve_args.index("--scalesim-cpu-attention") + 1] == "prefix"
    for policy, result in document["results"].items():
        assert set(result) >= _KEYS, policy
        assert result["requests"] == n_calls and result["errors"] == 0, policy
        assert result["prompt_tokens"] == result["cached_tokens"] + result["recomputed_tokens"]
        assert result["prompt_tokens"] == result["expected_prompt_tokens"], policy
        assert result["makespans_s"] == [result["makespan_s"]], policy  # one run, no repeats
        calls = document["calls"][policy]  # every call as the server answered it
        assert [call["index"] for call in calls] == list(range(n_calls)), policy
        assert sum(call["prompt_tokens"] for call in calls) == result["prompt_tokens"]
        assert sum(call["cached_tokens"] for call in calls) == result["cached_tokens"]
        assert all(0 <= c["ready_s"] <= c["sent_s"] <= c["done_s"] for c in calls), policy
        assert max(c["done_s"] for c in calls) == pytest.approx(result["makespan_s"], abs=2e-3)
        assert sorted(c["done_s"] for c in calls) == document["timeline_s"][policy]
    # adapter loads: the server's counters for scalesim (every adapter is loaded at least once:
    # 2 slots, no preloading); stock has no ScaleSim hooks, so not measurable (null, not 0)
    adapters = {json.loads(line).get("lora") for line in trace.read_text().splitlines()}
    adapters.discard(None)
    scalesim = document["results"]["scalesim"]
    assert scalesim["lora_loads_blocking"] + scalesim["lora_loads_prefetch"] >= len(adapters) > 2
    assert scalesim["lora_prefetch_failures"] >= 0
    stock = document["results"]["stock"]
    assert stock["lora_loads_blocking"] is stock["lora_loads_prefetch"] is None
    assert scalesim["ticks"] > 0
    assert document["results"]["scalesim"]["tick_errors"] == 0
    assert (
        document["results"]["stock"]["ticks"]
        == document["results"]["stock"]["kv_prefetch_tokens"]
        == 0
    )
    assert set(document["replay_prediction"]["results"]) == {
        "lru",
        "scalesim",
        "belady",
        "infinite",
    }
    assert "## Comparison" in out.with_suffix(".md").read_text()
    assert "[live] live: ScaleSim recomputed" in stdout
    assert out.with_suffix(".md").is_file() and out.with_suffix(".png").stat().st_size > 0
    assert "replay_recomp" in stdout


def test_bench_live_repeats_each_run_on_a_fresh_server(tmp_path: Path) -> None:
    trace = tmp_path / "town.jsonl"
    gen = ["bench", "gen", "--workload", "town", "--agents", "3", "--steps", "400"]
    _scalesim([*gen, "-o", str(trace)], home=tmp_path, timeout_s=120)
    out = tmp_path / "live.json"
    live = ["bench", "live", str(trace), "--policies", "stock", "--model-size", "tiny"]
    live += ["--memory-ratio", "0.5", "--max-output-tokens", "1", "--repeats", "2"]
    stdout = _scalesim([*live, "--json", str(out)], home=tmp_path, timeout_s=600)

    assert "(run 1 of 2)" in stdout and "(run 2 of 2)" in stdout  # one server start each
    document = json.loads(out.read_text())
    stock = document["results"]["stock"]
    assert document["params"]["repeats"] == 2
    # the reported run is the faster of the two (the median of an even count: the lower one)
    assert len(stock["makespans_s"]) == 2 and stock["makespan_s"] == min(stock["makespans_s"])
    assert stock["errors"] == 0 and stock["recomputed_tokens"] > 0
    assert "repeats: every policy ran 2 times" in out.with_suffix(".md").read_text()
