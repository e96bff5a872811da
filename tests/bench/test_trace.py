"""Trace format version 1: round-trip, validation with line numbers, extensions skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scalesim.bench.trace import (
    TRACE_FORMAT,
    TRACE_VERSION,
    Call,
    Hint,
    Segment,
    Trace,
    TraceError,
    TraceHeader,
    parse_trace,
    read_trace,
    segment_token,
    write_trace,
)

# The example lines of trace-format.md (the header joined onto one line), with the
# call c1039 that the example's deps name placed before it.
SPEC_LINES = [
    '{"type": "header", "format": "scalesim-trace", "version": 1, "name": "town-500", '
    '"agents": 500, "steps": 2880, "seed": 7, "description": "free text"}',
    '{"type": "call", "id": "c1039", "agent": "a3", "step": 300, '
    '"prompt": [{"seg": "sys/town", "len": 420}], "output_len": 8}',
    '{"type": "call", "id": "c1042", "agent": "a17", "step": 312, "deps": ["c1039"], '
    '"prompt": [{"seg": "sys/town", "len": 420}, {"seg": "persona/a17", "len": 650}, '
    '{"seg": "mem/a17/v31", "len": 240}, {"seg": "obs/c1042", "len": 90}], '
    '"output_len": 48, "lora": "a17"}',
    '{"type": "hint", "step": 312, "agent": "a17", "next_step": 340}',
]


def _sample() -> Trace:
    header = TraceHeader(name="tiny", agents=2, steps=10, seed=3, description="two agents")
    prompt = (Segment("sys/t", 5), Segment("persona/a0", 3))
    events = (
        Call(id="c0", agent="a0", step=0, prompt=prompt, output_len=4, lora="a0"),
        Hint(step=0, agent="a0", next_step=4),
        Hint(step=1, agent="a1", next_step=None),
        Call(
            id="c1", agent="a1", step=4, prompt=(Segment("sys/t", 5),), output_len=2, deps=("c0",)
        ),
    )
    return Trace(header=header, events=events)


def test_round_trip_preserves_every_record(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write_trace(path, _sample())
    assert read_trace(path) == _sample()


def test_written_header_names_format_and_version(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write_trace(path, _sample())
    first = json.loads(path.read_text().splitlines()[0])
    assert (first["type"], first["format"], first["version"]) == ("header", TRACE_FORMAT, 1)
    assert TRACE_VERSION == 1


def test_spec_example_lines_parse() -> None:
    trace = parse_trace(SPEC_LINES)
    assert trace.header == TraceHeader("town-500", 500, 2880, 7, "free text")
    call = trace.calls[1]
    assert call.deps == ("c1039",)
    assert call.prompt_tokens == 420 + 650 + 240 + 90
    assert call.lora == "a17"
    assert trace.hints == (Hint(step=312, agent="a17", next_step=340),)


def test_unknown_event_types_and_fields_are_skipped() -> None:
    lines = [
        SPEC_LINES[0],
        '{"type": "checkpoint", "step": 1, "whatever": [1, 2]}',
        '{"type": "hint", "step": 2, "agent": "a1", "next_step": null, "confidence": 0.5}',
    ]
    trace = parse_trace(lines)
    assert trace.events == (Hint(step=2, agent="a1", next_step=None),)


CALL = '"prompt": [{"seg": "s", "len": 3}], "output_len": 1'
BAD_LINES = [
    ("not json", "invalid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"type": "call", "id": "c0", "agent": "a0", "step": 1, ' + CALL + "}", "duplicate"),
    ('{"type": "call", "id": "c9", "agent": "a0", "step": 0, ' + CALL + "}", "step 0 after"),
    ('{"type": "call", "id": "c9", "agent": "a0", "step": 99, ' + CALL + "}", "outside"),
    ('{"type": "call", "id": "c9", "agent": "a0", "step": 1, "deps": ["c7"], ' + CALL + "}", "dep"),
    (
        '{"type": "call", "id": "c9", "agent": "a0", "step": 1, "prompt": [], "output_len": 1}',
        "prompt",
    ),
    (
        '{"type": "call", "id": "c9", "agent": "a0", "step": 1, '
        '"prompt": [{"seg": "s", "len": 0}], "output_len": 1}',
        "'len' must be >= 1",
    ),
    (
        '{"type": "call", "id": "c9", "agent": "a0", "step": 1, '
        '"prompt": [{"seg": "s", "len": 2}], "output_len": 0}',
        "output_len",
    ),
    ('{"type": "call", "id": "c9", "agent": "a0", "step": true, ' + CALL + "}", "integer"),
    ('{"type": "call", "agent": "a0", "step": 1, ' + CALL + "}", "'id'"),
    ('{"type": "hint", "step": 2, "agent": "a0"}', "next_step"),
    ('{"type": "hint", "step": 2, "agent": "a0", "next_step": 1}', "before step"),
    ('{"type": "hint", "step": 2, "agent": "a9", "next_step": 3}', "exceeds"),
    ('{"type": "header", "format": "scalesim-trace", "version": 1}', "second header"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_malformed_line_error_names_its_line(line: str, message: str) -> None:
    header = (
        '{"type": "header", "format": "scalesim-trace", "version": 1, '
        '"name": "t", "agents": 2, "steps": 10}'
    )
    first = '{"type": "call", "id": "c0", "agent": "a0", "step": 1, ' + CALL + "}"
    other = '{"type": "hint", "step": 1, "agent": "a1", "next_step": 2}'
    with pytest.raises(TraceError, match=rf"^line 4: .*{message}"):
        parse_trace([header, first, other, line])


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ('{"type": "call", "id": "c0"}', "header first"),
        ('{"type": "header", "format": "other", "version": 1}', "format"),
        ('{"type": "header", "format": "scalesim-trace", "version": 2}', "version"),
        ('{"type": "header", "format": "scalesim-trace", "version": 1, "agents": 1}', "'name'"),
    ],
)
def test_bad_header_is_line_one(header: str, message: str) -> None:
    with pytest.raises(TraceError, match=rf"^line 1: .*{message}"):
        parse_trace([header])


def test_empty_trace_is_rejected() -> None:
    with pytest.raises(TraceError, match=r"^line 1: "):
        parse_trace([])


def test_segment_token_is_stable_and_in_range() -> None:
    tokens = [segment_token("persona/a17", index, 32000) for index in range(64)]
    assert all(0 <= token < 32000 for token in tokens)
    assert tokens == [segment_token("persona/a17", index, 32000) for index in range(64)]
    assert len(set(tokens)) > 60
    assert tokens != [segment_token("persona/a18", index, 32000) for index in range(64)]
    # Pinned values: a change here breaks every token key built from older traces.
    assert segment_token("sys/town", 0, 32000) == 22297
    assert segment_token("sys/town", 1, 32000) == 8760
    assert segment_token("mem/a17/v31", 5, 128256) == 55002
    with pytest.raises(ValueError):
        segment_token("s", -1, 10)
