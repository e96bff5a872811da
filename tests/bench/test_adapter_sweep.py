"""``scalesim bench adapters``: the files it writes and what its numbers must satisfy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scalesim.bench.adapter_sweep import parse_slots
from scalesim.bench.cli import main

SLOTS = [3, 6, 12]
POLICIES = ["lru", "scalesim", "belady"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A 30-agent town (one adapter per agent, ~140 calls) with slots for 10%, 20%, 40% of them."""
    folder = tmp_path_factory.mktemp("adapters")
    trace = folder / "town.jsonl"
    gen = ["gen", "--workload", "town", "--agents", "30", "--steps", "2880", "--seed", "1"]
    assert main([*gen, "--loras", "-o", str(trace)]) == 0
    stem = folder / "adapters-town"
    command = ["adapters", str(trace), "--slots", ",".join(map(str, SLOTS))]
    assert main([*command, "--memory-ratio", "0.25", "--host-ratio", "0", "--out", str(stem)]) == 0
    return stem, json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))


def test_writes_json_markdown_and_png_with_every_slot_count_and_policy(
    sweep: tuple[Path, dict],
) -> None:
    stem, document = sweep
    assert stem.with_suffix(".png").stat().st_size > 0
    assert [entry["lora_slots"] for entry in document["slots"]] == SLOTS
    assert document["params"]["lora_slots"] == SLOTS
    assert document["params"]["memory_ratio"] == 0.25
    assert set(document["machine"]["replay_wall_s"]) == {str(n) for n in SLOTS}
    for entry in document["slots"]:
        assert list(entry["results"]) == POLICIES
        for result in entry["results"].values():
            assert {"blocking_adapter_loads", "prefetch_adapter_loads", "makespan_s"} <= set(result)
            assert result["recomputed_tokens"] > 0
        assert entry["over_lru"]["lru"] == {"blocking_adapter_loads": 1.0, "makespan_s": 1.0}
    text = stem.with_suffix(".md").read_text(encoding="utf-8")
    for n_slots in SLOTS:
        for policy in POLICIES:
            assert f"| {n_slots} | {n_slots / 30:.0%} | {policy} |" in text


def test_scalesim_blocks_on_fewer_adapter_loads_than_lru_at_every_slot_count(
    sweep: tuple[Path, dict],
) -> None:
    """Adapters of due agents are prefetched, so fewer calls wait for theirs than under LRU."""
    for entry in sweep[1]["slots"]:
        lru, scalesim = (entry["results"][name] for name in ("lru", "scalesim"))
        assert lru["prefetch_adapter_loads"] == 0 < scalesim["prefetch_adapter_loads"]
        assert scalesim["blocking_adapter_loads"] < lru["blocking_adapter_loads"]
        if entry["lora_slots"] == 3:  # issue 11's target, at slots for 10% of the agents
            assert scalesim["blocking_adapter_loads"] <= 0.5 * lru["blocking_adapter_loads"]
        ratio = scalesim["blocking_adapter_loads"] / lru["blocking_adapter_loads"]
        assert entry["over_lru"]["scalesim"]["blocking_adapter_loads"] == round(ratio, 3)


def test_lru_blocks_on_no_more_loads_as_slots_grow(sweep: tuple[Path, dict]) -> None:
    loads = [entry["results"]["lru"]["blocking_adapter_loads"] for entry in sweep[1]["slots"]]
    assert loads == sorted(loads, reverse=True)


def test_slot_counts_parse_sorted_and_distinct_and_reject_zero() -> None:
    assert parse_slots("30, 15,60,15") == [15, 30, 60]
    with pytest.raises(ValueError):
        parse_slots("0,15")
