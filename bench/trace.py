"""Workload traces (format ``scalesim-trace`` version 1): records, reader, writer.

The generators in ``workloads/`` build a :class:`Trace` and write it with
:func:`write_trace`; the replay reads it back with :func:`read_trace`, which
validates every line and names the line of the first problem. The format is
specified in ``docs/trace-format.md``: a header line, then ``call`` and ``hint``
events ordered by step. Unknown event types and unknown fields are skipped so
that files written by later extensions of version 1 still read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

TRACE_FORMAT = "scalesim-trace"
TRACE_VERSION = 1

_MASK64 = (1 << 64) - 1


class TraceError(ValueError):
    """A trace file or record that breaks the format; the message names the line."""


@dataclass(frozen=True)
class Segment:
    """A run of ``n_tokens`` tokens whose content is determined by ``seg`` alone."""

    seg: str
    n_tokens: int


@dataclass(frozen=True)
class TraceHeader:
    """Line 1 of a trace: ``agents`` distinct agent ids over ``steps`` steps."""

    name: str
    agents: int
    steps: int
    seed: int | None = None
    description: str = ""


@dataclass(frozen=True)
class Call:
    """One LLM request of ``agent`` wanted at ``step``; waits for ``deps`` to complete."""

    id: str
    agent: str
    step: int
    prompt: tuple[Segment, ...]
    output_len: int
    deps: tuple[str, ...] = ()
    lora: str | None = None

    @property
    def prompt_tokens(self) -> int:
        """Number of prompt tokens (sum of the segment lengths)."""
        return sum(segment.n_tokens for segment in self.prompt)


@dataclass(frozen=True)
class Hint:
    """At ``step`` the simulation expects ``agent``'s next call at ``next_step`` (None: none)."""

    step: int
    agent: str
    next_step: int | None


Event = Call | Hint


@dataclass(frozen=True)
class Trace:
    """A header and its events in file order."""

    header: TraceHeader
    events: tuple[Event, ...]

    @property
    def calls(self) -> tuple[Call, ...]:
        """The call events, in file order."""
        return tuple(event for event in self.events if isinstance(event, Call))

    @property
    def hints(self) -> tuple[Hint, ...]:
        """The hint events, in file order."""
        return tuple(event for event in self.events if isinstance(event, Hint))


def segment_token(seg: str, index: int, vocab_size: int) -> int:
    """Token id in ``[0, vocab_size)`` of token ``index`` of segment ``seg``.

    Stable across processes and Python versions (blake2b of the segment id, then
    a splitmix64 step per index), so a live replay and the cache replay build the
    same token keys. Callers that must avoid special tokens map the result
    into the ordinary range themselves.
    """
    if vocab_size <= 0 or index < 0:
        raise ValueError(f"need vocab_size > 0 and index >= 0, got {vocab_size}, {index}")
    mixed = (_segment_seed(seg) + (index + 1) * 0x9E3779B97F4A7C15) & _MASK64
    mixed = ((mixed ^ (mixed >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    mixed = ((mixed ^ (mixed >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (mixed ^ (mixed >> 31)) % vocab_size


@lru_cache(maxsize=65536)
def _segment_seed(seg: str) -> int:
    return int.from_bytes(hashlib.blake2b(seg.encode(), digest_size=8).digest(), "little")


def write_trace(path: Path, trace: Trace) -> None:
    """Write ``trace`` to ``path`` as JSON Lines (compact, keys in a fixed order)."""
    with path.open("w", encoding="utf-8") as handle:
        for line in _encode_lines(trace):
            handle.write(line)
            handle.write("\n")


def _encode_lines(trace: Trace) -> Iterator[str]:
    header = trace.header
    record: dict[str, Any] = {
        "type": "header",
        "format": TRACE_FORMAT,
        "version": TRACE_VERSION,
        "name": header.name,
        "agents": header.agents,
        "steps": header.steps,
    }
    if header.seed is not None:
        record["seed"] = header.seed
    record["description"] = header.description
    yield _dumps(record)
    for event in trace.events:
        yield _dumps(_encode_call(event) if isinstance(event, Call) else _encode_hint(event))


def _encode_call(call: Call) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "call", "id": call.id, "agent": call.agent}
    record["step"] = call.step
    if call.deps:
        record["deps"] = list(call.deps)
    record["prompt"] = [{"seg": part.seg, "len": part.n_tokens} for part in call.prompt]
    record["output_len"] = call.output_len
    if call.lora is not None:
        record["lora"] = call.lora
    return record


def _encode_hint(hint: Hint) -> dict[str, Any]:
    return {"type": "hint", "step": hint.step, "agent": hint.agent, "next_step": hint.next_step}


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def read_trace(path: Path) -> Trace:
    """Read and validate the trace at ``path``.

    Checks: the header comes first with this format and version; call ids are
    unique; ``deps`` name earlier calls; steps never decrease and lie in
    ``[0, steps)``; segment and output lengths are positive; no more distinct
    agents than the header declares. Raises :class:`TraceError` naming the line.
    """
    with path.open(encoding="utf-8") as handle:
        return parse_trace(handle)


def parse_trace(lines: Iterable[str]) -> Trace:
    """Parse and validate trace lines (see :func:`read_trace`)."""
    header: TraceHeader | None = None
    checker: _Checker | None = None
    events: list[Event] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        record = _load_record(text, number)
        if header is None or checker is None:
            header = _parse_header(record, number)
            checker = _Checker(header)
            continue
        kind = record.get("type")
        if kind == "call":
            events.append(checker.accept_call(_parse_call(record, number), number))
        elif kind == "hint":
            events.append(checker.accept_hint(_parse_hint(record, number), number))
        elif kind == "header":
            raise TraceError(f"line {number}: a second header")
        elif not isinstance(kind, str):
            raise TraceError(f"line {number}: 'type' must be a string")
    if header is None:
        raise TraceError("line 1: empty trace, expected a header")
    return Trace(header=header, events=tuple(events))


class _Checker:
    """Cross-line validation: order, uniqueness, references, agent count."""

    def __init__(self, header: TraceHeader) -> None:
        self._header = header
        self._last_step = 0
        self._call_ids: set[str] = set()
        self._agents: set[str] = set()

    def accept_call(self, call: Call, number: int) -> Call:
        self._check_step(call.step, call.agent, number)
        if call.id in self._call_ids:
            raise TraceError(f"line {number}: duplicate call id {call.id!r}")
        for dep in call.deps:
            if dep not in self._call_ids:
                raise TraceError(f"line {number}: dep {dep!r} is not an earlier call")
        self._call_ids.add(call.id)
        return call

    def accept_hint(self, hint: Hint, number: int) -> Hint:
        self._check_step(hint.step, hint.agent, number)
        if hint.next_step is not None and hint.next_step < hint.step:
            raise TraceError(f"line {number}: next_step {hint.next_step} before step {hint.step}")
        return hint

    def _check_step(self, step: int, agent: str, number: int) -> None:
        if not 0 <= step < self._header.steps:
            raise TraceError(f"line {number}: step {step} outside [0, {self._header.steps})")
        if step < self._last_step:
            raise TraceError(f"line {number}: step {step} after step {self._last_step}")
        self._last_step = step
        self._agents.add(agent)
        if len(self._agents) > self._header.agents:
            raise TraceError(
                f"line {number}: agent {agent!r} exceeds the header's {self._header.agents} agents"
            )


def _load_record(text: str, number: int) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise TraceError(f"line {number}: invalid JSON: {error.msg}") from error
    if not isinstance(record, dict):
        raise TraceError(f"line {number}: expected a JSON object")
    return record


def _parse_header(record: dict[str, Any], number: int) -> TraceHeader:
    if record.get("type") != "header":
        raise TraceError(f"line {number}: expected the header first")
    if record.get("format") != TRACE_FORMAT:
        raise TraceError(f"line {number}: format must be {TRACE_FORMAT!r}")
    if record.get("version") != TRACE_VERSION:
        raise TraceError(f"line {number}: unsupported version {record.get('version')!r}")
    seed = record.get("seed")
    if seed is not None:
        seed = _int(record, "seed", number, minimum=None)
    return TraceHeader(
        name=_str(record, "name", number),
        agents=_int(record, "agents", number, minimum=0),
        steps=_int(record, "steps", number, minimum=0),
        seed=seed,
        description=_description(record, number),
    )


def _description(record: dict[str, Any], number: int) -> str:
    description = record.get("description", "")
    if not isinstance(description, str):
        raise TraceError(f"line {number}: 'description' must be a string")
    return description


def _parse_call(record: dict[str, Any], number: int) -> Call:
    prompt = record.get("prompt")
    if not isinstance(prompt, list) or not prompt:
        raise TraceError(f"line {number}: 'prompt' must be a non-empty list")
    deps = record.get("deps", [])
    if not isinstance(deps, list) or not all(isinstance(dep, str) for dep in deps):
        raise TraceError(f"line {number}: 'deps' must be a list of strings")
    lora = record.get("lora")
    if lora is not None and not isinstance(lora, str):
        raise TraceError(f"line {number}: 'lora' must be a string")
    return Call(
        id=_str(record, "id", number),
        agent=_str(record, "agent", number),
        step=_int(record, "step", number, minimum=0),
        prompt=tuple(_parse_segment(part, number) for part in prompt),
        output_len=_int(record, "output_len", number, minimum=1),
        deps=tuple(deps),
        lora=lora,
    )


def _parse_segment(part: Any, number: int) -> Segment:
    if not isinstance(part, dict):
        raise TraceError(f"line {number}: a prompt segment must be an object")
    return Segment(seg=_str(part, "seg", number), n_tokens=_int(part, "len", number, minimum=1))


def _parse_hint(record: dict[str, Any], number: int) -> Hint:
    if "next_step" not in record:
        raise TraceError(f"line {number}: missing 'next_step'")
    next_step = record["next_step"]
    return Hint(
        step=_int(record, "step", number, minimum=0),
        agent=_str(record, "agent", number),
        next_step=None if next_step is None else _int(record, "next_step", number, minimum=0),
    )


def _str(record: dict[str, Any], key: str, number: int) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value:
        raise TraceError(f"line {number}: {key!r} must be a non-empty string")
    return value


def _int(record: dict[str, Any], key: str, number: int, *, minimum: int | None) -> int:
    value = record.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TraceError(f"line {number}: {key!r} must be an integer")
    if minimum is not None and value < minimum:
        raise TraceError(f"line {number}: {key!r} must be >= {minimum}, got {value}")
    return value
