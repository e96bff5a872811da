"""How much of each agent's latest path its next call will reuse, learned from its last two.

Who calls it: the runtime, each time an agent's request inserts its path into the tree
(:meth:`~scalesim.runtime.ScaleSimRuntime.record_path`). A simulation's prompt ends with what
its next call will not repeat (this step's observation, the post just read, the reply; or a
memory block it rewrites): owning that tail as "needed soon" keeps dead state in both tiers.
The server cannot see the prompt's structure, so it compares token runs: the tail of an
agent's previous path that its new path did not repeat is the tail expected of the new path
too, and the agent owns the new path up to it.

Paths are kept as cumulative hashes of ``chunk``-token runs (so memory is one small integer per
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


@dataclass
class _Record:
    request: str | None = None  # the request whose path ``current`` is (None: unnamed)
    current: array = field(default_factory=lambda: array("q"))  # type: ignore[type-arg]
    current_tokens: int = 0
    previous: array | None = None  # type: ignore[type-arg]
    previous_tokens: int = 0
    tail: int = 0  # tokens at the end of the previous path the current one did not repeat


class ReuseTails:
    """Per agent: the path it owns, as all but the tail its last call left unreused."""

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
        if request is None or request != record.request:
            if record.current_tokens:
                record.previous, record.previous_tokens = record.current, record.current_tokens
            record.request = request
        record.current, record.current_tokens = self._hashes(tokens), len(tokens)
        if record.previous is not None:
            reused = _common_chunks(record.previous, record.current) * self.chunk
            record.tail = max(0, record.previous_tokens - min(reused, record.previous_tokens))
        return max(0, len(tokens) - record.tail)

    def tail(self, owner: str) -> int:
        """The tail ``owner``'s next call is expected to leave (0: none learned yet)."""
        record = self._records.get(owner)
        return 0 if record is None else record.tail

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
