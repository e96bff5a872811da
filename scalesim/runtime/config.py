"""The runtime's settings: one frozen record, built from the eviction policy's JSON config.

Who calls it: SGLang builds the ``scalesim`` eviction strategy with the keyword arguments of
``--radix-eviction-policy-config`` JSON; the strategy hands them to
:meth:`RuntimeConfig.from_mapping`, which rejects unknown keys with a
:class:`~scalesim.config.ConfigError` naming them (at server startup, as SGLang's own policies
fail). The replay builds one from its own settings.

Invariants: every value is checked in ``__post_init__``; a config never changes once built.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

from scalesim.config import ConfigError, parse_choice


class HintTrustMode(str, enum.Enum):
    """How far predicted next calls are trusted."""

    LEARNED = "learned"  # per agent, from how its past predictions turned out (trust.py)
    FULL = "full"  # always: rank by the prediction alone (exact hints; comparisons)


class QueueOrder(str, enum.Enum):
    """The order of calls waiting for the GPU (SGLang's waiting queue, the replay's admission)."""

    ARRIVAL = "arrival"  # as SGLang orders them (its --schedule-policy): stock
    LAG = "lag"  # the call furthest behind its simulation's clock first (queue.py)


class PrefixOwnership(str, enum.Enum):
    """How much of an inserted path its agent owns (ranks by the agent's distance)."""

    LEARNED = "learned"  # what its next call is expected to repeat (reuse.py)
    WHOLE = "whole"  # every token, at full odds (comparisons)


@dataclass(frozen=True)
class RuntimeConfig:
    """Keys of ``--radix-eviction-policy-config`` (JSON name = field name).

    - ``horizon`` (number > 0 or null, default null): a distance older than this, in the
      namespace's time unit, reads as unknown; null keeps distances until replaced.
    - ``overdue_grace`` (number > 0 or null, default null): a predicted call this late reads
      as unknown, so a wrong hint stops pinning an agent's state as nearest.
    - ``prefetch`` (bool, default true): load host-resident prefixes of the nearest agents back
      to the device ahead of their calls (needs a HiCache host tier; no effect without one).
    - ``prefetch_window`` (number >= 0, default 2): prefetch for agents expected within this
      much time of their namespace's clock.
    - ``prefetch_budget_tokens`` (int >= 0, default 8192): most tokens queued for prefetch at
      one scheduler step.
    - ``max_idle_agents`` (int >= 0, default 100000): most agents remembered (distance and
      trust record) that have no path in the radix tree; beyond it the longest-idle are
      forgotten first (they rank as unknown, as they would once their path is evicted).
    - ``hint_trust`` (``"learned"`` or ``"full"``, default ``"learned"``): ``learned`` weighs each
      agent's predictions by how well its past ones landed, falling back to recency (LRU's
      order) for agents whose predictions carry no information; ``full`` ranks by predictions
      alone.
    - ``queue_order`` (``"arrival"`` or ``"lag"``, default ``"arrival"``): ``lag`` re-sorts SGLang's
      waiting queue after its own policy so that the call whose ``clock`` lags its namespace's
      clock most goes first (equal lags keep SGLang's order): in an out-of-order simulation the
      oldest calls hold the others' window back.
    - ``prefix_ownership`` (``"learned"`` or ``"whole"``, default ``"learned"``): ``learned``
      makes an agent own the part of its inserted path its next call is expected to repeat,
      learned from how its past requests repeated their predecessors, so the tail (an
      observation, a post read, a rewritten memory) ranks as nobody's, and weighs the part
      its calls only sometimes repeat (a memory rewritten now and then) by the odds they do;
      ``whole`` owns every token, at full odds.
    - ``reuse_chunk_tokens`` (int >= 1, default 16): token run compared at once when measuring
      that reuse (exact to this many tokens, rounded down).
    """

    horizon: float | None = None
    overdue_grace: float | None = None
    prefetch: bool = True
    prefetch_window: float = 2.0
    prefetch_budget_tokens: int = 8192
    hint_trust: HintTrustMode = HintTrustMode.LEARNED
    max_idle_agents: int = 100_000
    queue_order: QueueOrder = QueueOrder.ARRIVAL
    prefix_ownership: PrefixOwnership = PrefixOwnership.LEARNED
    reuse_chunk_tokens: int = 16

    def __post_init__(self) -> None:
        for name, choice_type in (
            ("hint_trust", HintTrustMode),
            ("queue_order", QueueOrder),
            ("prefix_ownership", PrefixOwnership),
        ):
            choice = parse_choice(choice_type, getattr(self, name), key=name)
            object.__setattr__(self, name, choice)
        for name in ("horizon", "overdue_grace"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and 0 < value < math.inf):
                raise ConfigError(f"{name} must be a number > 0 or null, got {value!r}")
        if not isinstance(self.prefetch, bool):
            raise ConfigError(f"prefetch must be true or false, got {self.prefetch!r}")
        window = self.prefetch_window
        if not (_is_number(window) and 0 <= window < math.inf):
            raise ConfigError(f"prefetch_window must be a finite number >= 0, got {window!r}")
        cap = self.max_idle_agents
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise ConfigError(f"max_idle_agents must be an int >= 0, got {cap!r}")
        chunk = self.reuse_chunk_tokens
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ConfigError(f"reuse_chunk_tokens must be an int >= 1, got {chunk!r}")
        budget = self.prefetch_budget_tokens
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
            raise ConfigError(f"prefetch_budget_tokens must be an int >= 0, got {budget!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, object] | None) -> RuntimeConfig:
        """Build from JSON-like values; unknown keys raise :class:`ConfigError` naming them."""
        values = values or {}
        known = {field.name for field in fields(cls)}
        unknown = sorted(str(key) for key in values if key not in known)
        if unknown:
            raise ConfigError(
                f"unknown scalesim eviction policy config key(s): {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        return cls(**values)  # type: ignore[arg-type]


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))
