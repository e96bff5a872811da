"""``scalesim demo``: the same small town simulation on stock SGLang and on ScaleSim, side by side.

Builds the tiny random-weight model (once, under ``$SCALESIM_HOME`` or ``~/.cache/scalesim``),
then for each policy starts a real server on a free loopback port (CPU development mode where
there is no GPU) and drives the same rounds of chat completions through the official ``openai``
client: every agent has its own persona prefix and LoRA adapter, names itself in ``extra_body``
and says when it will call again (agent ``a<i>`` speaks every ``1 + i % 3`` rounds). The device
KV pool holds about half of the agents' prefixes, so both servers evict under memory pressure:
stock SGLang by recency, ScaleSim farthest next call first. Prints per-round progress, a
comparison table and writes a PNG; every server is stopped, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from openai import OpenAI

from scalesim.demo_report import AgentCall, PolicyRun, describe, write_plot
from scalesim.server_process import RunningServer, ServerStartError, exit_on_signals, running_server
from scalesim.tiny_model import TinyModel, ensure_tiny_model

SERVED_MODEL_NAME = "scalesim-tiny"
#: The two servers compared: stock SGLang (no ScaleSim hooks) and ScaleSim's policy.
POLICIES: dict[str, list[str]] = {
    "stock": ["--scalesim-disable"],
    "scalesim": ["--radix-eviction-policy", "scalesim"],
}
_PERSONA_WORDS = (
    *("town", "market", "house", "friend", "neighbour", "cafe", "park", "library", "garden"),
    *("kitchen", "book", "letter", "story", "news", "idea", "plan", "goal", "memory"),
    *("morning", "evening", "coffee", "music", "painting", "river", "street", "school"),
)
_PLACES = ("cafe", "park", "library", "market", "garden", "river")


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
    parser.add_argument(
        "--policies",
        default=",".join(POLICIES),
        help=f"comma-separated, from {', '.join(POLICIES)} (default: both)",
    )
    parser.add_argument("--model-dir", type=Path, help="tiny model folder (default: cache dir)")
    parser.add_argument("--out-dir", type=Path, help="where the PNG goes (default: cache dir)")


def run_demo_from_args(options: argparse.Namespace) -> int:
    """Run the demo as ``scalesim demo`` parsed it; returns the exit code."""
    policies = [name.strip() for name in options.policies.split(",") if name.strip()]
    unknown = sorted(set(policies) - set(POLICIES))
    if min(options.agents, options.rounds, options.concurrency) < 1 or options.pool_tokens < 1024:
        raise SystemExit(
            "scalesim demo: --agents, --rounds and --concurrency must be >= 1, "
            "--pool-tokens >= 1024"
        )
    if unknown or not policies:
        raise SystemExit(f"scalesim demo: --policies takes {', '.join(POLICIES)}, got {unknown}")
    exit_on_signals()  # SIGTERM stops the servers, as Ctrl-C does
    home = default_home()
    model_dir = options.model_dir or home / f"tiny-model-{options.agents}-loras"
    print(f"[demo] tiny model with {options.agents} adapters in {model_dir}", flush=True)
    model = ensure_tiny_model(model_dir, n_loras=options.agents)
    runs: list[PolicyRun] = []
    try:
        for policy in policies:
            runs.append(_run_policy(policy, model, options, log_path=home / f"demo-{policy}.log"))
    except KeyboardInterrupt:
        print("[demo] interrupted; servers stopped", flush=True)
        return 130
    except ServerStartError as err:
        print(f"[demo] {err}", flush=True)
        return 1
    print(describe(runs), flush=True)
    png = (options.out_dir or home) / "demo-comparison.png"
    write_plot(runs, png)
    print(f"[demo] plot: {png}", flush=True)
    return 0


def _run_policy(
    policy: str, model: TinyModel, options: argparse.Namespace, *, log_path: Path
) -> PolicyRun:
    print(f"[demo] {policy}: starting the server (log: {log_path})", flush=True)
    args = serve_arguments(
        model, max_loras_per_batch=options.concurrency, pool_tokens=options.pool_tokens
    )
    with running_server([*args, *POLICIES[policy]], log_path=log_path) as server:
        print(f"[demo] {policy}: server healthy after {server.startup_s:.1f} s", flush=True)
        return run_workload(
            policy, server, model, n_rounds=options.rounds, concurrency=options.concurrency
        )


def serve_arguments(model: TinyModel, *, max_loras_per_batch: int, pool_tokens: int) -> list[str]:
    """``scalesim serve`` arguments shared by both servers: the tiny model, all its adapters and
    a device KV pool of ``pool_tokens`` tokens."""
    import torch

    args = ["--model-path", str(model.path), "--served-model-name", SERVED_MODEL_NAME]
    args += ["--enable-lora", "--lora-paths", *model.sglang_lora_paths()]
    args += ["--max-loras-per-batch", str(max_loras_per_batch)]
    args += ["--max-total-tokens", str(pool_tokens)]
    if not torch.cuda.is_available():
        args += ["--device", "cpu"]
    return args


def run_workload(
    policy: str, server: RunningServer, model: TinyModel, *, n_rounds: int, concurrency: int
) -> PolicyRun:
    """Every round, each agent due that round asks what to do next; rounds run in order."""
    client = OpenAI(base_url=server.openai_base_url, api_key="scalesim-demo")
    calls: list[AgentCall] = []
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for round_index in range(n_rounds):
            futures = [
                pool.submit(_ask, client, model, agent=agent, round_index=round_index)
                for agent in range(len(model.adapters))
                if round_index % period(agent) == 0
            ]
            results = [future.result() for future in futures]
            calls += [call._replace(done_s=call.done_s - started) for call in results]
            _print_round(policy, round_index, n_rounds, results)
    return PolicyRun(policy, tuple(calls), server.startup_s, time.monotonic() - started)


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
    return AgentCall(
        round_index, usage.prompt_tokens, cached, usage.completion_tokens, time.monotonic()
    )


def _print_round(policy: str, round_index: int, n_rounds: int, calls: Sequence[AgentCall]) -> None:
    prompt = sum(call.prompt_tokens for call in calls)
    cached = sum(call.cached_tokens for call in calls)
    print(
        f"[demo] {policy}: round {round_index + 1}/{n_rounds}: {len(calls)} requests, "
        f"{prompt} prompt tokens, {cached} cached ({cached / max(prompt, 1):.0%})",
        flush=True,
    )
