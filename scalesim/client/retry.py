"""Bounded retries with backoff, written once for both clients as a sans-I/O plan.

Who uses it: ``scalesim.client.plans`` builds every control call on :func:`retrying`; the sync
and async clients only *drive* plans (perform each :class:`HttpCall`, wait each
:class:`Backoff`), so they cannot drift apart in what they retry.

Rules:
- Retried: transport failures (connection refused or reset, timeouts, a dropped reply) and
  every 5xx answer; at most ``RetryPolicy.attempts`` attempts, waiting
  ``backoff_s * 2**(n-1)`` (capped at ``max_backoff_s``) after the n-th failure.
- Never retried: 4xx answers (the server decided; it does not change its mind) and local
  errors (bad URL or protocol). A retry re-sends the identical call.
- An attempt *may have been applied* unless the request provably never left (connection
  refused, connect or pool timeout) or the server refused it (4xx). Callers learn this through
  ``on_delivery`` and :attr:`Exchange.earlier_delivery` to make retries idempotent.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from .errors import ScaleSimConnectionError, http_error

_T = TypeVar("_T")

#: Transport failures after which the request cannot have reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: Transport failures worth another attempt (others are configuration errors).
_RETRYABLE = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    """How control calls are retried.

    Args:
        attempts: attempts per call, the first included (>= 1).
        backoff_s: wait after the first failed attempt, in seconds; doubles after each.
        max_backoff_s: longest wait between two attempts, in seconds.
        timeout_s: per-attempt timeout of a control call (connect, read, write), in seconds.
    """

    attempts: int = 4
    backoff_s: float = 0.25
    max_backoff_s: float = 4.0
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        for name in ("backoff_s", "max_backoff_s"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.timeout_s > 0.0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")

    def delay_s(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure (1-based)."""
        return float(min(self.max_backoff_s, self.backoff_s * 2.0 ** (failures - 1)))


@dataclass(frozen=True)
class HttpCall:
    """One HTTP request of a plan, relative to the server root."""

    method: str
    path: str
    json: Mapping[str, Any] | None = None
    params: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Backoff:
    """Wait ``seconds`` before the next attempt."""

    seconds: float


#: What a driver sends back into a plan after an HttpCall: the reply or the transport failure.
Outcome = httpx.Response | httpx.TransportError
#: A sans-I/O plan: yields steps, receives outcomes (None after a Backoff), returns a result.
Plan = Generator[HttpCall | Backoff, Outcome | None, _T]


@dataclass(frozen=True)
class Exchange:
    """The final reply of a call (status < 500) and whether an earlier attempt may have applied."""

    response: httpx.Response
    earlier_delivery: bool


def may_have_applied(outcome: Outcome) -> bool:
    """Whether the server may have applied the attempt that ended with ``outcome``."""
    if isinstance(outcome, httpx.Response):
        return outcome.is_success or outcome.status_code >= 500
    return not isinstance(outcome, _NOT_SENT)


def retrying(
    call: HttpCall,
    policy: RetryPolicy,
    *,
    on_delivery: Callable[[], None] | None = None,
) -> Plan[Exchange]:
    """Send ``call`` until it gets an answer below 500 or the attempts are spent.

    Args:
        call: the request, re-sent identically on every attempt.
        policy: attempts and backoff.
        on_delivery: called after every attempt that may have been applied.

    Raises:
        ScaleSimHTTPError: the last attempt was answered 5xx.
        ScaleSimConnectionError: the last attempt failed in transport, or a failure that
            retrying cannot cure.
    """
    delivered = False
    for attempt in range(1, policy.attempts + 1):
        outcome = yield call
        if outcome is None:
            raise RuntimeError("a plan driver sent no outcome for an HttpCall")
        if may_have_applied(outcome) and on_delivery is not None:
            on_delivery()
        if isinstance(outcome, httpx.Response) and outcome.status_code < 500:
            return Exchange(outcome, earlier_delivery=delivered)
        delivered = delivered or may_have_applied(outcome)
        if attempt == policy.attempts or not _retryable(outcome):
            cause = None if isinstance(outcome, httpx.Response) else outcome
            raise _failure(call, outcome, attempts=attempt) from cause
        yield Backoff(policy.delay_s(attempt))
    raise AssertionError("unreachable: the last attempt returns or raises")


def _retryable(outcome: Outcome) -> bool:
    return isinstance(outcome, (httpx.Response, *_RETRYABLE))


def _failure(call: HttpCall, outcome: Outcome, *, attempts: int) -> Exception:
    if isinstance(outcome, httpx.Response):
        return http_error(outcome.status_code, outcome.content, method=call.method, path=call.path)
    kind = type(outcome).__name__
    return ScaleSimConnectionError(
        f"{call.method} {call.path} failed after {attempts} attempt(s): {kind}: {outcome}",
        attempts=attempts,
    )
