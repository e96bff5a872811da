"""The replay's host tier: which chains stay on the host under ScaleSim's ranking, and that more
host memory never costs ScaleSim recompute."""

from __future__ import annotations

import random
from array import array

from hypothesis import example, given, settings
from hypothesis import strategies as st
from scalesim.bench.hint_noise import with_hints
from scalesim.bench.replay.engine import replay_policies
from scalesim.bench.replay.host import HostTier
from scalesim.bench.replay.policies import ScaleSimRanking, owner_of
from scalesim.bench.replay.prompts import PromptBook
from scalesim.bench.replay.result import Mode, ReplayConfig
from scalesim.bench.trace import Call, Hint, Segment, Trace, TraceHeader

from scalesim.runtime import DEFAULT_NAMESPACE, RuntimeConfig, ScaleSimRuntime


def _trace() -> Trace:
    """``a`` rewrites its memory between its two calls and calls again soon; ``b`` calls late."""
    calls = [
        Call("a1", "a", 0, (Segment("persona/a", 8), Segment("mem/a1", 8), Segment("o1", 2)), 1),
        Call("b1", "b", 0, (Segment("persona/b", 8), Segment("mem/b", 8), Segment("o2", 2)), 1),
        Call("a2", "a", 1, (Segment("persona/a", 8), Segment("mem/a2", 8), Segment("o3", 2)), 1),
    ]
    hints = [Hint(0, "a", 1), Hint(0, "b", 50), Hint(1, "a", 2)]
    return Trace(TraceHeader("host", 2, 60), (*calls, *hints))


def test_a_chain_of_a_prompt_the_agent_will_not_send_again_leaves_first() -> None:
    """Regression: host chains kept every agent that ever wrote them as owner, so ``a``'s
    rewritten memory stayed "near" on the host and ``b``'s live prefix was dropped instead."""
    book = PromptBook(_trace(), token_scale=1)
    ranking = ScaleSimRanking(book, _trace().hints)
    written = 8 + 8 + 2 + 8 + 8 + 2 + 8 + 2  # a1, b1, then a2's new memory and observation
    host = HostTier(written - 2, ranking=ranking)  # one 2-token chain too many at the end
    ranking.advance(0.0)
    host.write_through(book.prompts[0], now=1.0, owner=("a", 16))
    host.write_through(book.prompts[1], now=2.0, owner=("b", 16))
    ranking.advance(1.0)
    host.write_through(book.prompts[2], now=3.0, owner=("a", 16))
    old_memory, b_memory = book.prompts[0].chains[1], book.prompts[1].chains[1]
    assert old_memory not in host
    assert all(chain in host for chain in book.prompts[1].chains[:2])
    assert b_memory in host and book.prompts[2].chains[1] in host


def test_before_any_hint_the_host_drops_nobodys_chains_before_agents_prefixes() -> None:
    """Regression: at a simulation's first step no agent has a distance yet, so the host ranked
    agents' personas and one-off observations alike, by recency, and dropped the personas
    written first; one-off observations belong to no agent and must go first."""
    calls = [
        Call("a1", "a", 0, (Segment("persona/a", 8), Segment("mem/a", 8), Segment("o1", 6)), 1),
        Call("b1", "b", 0, (Segment("persona/b", 8), Segment("mem/b", 8), Segment("o2", 6)), 1),
    ]
    book = PromptBook(Trace(TraceHeader("first-step", 2, 10), tuple(calls)), token_scale=1)
    ranking = ScaleSimRanking(book, ())  # no hints at all
    host = HostTier(2 * (8 + 8 + 6) - 2, ranking=ranking)  # trims to 90%: 12 tokens must go
    host.write_through(book.prompts[0], now=1.0, owner=("a", 16))
    host.write_through(book.prompts[1], now=2.0, owner=("b", 16))
    assert book.prompts[0].chains[2] not in host and book.prompts[1].chains[2] not in host
    assert all(chain in host for prompt in book.prompts[:2] for chain in prompt.chains[:2])


def test_a_chain_still_on_the_device_keeps_its_host_copy_whatever_its_rank() -> None:
    """HiCache's host leaf rule (``UnifiedTreeCore._is_host_leaf``): only chains evicted from
    the device, with no longer chain below them on the host, may leave. ``b`` calls far later
    than ``a`` and its observation belongs to nobody, so the ranking puts it among the first to
    go; but ``b``'s prompt is still on the device, so the host drops ``a``'s old memory, every
    observation it may and then ``a``'s current memory instead."""
    book = PromptBook(_trace(), token_scale=1)
    ranking = ScaleSimRanking(book, _trace().hints)
    b_tokens = book.prompts[1].tokens

    def device(tokens: array) -> int:  # type: ignore[type-arg]
        return len(tokens) if tokens == b_tokens[: len(tokens)] else 0

    host = HostTier(36, ranking=ranking, device=device)  # 46 tokens written: trims to 32
    ranking.advance(0.0)
    host.write_through(book.prompts[0], now=1.0, owner=("a", 16))
    host.write_through(book.prompts[1], now=2.0, owner=("b", 16))
    ranking.advance(1.0)
    host.write_through(book.prompts[2], now=3.0, owner=("a", 16))
    a1, b1, a2 = (book.prompts[i].chains for i in range(3))
    assert [chain in host for chain in b1] == [True, True, True]
    assert [chain in host for chain in a1] == [True, False, False]  # a1[0] is a2[0]
    assert [chain in host for chain in a2] == [True, False, False]
    assert host.used_tokens == 26
    without_device = HostTier(36, ranking=ScaleSimRanking(book, _trace().hints))
    without_device.ranking.advance(0.0)  # type: ignore[attr-defined]
    without_device.write_through(book.prompts[0], now=1.0, owner=("a", 16))
    without_device.write_through(book.prompts[1], now=2.0, owner=("b", 16))
    without_device.ranking.advance(1.0)  # type: ignore[attr-defined]
    without_device.write_through(book.prompts[2], now=3.0, owner=("a", 16))
    assert b1[2] not in without_device and a2[1] in without_device  # ranks alone decide


def test_memory_an_agent_rewrites_now_and_then_leaves_before_a_later_callers() -> None:
    """``a`` calls at 10, ``b`` at 12; ``a``'s memory is rewritten at every other call, ``b``'s
    never. ``a``'s old versions belong to nobody and go first; then one more memory chain must
    go: ``a``'s, whose odds of reuse put it past 12, not ``b``'s."""
    a_versions = [0, 1, 1, 2, 2, 3, 3]
    calls = [
        Call(f"a{k}", "a", k, (Segment("persona/a", 8), Segment(f"mem/a/{v}", 8)), 1)
        for k, v in enumerate(a_versions)
    ]
    calls += [
        Call(f"b{k}", "b", k, (Segment("persona/b", 8), Segment("mem/b", 8)), 1) for k in range(7)
    ]
    book = PromptBook(Trace(TraceHeader("odds", 2, 20), tuple(calls)), token_scale=1)
    runtime = ScaleSimRuntime(RuntimeConfig(reuse_chunk_tokens=1))  # the replay's setting
    ranking = ScaleSimRanking(book, (), runtime=runtime)
    host = HostTier(1000, ranking=ranking)
    for index, call in enumerate(book.calls):
        owned = ranking.runtime.record_path(
            None, owner_of(call.agent), tokens=book.prompts[index].tokens
        )
        host.write_through(book.prompts[index], now=float(index), owner=(call.agent, owned))
    ranking.runtime.predict(DEFAULT_NAMESPACE, {"a": 10.0, "b": 12.0})
    assert host.used_tokens == 2 * 8 + 5 * 8  # two personas, a's four memories and b's
    host.capacity_tokens = 27  # trims to 24: a's three dead memories and one live one
    host.write_through(book.prompts[-1], now=99.0, owner=("b", 16))
    a_last, b_last = book.prompts[6].chains, book.prompts[-1].chains
    assert [chain in host for chain in a_last] == [True, False]
    assert [chain in host for chain in b_last] == [True, True]


def _rewriting_agents(seed: int, *, agents: int = 10, steps: int = 120) -> Trace:
    """Agents sharing a system prompt, each with a persona and a memory block it rewrites at
    one call in five, calling after random gaps (1-12 steps)."""
    rng = random.Random(seed)
    next_step = {f"a{i}": rng.randrange(4) for i in range(agents)}
    version = dict.fromkeys(next_step, 0)
    calls: list[Call] = []
    for step in range(steps):
        for agent in sorted(next_step):
            if next_step[agent] != step:
                continue
            call_id = f"c{len(calls)}"
            if rng.random() < 0.2:
                version[agent] += 1
            prompt = (
                Segment("sys", 12),
                Segment(f"persona/{agent}", 16),
                Segment(f"mem/{agent}/{version[agent]}", 8),
                Segment(f"obs/{call_id}", 3),
            )
            calls.append(Call(call_id, agent, step, prompt, 2))
            next_step[agent] = step + rng.randrange(1, 13)
    return Trace(TraceHeader("rewriting", agents, steps), tuple(calls))


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    level=st.sampled_from(["exact", "noise:0.5", "random"]),
    mode=st.sampled_from(list(Mode)),
)
@example(seed=0, level="exact", mode=Mode.LOCKSTEP)
def test_more_host_memory_never_makes_scalesim_recompute_more(
    seed: int, level: str, mode: Mode
) -> None:
    """A tier added, or grown, must never cost recompute, whatever the hints, including hosts
    smaller than the device. The example is a regression: the prefetcher probed the tree with a
    match, which marks the probed prefixes used, so a host tier that fetched nothing still
    reordered the device's evictions (20 more tokens recomputed with host 0.1)."""
    trace = with_hints(_rewriting_agents(seed), level, seed=seed)
    recomputed = [
        replay_policies(
            trace,
            ["scalesim"],
            ReplayConfig(memory_ratio=0.3, host_ratio=host, token_scale=1, mode=mode),
        )["scalesim"].recomputed_tokens
        for host in (0.0, 0.1, 0.25, 0.5, 1.0)
    ]
    assert recomputed == sorted(recomputed, reverse=True), recomputed
