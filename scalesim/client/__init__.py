"""The ScaleSim client SDK (api.md section 3): chat as an agent, push invocation distances.

Who uses it: simulations, operators and the benchmark harness. Pure Python on ``openai`` and
``httpx`` (plus ScaleSim's stdlib core for the shared contract checks and the estimators): it
never imports torch or sglang, so it runs anywhere a simulation runs.

- :class:`ScaleSim` / :class:`AsyncScaleSim`: ``chat``, ``tick``, ``state``,
  ``drop_namespace``, ``extra_body`` and ``.openai`` (the underlying openai client).
- Local checks use the server's own parsers: what the client sends, the server accepts.
- ``tick`` is idempotent under retries: see ``scalesim.client.versions`` and
  ``scalesim.client.plans``.
- :func:`next_calls` turns any ``scalesim.distance`` estimator into a ``tick`` map.
"""

from .async_client import AsyncScaleSim
from .errors import (
    ScaleSimConflictError,
    ScaleSimConnectionError,
    ScaleSimError,
    ScaleSimHTTPError,
    ScaleSimProtocolError,
    ScaleSimValidationError,
)
from .estimates import next_calls, next_calls_from_distances, unestimated
from .records import (
    Delivery,
    DropReply,
    NamespaceInfo,
    StateSnapshot,
    TickReply,
    TierTokens,
)
from .retry import RetryPolicy
from .sync_client import ScaleSim
from .versions import VersionBook

__all__ = [
    "AsyncScaleSim",
    "Delivery",
    "DropReply",
    "NamespaceInfo",
    "RetryPolicy",
    "ScaleSim",
    "ScaleSimConflictError",
    "ScaleSimConnectionError",
    "ScaleSimError",
    "ScaleSimHTTPError",
    "ScaleSimProtocolError",
    "ScaleSimValidationError",
    "StateSnapshot",
    "TickReply",
    "TierTokens",
    "VersionBook",
    "next_calls",
    "next_calls_from_distances",
    "unestimated",
]
