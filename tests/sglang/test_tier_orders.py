"""Exact eviction orders of the ``scalesim`` policy on SGLang's real cache, on both tiers.

Device tier: SGLang's unified-radix-cache kit builds the cache (Python tree core, CPU pools);
the tests evict one node at a time and read the order off the tree (``tier_harness.py``).
Host tier: HiCache on CPU needs ScaleSim's CPU compatibility layer, which rebinds torch
globals, so ``host_tier_orders.py`` runs the host case in a subprocess and prints its orders as
JSON for the tests here to assert (with one step of host prefetch beside a waiting request).
Last, each FULL-only config of SGLang's kit runs a request sequence under ``scalesim`` with
SGLang's own tree sanity check and a slot-leak check after every request.

Both processes spend most of their time importing SGLang, so the module imports it lazily
(in the ``harness`` fixture) after starting the subprocess: the two imports overlap.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from script_run import ScriptRun

HERE = Path(__file__).resolve().parent
HOST_SCRIPT = HERE / "host_tier_orders.py"
HOST_TIMEOUT_S = 180
#: Page sizes of the FULL-only configs in SGLang's kit (``CONFIGS``); checked below.
KIT_FULL_PAGE_SIZES = (1, 4, 16, 64, 128)


@pytest.fixture(scope="module")
def host_start(request: pytest.FixtureRequest) -> Iterator[ScriptRun | None]:
    """Starts the host-tier subprocess if a selected test needs it (before SGLang is imported
    here, so both imports run at once)."""
    needed = any("host_run" in item.fixturenames for item in request.session.items)
    run = ScriptRun(HOST_SCRIPT, timeout_s=HOST_TIMEOUT_S) if needed else None
    yield run
    if run is not None:
        run.stop()


@pytest.fixture(scope="module")
def harness(host_start: ScriptRun | None) -> ModuleType:
    """``tier_harness`` (which imports SGLang), with ScaleSim's tree hooks installed once."""
    import tier_harness
    from scalesim.patches.registration import register_and_verify
    from scalesim.patches.table import TREE_HOOKS

    register_and_verify(TREE_HOOKS)
    return tier_harness


@pytest.fixture(scope="module")
def host_run(host_start: ScriptRun | None) -> ScriptRun:
    assert host_start is not None
    return host_start


# ---- device tier ---------------------------------------------------------------------------
A, B, C, D = [1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]


def test_device_evicting_n_tokens_keeps_the_nearest_agents(harness: ModuleType) -> None:
    cache = harness.TierHarness()
    for agent, tokens in (("a", A), ("b", B), ("c", C), ("d", D)):
        cache.insert(agent, agent, tokens)
    cache.update({"a": 1.0, "b": 5.0, "c": 3.0, "d": 9.0})
    cache.evict_tokens(8)
    assert cache.on_device() == {"a", "c"}


def test_device_evicts_farthest_first_one_leaf_at_a_time(harness: ModuleType) -> None:
    cache = harness.TierHarness()
    for agent, tokens in (("a", A), ("b", B), ("c", C), ("d", D)):
        cache.insert(agent, agent, tokens)
    cache.update({"a": 1.0, "b": 5.0, "c": 3.0, "d": 9.0})
    assert cache.drain_device() == ["d", "b", "c", "a"]


def test_device_shared_prefix_ranks_by_its_nearest_owner(harness: ModuleType) -> None:
    """The prefix [1, 2] is owned by a and b (far) and by e (near): it outlives c."""
    cache = harness.TierHarness()
    cache.insert("a", "a", [1, 2, 3, 4])
    cache.insert("b", "b", [1, 2, 5, 6])
    cache.insert("prefix", "e", [1, 2])  # e's next call reuses the shared prefix only
    cache.insert("c", "c", C)
    cache.update({"a": 9.0, "b": 7.0, "c": 4.0, "e": 1.0})
    assert cache.drain_device() == ["a", "b", "c", "prefix"]


def test_device_unknown_agents_go_first_in_lru_order(harness: ModuleType) -> None:
    cache = harness.TierHarness()
    cache.insert("u1", "u1", A)
    cache.insert("far", "far", B)
    cache.insert("u2", "u2", C)
    cache.insert("near", "near", D)
    cache.update({"far": 50.0, "near": 1.0})  # u1 and u2 have no distance
    cache.touch(A)  # u1 used after u2: u2 is the least recently used unknown
    assert cache.drain_device() == ["u2", "u1", "far", "near"]


def test_device_update_of_one_namespace_leaves_another_namespaces_ranks(
    harness: ModuleType,
) -> None:
    """Owners are (namespace, agent) pairs: n2's agent "a" is not n1's agent "a"."""
    cache = harness.TierHarness()
    cache.insert("n1/a", "a", A, namespace="n1")
    cache.insert("n1/b", "b", B, namespace="n1")
    cache.insert("n2/a", "a", C, namespace="n2")
    cache.update({"a": 2.0, "b": 6.0}, namespace="n1")
    cache.update({"a": 4.0}, namespace="n2")
    n1_ranks = [cache.priority(A), cache.priority(B)]
    cache.update({"a": 19.0}, clock=10.0, namespace="n2")  # n2's a: 9 ahead of n2's clock
    assert [cache.priority(A), cache.priority(B)] == n1_ranks
    assert cache.drain_device() == ["n2/a", "n1/b", "n1/a"]


def test_device_parent_split_off_by_a_match_keeps_its_owners(harness: ModuleType) -> None:
    """Regression: a match ending inside a node makes SGLang split off a new parent; once the
    child was evicted, that parent ranked as an unknown agent's and went first."""
    cache = harness.TierHarness()
    cache.insert("a", "a", A)
    cache.insert("b", "b", B)
    cache.name("a/prefix", A[:2])
    cache.update({"a": 9.0, "b": 1.0})
    assert cache.touch(A[:2]) == 2  # splits a's node into [1, 2] -> [3, 4]
    assert cache.drain_device(steps=1) == ["a"]  # a's tail, the farthest leaf
    cache.insert("u", "u", C)  # no distance; used after the split parent
    cache.update({"a": 2.0, "b": 11.0}, clock=1.0)  # re-rank: a near, b far
    assert cache.drain_device() == ["u", "b", "a/prefix"]


# ---- host tier (HiCache on CPU, in a subprocess) -------------------------------------------
def test_host_case_backs_up_every_node_and_device_eviction_demotes_it(host_run: ScriptRun) -> None:
    results = host_run.results()
    assert results["backed_up"] == ["a", "b", "c", "prefix", "u"]
    assert results["device_order"] == ["u", "b", "c", "a", "prefix"]
    assert results["host_only"] == ["a", "b", "c", "prefix", "u"]


def test_host_tier_evicts_unknown_then_farthest_first(host_run: ScriptRun) -> None:
    assert host_run.results()["host_order_before_update"] == ["u", "b"]


def test_host_tier_follows_a_re_ranking_update(host_run: ScriptRun) -> None:
    """After the update a is 20 ahead, c 10 and b 8: a goes, then c, and the prefix (owned by
    a and b) ranks by its nearest owner b and goes last."""
    results = host_run.results()
    assert results["host_order_after_update"] == ["a", "c", "prefix"]
    assert results["host_free_tokens"] == results["host_pool_tokens"]  # no host slot leaked
    assert results["owned_nodes_left"] == 0  # ownership records left with their nodes


def test_host_prefetch_loads_the_due_agent_when_nothing_waits(host_run: ScriptRun) -> None:
    idle = host_run.results()["prefetch_idle"]
    assert idle == {"prefetched_tokens": 24, "loads_queued": 1, "room_tokens": 40}


@pytest.mark.parametrize("case", ["prefetch_waiting", "prefetch_largest"])
def test_host_prefetch_never_locks_the_room_the_next_request_needs(
    host_run: ScriptRun, case: str
) -> None:
    """A 48-token request waits (or one that large was seen): loading a's 24 tokens would leave
    40 of 64 and the request could not be admitted, so no prefill batch would ever start the
    queued copy (the live stall). The load is left to the request itself."""
    result = host_run.results()[case]
    assert result == {"prefetched_tokens": 0, "loads_queued": 0, "room_tokens": 64}


# ---- SGLang's kit configs under scalesim -----------------------------------------------------
class Simulation:
    """Two namespaces of three agents; agent i of a namespace calls every ``PERIODS[i]``.

    A prompt is the namespace's persona (2 segments), the agent's memory (1) and its
    observations so far (up to 3); after the third the memory is rewritten and the
    observations start over, so prompts share prefixes, extend and diverge. Each segment is
    ``unit`` fresh tokens.
    """

    PERIODS = (1.0, 2.5, 6.0)

    def __init__(self, unit: int) -> None:
        self.unit = unit
        self._next_token = 1
        self.persona = {ns: self._segment(2) for ns in ("n1", "n2")}
        self._memory: dict[tuple[str, int], list[int]] = {}
        self._observations: dict[tuple[str, int], list[int]] = {}
        self._due = sorted(
            (period + offset, ns, index)
            for offset, ns in ((0.0, "n1"), (0.3, "n2"))
            for index, period in enumerate(self.PERIODS)
        )

    def _segment(self, n_units: int = 1) -> list[int]:
        start = self._next_token
        self._next_token += n_units * self.unit
        return list(range(start, self._next_token))

    def next_call(self) -> tuple[str, str, list[int], float, float]:
        """(namespace, agent, prompt, clock, the agent's next call) of the next request."""
        clock, ns, index = self._due.pop(0)
        key = (ns, index)
        if key not in self._memory or len(self._observations[key]) == 3 * self.unit:
            self._memory[key] = self._segment()
            self._observations[key] = []
        self._observations[key] += self._segment()
        prompt = self.persona[ns] + self._memory[key] + self._observations[key]
        next_at = clock + self.PERIODS[index]
        self._due = sorted([*self._due, (next_at, ns, index)])
        return ns, f"agent{index}", prompt, clock, next_at


def test_kit_full_only_configs_are_the_ones_tested_here(harness: ModuleType) -> None:
    assert tuple(cfg.page_size for cfg in harness.full_only_configs()) == KIT_FULL_PAGE_SIZES


@pytest.mark.parametrize("page_size", KIT_FULL_PAGE_SIZES)
def test_kit_full_config_stays_consistent_under_scalesim(
    harness: ModuleType, page_size: int
) -> None:
    """A cache built by SGLang's kit with ``eviction_policy="scalesim"``: after every request
    of a two-simulation workload SGLang's own tree sanity check passes and no device slot
    leaks; ownership records never outlive their nodes."""
    cfg = harness.full_only_config(page_size)
    cache = harness.TierHarness(cfg)
    assert isinstance(cache.cache.tree_core.eviction_strategy, harness.ScaleSimStrategy)
    unit = max(cfg.page_size, cfg.kv_size // 16)  # tokens per segment: 16 segments fit
    simulation = Simulation(unit)
    hit_tokens = 0
    for call in range(40):
        ns, agent, prompt, clock, next_at = simulation.next_call()
        hit_tokens += cache.serve(agent, prompt, namespace=ns)
        cache.update({agent: next_at}, clock=clock, namespace=ns)
        if call % 5 == 4:
            cache.touch(prompt[:unit])  # ends inside the persona's node: SGLang splits it
        cache.cache.sanity_check()
        assert cache.unaccounted_tokens() == 0, f"slots leaked or freed twice at call {call}"
    live = cache.live_node_ids()
    owners = cache.runtime.owners
    assert owners.n_nodes <= len(live)
    assert all(owners.end_of(owner).id in live for owner in owners.owners_with_prefix(""))
    assert hit_tokens > 0 and cache.evicted_tokens > 0  # the checks above saw both
