"""Bandwidth of the KV page copies: Triton kernel, torch fallback and a plain copy_.

For prefixes of 16 to 8,192 tokens of an 8B Llama-class KV layout (32 layers, 8 KV heads,
head dim 128, bf16) it times `gather_kv` (device -> host) and `scatter_kv` (host ->
device) with each available implementation, and a plain `copy_` of the same bytes
between one contiguous tensor and pinned host memory: the practical ceiling. Bandwidth
counts bytes read plus bytes written. The prefix's device pages are scattered at random
over the pool, as the radix cache leaves them; its host pages are contiguous. Without
CUDA the "device" pool is a CPU tensor, the Triton rows are left out (they need CUDA)
and `--layers` can shrink the model so that the run ends in about a minute.
A benchmark: it prints and writes results, never asserts.

Run: ``python bench/kernels.py [--layers 32 --page-size 1 --layout layer_first]``
Writes ``bench/results/kernels-<device>-page<P>-<layout>.json``, ``.md`` and ``.png``
(or under ``--out-dir``).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from scalesim.kernels import (
    HostLayout,
    Impl,
    KVDevicePool,
    KVHostBuffer,
    Launch,
    gather_kv,
    scatter_kv,
    triton_available,
)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_TOKENS = (16, 64, 256, 1024, 4096, 8192)
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
TRITON_NEEDS_CUDA = "Triton rows need CUDA: not measured on this machine."


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One timed copy: `payload_bytes` moved once per direction in `seconds` (median)."""

    operation: str
    impl: str
    n_tokens: int
    payload_bytes: int
    seconds: float

    @property
    def gb_per_s(self) -> float:
        """Bytes read plus bytes written, per second, in 1e9 bytes."""
        return 2 * self.payload_bytes / self.seconds / 1e9


@dataclasses.dataclass(frozen=True)
class Setup:
    """A pool large enough for the biggest prefix, and a host buffer of the same size."""

    pool: KVDevicePool
    host: KVHostBuffer
    repeats: int


def device_name(device: torch.device) -> str:
    """A file-name-safe name of the measuring device, e.g. nvidia-h100-80gb-hbm3."""
    if device.type == "cuda":
        label = torch.cuda.get_device_name(device)
    else:
        label = f"cpu-{platform.machine()}-{os.cpu_count()}c"
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def timed(run: Callable[[], object], *, device: torch.device, repeats: int) -> float:
    """Median seconds of `run` after one warm-up, synchronising CUDA around each call."""
    samples = []
    for attempt in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if attempt:
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def build_setup(args: argparse.Namespace, device: torch.device) -> Setup:
    n_slots = max(args.tokens) + args.page_size
    shape = (n_slots, args.heads, args.head_dim)
    layers = [
        torch.randn(shape, device=device).to(DTYPES[args.dtype]) for _ in range(2 * args.layers)
    ]
    pool = KVDevicePool.from_layers(
        layers[: args.layers], layers[args.layers :], page_size=args.page_size
    )
    layout = HostLayout(args.layout)
    host = KVHostBuffer.allocate(pool, n_tokens=n_slots, layout=layout)
    return Setup(pool, host, args.repeats)


def measure_tokens(setup: Setup, n_tokens: int, impls: list[Impl]) -> list[Measurement]:
    """All rows for one prefix length."""
    pool, host = setup.pool, setup.host
    n_pages = n_tokens // pool.page_size
    device_pages = torch.randperm(pool.n_pages, device=pool.device)[:n_pages]
    host_pages = torch.arange(n_pages)
    heads, head_dim = pool.row_shape
    payload = 2 * pool.n_layers * n_pages * pool.page_size * heads * head_dim
    payload *= pool.dtype.itemsize
    rows = []
    for impl in impls:
        launch = Launch(impl=impl)
        for operation, copy in (("gather", gather_kv), ("scatter", scatter_kv)):
            pair = (pool, host) if operation == "gather" else (host, pool)
            run = functools.partial(
                copy, *pair, device_pages=device_pages, host_pages=host_pages, launch=launch
            )
            seconds = timed(run, device=pool.device, repeats=setup.repeats)
            rows.append(Measurement(operation, impl.value, n_tokens, payload, seconds))
    rows.extend(measure_plain_copy(setup, n_tokens, payload))
    return rows


def measure_plain_copy(setup: Setup, n_tokens: int, payload: int) -> list[Measurement]:
    """copy_ of `payload` contiguous bytes between the pool's device and pinned host memory."""
    device = setup.pool.device
    on_device = torch.empty(payload, dtype=torch.uint8, device=device)
    on_host = torch.empty(payload, dtype=torch.uint8, pin_memory=device.type == "cuda")
    directions = (("gather", on_host, on_device), ("scatter", on_device, on_host))
    rows = []
    for operation, target, source in directions:
        run = functools.partial(target.copy_, source, non_blocking=True)
        seconds = timed(run, device=device, repeats=setup.repeats)
        rows.append(Measurement(operation, "copy_", n_tokens, payload, seconds))
    return rows


def format_table(rows: list[Measurement]) -> str:
    lines = [
        "| op | impl | tokens | MiB | ms | GB/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in sorted(rows, key=lambda r: (r.operation, r.impl, r.n_tokens)):
        mib = row.payload_bytes / 2**20
        lines.append(
            f"| {row.operation} | {row.impl} | {row.n_tokens} | {mib:.1f} "
            f"| {row.seconds * 1e3:.3f} | {row.gb_per_s:.2f} |"
        )
    return "\n".join(lines)


def plot(rows: list[Measurement], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, operation in zip(axes, ("gather", "scatter"), strict=True):
        for impl in sorted({row.impl for row in rows}):
            series = [r for r in rows if r.operation == operation and r.impl == impl]
            ax.plot([r.n_tokens for r in series], [r.gb_per_s for r in series], "o-", label=impl)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("prefix tokens")
        ax.set_title(f"{operation} ({'device->host' if operation == 'gather' else 'host->device'})")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("GB/s (read + written)")
    axes[0].legend()
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=32, help="model layers (32 for 8B)")
    parser.add_argument("--heads", type=int, default=8, help="KV heads")
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--page-size", type=int, default=1, help="tokens per page")
    parser.add_argument("--layout", choices=[x.value for x in HostLayout], default="layer_first")
    parser.add_argument("--tokens", type=int, nargs="+", default=list(DEFAULT_TOKENS))
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per row (median)")
    parser.add_argument(
        "--cpu-threads",
        type=int,
        default=1,
        help="torch CPU threads; 1 keeps timings stable on a small shared machine",
    )
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.cpu_threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    impls = [Impl.TORCH]
    if device.type == "cuda" and triton_available():
        impls.append(Impl.TRITON)
    setup = build_setup(args, device)
    rows = [row for n in args.tokens for row in measure_tokens(setup, n, impls)]
    name = device_name(device)
    notes = [] if Impl.TRITON in impls else [TRITON_NEEDS_CUDA]
    if device.type != "cuda":
        notes.append("No CUDA: the pool is a CPU tensor and copy_ is host to host.")
    config = {key: value for key, value in vars(args).items() if key != "out_dir"}
    variant = f"page{args.page_size}-{args.layout}"
    title = (
        f"{name}: {args.layers} layers x {args.heads} heads x {args.head_dim}, {args.dtype}, "
        f"page size {args.page_size}, host layout {args.layout}"
    )
    table = format_table(rows)
    print(title, *notes, table, sep="\n")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.out_dir / f"kernels-{name}-{variant}"
    report = {
        "device": name,
        "platform": platform.platform(),
        "torch": torch.__version__,
        "triton_available": triton_available(),
        "config": config,
        "notes": notes,
        "rows": [{**dataclasses.asdict(r), "gb_per_s": r.gb_per_s} for r in rows],
    }
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    markdown = "\n\n".join([f"# KV copy bandwidth on {title}", *notes, table])
    stem.with_suffix(".md").write_text(markdown + "\n")
    plot(rows, stem.with_suffix(".png"), title)


if __name__ == "__main__":
    main()
