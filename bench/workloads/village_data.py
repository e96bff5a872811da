"""The Generative Agents replay as per-persona timelines: the real data behind ``village``.

Who calls it: ``village.py`` (and the tests, to compare a trace with the data). Reads
``generative_agents/master_movement.json`` and ``meta.json`` (see their ``SOURCE.md``):
three personas over one day of 10 s steps, where a persona appears in a step only when
its position, action or chat changed. This module turns that into, per persona, the
steps at which its action description changed (:class:`Entry`), its tile position at
every step, and the day's conversations with their speakers in order.

Invariants: only the first ``DAY_STEPS`` steps are kept (the replay runs 15 steps past
midnight), so the day repeats without overlap; every entry's ``planned_end`` is at or
after its ``step`` and may pass the day's end (the night's sleep ends at the next
day's wake-up).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .common import DAY_STEPS, STEP_SECONDS
from .real_data import GENERATIVE_AGENTS, data_file

_CONVERSING = "conversing about"
_PERSONA_ADDRESS = "<persona> "


@dataclass(frozen=True)
class Entry:
    """A persona's action from ``step`` (step of the day) on.

    ``planned_end`` is when the agent's plan ends this action: the step of the next
    planned action (see :func:`_planned_end`; a simulation knows its plan, not the
    conversations that will interrupt it). For a conversation it is the conversation's
    end.
    """

    step: int
    description: str
    sector: str
    conversing: bool
    planned_end: int

    @property
    def activity(self) -> str:
        """The plan item this action belongs to (the text before its sub-task)."""
        return self.description.split(" @ ")[0].split(" (")[0]

    @property
    def asleep(self) -> bool:
        """Whether the persona sleeps during this action."""
        return self.description.startswith("sleeping")


@dataclass(frozen=True)
class Conversation:
    """A conversation starting at ``step``; ``speakers`` holds the persona of each turn.

    ``ends[k]`` is the step at which participant ``participants[k]`` resumes its own
    actions (its next entry).
    """

    step: int
    participants: tuple[int, int]
    ends: tuple[int, int]
    speakers: tuple[int, ...]


@dataclass(frozen=True)
class VillageReplay:
    """The whole replay: persona names, their entries and positions, the conversations."""

    names: tuple[str, ...]
    entries: tuple[tuple[Entry, ...], ...]
    positions: tuple[tuple[tuple[int, int], ...], ...]
    conversations: tuple[Conversation, ...]


def load_village(data_dir: Path | None = None) -> VillageReplay:
    """The replay under ``data_dir`` (default: ``real_data.default_data_dir()``).

    Raises:
        FileNotFoundError: the data set is missing (the message says how to point at it).
        ValueError: the replay does not use 10 s steps or misses a persona at step 0.
    """
    meta_path = data_file(data_dir, GENERATIVE_AGENTS, "meta.json")
    movement_path = data_file(data_dir, GENERATIVE_AGENTS, "master_movement.json")
    return _load(str(meta_path.resolve()), str(movement_path.resolve()))


@lru_cache(maxsize=4)
def _load(meta_path: str, movement_path: str) -> VillageReplay:
    meta = json.loads(Path(meta_path).read_text(encoding="utf-8"))
    if meta.get("sec_per_step") != STEP_SECONDS:
        raise ValueError(f"{meta_path}: sec_per_step must be {STEP_SECONDS}")
    names = tuple(str(name) for name in meta["persona_names"])
    frames = _frames(json.loads(Path(movement_path).read_text(encoding="utf-8")), names)
    raw_entries = [_changes(frames, name) for name in names]
    conversations = _conversations(frames, names, raw_entries)
    entries = tuple(
        _with_planned_ends(raw, conversations, index) for index, raw in enumerate(raw_entries)
    )
    positions = tuple(
        tuple(
            (int(frame[name]["movement"][0]), int(frame[name]["movement"][1])) for frame in frames
        )
        for name in names
    )
    return VillageReplay(names, entries, positions, conversations)


def _frames(movement: dict[str, Any], names: tuple[str, ...]) -> list[dict[str, Any]]:
    """The full state of every persona at each step (the replay stores changes only)."""
    current: dict[str, Any] = {}
    frames = []
    for step in range(DAY_STEPS):
        current = {**current, **movement.get(str(step), {})}
        if step == 0 and set(names) - set(current):
            raise ValueError(f"step 0 of the replay lacks {sorted(set(names) - set(current))}")
        frames.append(current)
    return frames


def _changes(frames: list[dict[str, Any]], name: str) -> list[tuple[int, str]]:
    """(step, description) each time ``name``'s description changes."""
    changes: list[tuple[int, str]] = []
    for step, frame in enumerate(frames):
        description = str(frame[name]["description"])
        if not changes or changes[-1][1] != description:
            changes.append((step, description))
    return changes


def _conversations(
    frames: list[dict[str, Any]], names: tuple[str, ...], changes: list[list[tuple[int, str]]]
) -> tuple[Conversation, ...]:
    """Each conversation once: the step its chat first appears, its speakers in order."""
    seen: set[tuple[int, str]] = set()
    found: list[Conversation] = []
    for step, frame in enumerate(frames):
        for index, name in enumerate(names):
            chat = frame[name].get("chat")
            previous = frames[step - 1][name].get("chat") if step else None
            key = (step, json.dumps(chat))
            if not chat or chat == previous or key in seen:
                continue
            seen.add(key)
            speakers = tuple(names.index(str(line[0])) for line in chat)
            partners = sorted(set(speakers) - {index})
            if not partners:
                raise ValueError(f"step {step}: a conversation of {name} with no other speaker")
            pair = (index, partners[0])
            ends = (_next_change(changes[pair[0]], step), _next_change(changes[pair[1]], step))
            found.append(Conversation(step, pair, ends, speakers))
    return tuple(found)


def _next_change(changes: list[tuple[int, str]], step: int) -> int:
    """The first change after ``step`` (the day's end when there is none)."""
    return next((change for change, _ in changes if change > step), DAY_STEPS)


def _with_planned_ends(
    changes: list[tuple[int, str]], conversations: tuple[Conversation, ...], persona: int
) -> tuple[Entry, ...]:
    ends = {
        conversation.step: conversation.ends[conversation.participants.index(persona)]
        for conversation in conversations
        if persona in conversation.participants
    }
    entries = []
    for index, (step, description) in enumerate(changes):
        conversing = _is_conversing(description)
        planned = ends.get(step, step) if conversing else _planned_end(changes, index)
        entries.append(Entry(step, description, _sector(description), conversing, planned))
    return tuple(entries)


def _planned_end(changes: list[tuple[int, str]], index: int) -> int:
    """End of action ``index`` by the plan: the start of the next action of the plan.

    Conversations, the same action resumed after one and the chat sub-task that
    Generative Agents inserts after a conversation (``(conversing about ...)``) are not
    plan items, so they are skipped: a simulation cannot foresee them, and the estimate
    of an interrupted action overshoots by the interruption. The day repeats, so the
    night's sleep runs into the next day's entries.
    """
    description = changes[index][1]
    for position in range(index + 1, index + 1 + len(changes)):
        step, following = _periodic(changes, position)
        unplanned = _is_conversing(following) or f"({_CONVERSING}" in following
        if not unplanned and following != description:
            return step
    return changes[index][0] + DAY_STEPS


def _periodic(changes: list[tuple[int, str]], position: int) -> tuple[int, str]:
    """Change ``position`` of the repeating day (positions past the end are later days)."""
    day, index = divmod(position, len(changes))
    step, description = changes[index]
    return step + day * DAY_STEPS, description


def _is_conversing(description: str) -> bool:
    return description.startswith(_CONVERSING) and f"@ {_PERSONA_ADDRESS}" in description


def _sector(description: str) -> str:
    """The building of the address (``the Ville:<sector>:...``); empty in a conversation."""
    address = description.split(" @ ")[-1]
    parts = address.split(":")
    return parts[1] if len(parts) > 1 and not address.startswith(_PERSONA_ADDRESS) else ""
