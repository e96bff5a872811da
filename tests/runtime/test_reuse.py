"""Learned prefix ownership: an agent owns its path but the tail its last call left unreused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from runtime_tree import Tree

from scalesim.config import ConfigError
from scalesim.runtime import PrefixOwnership, RuntimeConfig, ScaleSimRuntime
from scalesim.runtime.owners import stable_node
from scalesim.runtime.reuse import PathReuse

PERSONA = tuple(range(100, 132))  # 32 tokens every prompt of the agent repeats


def _obs(start: int, size: int = 8) -> tuple[int, ...]:
    return tuple(range(start, start + size))


def test_first_path_is_owned_whole() -> None:
    tails = PathReuse(chunk=1)
    assert tails.record("ns|a", PERSONA + _obs(1)) == 40


def test_the_tail_the_next_call_did_not_repeat_is_left_unowned() -> None:
    tails = PathReuse(chunk=1)
    tails.record("ns|a", PERSONA + _obs(1))
    assert tails.record("ns|a", PERSONA + _obs(20, 12)) == 44 - 8


def test_a_prompt_that_extends_the_last_one_owns_everything() -> None:
    """A growing memory: the next prompt repeats the whole previous path."""
    tails = PathReuse(chunk=1)
    first = PERSONA + _obs(1)
    tails.record("ns|a", first)
    assert tails.record("ns|a", first + _obs(50)) == 48


def test_chunks_round_the_reused_length_down() -> None:
    tails = PathReuse(chunk=16)
    tails.record("ns|a", PERSONA + _obs(1))  # 40 tokens: two whole chunks hashed
    assert tails.record("ns|a", PERSONA + _obs(60)) == 40 - 8
    tails.record("ns|b", PERSONA[:20] + _obs(1))  # diverges inside the second chunk
    assert tails.record("ns|b", PERSONA + _obs(60)) == 40 - (28 - 16)


def test_a_request_recorded_twice_is_compared_with_the_previous_request_only() -> None:
    """Chunked prefill checkpoints one request several times; the second checkpoint must not
    count as a next call that reused the whole first one."""
    tails = PathReuse(chunk=1)
    tails.record("ns|a", PERSONA + _obs(1), request="r1")
    tails.record("ns|a", PERSONA[:16], request="r2")  # r2's first chunk
    assert tails.record("ns|a", PERSONA + _obs(30), request="r2") == 32


def test_runtime_owns_the_learned_prefix_and_drops_the_tail() -> None:
    runtime = ScaleSimRuntime(RuntimeConfig(reuse_chunk_tokens=1))
    tree = Tree(runtime)
    first = PERSONA + _obs(1)
    runtime.record_path(tree.insert(first), "ns|a", tokens=first)
    second = PERSONA + _obs(20)
    end = tree.insert(second)
    assert runtime.record_path(end, "ns|a", tokens=second) == 32
    persona = end.parent
    assert persona is not None and persona.key == PERSONA
    assert set(runtime.owners.of(persona)) == {"ns|a"}
    assert set(runtime.owners.of(end)) == set()
    assert runtime.owners.end_of("ns|a") is persona


@pytest.mark.parametrize(("cut", "owned_end"), [(28, 32), (36, 32), (38, 44), (44, 44), (16, 32)])
def test_a_node_goes_to_the_side_of_the_cut_holding_most_of_it(cut: int, owned_end: int) -> None:
    """The cut is an estimate and nodes are whole segments: the persona (32 tokens) is owned
    unless the cut leaves less than half of it, the observation (12) only with half of it."""
    tree = Tree(ScaleSimRuntime())
    tree.insert(PERSONA)
    end = tree.insert(PERSONA + _obs(20, 12))
    node = stable_node(end, end_tokens=44, stable_tokens=cut)
    assert node is (end if owned_end == 44 else end.parent)


def test_an_agent_with_a_fixed_prefix_owns_it_whatever_its_tails() -> None:
    """Observations of varying length: "repeat as much as last time" never misses, "all but a
    tail as long as last time's" does, so after one scored call the fixed guess is used."""
    tails = PathReuse(chunk=1)
    owned = [
        tails.record("ns|a", PERSONA + _obs(100 * k, size))
        for k, size in enumerate((8, 2, 12, 3, 9))
    ]
    assert owned[-2:] == [32, 32]


def test_a_growing_prompt_owns_all_but_its_tail() -> None:
    """Each call appends last call's memory line: the next call repeats everything but the
    observation, which "all but last time's tail" finds and "as much as last time" does not."""
    tails = PathReuse(chunk=1)
    memory: tuple[int, ...] = ()
    owned = []
    for k in range(5):
        memory += _obs(1000 + 10 * k, 6)
        path = PERSONA + memory + _obs(100 * k, 8)
        owned.append((tails.record("ns|a", path), len(path)))
    assert [size - kept for kept, size in owned[-2:]] == [8, 8]


@pytest.mark.parametrize("memory_tokens", [20, 28])
def test_a_memory_rewrite_does_not_disown_the_new_memory(memory_tokens: int) -> None:
    """Persona, memory, observation; one call rewrites the memory (repeating only the persona).
    The calls after it repeat the new memory (about the old one's size), so the agent owns it
    from the rewrite on (the last transition alone would have cut at the persona), and never a
    later observation."""
    runtime = ScaleSimRuntime(RuntimeConfig(reuse_chunk_tokens=1))
    tree = Tree(runtime)
    old_memory, new_memory = _obs(500, 20), _obs(700, memory_tokens)
    for k in range(3):
        path = PERSONA + old_memory + _obs(100 * k, 8 + k)
        runtime.record_path(tree.insert(path), "ns|a", tokens=path)
    rewritten = PERSONA + new_memory + _obs(900, 9)
    end = tree.insert(rewritten)  # one node: the new memory and its observation
    runtime.record_path(end, "ns|a", tokens=rewritten)
    assert runtime.owners.end_of("ns|a") is end
    after = PERSONA + new_memory + _obs(950, 7)
    end = tree.insert(after)
    runtime.record_path(end, "ns|a", tokens=after)
    assert end.parent is not None and end.parent.key == new_memory
    assert runtime.owners.end_of("ns|a") is end.parent


def test_whole_ownership_keeps_the_tail() -> None:
    config = RuntimeConfig(reuse_chunk_tokens=1, prefix_ownership=PrefixOwnership.WHOLE)
    runtime = ScaleSimRuntime(config)
    tree = Tree(runtime)
    for start in (1, 20):
        path = PERSONA + _obs(start)
        end = tree.insert(path)
        assert runtime.record_path(end, "ns|a", tokens=path) == 40
    assert set(runtime.owners.of(end)) == {"ns|a"}


def test_a_path_sharing_nothing_with_the_last_drops_the_owner() -> None:
    runtime = ScaleSimRuntime(RuntimeConfig(reuse_chunk_tokens=1))
    tree = Tree(runtime)
    for path in (_obs(1), _obs(200), _obs(400)):
        end = tree.insert(path)
        runtime.record_path(end, "ns|a", tokens=path)
    assert runtime.owners.end_of("ns|a") is None
    assert set(runtime.owners.of(end)) == set()


def test_dropping_a_namespace_forgets_its_reuse_records() -> None:
    runtime = ScaleSimRuntime(RuntimeConfig(reuse_chunk_tokens=1))
    tree = Tree(runtime)
    runtime.advance("ns", 1.0)
    path = PERSONA + _obs(1)
    runtime.record_path(tree.insert(path), "ns|a", tokens=path)
    runtime.drop_namespace("ns")
    assert len(runtime.reuse) == 0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"prefix_ownership": "half"}, "prefix_ownership"),
        ({"reuse_chunk_tokens": 0}, "reuse_chunk_tokens"),
        ({"reuse_chunk_tokens": True}, "reuse_chunk_tokens"),
        ({"reuse_chunk_tokens": "16"}, "reuse_chunk_tokens"),
    ],
)
def test_bad_ownership_settings_are_rejected(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RuntimeConfig.from_mapping(values)


_paths = st.lists(
    st.lists(st.integers(0, 3), min_size=1, max_size=24).map(tuple), min_size=1, max_size=8
)


@given(_paths, st.integers(1, 5))
def test_owned_length_is_one_of_the_two_guesses(paths: list[tuple[int, ...]], chunk: int) -> None:
    """Property: a first path is owned whole; later ones up to either the median of what the
    last three paths repeated of their predecessors or all but the median tail they left
    (reuse counted to whole chunks)."""
    tails = PathReuse(chunk=chunk)
    previous: tuple[int, ...] | None = None
    reuses: list[int] = []
    left: list[int] = []
    for path in paths:
        owned = tails.record("ns|a", path)
        assert 0 <= owned <= len(path)
        if previous is None:
            assert owned == len(path)
        else:
            common = 0
            while common < min(len(path), len(previous)) and path[common] == previous[common]:
                common += 1
            reuses = [*reuses, common // chunk * chunk][-3:]
            left = [*left, len(previous) - reuses[-1]][-3:]
            fixed = min(sorted(reuses)[len(reuses) // 2], len(path))
            growing = max(0, len(path) - sorted(left)[len(left) // 2])
            assert owned in (fixed, growing)
        previous = path
