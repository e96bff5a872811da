"""DEVELOPMENT/TEST ONLY: stand-in for the ``sgl_kernel`` package on a machine without CUDA.

The PyPI ``sgl_kernel`` wheel cannot load without libcuda, yet SGLang's CPU path imports a few
of its names at module import time. ``scalesim serve --device cpu`` puts this folder first on
``PYTHONPATH`` (only when CUDA is absent), so every SGLang process imports this module instead.
The one op the CPU serving path really calls is implemented in torch; the others raise when
called, naming themselves, so a path that needs a real kernel fails loudly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

#: Names SGLang 0.5.23 imports from ``sgl_kernel`` on the CPU path but never calls there.
_UNSUPPORTED_OPS = (
    "copy_all_layer_kv_cache_cpu",
    "build_tree_kernel_efficient_cpu",
    "verify_tree_greedy_cpu",
    "assign_draft_cache_locs_contiguous_cpu",
    "assign_extend_cache_locs_cpu",
    "fill_accept_out_cache_loc_cpu",
    "fill_bonus_tokens_cpu",
)


def assign_req_to_token_pool_cpu(
    req_pool_indices: torch.Tensor,
    req_to_token: torch.Tensor,
    start_offset: torch.Tensor,
    end_offset: torch.Tensor,
    out_cache_loc: torch.Tensor,
    pool_len: int,
) -> None:
    """Torch version of SGLang's kernel: row ``req_pool_indices[i]`` of ``req_to_token`` gets
    columns ``start_offset[i]:end_offset[i]`` from the next slice of ``out_cache_loc``."""
    del pool_len  # the row length is req_to_token.shape[1]
    out_start = 0
    for row, start, end in zip(
        req_pool_indices.tolist(), start_offset.tolist(), end_offset.tolist(), strict=True
    ):
        n_tokens = end - start
        req_to_token[row, start:end] = out_cache_loc[out_start : out_start + n_tokens]
        out_start += n_tokens


def _unsupported(name: str) -> Callable[..., Any]:
    def op(*args: object, **kwargs: object) -> Any:
        raise NotImplementedError(f"sgl_kernel.{name} has no CPU stand-in (ScaleSim CPU dev mode)")

    op.__name__ = name
    return op


globals().update({name: _unsupported(name) for name in _UNSUPPORTED_OPS})
