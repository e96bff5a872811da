"""``scalesim demo``: a small multi-agent simulation against a real ``scalesim serve``.

Builds the tiny random-weight model (once, under ``$SCALESIM_HOME`` or ``~/.cache/scalesim``),
starts ``scalesim serve`` on a free loopback port (CPU development mode where there is no GPU),
and drives rounds of chat completions through the official ``openai`` client: every agent has its
own persona prefix and LoRA adapter, names itself in ``extra_body`` and says when it will call
again (agent ``a<i>`` speaks every ``1 + i % 3`` rounds). The device KV pool holds about half of
the agents' prefixes, so the server evicts under memory pressure, farthest next call first.
Prints per-round progress and a summary (requests, prompt and cached tokens, wall time); the
server is always stopped.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from openai import OpenAI

from scalesim.server_process import RunningServer, ServerStartError, running_server
from scalesim.tiny_model import TinyModel, ensure_tiny_model

SERVED_MODEL_NAME = "scalesim-tiny"
_PERSONA_WORDS = (
    *("town", "market", "house", "friend", "neighbour", "cafe", "park", "library", "garden"),
    *("kitchen", "book", "letter", "story", "news", "idea", "plan", "goal", "memory"),
    *("morning", "evening", "coffee", "music", "painting", "river", "street", "school"),
)
_PLACES = ("cafe", "park", "library", "market", "garden", "river")


class AgentCall(NamedTuple):
    """Token counts of one completed request."""

    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class DemoSummary:
    """Totals of one demo run."""

    n_requests: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    startup_s: float
    workload_s: float

    def describe(self) -> str:
        """A short human-readable report."""
        ratio = self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0
        return (
            f"requests            {self.n_requests}\n"
            f"prompt tokens       {self.prompt_tokens}\n"
            f"cached tokens       {self.cached_tokens} ({ratio:.1%} of prompt tokens)\n"
            f"completion tokens   {self.completion_tokens}\n"
            f"server startup      {self.startup_s:.1f} s\n"
            f"workload wall time  {self.workload_s:.1f} s"
        )


def default_home() -> Path:
    """ScaleSim's cache folder: ``$SCALESIM_HOME`` or ``~/.cache/scalesim``."""
    home = os.environ.get("SCALESIM_HOME")
    return Path(home) if home else Path.home() / ".cache" / "scalesim"


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's options (used by ``scalesim demo``)."""
    parser.add_argument("--agents", type=int, default=24, help="number of agents (default 24)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of requests (default 6)")
    parser.add_argument(
        "--pool-tokens",
        type=int,
        default=2048,
        help="device KV pool size in tokens (default 2048: about half of 24 agents' prefixes)",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--model-dir", type=Path, help="tiny model folder (default: cache dir)")
    parser.add_argument("--port", type=int, help="server port (default: a free one)")


def run_demo_from_args(options: argparse.Namespace) -> int:
    """Run the demo as ``scalesim demo`` parsed it; returns the exit code."""
    if min(options.agents, options.rounds, options.concurrency) < 1 or options.pool_tokens < 1024:
        raise SystemExit(
            "scalesim demo: --agents, --rounds and --concurrency must be >= 1, "
            "--pool-tokens >= 1024"
        )
    home = default_home()
    model_dir = options.model_dir or home / f"tiny-model-{options.agents}-loras"
    print(f"[demo] tiny model with {options.agents} adapters in {model_dir}", flush=True)
    model = ensure_tiny_model(model_dir, n_loras=options.agents)
    log_path = home / "demo-server.log"
    print(f"[demo] starting scalesim serve (log: {log_path})", flush=True)
    try:
        with running_server(
            serve_arguments(
                model, max_loras_per_batch=options.concurrency, pool_tokens=options.pool_tokens
            ),
            log_path=log_path,
            port=options.port,
        ) as server:
            print(f"[demo] server healthy after {server.startup_s:.1f} s", flush=True)
            summary = run_workload(
                server, model, n_rounds=options.rounds, concurrency=options.concurrency
            )
    except KeyboardInterrupt:
        print("[demo] interrupted; server stopped", flush=True)
        return 130
    except ServerStartError as err:
        print(f"[demo] {err}", flush=True)
        return 1
    print(summary.describe(), flush=True)
    return 0


def serve_arguments(model: TinyModel, *, max_loras_per_batch: int, pool_tokens: int) -> list[str]:
    """``scalesim serve`` arguments: the tiny model, all its adapters, ScaleSim's eviction, a
    device KV pool of ``pool_tokens`` tokens."""
    import torch

    args = ["--model-path", str(model.path), "--served-model-name", SERVED_MODEL_NAME]
    args += ["--enable-lora", "--lora-paths", *model.sglang_lora_paths()]
    args += ["--max-loras-per-batch", str(max_loras_per_batch)]
    args += ["--radix-eviction-policy", "scalesim", "--max-total-tokens", str(pool_tokens)]
    if not torch.cuda.is_available():
        args += ["--device", "cpu"]
    return args


def run_workload(
    server: RunningServer, model: TinyModel, *, n_rounds: int, concurrency: int
) -> DemoSummary:
    """Every round, each agent due that round asks what to do next; rounds run in order."""
    client = OpenAI(base_url=server.openai_base_url, api_key="scalesim-demo")
    calls: list[AgentCall] = []
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for round_index in range(n_rounds):
            round_started = time.monotonic()
            futures = [
                pool.submit(_ask, client, model, agent=agent, round_index=round_index)
                for agent in range(len(model.adapters))
                if round_index % period(agent) == 0
            ]
            results = [future.result() for future in futures]
            calls += results
            _print_round(round_index, n_rounds, results, time.monotonic() - round_started)
    return DemoSummary(
        n_requests=len(calls),
        prompt_tokens=sum(call.prompt_tokens for call in calls),
        cached_tokens=sum(call.cached_tokens for call in calls),
        completion_tokens=sum(call.completion_tokens for call in calls),
        startup_s=server.startup_s,
        workload_s=time.monotonic() - started,
    )


def period(agent: int) -> int:
    """Rounds between two calls of ``agent``: 1, 2 or 3."""
    return 1 + agent % 3


def persona(agent: int, *, n_words: int = 120) -> str:
    """A deterministic persona prompt: the prefix this agent repeats in every request."""
    words = random.Random(agent).choices(_PERSONA_WORDS, k=n_words)
    return f"You are agent a{agent} of the town. Your memories: {' '.join(words)}."


def _ask(client: OpenAI, model: TinyModel, *, agent: int, round_index: int) -> AgentCall:
    place = _PLACES[(agent + round_index) % len(_PLACES)]
    response = client.chat.completions.create(
        model=f"{SERVED_MODEL_NAME}:{model.adapters[agent]}",
        messages=[
            {"role": "system", "content": persona(agent)},
            {"role": "user", "content": f"Round {round_index}: you are at the {place}. Next?"},
        ],
        max_tokens=16,
        temperature=0.0,
        extra_body={
            "custom_params": {
                "scalesim": {
                    "agent": f"a{agent}",
                    "namespace": "demo",
                    "clock": round_index,
                    "next_call": round_index + period(agent),
                }
            }
        },
    )
    usage = response.usage
    if usage is None:
        raise RuntimeError("server returned no usage")
    details = usage.prompt_tokens_details
    cached = details.cached_tokens if details and details.cached_tokens else 0
    return AgentCall(usage.prompt_tokens, cached, usage.completion_tokens)


def _print_round(
    round_index: int, n_rounds: int, calls: Sequence[AgentCall], wall_s: float
) -> None:
    prompt = sum(call.prompt_tokens for call in calls)
    cached = sum(call.cached_tokens for call in calls)
    print(
        f"[demo] round {round_index + 1}/{n_rounds}: {len(calls)} requests, "
        f"{prompt} prompt tokens, {cached} cached ({cached / max(prompt, 1):.0%}), {wall_s:.1f} s",
        flush=True,
    )
