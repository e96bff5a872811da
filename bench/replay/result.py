"""Replay settings and per-policy results, the records the CLI prints and writes.

Who calls it: the CLI and the sweep build a :class:`ReplayConfig`; the engine counts into one
:class:`ReplayCounters` per policy run and freezes it into a :class:`PolicyResult`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from scalesim.runtime import HintTrustMode, PrefixOwnership, QueueOrder, RuntimeConfig

from ..costmodel import CostModel


class Mode(enum.Enum):
    """How calls are issued (trace-format replay semantics)."""

    LOCKSTEP = "lockstep"  # step k's calls issue once every earlier call completed
    OOO = "ooo"  # a call issues once its deps and its agent's previous call completed


@dataclass(frozen=True)
class ReplayConfig:
    """One replay's settings.

    Attributes:
        memory_ratio: GPU KV capacity / the trace's reusable prefix working set (the
            most tokens of reusable prefix chains live at once; see
            ``PromptBook.working_set_tokens``). ``infinite`` ignores it (ratio infinity).
        host_ratio: host KV capacity / the same working set.
        lora_slots: GPU adapter slots; None means unbounded.
        mode: lockstep or out-of-order issue.
        token_scale: real tokens per replay token (see ``prompts.py``).
        prefetch_window_steps: ScaleSim prefetches agents expected within this many steps.
        overdue_grace_steps: ScaleSim forgets a hinted call this many steps after it was
            due and did not come (``DistanceTable(overdue_grace=...)``); None never forgets.
        evict_headroom: when the device tree must evict, it frees this fraction of its
            capacity beyond the request's need (see ``radix.py``: amortises SGLang's
            per-eviction ranking of every leaf; the same for every policy). It costs LRU most
            (its extra victims are needed soonest): on a pool of a few prompts (village-9 at
            0.75) 5.7% of LRU's cached tokens, on town-300 0.1% and 1.5x the speed on
            town-1000; the live prediction uses none.
        ooo_window_steps: in ooo mode a call may run at most this many steps ahead of the
            oldest unfinished call.
        cost: the cost model for the makespan.
        hint_trust: how far ScaleSim trusts the trace's hints (``RuntimeConfig.hint_trust``).
        queue_order: the order ScaleSim admits ready calls in (``RuntimeConfig.queue_order``;
            every other policy admits in arrival order, as stock SGLang's FCFS).
        prefix_ownership: how much of its prompt a ScaleSim agent owns
            (``RuntimeConfig.prefix_ownership``), learned at one replay token (``token_scale``
            real tokens, the live default's 16) per compared run.
    """

    memory_ratio: float
    host_ratio: float = 1.0
    lora_slots: int | None = None
    mode: Mode = Mode.LOCKSTEP
    token_scale: int = 16
    prefetch_window_steps: float = 2.0
    overdue_grace_steps: float | None = None
    ooo_window_steps: int = 8
    evict_headroom: float = 0.02
    cost: CostModel = field(default_factory=CostModel)
    hint_trust: HintTrustMode = HintTrustMode.LEARNED
    queue_order: QueueOrder = QueueOrder.ARRIVAL
    prefix_ownership: PrefixOwnership = PrefixOwnership.LEARNED

    def runtime_config(self) -> RuntimeConfig:
        """The ScaleSim runtime's settings for this replay (time unit: trace steps)."""
        return RuntimeConfig(
            overdue_grace=self.overdue_grace_steps,
            prefetch_window=self.prefetch_window_steps,
            hint_trust=self.hint_trust,
            queue_order=self.queue_order,
            prefix_ownership=self.prefix_ownership,
            reuse_chunk_tokens=1,
        )


@dataclass(frozen=True)
class PolicyResult:
    """What one policy did over the whole trace (token counts are real tokens)."""

    prompt_tokens: int
    gpu_hit_tokens: int
    host_hit_tokens: int
    recomputed_tokens: int
    h2d_bytes: int
    blocking_adapter_loads: int
    makespan_s: float
    prefetch_adapter_loads: int = 0

    def as_json(self) -> dict[str, int | float]:
        """The issue's seven ``results`` keys, and the adapters loaded ahead of their calls."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "gpu_hit_tokens": self.gpu_hit_tokens,
            "host_hit_tokens": self.host_hit_tokens,
            "recomputed_tokens": self.recomputed_tokens,
            "h2d_bytes": self.h2d_bytes,
            "blocking_adapter_loads": self.blocking_adapter_loads,
            "makespan_s": round(self.makespan_s, 6),
            "prefetch_adapter_loads": self.prefetch_adapter_loads,
        }


@dataclass
class ReplayCounters:
    """Running totals of one policy run (token counts are real tokens)."""

    prompt_tokens: int = 0
    gpu_hit_tokens: int = 0
    host_hit_tokens: int = 0
    recomputed_tokens: int = 0
    h2d_bytes: int = 0
    blocking_adapter_loads: int = 0
    prefetch_adapter_loads: int = 0

    def result(self, *, makespan_s: float) -> PolicyResult:
        """The frozen totals of a finished run."""
        return PolicyResult(
            self.prompt_tokens,
            self.gpu_hit_tokens,
            self.host_hit_tokens,
            self.recomputed_tokens,
            self.h2d_bytes,
            self.blocking_adapter_loads,
            makespan_s,
            self.prefetch_adapter_loads,
        )
