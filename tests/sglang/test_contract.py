"""The wire contract (api.md sections 1 and 2): every rule of the request metadata and of the
distance update body, and a property that accepted bodies round-trip while any single invalid
field is refused with a message naming it."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scalesim.runtime import (
    DEFAULT_NAMESPACE,
    MAX_UPDATE_AGENTS,
    AgentMeta,
    ContractError,
    parse_agent_meta,
    parse_distance_update,
)

_ID_CHARS = "ABCXYZabcxyz0189._:@/-"
_VALID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@/-")
_LONGEST_ID = "a" * 128
_BAD_IDS = ["", "a" * 129, "a b", "a|b", "ä", "a\n", 3, None, ["a"], {"a": 1}]
_BAD_TIMES = [-1, -0.5, math.nan, math.inf, -math.inf, "3", True, None, [1], {"t": 1}]


# ---- section 1: request metadata ------------------------------------------------------------
def test_requests_without_scalesim_are_untouched() -> None:
    assert parse_agent_meta(None) is None
    assert parse_agent_meta({}) is None
    assert parse_agent_meta({"thinking_budget": 5, "other": {"nested": 1}}) is None


def test_minimal_metadata_takes_the_defaults() -> None:
    assert parse_agent_meta({"scalesim": {"agent": "a17"}}) == AgentMeta("a17")
    assert AgentMeta("a17").namespace == DEFAULT_NAMESPACE == "default"


def test_full_metadata_is_accepted() -> None:
    meta = {"agent": "a17", "namespace": "town-1", "clock": 312, "next_call": 340}
    assert parse_agent_meta({"scalesim": meta}) == AgentMeta("a17", "town-1", 312.0, 340.0)


@pytest.mark.parametrize(
    "meta",
    [
        {"agent": _LONGEST_ID, "namespace": _LONGEST_ID},
        {"agent": _ID_CHARS},
        {"agent": "a", "clock": 0, "next_call": 0},
        {"agent": "a", "clock": 5.5, "next_call": 5.5},
        {"agent": "a", "next_call": None},
        {"agent": "a", "clock": None, "next_call": 7},
        {"agent": "a", "clock": 9},
    ],
)
def test_metadata_at_the_edges_is_accepted(meta: dict[str, Any]) -> None:
    parsed = parse_agent_meta({"scalesim": meta})
    assert parsed is not None
    assert parsed.no_call == ("next_call" in meta and meta["next_call"] is None)


_PREFIX = "custom_params.scalesim."
_META_VIOLATIONS: list[tuple[dict[str, Any], str]] = [
    *(({"agent": bad}, _PREFIX + "agent") for bad in _BAD_IDS),
    *(({"agent": "a", "namespace": bad}, _PREFIX + "namespace") for bad in _BAD_IDS),
    *(({"agent": "a", "clock": bad}, _PREFIX + "clock") for bad in _BAD_TIMES if bad is not None),
    *(({"agent": "a", "next_call": bad}, _PREFIX + "next_call") for bad in _BAD_TIMES[:-3]),
    ({}, _PREFIX + "agent"),
    ({"namespace": "t"}, _PREFIX + "agent"),
    ({"agent": "a", "clock": 5, "next_call": 4.5}, _PREFIX + "next_call"),
    ({"agent": "a", "Agent": "b"}, "Agent"),
    ({"agent": "a", "distances": {"b": 1}}, "distances"),
]


@pytest.mark.parametrize(("meta", "field"), _META_VIOLATIONS)
def test_metadata_violations_are_refused_naming_the_field(meta: dict[str, Any], field: str) -> None:
    with pytest.raises(ContractError, match="custom_params") as refused:
        parse_agent_meta({"scalesim": meta})
    assert field in str(refused.value)
    assert refused.value.status == 400


@pytest.mark.parametrize("value", ["a17", 3, None, ["agent", "a17"], True])
def test_scalesim_must_be_an_object(value: object) -> None:
    with pytest.raises(ContractError, match=r"custom_params\.scalesim must be an object"):
        parse_agent_meta({"scalesim": value})


def test_custom_params_must_be_an_object() -> None:
    with pytest.raises(ContractError, match="custom_params must be an object"):
        parse_agent_meta(["scalesim"])


# ---- section 2: distance updates ------------------------------------------------------------
_EXAMPLE = {
    "namespace": "town-1",
    "clock": 312,
    "version": 57,
    "next_call": {"a17": 340, "a18": None, "a19": 313.5},
    "unknown": ["a20"],
}


def test_the_api_example_is_accepted() -> None:
    update = parse_distance_update(_EXAMPLE)
    assert (update.namespace, update.clock, update.version) == ("town-1", 312.0, 57)
    assert dict(update.next_call) == {"a17": 340.0, "a18": None, "a19": 313.5}
    assert update.unknown == ("a20",)


def test_optional_fields_take_their_defaults() -> None:
    update = parse_distance_update({"clock": 0, "next_call": {}})
    assert (update.namespace, update.version, dict(update.next_call), update.unknown) == (
        "default",
        None,
        {},
        (),
    )


def test_exactly_the_agent_limit_is_accepted() -> None:
    half = MAX_UPDATE_AGENTS // 2
    body = {
        "clock": 1,
        "next_call": {f"a{index}": 2 for index in range(half)},
        "unknown": [f"b{index}" for index in range(MAX_UPDATE_AGENTS - half)],
    }
    update = parse_distance_update(body)
    assert len(update.next_call) + len(update.unknown) == MAX_UPDATE_AGENTS


_DROP = object()


def _with(**changes: object) -> dict[str, object]:
    body = dict(_EXAMPLE)
    for key, value in changes.items():
        if value is _DROP:
            del body[key]
        else:
            body[key] = value
    return body


_UPDATE_VIOLATIONS: list[tuple[object, str]] = [
    ([], "JSON object"),
    ("body", "JSON object"),
    (None, "JSON object"),
    (_with(extra=1), "extra"),
    (_with(Namespace="t"), "Namespace"),
    (_with(clock=_DROP), "clock"),
    (_with(next_call=_DROP), "next_call"),
    *((_with(namespace=bad), "namespace") for bad in _BAD_IDS),
    *((_with(clock=bad), "clock") for bad in _BAD_TIMES),
    *((_with(version=bad), "version") for bad in [-1, 1.5, True, "57", [57]]),
    (_with(next_call=[["a17", 340]]), "next_call"),
    (_with(next_call="a17"), "next_call"),
    *((_with(next_call={bad: 340}), "next_call key") for bad in ["", "a" * 129, "a b", "a|b"]),
    *((_with(next_call={"a17": bad}), "next_call['a17']") for bad in _BAD_TIMES[:-3]),
    (_with(next_call={"a17": 311.5}), "next_call['a17']"),
    (_with(unknown="a20"), "unknown"),
    (_with(unknown={"a20": None}), "unknown"),
    *((_with(unknown=[bad]), "unknown entry") for bad in _BAD_IDS),
    (_with(unknown=["a17"]), "'a17'"),
]


@pytest.mark.parametrize(("body", "field"), _UPDATE_VIOLATIONS)
def test_update_violations_are_400_naming_the_field(body: object, field: str) -> None:
    with pytest.raises(ContractError) as refused:
        parse_distance_update(body)
    assert field in str(refused.value)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    "body",
    [
        {"clock": 1, "next_call": {f"a{index}": 2 for index in range(MAX_UPDATE_AGENTS + 1)}},
        {"clock": 1, "next_call": {}, "unknown": [f"a{i}" for i in range(MAX_UPDATE_AGENTS + 1)]},
        {"clock": 1, "next_call": {"a": 2}, "unknown": [f"b{i}" for i in range(MAX_UPDATE_AGENTS)]},
    ],
)
def test_more_agents_than_the_limit_is_413(body: dict[str, object]) -> None:
    with pytest.raises(ContractError, match="more than 100000 agents") as refused:
        parse_distance_update(body)
    assert refused.value.status == 413


# ---- properties -----------------------------------------------------------------------------
_ids = st.text(alphabet=_ID_CHARS, min_size=1, max_size=128)
_times = st.floats(min_value=0.0, max_value=1e12, allow_nan=False, allow_infinity=False)
_whole_times = st.integers(min_value=0, max_value=10**9)


@st.composite
def _update_bodies(draw: st.DrawFn) -> dict[str, Any]:
    clock = draw(st.one_of(_times, _whole_times))
    ahead = st.one_of(st.none(), _times.map(lambda delta: clock + delta))
    next_call = draw(st.dictionaries(_ids, ahead, max_size=6))
    unknown = draw(st.lists(_ids.filter(lambda agent: agent not in next_call), max_size=4))
    body: dict[str, Any] = {"clock": clock, "next_call": next_call}
    if draw(st.booleans()):
        body["unknown"] = unknown
    if draw(st.booleans()):
        body["namespace"] = draw(_ids)
    if draw(st.booleans()):
        body["version"] = draw(st.integers(min_value=0, max_value=2**62))
    return body


@given(body=_update_bodies())
def test_any_accepted_update_round_trips(body: dict[str, Any]) -> None:
    update = parse_distance_update(json.loads(json.dumps(body)))
    assert update.namespace == body.get("namespace", DEFAULT_NAMESPACE)
    assert update.clock == float(body["clock"])
    assert update.version == body.get("version")
    expected = {agent: None if at is None else float(at) for agent, at in body["next_call"].items()}
    assert dict(update.next_call) == expected
    assert update.unknown == tuple(body.get("unknown", ()))


_bad_ids = st.one_of(
    st.just(""),
    st.text(alphabet=_ID_CHARS, min_size=129, max_size=140),
    st.text(min_size=1, max_size=10).filter(lambda text: not set(text) <= _VALID_CHARS),
    st.integers(),
    st.none(),
)
_bad_times = st.one_of(
    st.floats(max_value=-1e-9),
    st.sampled_from([math.nan, math.inf, -math.inf, True, False, "1", [1]]),
)


@st.composite
def _mutations(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid body with exactly one field made invalid, and the name the error must carry."""
    body = draw(_update_bodies())
    body["unknown"] = [agent for agent in body.get("unknown", []) if agent != "zz"]
    body["next_call"].pop("zz", None)
    kind = draw(st.sampled_from(["namespace", "clock", "version", "key", "value", "unknown"]))
    if kind == "namespace":
        body[kind] = draw(_bad_ids)
    elif kind == "clock":
        body[kind] = draw(_bad_times)
    elif kind == "version":
        body[kind] = draw(st.one_of(st.integers(max_value=-1), st.sampled_from([1.5, True, "1"])))
    if kind in ("namespace", "clock", "version"):
        return body, kind
    if kind == "key":
        body["next_call"][draw(_bad_ids.filter(lambda x: isinstance(x, str)))] = None
        return body, "next_call key"
    if kind == "value":
        body["next_call"]["zz"] = draw(_bad_times)
        return body, "next_call['zz']"
    body["unknown"] = [*body["unknown"], draw(_bad_ids)]
    return body, "unknown entry"


@given(mutation=_mutations())
def test_any_single_invalid_field_is_refused_naming_it(
    mutation: tuple[dict[str, Any], str],
) -> None:
    body, field = mutation
    with pytest.raises(ContractError) as refused:
        parse_distance_update(body)
    assert refused.value.status == 400
    assert field in str(refused.value)


@st.composite
def _metadata(draw: st.DrawFn) -> dict[str, Any]:
    meta: dict[str, Any] = {"agent": draw(_ids)}
    if draw(st.booleans()):
        meta["namespace"] = draw(_ids)
    clock = draw(st.one_of(st.none(), _times))
    if clock is not None:
        meta["clock"] = clock
    if draw(st.booleans()):
        meta["next_call"] = draw(st.one_of(st.none(), _times.map(lambda d: (clock or 0.0) + d)))
    return meta


@given(meta=_metadata())
def test_any_accepted_metadata_round_trips(meta: dict[str, Any]) -> None:
    parsed = parse_agent_meta({"scalesim": json.loads(json.dumps(meta))})
    assert parsed == AgentMeta(
        meta["agent"],
        meta.get("namespace", DEFAULT_NAMESPACE),
        meta.get("clock"),
        meta.get("next_call"),
        no_call="next_call" in meta and meta["next_call"] is None,
    )


@given(
    meta=_metadata(),
    field=st.sampled_from(["agent", "namespace", "clock", "next_call"]),
    data=st.data(),
)
def test_any_invalid_metadata_field_is_refused_naming_it(
    meta: dict[str, Any], field: str, data: st.DataObject
) -> None:
    if field in ("agent", "namespace"):
        bad = data.draw(_bad_ids)
    else:  # None is a valid (absent) time
        bad = data.draw(_bad_times.filter(lambda value: value is not None))
    with pytest.raises(ContractError) as refused:
        parse_agent_meta({"scalesim": {**meta, field: bad}})
    assert f"custom_params.scalesim.{field}" in str(refused.value)
