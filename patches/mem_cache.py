"""Hooks on SGLang's memory cache: the ``scalesim`` radix eviction policy.

SGLang resolves ``--radix-eviction-policy NAME`` through
``sglang.srt.mem_cache.utils.get_eviction_strategy``; the AROUND hook answers the name
``scalesim`` with :class:`~scalesim.sglang.eviction.ScaleSimStrategy` and hands every other name
to SGLang unchanged. ``--radix-eviction-policy-config`` JSON becomes the strategy's keyword
arguments (e.g. ``{"horizon": 50}``). The strategy needs the Python radix-tree core, which
``scalesim serve`` selects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sglang.srt.arg_groups.choices import (
    RADIX_EVICTION_POLICY_CHOICES,
    add_radix_eviction_policy_choices,
)

#: The value of ``--radix-eviction-policy`` that selects ScaleSim's strategy.
POLICY_NAME = "scalesim"


def add_policy_choice() -> None:
    """Let SGLang's argument parser accept ``--radix-eviction-policy scalesim`` (idempotent)."""
    if POLICY_NAME not in RADIX_EVICTION_POLICY_CHOICES:
        add_radix_eviction_policy_choices([POLICY_NAME])


def build_eviction_strategy(
    original: Callable[..., Any], eviction_policy: str, config: dict[str, Any] | None = None
) -> Any:
    """AROUND ``get_eviction_strategy``: ScaleSim's strategy for its name, SGLang's otherwise.

    A bad config raises at cache construction (server startup), as SGLang's own policies do.
    """
    if eviction_policy.lower() != POLICY_NAME:
        return original(eviction_policy, config)
    from scalesim.sglang.eviction import ScaleSimStrategy

    return ScaleSimStrategy(**config) if config else ScaleSimStrategy()
