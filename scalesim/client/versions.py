"""Per-namespace update versions: strictly increasing, and remembered once sent.

Who uses it: both clients' ``tick``. The server refuses an update whose ``version`` is not
newer than the namespace's last one with 409 and applies nothing, so a version is an
idempotency key: a retry re-sends the *same* version and can never apply an update twice.

Invariants:
- :meth:`VersionBook.next` is strictly increasing per namespace, also across explicit versions
  the caller passed (:meth:`observe`).
- Without ``first_version`` the versions are microseconds since the Unix epoch (bumped by one
  when two ticks fall in the same microsecond): a fresh client, e.g. a restarted simulation,
  starts above every version an older client on a clock-synchronised machine sent.
- :meth:`was_sent` is True for a version some earlier attempt may have delivered (a 200, a 5xx,
  or a lost reply); a 409 for such a version is how the server says it already has it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

#: Versions remembered as sent, per namespace (the most recent ones; retries resend recent ones).
_SENT_MEMORY = 1024


def wall_clock_us() -> int:
    """Microseconds since the Unix epoch (an int64 until the year 294,000)."""
    return time.time_ns() // 1000


class VersionBook:
    """The versions one client allocates and has sent, per namespace (thread-safe).

    Args:
        first_version: the first version of every namespace, counting up by one; None for
            time-based versions (``wall_clock_us``).
        wall_clock_us: the clock of time-based versions (injected by tests).
    """

    def __init__(
        self,
        first_version: int | None = None,
        *,
        wall_clock_us: Callable[[], int] = wall_clock_us,
    ) -> None:
        if first_version is not None and (
            isinstance(first_version, bool)
            or not isinstance(first_version, int)
            or first_version < 0
        ):
            raise ValueError(f"first_version must be an integer >= 0, got {first_version!r}")
        self._first = first_version
        self._clock = wall_clock_us
        self._lock = threading.Lock()
        self._last: dict[str, int] = {}
        self._sent: dict[str, deque[int]] = {}

    def next(self, namespace: str) -> int:
        """A version newer than every one this book allocated or observed for ``namespace``."""
        with self._lock:
            floor = self._first if self._first is not None else self._clock()
            version = max(self._last.get(namespace, -1) + 1, floor)
            self._last[namespace] = version
            return version

    def observe(self, namespace: str, version: int) -> None:
        """The caller chose ``version`` itself: later :meth:`next` values stay above it."""
        with self._lock:
            self._last[namespace] = max(self._last.get(namespace, -1), version)

    def last(self, namespace: str) -> int | None:
        """The newest version allocated or observed for ``namespace`` (None: none yet)."""
        with self._lock:
            return self._last.get(namespace)

    def mark_sent(self, namespace: str, version: int) -> None:
        """An attempt carrying ``version`` may have reached the server and been applied."""
        with self._lock:
            sent = self._sent.setdefault(namespace, deque(maxlen=_SENT_MEMORY))
            if version not in sent:
                sent.append(version)

    def was_sent(self, namespace: str, version: int) -> bool:
        """Whether an earlier attempt carrying ``version`` may have been applied."""
        with self._lock:
            return version in self._sent.get(namespace, ())

    def forget(self, namespace: str) -> None:
        """The namespace was dropped on the server: its sent versions mean nothing any more.

        Allocation stays monotonic (a dropped namespace starts with no version on the server).
        """
        with self._lock:
            self._sent.pop(namespace, None)
