"""bench/kernels.py runs end to end on a tiny layout and writes its three result files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scalesim.bench import kernels as bench_kernels


def test_bench_writes_json_markdown_and_plot(tmp_path: Path) -> None:
    argv = ["--layers", "1", "--heads", "1", "--head-dim", "16", "--tokens", "16", "32"]
    bench_kernels.main([*argv, "--repeats", "1", "--out-dir", str(tmp_path)])
    (json_path,) = tmp_path.glob("kernels-*.json")
    report = json.loads(json_path.read_text())
    rows = {(row["operation"], row["impl"], row["n_tokens"]) for row in report["rows"]}
    assert ("gather", "torch", 16) in rows and ("scatter", "copy_", 32) in rows
    for row in report["rows"]:  # K and V of 1 layer x 1 head x 16 dims in bf16 per token
        assert row["payload_bytes"] == row["n_tokens"] * 2 * 16 * 2
        assert row["gb_per_s"] * row["seconds"] * 1e9 == pytest.approx(2 * row["payload_bytes"])
    assert json_path.with_suffix(".md").read_text().startswith("# KV copy bandwidth")
    assert json_path.with_suffix(".png").stat().st_size > 0
