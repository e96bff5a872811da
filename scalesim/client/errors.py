"""The exceptions ``scalesim.client`` raises, one type per way a call can fail.

Who raises them: every client call (:class:`~scalesim.client.ScaleSim`,
:class:`~scalesim.client.AsyncScaleSim`). Who catches them: simulations and benchmarks.

- :class:`ScaleSimValidationError`: refused locally with the server's own rules, before anything
  was sent; it *is* a :class:`~scalesim.runtime.ContractError` (so a ``ValueError``) and its
  message names the field, exactly as the server's 400 would.
- :class:`ScaleSimHTTPError`: the server answered with an error status (4xx at once, 5xx once
  the retries are spent); :class:`ScaleSimConflictError` is its 409 case.
- :class:`ScaleSimConnectionError`: no answer at all, after every retry.
- :class:`ScaleSimProtocolError`: an answer that is not what the contract promises.
"""

from __future__ import annotations

import json

from scalesim.runtime import ContractError


class ScaleSimError(Exception):
    """Base of every error ``scalesim.client`` raises on its own account."""


class ScaleSimValidationError(ContractError, ScaleSimError):
    """A request the server would refuse (``status`` 400 or 413); nothing was sent."""


class ScaleSimHTTPError(ScaleSimError):
    """The server answered ``status`` with ``message`` (its ``{"error": ...}`` text)."""

    def __init__(self, status: int, message: str, *, method: str, path: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.method = method
        self.path = path


class ScaleSimConflictError(ScaleSimHTTPError):
    """409: the server holds a newer version or clock for the namespace; nothing was applied."""


class ScaleSimConnectionError(ScaleSimError):
    """The server could not be reached (or did not answer in time) on any attempt."""

    def __init__(self, message: str, *, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class ScaleSimProtocolError(ScaleSimError):
    """A reply that does not have the shape of api.md section 2."""


def error_message(body: bytes) -> str:
    """The human text of an error reply: SGLang and ScaleSim answer ``{"error": ...}``."""
    text = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text.strip()[:2000]
    if isinstance(parsed, dict):
        error = parsed.get("error", parsed.get("detail", parsed.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error is not None:
            return str(error)
    return text.strip()[:2000]


def http_error(status: int, body: bytes, *, method: str, path: str) -> ScaleSimHTTPError:
    """The typed error for an error reply (409 gets :class:`ScaleSimConflictError`)."""
    kind = ScaleSimConflictError if status == 409 else ScaleSimHTTPError
    return kind(status, error_message(body), method=method, path=path)
