"""The JSON document of a live run: trace, params, machine, results, prediction, calls, notes.

Who calls it: ``bench/live/run.py`` once every policy has run; ``bench/live/report.py`` renders
the document it returns (Markdown, PNG). Keys of ``results[policy]`` are api.md section 5's
(plus a few extras); ``replay_prediction`` holds the cache replay's results for the same trace;
``calls`` every call of each reported run (when it was sent and answered, its token counts), so
a makespan can be taken apart without rerunning.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ..replay.result import PolicyResult
from ..trace import Trace
from .driver import CallOutcome
from .report import REPLAY_POLICY, LivePolicyResult
from .setup import LiveParams, LiveSetup


@dataclass(frozen=True)
class PolicyRun:
    """One policy's live result and its calls, in trace order, times in seconds since the
    first call was sent (what ``calls`` and ``timeline_s`` of the document hold)."""

    result: LivePolicyResult
    calls: tuple[CallOutcome, ...]

    def timeline(self) -> list[float]:
        """Completion times, ascending."""
        return sorted(round(call.done_s, 3) for call in self.calls)

    def calls_json(self, trace: Trace) -> list[dict[str, Any]]:
        """Each call as the server answered it: which one, when, and its token counts."""
        rows: list[dict[str, Any]] = []
        for outcome in self.calls:
            call, reply = trace.calls[outcome.index], outcome.reply
            row: dict[str, Any] = {
                "index": outcome.index,
                "agent": call.agent,
                "step": call.step,
                "ready_s": round(outcome.ready_s, 3),
                "sent_s": round(outcome.sent_s, 3),
                "done_s": round(outcome.done_s, 3),
                "prompt_tokens": reply.prompt_tokens,
                "cached_tokens": reply.cached_tokens,
            }
            if reply.error is not None:
                row["error"] = reply.error
            rows.append(row)
        return rows


def build_document(
    trace: Trace,
    setup: LiveSetup,
    params: LiveParams,
    *,
    runs: Mapping[str, PolicyRun],
    predicted: Mapping[str, PolicyResult],
    makespans: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, Any]:
    """The whole run as JSON-ready data (``machine`` is read now: call it at the end).

    ``runs`` holds one run per policy (with repeats, its median run); ``makespans`` every
    repeat's makespan per policy, in the order they ran (``results[p]["makespans_s"]``).
    """
    makespans = makespans or {}
    pools = setup.pools
    header = trace.header
    return {
        "trace": {
            "name": header.name,
            "agents": header.agents,
            "steps": header.steps,
            "calls": len(trace.calls),
            "hints": len(trace.hints),
            "seed": header.seed,
            "adapters": len(setup.adapters),
            "working_set_tokens": pools.working_set_tokens,
        },
        "params": _params_json(params, setup),
        "machine": machine(),
        "results": {
            policy: {
                **run.result.as_json(),
                "makespans_s": [
                    round(t, 3) for t in makespans.get(policy, [run.result.makespan_s])
                ],
            }
            for policy, run in runs.items()
        },
        "replay_prediction": {
            "policy_for": REPLAY_POLICY,
            "config": _replay_json(params),
            "results": {policy: result.as_json() for policy, result in predicted.items()},
        },
        "timeline_s": {policy: run.timeline() for policy, run in runs.items()},
        "calls": {policy: run.calls_json(trace) for policy, run in runs.items()},
        "notes": notes(params, setup),
    }


def _replay_json(params: LiveParams) -> dict[str, Any]:
    config = params.replay_config()
    return {
        "token_scale": config.token_scale,
        "evict_headroom": config.evict_headroom,
        "cost_model": "default",
    }


def _params_json(params: LiveParams, setup: LiveSetup) -> dict[str, Any]:
    pools = setup.pools
    return {
        "policies": list(params.policies),
        "memory_ratio": params.memory_ratio,
        "host_ratio": params.host_ratio,
        "lora_slots": params.lora_slots,
        "mode": params.mode.value,
        "ooo_window_steps": params.ooo_window_steps,
        "concurrency": params.concurrency,
        "model_size": params.model_size.value,
        "cpu_attention": params.cpu_attention.value,
        "max_output_tokens": params.max_output_tokens,
        "device_pool_tokens": pools.device_tokens,
        "host_pool_tokens": pools.host_tokens,
        "largest_request_tokens": pools.largest_request_tokens,
        "serve_args": list(setup.serve_args),
        "workers": params.workers,
        "routings": list(params.routings),
        "repeats": params.repeats,
    }


def notes(params: LiveParams, setup: LiveSetup) -> list[str]:
    """How to read the numbers: where they come from and what was approximated."""
    out = [
        "tokens: the server's usage (prompt_tokens, prompt_tokens_details.cached_tokens); "
        "recomputed = prompt - cached; prompts have exactly the trace's segment lengths",
        "hints: one POST /scalesim/v1/distances per new issue step with the hints released "
        "since the last one (timing rule: a hint of step s once the clock passed s and its "
        "agent has no unfinished call up to s); every request carries agent and clock (its "
        "step); stock gets the same requests and no ticks",
        "kv_prefetch_tokens: GET /scalesim/v1/state counters after the run; 0 for stock",
        "lora_loads_blocking, lora_loads_prefetch, lora_prefetch_failures: GET /scalesim/v1/state "
        "counters after the run (the adapter slots' loads since the server started); null for "
        "stock, which has no ScaleSim hooks and counts no adapter loads (not measurable, not 0)",
        "replay_prediction: the cache replay (lru stands for stock) with the same ratios and "
        "mode; its makespan is the cost model's (a GPU), not this machine's",
    ]
    if params.workers:
        out.append(
            f"cluster runs (results 'policy+routing'): {params.workers} scalesim serve workers "
            "behind sglang-router, each with the device pool above; affinity = the router's "
            "manual policy on X-SMG-Routing-Key namespace|agent, round_robin = the router's; "
            "ticks go to every worker (client fan-out); makespan includes the router hop"
        )
    pools = setup.pools
    if pools.device_tokens > int(params.memory_ratio * pools.working_set_tokens):
        out.append(
            f"device pool raised to {pools.device_tokens} tokens (memory ratio x working set is "
            f"{int(params.memory_ratio * pools.working_set_tokens)}): every request must fit"
        )
    if params.repeats > 1:
        out.append(
            f"repeats: every policy ran {params.repeats} times, each on a fresh server, in "
            "alternating order (A B, B A, ...); results[p] is its median-makespan run (of an "
            "even count, the faster middle one) and makespans_s every run's, in run order"
        )
    if params.max_output_tokens is not None:
        out.append(
            f"output lengths capped at {params.max_output_tokens} tokens live; the replay "
            "prediction uses the trace's lengths"
        )
    return out


def machine() -> dict[str, Any]:
    """This machine: a file-name tag (``cpu-x86-64-2c``), CPU, GPU, versions, load now."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    tag = f"gpu-{gpu}" if gpu else f"cpu-{platform.machine()}-{os.cpu_count()}c"
    return {
        "name": re.sub(r"[^a-z0-9]+", "-", tag.lower()).strip("-"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "gpu": gpu,
        "python": platform.python_version(),
        "sglang": metadata.version("sglang"),
        "load_average_1m_at_end": load_average(),
    }


def load_average() -> str:
    """The 1-minute load average: on a shared machine, read timings against it."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
