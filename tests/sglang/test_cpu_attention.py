"""The CPU extend attention that skips the cached prefix computes what SGLang's own computes."""

from __future__ import annotations

import pytest
import torch
from sglang.srt.layers.attention.torch_native_backend import TorchNativeAttnBackend

from scalesim.sglang.cpu_attention import install, prefix_extend

_SGLANGS = TorchNativeAttnBackend._run_sdpa_forward_extend
if getattr(_SGLANGS, "_scalesim_prefix_extend", False):  # installed in this process already
    _SGLANGS = _SGLANGS.__wrapped__

HEADS, KV_HEADS, HEAD_SIZE, POOL = 8, 4, 16, 600


@pytest.mark.parametrize(
    ("prefixes", "new"),
    [
        ([0, 30, 7], [5, 1, 20]),  # a batch: cold, one new token after a prefix, a chunk
        ([57], [1]),  # a decode step
        ([0], [1]),
        ([40, 0, 99], [3, 12, 1]),
        ([30, 64], [10, 64]),  # half cached: new tokens' queries alone
    ],
)
@pytest.mark.parametrize("causal", [True, False])
def test_prefix_extend_matches_sglangs_extend_attention(
    prefixes: list[int], new: list[int], causal: bool
) -> None:
    generator = torch.Generator().manual_seed(sum(prefixes) + sum(new))
    k_cache = torch.randn(POOL, KV_HEADS, HEAD_SIZE, generator=generator)
    v_cache = torch.randn(POOL, KV_HEADS, HEAD_SIZE, generator=generator)
    req_to_token = torch.randperm(POOL, generator=generator)[:560].reshape(4, 140)
    query = torch.randn(sum(new), HEADS, HEAD_SIZE, generator=generator)
    rows = torch.tensor([3, 0, 2][: len(new)])
    lens = torch.tensor([p + n for p, n in zip(prefixes, new, strict=True)])
    args = (k_cache, v_cache, req_to_token, rows, lens, torch.tensor(prefixes), torch.tensor(new))
    options = {"scaling": 0.25, "enable_gqa": True, "causal": causal}

    expected = _SGLANGS(None, query, torch.zeros_like(query), *args, **options)
    actual = prefix_extend(_SGLANGS)(None, query, torch.zeros_like(query), *args, **options)

    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_windowed_attention_goes_to_sglangs_function() -> None:
    calls: list[int | None] = []

    def sglangs(*args: object, sliding_window_size: int | None = None, **kwargs: object) -> str:
        calls.append(sliding_window_size)
        return "sglang's"

    empty = torch.zeros(0)
    result = prefix_extend(sglangs)(  # type: ignore[arg-type]
        None, *([empty] * 9), causal=True, sliding_window_size=4
    )
    assert (result, calls) == ("sglang's", [4])


def test_another_sglang_keeps_its_own_attention() -> None:
    before = TorchNativeAttnBackend._run_sdpa_forward_extend
    assert install(sglang_version="0.5.22") is False
    assert TorchNativeAttnBackend._run_sdpa_forward_extend is before
