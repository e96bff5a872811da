"""How much of each agent's latest path its next call will reuse, learned from its past paths.

Who calls it: the runtime, each time an agent's request inserts its path into the tree
(:meth:`~scalesim.runtime.ScaleSimRuntime.record_path`). A simulation's prompt ends with what
its next call will not repeat (this step's observation, the post just read, the reply; or a
memory block it rewrites): owning that tail as "needed soon" keeps dead state in both tiers.
The server cannot see the prompt's structure, so it compares token runs: when a request comes,
it measures how much of the agent's previous path the new one repeated. Two guesses for the
new path follow: the next call repeats as much as this one did (a fixed prefix: persona and
memory, then a tail of any length), or all but a tail as long as this one left (a growing
prompt: the memory gains what the last call wrote). Both read the median of the agent's last
``RECENT`` transitions, not the last one alone: a call that rewrote the agent's memory repeated
only the persona, and guessing from it alone would disown the new memory the next calls repeat.
Each agent uses the guess that missed the actual reuse by less over its recent calls (the
larger one until they differ).

Paths are kept as cumulative hashes of ``chunk``-token runs (so memory is a small integer per
chunk per agent, and the reused length is exact to a chunk, rounded down); chunked prefill
records the same request several times, and only a new request starts a new comparison.

Invariants: pure function of the token ids recorded (Python's tuple-of-int hash is the same in
every process), so tensor-parallel ranks agree; one record per agent with a path, dropped with
the agent.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: Decay of an agent's record of how far each guess missed, per request.
MISS_KEEP = 0.8
#: Transitions (a request and the one before) each guess takes the median of.
RECENT = 3


@dataclass
class _Record:
    request: str | None = None  # the request whose path ``current`` is (None: unnamed)
    current: array = field(default_factory=lambda: array("q"))  # type: ignore[type-arg]
    current_tokens: int = 0
    previous: array | None = None  # type: ignore[type-arg]
    previous_tokens: int = 0
    guesses: tuple[int, int] | None = None  # (fixed, growing) guesses for ``current``'s reuse
    previous_guesses: tuple[int, int] | None = None
    reuses: list[int] = field(default_factory=list)  # tokens repeated, last RECENT transitions
    tails: list[int] = field(default_factory=list)  # tokens left unrepeated, the same ones
    fixed_miss: float = 0.0  # decayed |guess - actual reuse| of each guess
    growing_miss: float = 0.0


class PathReuse:
    """Per agent: how much of its latest path it owns (what its next call should repeat)."""

    def __init__(self, chunk: int) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.chunk = chunk
        self._records: dict[str, _Record] = {}

    def __len__(self) -> int:
        return len(self._records)

    def record(self, owner: str, tokens: Sequence[int], *, request: str | None = None) -> int:
        """``owner``'s request ``request`` inserted the path ``tokens``; returns how many of its
        leading tokens the owner's next call is expected to reuse.

        Each call with ``request`` None, or a request other than the last one, is a new request.
        """
        record = self._records.get(owner)
        if record is None:
            record = self._records[owner] = _Record()
        new_request = request is None or request != record.request
        if new_request:
            if record.current_tokens:
                record.previous, record.previous_tokens = record.current, record.current_tokens
                record.previous_guesses = record.guesses
            record.request = request
        record.current, record.current_tokens = self._hashes(tokens), len(tokens)
        if record.previous is None:
            record.guesses = (len(tokens), len(tokens))
            return len(tokens)
        common = _common_chunks(record.previous, record.current) * self.chunk
        reused = min(common, record.previous_tokens)
        if new_request and record.previous_guesses is not None:
            fixed, growing = record.previous_guesses
            record.fixed_miss = record.fixed_miss * MISS_KEEP + abs(fixed - reused)
            record.growing_miss = record.growing_miss * MISS_KEEP + abs(growing - reused)
        if new_request:
            record.reuses = [*record.reuses[1 - RECENT :], reused]
            record.tails = [*record.tails[1 - RECENT :], record.previous_tokens - reused]
        else:  # a later chunk of the same request: its transition is the same one, longer
            record.reuses[-1], record.tails[-1] = reused, record.previous_tokens - reused
        fixed = min(_median(record.reuses), len(tokens))
        growing = max(0, len(tokens) - _median(record.tails))
        record.guesses = (fixed, growing)
        if record.fixed_miss != record.growing_miss:
            return fixed if record.fixed_miss < record.growing_miss else growing
        return max(fixed, growing)

    def agents(self) -> Iterable[str]:
        return self._records.keys()

    def forget(self, owners: Iterable[str]) -> None:
        for owner in owners:
            self._records.pop(owner, None)

    def _hashes(self, tokens: Sequence[int]) -> array:  # type: ignore[type-arg]
        """Cumulative hash after each whole chunk (a trailing partial chunk is left out)."""
        out = array("q")
        running = 0
        for start in range(0, len(tokens) - self.chunk + 1, self.chunk):
            running = hash((running, *tokens[start : start + self.chunk]))
            out.append(running)
        return out


def _median(values: list[int]) -> int:
    """The middle value (of two, the larger)."""
    return sorted(values)[len(values) // 2]


def _common_chunks(left: array, right: array) -> int:  # type: ignore[type-arg]
    """How many leading cumulative hashes agree (binary search: they agree on a prefix)."""
    low, high = 0, min(len(left), len(right))
    while low < high:
        middle = (low + high + 1) // 2
        if left[middle - 1] == right[middle - 1]:
            low = middle
        else:
            high = middle - 1
    return low
