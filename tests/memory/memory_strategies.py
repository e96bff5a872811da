"""Hypothesis strategies shared by the memory property tests."""

from __future__ import annotations

from typing import NamedTuple

from hypothesis import strategies as st

from scalesim.memory import Resource, Tier

AGENTS = [f"a{index}" for index in range(6)]


class Scenario(NamedTuple):
    resources: list[Resource]
    distances: dict[str, float | None]
    now: float


@st.composite
def resources(draw: st.DrawFn, *, max_size: int = 12) -> list[Resource]:
    count = draw(st.integers(0, max_size))
    return [
        Resource(
            key=f"r{index:02d}",
            owners=tuple(draw(st.lists(st.sampled_from(AGENTS), max_size=3))),
            size_bytes=draw(st.integers(0, 50)),
            tier=draw(st.sampled_from(list(Tier))),
            last_use=float(draw(st.integers(0, 10))),
            locked=draw(st.sampled_from([False, False, True])),
            pinned=draw(st.sampled_from([False, False, False, True])),
        )
        for index in range(count)
    ]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    distance = st.one_of(st.none(), st.integers(0, 20).map(float))
    return Scenario(
        resources=draw(resources()),
        distances=draw(st.dictionaries(st.sampled_from(AGENTS), distance)),
        now=float(draw(st.integers(0, 5))),
    )
