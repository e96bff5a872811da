"""Calibrate the replay cost model on a GPU with an 8B Llama-shaped model of random weights.

The model comes from a transformers ``LlamaConfig`` (no downloads). Measured:
prefill tokens/s at prompt lengths 512-4,096 (one prompt, last-token logits, as SGLang
computes them); decode step time at batch 1-64 with every sequence holding ``--context``
tokens of KV, replayed as one CUDA graph the way SGLang serves decode (eager time is
recorded too); pinned host<->device bandwidth; and the time to load one rank-16 LoRA
adapter (every attention and MLP projection of every layer) from pinned host memory.
A least-squares line through the decode times gives ``decode_base_s`` and
``decode_per_seq_s``; the median over prompt lengths gives ``prefill_tokens_per_s``.

Writes ``costmodel-<device>.json`` (CostModel fields only: pass it to
``scalesim bench replay --cost-model``) and ``calibration-<device>.json`` / ``.md`` with
every raw number. ``--preset tiny`` runs the same code on a toy model (used by the tests).
A benchmark: it prints and writes results, never asserts.

Run: ``python -m scalesim.bench.calibrate [--out-dir DIR]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import re
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import transformers
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from .costmodel import CostModel

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PRESETS: dict[str, dict[str, Any]] = {
    # Llama-3-8B's shape.
    "8b": {
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
    },
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 256,
    },
}
LORA_RANK = 16
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def build_model(preset: str, dtype: torch.dtype, device: torch.device) -> LlamaForCausalLM:
    """Random weights (transformers' own initialisation), created directly on `device`."""
    config = LlamaConfig(**PRESETS[preset], max_position_embeddings=16384)
    config._attn_implementation = "sdpa"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    return model.eval()


def kv_heads(config: LlamaConfig) -> int:
    """KV heads (grouped-query attention); a config without them has one per query head."""
    return int(config.num_key_value_heads or config.num_attention_heads)


def median_seconds(run: Callable[[], object], device: torch.device, *, repeats: int) -> float:
    """Median of `repeats` timed runs after two warm-ups; CUDA events on a GPU."""
    for _ in range(2):
        run()
    samples = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) / 1e3)
        else:
            began = time.perf_counter()
            run()
            samples.append(time.perf_counter() - began)
    return statistics.median(samples)


class StaticDecoder:
    """One decode step over a fixed KV cache, built from the model's own modules.

    Static shapes and in-place KV writes make the step capturable as a CUDA graph, as in
    SGLang; every sequence attends to `context` cached tokens plus the new one.
    """

    def __init__(self, model: LlamaForCausalLM, batch: int, context: int) -> None:
        config = model.config
        device, dtype = model.device, model.dtype
        self.model = model
        self.batch = batch
        self.context = context
        self.heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        shape = (batch, kv_heads(config), context + 1, self.head_dim)
        layers = config.num_hidden_layers
        self.keys = [torch.randn(shape, device=device, dtype=dtype) for _ in range(layers)]
        self.values = [torch.randn(shape, device=device, dtype=dtype) for _ in range(layers)]
        self.tokens = torch.randint(config.vocab_size, (batch, 1), device=device)
        self.positions = torch.full((batch, 1), context, device=device)

    def step(self) -> torch.Tensor:
        """Logits of the next token; writes the new K and V at position `context`."""
        core = self.model.model
        x = core.embed_tokens(self.tokens)
        cos, sin = core.rotary_emb(x, self.positions)
        for layer, keys, values in zip(core.layers, self.keys, self.values, strict=True):
            attention = layer.self_attn
            h = layer.input_layernorm(x)
            q = attention.q_proj(h).view(self.batch, 1, -1, self.head_dim).transpose(1, 2)
            k = attention.k_proj(h).view(self.batch, 1, -1, self.head_dim).transpose(1, 2)
            v = attention.v_proj(h).view(self.batch, 1, -1, self.head_dim).transpose(1, 2)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            keys[:, :, self.context] = k[:, :, 0]
            values[:, :, self.context] = v[:, :, 0]
            out = F.scaled_dot_product_attention(q, keys, values, enable_gqa=True)
            x = x + attention.o_proj(out.transpose(1, 2).reshape(self.batch, 1, -1))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        logits: torch.Tensor = self.model.lm_head(core.norm(x))
        return logits

    def graph_step(self) -> Callable[[], None]:
        """The step captured as a CUDA graph; raises where capture is unsupported."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self.step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.step()
        return graph.replay


def measure_prefill(
    model: LlamaForCausalLM, lengths: Sequence[int], repeats: int
) -> list[dict[str, float]]:
    rows = []
    for length in lengths:
        ids = torch.randint(model.config.vocab_size, (1, length), device=model.device)

        def run(ids: torch.Tensor = ids) -> object:
            return model(input_ids=ids, use_cache=False, logits_to_keep=1)

        seconds = median_seconds(run, model.device, repeats=repeats)
        rows.append({"tokens": length, "seconds": seconds, "tokens_per_s": length / seconds})
    return rows


def measure_decode(
    model: LlamaForCausalLM, batches: Sequence[int], context: int, repeats: int
) -> tuple[list[dict[str, float]], list[str]]:
    rows, notes = [], []
    for batch in batches:
        decoder = StaticDecoder(model, batch, context)
        row: dict[str, float] = {"batch": batch}
        row["eager_s"] = median_seconds(decoder.step, model.device, repeats=repeats)
        if model.device.type == "cuda":
            try:
                replay = decoder.graph_step()
            except RuntimeError as error:
                notes.append(f"batch {batch}: CUDA graph capture failed ({error}); eager used")
            else:
                row["graph_s"] = median_seconds(replay, model.device, repeats=repeats)
        rows.append(row)
        del decoder
        if model.device.type == "cuda":
            torch.cuda.empty_cache()
    return rows, notes


def measure_bandwidth(device: torch.device, n_bytes: int, repeats: int) -> dict[str, float]:
    """Bytes per second of one pinned host<->device copy (each byte counted once)."""
    host = torch.randint(0, 255, (n_bytes,), dtype=torch.uint8)
    if device.type == "cuda":
        host = host.pin_memory()
    on_device = torch.empty(n_bytes, dtype=torch.uint8, device=device)
    h2d = median_seconds(lambda: on_device.copy_(host, non_blocking=True), device, repeats=repeats)
    d2h = median_seconds(lambda: host.copy_(on_device, non_blocking=True), device, repeats=repeats)
    return {"bytes": n_bytes, "h2d_bytes_per_s": n_bytes / h2d, "d2h_bytes_per_s": n_bytes / d2h}


def measure_adapter_load(model: LlamaForCausalLM, repeats: int) -> dict[str, float]:
    """One rank-16 adapter: A [r, in] and B [out, r] for every projection of every layer."""
    pinned = model.device.type == "cuda"
    pairs = []
    for layer in model.model.layers:
        modules = {**dict(layer.self_attn.named_children()), **dict(layer.mlp.named_children())}
        for name in PROJECTIONS:
            out_dim, in_dim = modules[name].weight.shape
            for shape in ((LORA_RANK, in_dim), (out_dim, LORA_RANK)):
                host = torch.randn(shape, dtype=model.dtype)
                host = host.pin_memory() if pinned else host
                pairs.append((host, torch.empty_like(host, device=model.device)))

    def load() -> None:
        for host, target in pairs:
            target.copy_(host, non_blocking=True)

    seconds = median_seconds(load, model.device, repeats=repeats)
    n_bytes = sum(host.numel() * host.element_size() for host, _ in pairs)
    return {"rank": LORA_RANK, "bytes": n_bytes, "seconds": seconds}


def least_squares(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Intercept and slope of the least-squares line through (xs, ys)."""
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    return mean_y - slope * mean_x, slope


def fit_cost_model(
    model: LlamaForCausalLM,
    prefill: list[dict[str, float]],
    decode: list[dict[str, float]],
    bandwidth: dict[str, float],
    adapter: dict[str, float],
) -> CostModel:
    config = model.config
    head_dim = config.hidden_size // config.num_attention_heads
    kv_bytes = 2 * config.num_hidden_layers * kv_heads(config) * head_dim
    steps = [row.get("graph_s", row["eager_s"]) for row in decode]
    base, per_seq = least_squares([row["batch"] for row in decode], steps)
    return CostModel(
        prefill_tokens_per_s=statistics.median(row["tokens_per_s"] for row in prefill),
        decode_base_s=max(base, min(steps)),
        decode_per_seq_s=max(per_seq, 1e-9),
        kv_bytes_per_token=kv_bytes * model.dtype.itemsize,
        h2d_bytes_per_s=bandwidth["h2d_bytes_per_s"],
        adapter_load_s=adapter["seconds"],
    )


def device_name(device: torch.device) -> str:
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def format_report(report: dict[str, object]) -> str:
    prefill = report["prefill"]
    decode = report["decode"]
    assert isinstance(prefill, list) and isinstance(decode, list)
    lines = [f"# Cost-model calibration on {report['device']}", ""]
    lines += ["| prompt tokens | prefill ms | tokens/s |", "|---:|---:|---:|"]
    lines += [
        f"| {r['tokens']} | {r['seconds'] * 1e3:.2f} | {r['tokens_per_s']:,.0f} |" for r in prefill
    ]
    lines += ["", "| batch | decode step ms (graph) | eager ms |", "|---:|---:|---:|"]
    for r in decode:
        graph = f"{r['graph_s'] * 1e3:.3f}" if "graph_s" in r else "-"
        lines.append(f"| {r['batch']} | {graph} | {r['eager_s'] * 1e3:.3f} |")
    bandwidth, adapter = report["bandwidth"], report["adapter"]
    assert isinstance(bandwidth, dict) and isinstance(adapter, dict)
    lines += [
        "",
        f"Pinned copy of {bandwidth['bytes'] / 2**20:.0f} MiB: host->device "
        f"{bandwidth['h2d_bytes_per_s'] / 1e9:.1f} GB/s, device->host "
        f"{bandwidth['d2h_bytes_per_s'] / 1e9:.1f} GB/s.",
        f"Rank-{adapter['rank']} adapter ({adapter['bytes'] / 1e6:.1f} MB): "
        f"{adapter['seconds'] * 1e3:.2f} ms.",
        "",
        "Fitted cost model: `" + json.dumps(report["cost_model"]) + "`",
        *[f"- {note}" for note in report["notes"]],  # type: ignore[attr-defined]
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="8b")
    parser.add_argument("--prompt-lengths", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--context", type=int, default=1024, help="KV tokens per sequence")
    parser.add_argument("--copy-mib", type=int, default=1024, help="size of the bandwidth copy")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per row (median)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    torch.manual_seed(0)
    model = build_model(args.preset, dtype, device)
    with torch.no_grad():
        prefill = measure_prefill(model, args.prompt_lengths, args.repeats)
        decode, notes = measure_decode(model, args.batches, args.context, args.repeats)
        adapter = measure_adapter_load(model, args.repeats)
    bandwidth = measure_bandwidth(device, args.copy_mib * 2**20, args.repeats)
    if device.type != "cuda":
        notes.append("No CUDA: CPU timings, useful only to check the script.")
    cost = fit_cost_model(model, prefill, decode, bandwidth, adapter)
    name = device_name(device)
    report: dict[str, object] = {
        "device": name,
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "preset": args.preset,
        "dtype": str(dtype),
        "config": {key: value for key, value in vars(args).items() if key != "out_dir"},
        "prefill": prefill,
        "decode": decode,
        "bandwidth": bandwidth,
        "adapter": adapter,
        "cost_model": dataclasses.asdict(cost),
        "notes": notes,
    }
    table = format_report(report)
    print(table)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    suffix = name if args.preset == "8b" else f"{name}-{args.preset}"
    (args.out_dir / f"costmodel-{suffix}.json").write_text(
        json.dumps(dataclasses.asdict(cost), indent=2) + "\n"
    )
    (args.out_dir / f"calibration-{suffix}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out_dir / f"calibration-{suffix}.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
