"""The CPU development layer's torch stand-ins compute what SGLang's CUDA ops compute."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from scalesim.sglang.cpu_compat import STANDIN_DIR, transfer_kv_direct


def test_transfer_kv_direct_copies_slots_per_layer() -> None:
    src = [torch.arange(12.0).reshape(6, 2), torch.arange(12.0, 24.0).reshape(6, 2)]
    dst = [torch.zeros(4, 2), torch.zeros(4, 2)]
    transfer_kv_direct(src, dst, torch.tensor([5, 0]), torch.tensor([1, 3]), page_size=1)
    assert dst[0].tolist() == [[0, 0], [10, 11], [0, 0], [0, 1]]
    assert dst[1].tolist() == [[0, 0], [22, 23], [0, 0], [12, 13]]


def _load_standin():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "scalesim_sgl_kernel_standin", STANDIN_DIR / "sgl_kernel" / "__init__.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_standin_assign_req_to_token_pool_matches_the_triton_kernel() -> None:
    standin = _load_standin()
    req_to_token = torch.zeros(3, 6, dtype=torch.int64)
    standin.assign_req_to_token_pool_cpu(
        torch.tensor([2, 0]),
        req_to_token,
        torch.tensor([1, 0]),
        torch.tensor([3, 2]),
        torch.tensor([7, 8, 9, 10]),
        6,
    )
    assert req_to_token.tolist() == [[9, 10, 0, 0, 0, 0], [0] * 6, [0, 7, 8, 0, 0, 0]]


def test_standin_unsupported_op_raises_with_its_name() -> None:
    standin = _load_standin()
    with pytest.raises(NotImplementedError, match="fill_bonus_tokens_cpu"):
        standin.fill_bonus_tokens_cpu()
