"""The churn benchmark, tiny: the runtime's memory stays bounded by the tree while agents pass.

2,000 agents in simulations of 200 pass through a 1,024-token SGLang radix cache, so whole
simulations leave the tree (their shared persona evicted) long before the run ends.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scalesim.bench.churn import (
    ChurnParams,
    FinalHint,
    Variant,
    default_variants,
    main,
    run_variant,
)

from scalesim.runtime import RuntimeConfig

TINY = ChurnParams(
    agents=2_000,
    namespace_agents=200,
    capacity_tokens=1_024,
    headroom_tokens=256,
    traced_agents=2_000,
    checkpoints=5,
)
#: Generous: the distance table keeps one entry per agent ever seen (about 0.6 KiB with its
#: owner key and the due heap's tuples); ownership must add next to nothing per departed agent.
MAX_RETAINED_BYTES_PER_AGENT = 2_048
#: With finished simulations deleted only dict capacity stays behind (measured: about 50 bytes).
MAX_RETAINED_BYTES_PER_AGENT_DELETED = 256


@pytest.fixture(scope="module")
def default_run() -> dict[str, object]:
    return run_variant(TINY, Variant("default", RuntimeConfig()))


def test_ownership_is_bounded_by_what_the_tree_holds(default_run: dict[str, object]) -> None:
    """Guards against ownership records outliving their nodes (``NodeOwners.forget`` not
    reached or doing nothing): the records of departed agents would pile up."""
    samples = default_run["samples"]
    assert isinstance(samples, list) and len(samples) == TINY.checkpoints
    for sample in samples:
        assert sample["owned_nodes"] <= sample["tree_nodes"], sample
        assert sample["owners"] <= sample["agents_with_path"], sample
        assert sample["owner_refs"] <= sample["owners"] + sample["tree_nodes"], sample
    last = samples[-1]
    assert last["agents_seen"] == TINY.agents
    assert last["agents_with_path"] < TINY.agents // 2  # whole simulations left the tree


def test_retained_bytes_per_agent_stay_under_a_generous_bound(
    default_run: dict[str, object],
) -> None:
    retained = default_run["retained"]
    assert isinstance(retained, dict) and retained["agents"] == TINY.agents
    assert 0 < retained["bytes_per_agent"] < MAX_RETAINED_BYTES_PER_AGENT


def test_deleting_finished_simulations_frees_their_state() -> None:
    """DELETE of a finished namespace drops its distances, due entries and owners."""
    deleted = run_variant(TINY, Variant("delete", RuntimeConfig(), delete_finished=True))
    last = deleted["samples"][-1]
    assert (last["owners"], last["table_entries"], last["namespaces"]) == (0, 0, 0)
    assert last["due_entries"] == 0
    assert deleted["retained"]["bytes_per_agent"] < MAX_RETAINED_BYTES_PER_AGENT_DELETED


def test_cli_writes_json_and_markdown_named_by_machine(tmp_path: Path) -> None:
    argv = ["--agents", "200", "--namespace-agents", "50", "--capacity-tokens", "512"]
    argv += ["--traced-agents", "100", "--checkpoints", "2", "--final-hint", "unkept"]
    main([*argv, "--out-dir", str(tmp_path)])
    (json_path,) = tmp_path.glob("churn-*-unkept-hints.json")
    result = json.loads(json_path.read_text())
    assert [variant["variant"] for variant in result["variants"]] == [
        variant.name for variant in default_variants(ChurnParams().period)
    ]
    assert result["params"]["final_hint"] == FinalHint.UNKEPT.value
    assert json_path.with_suffix(".md").read_text().startswith("# Churn: 200 agents")
