"""``scalesim bench grid``: every mode and host ratio replayed, and the per-cell ratios."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scalesim.bench.cli import main
from scalesim.bench.grid import excess_ratios

HOSTS = [0.0, 0.5]
MODES = ["lockstep", "ooo"]


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A 30-agent town over one simulated day, both modes, no host and host 0.5."""
    folder = tmp_path_factory.mktemp("grid")
    trace = folder / "town.jsonl"
    gen = ["gen", "--workload", "town", "--agents", "30", "--steps", "2880", "--seed", "1"]
    assert main([*gen, "-o", str(trace)]) == 0
    stem = folder / "grid-town"
    command = ["grid", str(trace), "--host-ratios", "0,0.5", "--modes", ",".join(MODES)]
    assert main([*command, "--memory-ratio", "0.25", "--out", str(stem)]) == 0
    return stem, json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))


def test_writes_every_cell_with_every_policy(grid: tuple[Path, dict]) -> None:
    stem, document = grid
    assert stem.with_suffix(".png").stat().st_size > 0
    cells = [(cell["mode"], cell["host_ratio"]) for cell in document["cells"]]
    assert cells == [(mode, host) for mode in MODES for host in HOSTS]
    assert document["params"]["host_ratios"] == HOSTS
    assert "host_ratio" not in document["params"] and "mode" not in document["params"]
    for cell in document["cells"]:
        assert list(cell["results"]) == ["lru", "scalesim", "belady", "infinite"]
        assert cell["excess"] == excess_ratios(cell["results"])
    text = stem.with_suffix(".md").read_text(encoding="utf-8")
    assert text.count("| lockstep |") == len(HOSTS) and text.count("| ooo |") == len(HOSTS)


def test_host_tiers_serve_hits_and_infinite_is_shared_within_a_mode(
    grid: tuple[Path, dict],
) -> None:
    for cell in grid[1]["cells"]:
        with_host = cell["host_ratio"] > 0
        assert (cell["results"]["lru"]["host_hit_tokens"] > 0) == with_host
    for mode in MODES:
        floors = {
            json.dumps(cell["results"]["infinite"])
            for cell in grid[1]["cells"]
            if cell["mode"] == mode
        }
        assert len(floors) == 1


def test_excess_ratios_are_scalesims_excess_over_each_baseline() -> None:
    def result(recomputed: int) -> dict[str, int | float]:
        return {"recomputed_tokens": recomputed}

    results = {
        "lru": result(500),
        "scalesim": result(250),
        "belady": result(200),
        "infinite": result(100),
    }
    assert excess_ratios(results) == {"vs_belady": 1.5, "vs_lru": 0.375}
    del results["belady"]
    assert excess_ratios(results) == {"vs_belady": None, "vs_lru": 0.375}
    del results["infinite"]
    assert excess_ratios(results) == {"vs_belady": None, "vs_lru": None}
