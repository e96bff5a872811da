"""The soak client's shared counters: counts, latencies and the first error messages.

Called from every load thread (``simulation``), the sampler (``samples``) and the result
(``document``). Invariant: every read and write holds the one lock, so the threads may share a
single :class:`Tally`; at most ``_MAX_EXAMPLES`` error messages are kept, each cut to 400 chars.
"""

from __future__ import annotations

import threading
from collections import Counter

_MAX_EXAMPLES = 20


class Tally:
    """Counts, latencies and error examples, shared by every thread under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.latency_s: dict[str, list[float]] = {"chat": [], "tick": []}
        self.examples: list[str] = []

    def add(self, **counts: int) -> None:
        with self._lock:
            self.counts.update(counts)

    def timed(self, kind: str, seconds: float) -> None:
        with self._lock:
            self.latency_s[kind].append(seconds)

    def error(self, kind: str, err: object) -> None:
        """Count one ``kind``; keep the first few messages to read after the run."""
        with self._lock:
            self.counts[kind] += 1
            if len(self.examples) < _MAX_EXAMPLES:
                self.examples.append(f"{kind}: {err}"[:400])

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)
