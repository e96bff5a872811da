"""DEVELOPMENT/TEST ONLY: a CPU extend attention that does not recompute the cached prefix.

SGLang 0.5.23's CPU attention (``TorchNativeAttnBackend._run_sdpa_forward_extend``, the
``torch_native`` backend CPU mode uses) runs, for every request, a query as long as the whole
sequence (a "redundant" query, zeros over the cached prefix) so that it can use SDPA's top-left
causal mask. The cached prefix's keys and values are reused, but attention still costs the full
sequence squared: on the 2-core development CPU a 3,584-token prompt with all but one token
cached took 2.4-4.5 s against 8.5 s cold (`bench` model, one output token). GPU backends
(FlashInfer, FlashAttention, Triton) attend only the new tokens' queries, so a cached prefix is
nearly free there; the CPU server then under-states what any cache buys, for every eviction
policy alike.

:func:`prefix_extend` computes the same output from the new tokens' queries alone, with the
causal mask aligned to the end of the sequence (query ``j`` sees keys ``0 .. prefix + j``).
A masked SDPA runs torch's general kernel, about 1.7x slower per score than its causal one
(which also skips the masked half), so a request with more new tokens than cached ones keeps
SGLang's full-length query: there the redundant part costs less than the slower kernel.
It is installed by the CPU development layer (``cpu_compat``) for stock and ScaleSim servers
alike, unless ``scalesim serve --scalesim-cpu-attention sglang`` keeps SGLang's; cases it does not
cover (sliding windows, encoder and cross attention) go to SGLang's function unchanged too.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from importlib import metadata
from typing import Any

import torch
from torch.nn.functional import scaled_dot_product_attention

from scalesim import SGLANG_VERSION

logger = logging.getLogger(__name__)

#: The SGLang function replaced: ``TorchNativeAttnBackend._run_sdpa_forward_extend``.
TARGET_MODULE = "sglang.srt.layers.attention.torch_native_backend"
TARGET_CLASS = "TorchNativeAttnBackend"
TARGET_METHOD = "_run_sdpa_forward_extend"

ExtendFn = Callable[..., torch.Tensor]


def install(sglang_version: str | None = None) -> bool:
    """Replace SGLang's CPU extend attention with :func:`prefix_extend` (idempotent); returns
    whether it is in place.

    Only on the SGLang release this was written against (``scalesim.SGLANG_VERSION``; default
    the installed one): elsewhere SGLang's own stays, with a warning, since the function's
    contract may have changed.

    Raises:
        RuntimeError: naming the SGLang symbol, when the pinned SGLang does not have it.
    """
    found = sglang_version if sglang_version is not None else metadata.version("sglang")
    if found != SGLANG_VERSION:
        logger.warning(
            "CPU mode keeps SGLang's own attention: the prefix-aware one is written for "
            "sglang==%s, found %s",
            SGLANG_VERSION,
            found,
        )
        return False
    backend = _backend()
    current = getattr(backend, TARGET_METHOD, None)
    if current is None:
        raise RuntimeError(f"{TARGET_MODULE}.{TARGET_CLASS}.{TARGET_METHOD} does not exist")
    if not is_installed():
        setattr(backend, TARGET_METHOD, prefix_extend(current))
    return True


def is_installed() -> bool:
    """True once :func:`install` replaced the method in this process."""
    method = getattr(_backend(), TARGET_METHOD, None)
    return bool(getattr(method, "_scalesim_prefix_extend", False))


def _backend() -> type:
    backend: type = getattr(importlib.import_module(TARGET_MODULE), TARGET_CLASS)
    return backend


def prefix_extend(original: ExtendFn) -> ExtendFn:
    """``original``'s contract (same arguments, fills and returns ``output``), computed from
    the new tokens' queries alone for every request at least half cached."""

    @functools.wraps(original)
    def run(
        self: Any,
        query: torch.Tensor,
        output: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        req_to_token: torch.Tensor,
        req_pool_indices: torch.Tensor,
        seq_lens: torch.Tensor,
        extend_prefix_lens: torch.Tensor,
        extend_seq_lens: torch.Tensor,
        encoder_lens: torch.Tensor | None = None,
        scaling: float | None = None,
        enable_gqa: bool = False,
        causal: bool = False,
        is_cross_attn: bool = False,
        sliding_window_size: int | None = None,
    ) -> torch.Tensor:
        windowed = sliding_window_size is not None and sliding_window_size > -1
        if encoder_lens is not None or is_cross_attn or windowed:
            return original(
                self, query, output, k_cache, v_cache, req_to_token, req_pool_indices,
                seq_lens, extend_prefix_lens, extend_seq_lens, encoder_lens,
                scaling=scaling, enable_gqa=enable_gqa, causal=causal,
                is_cross_attn=is_cross_attn, sliding_window_size=sliding_window_size,
            )  # fmt: skip
        heads_first = query.movedim(0, 1)  # [heads, tokens, head_size]
        start = 0
        for index in range(seq_lens.shape[0]):
            new, total = int(extend_seq_lens[index]), int(seq_lens[index])
            prefix = total - new
            slots = req_to_token[req_pool_indices[index], :total]
            key = k_cache[slots].movedim(0, 1).to(query.dtype)
            value = v_cache[slots].movedim(0, 1).to(query.dtype)
            queries = heads_first[:, start : start + new]
            if 2 * new > total:  # mostly new: SGLang's full-length query, causal kernel
                padded = queries.new_zeros(queries.shape[0], total, queries.shape[2])
                padded[:, prefix:] = queries
                queries, mask, full_causal = padded, None, causal
            else:
                mask = _causal_mask(new, total, query.device) if causal else None
                full_causal = False
            attended = scaled_dot_product_attention(
                queries.unsqueeze(0),
                key.unsqueeze(0),
                value.unsqueeze(0),
                attn_mask=mask,
                is_causal=full_causal,
                scale=scaling,
                enable_gqa=enable_gqa,
            )[:, :, -new:]
            output[start : start + new] = attended.squeeze(0).movedim(1, 0)
            start += new
        return output

    run._scalesim_prefix_extend = True  # type: ignore[attr-defined]
    return run


def _causal_mask(new: int, total: int, device: torch.device) -> torch.Tensor | None:
    """Query ``j`` (position ``total - new + j``) sees keys up to its own position."""
    if new == 1:
        return None  # the one new token sees every key
    visible = torch.ones(new, total, dtype=torch.bool, device=device)
    return visible.tril(diagonal=total - new)
