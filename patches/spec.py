"""The shape of one hook specification in ScaleSim's hook table (``scalesim.patches.table``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sglang.srt.plugins.hook_registry import HookType


class Subsystem(Enum):
    """The SGLang subsystem a hook changes; the table is grouped by it."""

    MEM_CACHE = "mem_cache"
    SCHEDULER = "scheduler"
    LORA = "lora"
    HTTP = "http"


@dataclass(frozen=True)
class HookSpec:
    """One change to SGLang: ``hook`` applied to the dotted ``target`` as ``hook_type``.

    ``why`` says what ScaleSim needs from the change; it is shown when verification fails.
    """

    subsystem: Subsystem
    target: str
    hook: Callable[..., Any]
    hook_type: HookType
    why: str
