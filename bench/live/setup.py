"""What a live run serves: its settings, the model, the KV pools and ``scalesim serve`` flags.

Who calls it: ``bench/live/run.py`` builds one :class:`LiveParams` from the command line, then
one :class:`LiveSetup` per trace (shared by every policy, so both servers get the same model,
pools and adapters and differ only in the policy flags of :data:`POLICIES`).

Pool sizing: the device pool is ``memory_ratio`` x the trace's working set, the replay's
definition (``PromptBook.working_set_tokens``: the peak live reusable prefix) computed at
``token_scale=1``, where replay tokens are real tokens, since live prompts have exactly the
trace's lengths. It never goes below the largest request (prompt + output) plus a margin,
so every call can run. The host tier is ``host_ratio`` x the same working set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from scalesim.config import CpuAttention
from scalesim.demo import POLICIES, default_home
from scalesim.tiny_model import TinyModel, TinyModelSize, ensure_tiny_model

from ..replay.prompts import PromptBook
from ..replay.result import Mode, ReplayConfig
from ..trace import Trace

__all__ = ["POLICIES", "LiveParams", "LiveSetup", "PoolPlan", "namespace_of", "plan_pools"]

SERVED_MODEL_NAME = "scalesim-bench"
#: Tokens the device pool keeps beyond the largest request (SGLang reserves a little).
POOL_MARGIN_TOKENS = 256
#: SGLang misbehaves with very small pools; the demo's floor.
MIN_POOL_TOKENS = 1024


@dataclass(frozen=True)
class LiveParams:
    """One ``scalesim bench live`` run's settings, validated in one place.

    Attributes:
        policies: servers to run, from :data:`POLICIES` (``stock``, ``scalesim``).
        memory_ratio: device KV pool / the trace's working set (> 0).
        host_ratio: HiCache host pool / the same working set; 0 means no host tier.
        lora_slots: adapters per batch on the device (``--max-loras-per-batch``); None: all
            of the trace's adapters.
        mode: lockstep or out-of-order issue (trace-format replay semantics).
        concurrency: requests in flight at most.
        model_size: the tiny model preset (BENCH: recompute costs more than a cache hit).
        max_output_tokens: caps each call's ``output_len`` (None: the trace's lengths); a
            CPU run's time goes to decoding, which no memory policy changes.
        ooo_window_steps: the ooo window rule (as ``ReplayConfig.ooo_window_steps``).
        workers: 0: one plain ``scalesim serve`` per policy; N >= 1: per policy and routing,
            a ``scalesim cluster`` of N workers behind sglang-router (each worker with the
            same pools as a single server).
        routings: the router's routings to compare with ``workers`` (``scalesim.cluster.
            Routing`` values, e.g. affinity and round_robin); each is one run per policy.
        cpu_attention: on a CPU machine, the attention of both servers
            (``scalesim serve --scalesim-cpu-attention``): PREFIX attends from new tokens only,
            as a GPU does; SGLANG keeps SGLang's CPU attention, which recomputes attention over
            the cached prefix and so hides much of what a cache saves.
        repeats: times every run is made, on a fresh server each time, in alternating order
            (see :meth:`schedule`); a shared machine's speed drifts by tens of percent between
            runs minutes apart, and the median run of each policy is what is reported.
    """

    policies: tuple[str, ...]
    memory_ratio: float
    host_ratio: float = 0.0
    lora_slots: int | None = None
    mode: Mode = Mode.LOCKSTEP
    concurrency: int = 8
    model_size: TinyModelSize = TinyModelSize.BENCH
    max_output_tokens: int | None = None
    ooo_window_steps: int = 8
    workers: int = 0
    routings: tuple[str, ...] = ()
    cpu_attention: CpuAttention = CpuAttention.PREFIX
    repeats: int = 1

    def __post_init__(self) -> None:
        unknown = sorted(set(self.policies) - set(POLICIES))
        if unknown or not self.policies or len(set(self.policies)) != len(self.policies):
            raise ValueError(f"policies must be distinct names from {sorted(POLICIES)}")
        if not self.memory_ratio > 0 or not self.host_ratio >= 0:
            raise ValueError("memory ratio must be > 0 and host ratio >= 0")
        for name in ("lora_slots", "max_output_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.concurrency < 1 or self.ooo_window_steps < 0:
            raise ValueError("concurrency must be >= 1 and the ooo window >= 0")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        self._check_cluster()

    def _check_cluster(self) -> None:
        from scalesim.cluster import Routing

        known = {routing.value for routing in Routing}
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")
        if self.workers and (not self.routings or not set(self.routings) <= known):
            raise ValueError(f"routings must be names from {sorted(known)}, got {self.routings}")
        if len(set(self.routings)) != len(self.routings):
            raise ValueError(f"routings must be distinct, got {self.routings}")

    def runs(self) -> tuple[tuple[str, str | None], ...]:
        """(policy, routing) of every run: ``(p, None)`` without workers."""
        if not self.workers:
            return tuple((policy, None) for policy in self.policies)
        return tuple((p, routing) for p in self.policies for routing in self.routings)

    def schedule(self) -> tuple[tuple[str, str | None], ...]:
        """Every run of every repeat, in the order they are made: :meth:`runs`, then reversed,
        and so on (A B, B A, A B, ...), so a machine that slows or speeds up steadily weighs
        on every policy alike, and each repeat's runs are next to each other in time."""
        runs = self.runs()
        return tuple(
            run for repeat in range(self.repeats) for run in (runs[::-1] if repeat % 2 else runs)
        )

    def replay_config(self) -> ReplayConfig:
        """The cache replay's settings for the same run (its prediction).

        At the server's own granularity: one replay token per real token, and no eviction
        headroom (the server evicts what a batch lacks, no more). Live traces are small, so
        the speed those two buy on large replays is not needed here, and on a pool of a few
        prompts they cost stock LRU hits the server keeps (village-9 at 0.75, lockstep: the
        replay's LRU cached 7.6% fewer tokens than the live server; at this granularity 0.1% more).
        """
        return ReplayConfig(
            memory_ratio=self.memory_ratio,
            host_ratio=self.host_ratio,
            lora_slots=self.lora_slots,
            mode=self.mode,
            ooo_window_steps=self.ooo_window_steps,
            token_scale=1,
            evict_headroom=0.0,
        )

    def output_tokens(self, output_len: int) -> int:
        """Tokens to generate for a call whose trace asks ``output_len``."""
        cap = self.max_output_tokens
        return output_len if cap is None else min(output_len, cap)


@dataclass(frozen=True)
class PoolPlan:
    """KV pool sizes in real tokens."""

    working_set_tokens: int
    largest_request_tokens: int
    device_tokens: int
    host_tokens: int

    @property
    def hicache_ratio(self) -> float:
        """SGLang's ``--hicache-ratio``: host pool / device pool."""
        return self.host_tokens / self.device_tokens


def plan_pools(trace: Trace, params: LiveParams) -> PoolPlan:
    """Device and host pool sizes for ``trace`` under ``params`` (see the module docstring)."""
    working = PromptBook(trace, token_scale=1).working_set_tokens()
    largest = max(
        (call.prompt_tokens + params.output_tokens(call.output_len) for call in trace.calls),
        default=1,
    )
    floor = max(MIN_POOL_TOKENS, largest + POOL_MARGIN_TOKENS)
    device = max(floor, int(params.memory_ratio * working))
    return PoolPlan(working, largest, device, int(params.host_ratio * working))


@dataclass(frozen=True)
class LiveSetup:
    """The model and the ``scalesim serve`` arguments every policy's server shares."""

    model: TinyModel
    adapters: tuple[str, ...]  # the trace's adapter names, served under these names
    pools: PoolPlan
    serve_args: tuple[str, ...]

    @classmethod
    def build(cls, trace: Trace, params: LiveParams, *, home: Path | None = None) -> LiveSetup:
        """Build (once, cached under ``home``) the model with one adapter per trace adapter."""
        adapters = tuple(sorted({call.lora for call in trace.calls if call.lora is not None}))
        size = params.model_size
        folder = (home or default_home()) / f"{size.value}-model-{len(adapters)}-loras"
        model = ensure_tiny_model(folder, n_loras=len(adapters), size=size)
        pools = plan_pools(trace, params)
        args = ["--model-path", str(model.path), "--served-model-name", SERVED_MODEL_NAME]
        args += ["--max-total-tokens", str(pools.device_tokens)]
        if pools.host_tokens > 0:
            args += ["--enable-hierarchical-cache", "--hicache-ratio", f"{pools.hicache_ratio:.4f}"]
        if adapters:
            paths = (
                f"{name}={path}" for name, path in zip(adapters, model.adapter_paths, strict=True)
            )
            args += ["--enable-lora", "--lora-paths", *paths]
            args += ["--max-loras-per-batch", str(params.lora_slots or len(adapters))]
        args += _device_args(params.cpu_attention)
        return cls(model, adapters, pools, tuple(args))


def _device_args(attention: CpuAttention) -> list[str]:
    import torch

    if torch.cuda.is_available():
        return []
    return ["--device", "cpu", "--scalesim-cpu-attention", attention.value]


def namespace_of(trace: Trace) -> str:
    """The ScaleSim namespace of a trace: its name with characters the API refuses replaced."""
    name = re.sub(r"[^A-Za-z0-9._:@/-]", "-", trace.header.name)[:128]
    return name or "live"
