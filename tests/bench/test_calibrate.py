"""The calibration script on CPU with a toy model: the decode step is the model's; output loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scalesim.bench.calibrate import StaticDecoder, build_model, least_squares, main
from scalesim.bench.costmodel import load_cost_model


def test_static_decode_step_matches_the_model_forward() -> None:
    torch.manual_seed(3)
    model = build_model("tiny", torch.float32, torch.device("cpu"))
    context = 11
    ids = torch.randint(model.config.vocab_size, (2, context + 1))
    with torch.no_grad():
        cache = model(input_ids=ids[:, :context], use_cache=True).past_key_values
        expected = model(input_ids=ids).logits[:, -1]
        decoder = StaticDecoder(model, batch=2, context=context)
        for layer, keys, values in zip(cache.layers, decoder.keys, decoder.values, strict=True):
            keys[:, :, :context] = layer.keys
            values[:, :, :context] = layer.values
        decoder.tokens.copy_(ids[:, context:])
        got = decoder.step()[:, -1]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_least_squares_recovers_a_line() -> None:
    intercept, slope = least_squares([1, 2, 4, 8], [3.0 + 0.5 * x for x in (1, 2, 4, 8)])
    assert abs(intercept - 3.0) < 1e-12 and abs(slope - 0.5) < 1e-12


def test_calibration_writes_a_loadable_cost_model(tmp_path: Path) -> None:
    main(
        [
            "--preset=tiny",
            "--prompt-lengths",
            "16",
            "32",
            "--batches",
            "1",
            "2",
            "4",
            "--context=8",
            "--copy-mib=1",
            "--repeats=1",
            f"--out-dir={tmp_path}",
        ]
    )
    cost = load_cost_model(tmp_path / "costmodel-cpu-tiny.json")
    # 2 (K, V) x 2 layers x 2 KV heads x head dim 16 x 4 bytes (float32).
    assert cost.kv_bytes_per_token == 2 * 2 * 2 * 16 * 4
    report = json.loads((tmp_path / "calibration-cpu-tiny.json").read_text())
    decode = report["decode"]
    steps = [row.get("graph_s", row["eager_s"]) for row in decode]
    slope, intercept = np.polyfit([row["batch"] for row in decode], steps, 1)
    assert cost.decode_per_seq_s == pytest.approx(max(slope, 1e-9), rel=1e-6)
    assert cost.decode_base_s == pytest.approx(max(intercept, min(steps)), rel=1e-6)
    prefill_rates = sorted(row["tokens_per_s"] for row in report["prefill"])
    assert cost.prefill_tokens_per_s == pytest.approx(np.median(prefill_rates))
    assert report["adapter"]["bytes"] > 0
    assert (tmp_path / "calibration-cpu-tiny.md").read_text().startswith("# Cost-model")
