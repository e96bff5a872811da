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

What it owns is still a bet: an agent whose memory is rewritten after some calls (a
reflection, a repost) leaves the owned memory dead until its next call shows it. Each agent's
record also keeps the odds that its next call repeats a given depth (:meth:`PathReuse.odds`),
so that the ranking can weigh a rewritten-now-and-then memory by its chance of reuse (diffusion,
300 agents x 2,880 steps, device 0.25, host 1.0: ScaleSim recomputed 4% less, 20% less excess).

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
#: Transitions whose least reuse is the part an agent's next call surely repeats.
SURE_RECENT = 8
#: Decay of an agent's record of how often its calls repeated all it owned, per request.
KEPT_KEEP = 0.9


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
    owned: int = 0  # tokens of ``current`` the agent owns (the guess returned)
    previous_owned: int = 0
    kept: float = 0.0  # decayed transitions that repeated what the previous call owned
    transitions: float = 0.0
    slack: int = 0  # tokens of the owned part the latest transition may miss and still count
    whole: bool = True  # whether the latest transition counted as repeating it
    sure: list[int] = field(default_factory=list)  # tokens repeated, last SURE_RECENT transitions


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
            record.previous_owned = record.owned
        record.current, record.current_tokens = self._hashes(tokens), len(tokens)
        if record.previous is None:
            record.guesses = (len(tokens), len(tokens))
            record.owned = len(tokens)
            return len(tokens)
        common = _common_chunks(record.previous, record.current) * self.chunk
        reused = min(common, record.previous_tokens)
        if new_request and record.previous_guesses is not None:
            fixed, growing = record.previous_guesses
            record.fixed_miss = record.fixed_miss * MISS_KEEP + abs(fixed - reused)
            record.growing_miss = record.growing_miss * MISS_KEEP + abs(growing - reused)
        if new_request:
            # the first path was owned whole, tail included: its transition shows no rewrite
            record.slack = self.chunk - 1 if record.tails else record.previous_tokens
            record.whole = record.previous_owned - reused <= record.slack
            record.kept = record.kept * KEPT_KEEP + record.whole
            record.transitions = record.transitions * KEPT_KEEP + 1.0
            record.sure = [*record.sure[1 - SURE_RECENT :], reused]
            record.reuses = [*record.reuses[1 - RECENT :], reused]
            record.tails = [*record.tails[1 - RECENT :], record.previous_tokens - reused]
        else:  # a later chunk of the same request: its transition is the same one, longer
            whole = record.previous_owned - reused <= record.slack
            record.kept += whole - record.whole  # the latest transition has weight 1
            record.whole = whole
            record.sure[-1] = reused
            record.reuses[-1], record.tails[-1] = reused, record.previous_tokens - reused
        fixed = min(_median(record.reuses), len(tokens))
        growing = max(0, len(tokens) - _median(record.tails))
        record.guesses = (fixed, growing)
        if record.fixed_miss != record.growing_miss:
            record.owned = fixed if record.fixed_miss < record.growing_miss else growing
        else:
            record.owned = max(fixed, growing)
        return record.owned

    def odds(self, owner: str, depth: int) -> float:
        """How likely ``owner``'s next call repeats its latest path up to ``depth`` tokens.

        1 within what each of its last ``SURE_RECENT`` calls repeated (the persona); deeper,
        the decayed share of its calls that repeated all the call before owned (to a chunk:
        reuse is measured in whole chunks), counting one prior call that did and one that did
        not, so an agent seen a few times is not taken at its word. 1 for an agent without a
        record."""
        record = self._records.get(owner)
        if record is None or not record.sure or depth <= min(record.sure):
            return 1.0
        return (record.kept + 1.0) / (record.transitions + 2.0)

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
