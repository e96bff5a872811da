"""Failure containment for ScaleSim's hooks: SGLang's own behaviour wins on any internal error.

Who calls it: every AFTER hook in ``scalesim.patches`` is wrapped with :func:`guarded`. An AFTER
hook returns ``None`` so that SGLang's result passes through unchanged; if ScaleSim's part
raises, the error is logged once per hook (with its traceback) and SGLang carries on as stock.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("scalesim")


def guarded(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Wrap an AFTER hook so that it never raises into SGLang; logs the first failure."""

    def wrap(hook: Callable[..., None]) -> Callable[..., None]:
        failed = False

        @functools.wraps(hook)
        def run(*args: Any, **kwargs: Any) -> None:
            nonlocal failed
            try:
                hook(*args, **kwargs)
            except Exception:  # ScaleSim must never fail a request or the scheduler loop
                if not failed:
                    failed = True
                    logger.exception("scalesim hook %s failed; SGLang continues as stock", name)

        return run

    return wrap
