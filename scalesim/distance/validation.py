"""Input checks shared by the distance table, the estimators and the memory records.

Distances and agent ids arrive from untrusted clients (HTTP bodies, trace files), so
every public entry point validates before it mutates anything. A check either returns
the normalised value or raises :class:`InvalidEntryError` naming the offending entry.
"""

from __future__ import annotations

import math

#: Longest accepted agent id or resource key, in characters: room for the runtime's owner
#: keys, a 128-character namespace and a 128-character agent id joined by one separator.
MAX_ID_CHARS = 320


class InvalidEntryError(ValueError):
    """A distance, time or id that the core refuses; the message names the entry."""


def check_id(value: object, *, what: str = "agent id") -> str:
    """Return ``value`` if it is a usable id: a non-empty str of printable characters.

    Raises:
        InvalidEntryError: not a str, empty, longer than ``MAX_ID_CHARS`` or holding a
            non-printable character (control characters, line breaks: these would
            corrupt logs and JSON round trips).
    """
    if not isinstance(value, str):
        raise InvalidEntryError(f"{what} {value!r} is a {type(value).__name__}, not a str")
    if not value:
        raise InvalidEntryError(f"{what} is empty")
    if len(value) > MAX_ID_CHARS:
        raise InvalidEntryError(f"{what} {value[:32]!r}... is longer than {MAX_ID_CHARS} chars")
    if not value.isprintable():
        raise InvalidEntryError(f"{what} {value!r} contains a control or separator character")
    return value


def check_finite(value: object, *, what: str) -> float:
    """Return ``value`` as a float if it is a finite real number (bool is refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidEntryError(f"{what} {value!r} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidEntryError(f"{what} {value!r} is not finite")
    return number


def check_distance(agent: str, distance: object) -> float | None:
    """Return a valid invocation distance for ``agent``: finite and >= 0, or None.

    ``None`` means "no call expected" (a trace hint with ``next_step: null``).
    """
    if distance is None:
        return None
    number = check_finite(distance, what=f"distance for agent {agent!r}:")
    if number < 0.0:
        raise InvalidEntryError(f"distance for agent {agent!r}: {distance!r} is negative")
    return number


def check_positive(value: object, *, what: str) -> float:
    """Return ``value`` as a float if it is finite and strictly positive."""
    number = check_finite(value, what=what)
    if number <= 0.0:
        raise InvalidEntryError(f"{what} {value!r} must be > 0")
    return number
