"""Replays one trace under one policy and prices it with the cost model.

Who calls it: ``replay_policies`` (below) for the CLI and the sweep. One
:class:`PolicyRun` owns a real SGLang radix cache (device tier), the host tier, the
LoRA slots and a discrete-event model of one GPU: ready calls are admitted first come
first served while the batch and the KV pool allow, admitted calls prefill (recomputed
tokens at prefill speed, host hits at host-to-device speed, blocking adapter loads at
load time) and then decode together, one step per output token.

Invariants: for every call gpu_hit + host_hit + recomputed = prompt tokens; the same
trace and config give the same results (no wall clock, no hash order).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from tqdm import tqdm

from ..trace import Trace
from .host import HostTier
from .issue import IssueGate
from .lora import LoraSlots
from .policies import INFINITE, ReplayClock, ScaleSimRanking, make_ranking
from .prefetch import Prefetcher
from .prompts import Prompt, PromptBook
from .radix import Admission, RadixTier
from .result import PolicyResult, ReplayConfig


@dataclass
class _Running:
    index: int
    admission: Admission
    left_steps: int


class PolicyRun:
    """One policy over one trace; call :meth:`run` once."""

    def __init__(self, book: PromptBook, trace: Trace, policy: str, config: ReplayConfig):
        self.book, self.config, self.cost = book, config, config.cost
        self.clock = ReplayClock()
        self.ranking = make_ranking(
            policy, book, self.clock, overdue_grace=config.overdue_grace_steps
        )
        capacity, host_capacity = book.capacities(
            None if policy == INFINITE else config.memory_ratio, host_ratio=config.host_ratio
        )
        self.radix = RadixTier(
            capacity,
            strategy=self.ranking.tree_strategy(),
            on_path=self.ranking.on_insert,
            headroom_tokens=int(config.evict_headroom * capacity),
        )
        self.host = HostTier(host_capacity, ranking=self.ranking)
        self.lora = LoraSlots(config.lora_slots, ranking=self.ranking)
        self.gate = IssueGate(book.calls, mode=config.mode, window_steps=config.ooo_window_steps)
        self.prefetcher = (
            Prefetcher(
                book,
                trace.hints,
                ranking=self.ranking,
                tiers=(self.radix, self.host),
                window_steps=config.prefetch_window_steps,
            )
            if isinstance(self.ranking, ScaleSimRanking)
            else None
        )
        self._ready_at: dict[str, float] = {}  # agent -> when its prefetched KV has landed
        self.now_s = self.copy_free_s = self._last_step_s = 0.0
        self._seq = 0.0
        self.counts = [0, 0, 0, 0, 0, 0]  # prompt, gpu, host, recomputed, h2d bytes, loads

    def run(self, *, progress: bool = False) -> PolicyResult:
        """Replay every call; returns the totals and the modelled makespan."""
        waiting: list[int] = []
        running: list[_Running] = []
        bar = tqdm(total=len(self.book.calls), file=sys.stderr, disable=not progress, leave=False)
        while True:
            waiting.extend(self._newly_ready())
            prefill_s = self._admit(waiting, running)
            if not running:
                if not waiting:
                    break
                raise RuntimeError(f"call {self.book.calls[waiting[0]].id} never fits the KV pool")
            left = min(item.left_steps for item in running)
            step_s = prefill_s + left * self.cost.decode_step_s(len(running))
            self.now_s += step_s
            self._last_step_s = step_s
            for item in [item for item in running if item.left_steps == left]:
                running.remove(item)
                self._finish(item)
                bar.update(1)
            for item in running:
                item.left_steps -= left
        bar.close()
        prompt, gpu, host, recomputed, h2d, loads = self.counts
        return PolicyResult(prompt, gpu, host, recomputed, h2d, loads, self.now_s)

    def _newly_ready(self) -> list[int]:
        ready = self.gate.ready()
        if ready:
            self._advance(float(self.gate.current_step))
        return ready

    def _admit(self, waiting: list[int], running: list[_Running]) -> float:
        prefill_s = 0.0
        while waiting and len(running) < self.cost.max_batch:
            cost_s = self._start(waiting[0])
            if cost_s is None:
                break
            admission, seconds = cost_s
            index = waiting.pop(0)
            running.append(_Running(index, admission, max(1, self.book.calls[index].output_len)))
            prefill_s += seconds
        return prefill_s

    def _start(self, index: int) -> tuple[Admission, float] | None:
        call, prompt = self.book.calls[index], self.book.prompts[index]
        self.clock.call_index = index
        if call.lora is not None and not self.lora.resident(call.lora) and not self.lora.can_load():
            return None
        admission = self.radix.admit(prompt.tokens, index)
        if admission is None:
            return None
        seconds = max(0.0, self._ready_at.pop(call.agent, 0.0) - self.now_s)
        seconds += self._account(index, prompt, admission.gpu_hit)
        if call.lora is not None:
            if not self.lora.resident(call.lora):
                self.lora.load(call.lora, agent=call.agent, now=self._tick())
                self.counts[5] += 1
                seconds += self.cost.adapter_load_s
            self.lora.acquire(call.lora, now=self._tick())
        if self.prefetcher is not None:
            self.prefetcher.last_call[call.agent] = index
        return admission, seconds

    def _account(self, index: int, prompt: Prompt, gpu_hit: int) -> float:
        """Count one call's tokens and return its prefill and load time."""
        host_hit = self.host.hit(prompt, gpu_hit)
        total = self.book.calls[index].prompt_tokens
        gpu_real = self.book.real_tokens(index, gpu_hit)
        host_real = self.book.real_tokens(index, gpu_hit + host_hit) - gpu_real
        recomputed = total - gpu_real - host_real
        self.host.write_through(prompt, agent=self.book.calls[index].agent, now=self._tick())
        h2d = host_real * self.cost.kv_bytes_per_token
        for slot, value in enumerate((total, gpu_real, host_real, recomputed, h2d), start=0):
            self.counts[slot] += value
        return self.cost.prefill_s(recomputed) + self.cost.h2d_s(h2d)

    def _finish(self, item: _Running) -> None:
        self.radix.release(item.admission)
        call = self.book.calls[item.index]
        if call.lora is not None:
            self.lora.release(call.lora)
        self.gate.complete(item.index)

    def _tick(self) -> float:
        self._seq += 1.0
        return self._seq

    def _advance(self, step: float) -> None:
        """Move the logical clock to ``step``: feed due hints, then prefetch (scalesim)."""
        self.clock.step = max(self.clock.step, step)
        if self.prefetcher is None:
            return
        self.prefetcher.feed(step)
        budget = int(self.cost.h2d_bytes_per_s * max(self._last_step_s, self.cost.decode_base_s))
        moved = self.prefetcher.plan(step, cost=self.cost, budget_bytes=budget)
        for agent, n_bytes in moved.items():
            self.counts[4] += n_bytes
            self.copy_free_s = max(self.copy_free_s, self.now_s) + self.cost.h2d_s(n_bytes)
            self._ready_at[agent] = self.copy_free_s
            lora = self.book.calls[self.prefetcher.last_call[agent]].lora
            if lora is not None and not self.lora.resident(lora) and self.lora.can_load():
                self.lora.load(lora, agent=agent, now=self._tick())


def replay_policies(
    trace: Trace, policies: list[str], config: ReplayConfig, *, progress: bool = False
) -> dict[str, PolicyResult]:
    """Replay ``trace`` once per policy (same prompts, same config)."""
    book = PromptBook(trace, token_scale=config.token_scale)
    return {
        policy: PolicyRun(book, trace, policy, config).run(progress=progress) for policy in policies
    }
