"""Plain torch implementation of the KV copies: the fallback and the tests' reference.

Runs one index_select / index_copy_ per layer and K/V. On CUDA it stages every layer
through pageable memory, so it is synchronous; `kv_copy` uses it only when Triton is
unavailable or `Impl.TORCH` is forced.
"""

from __future__ import annotations

import torch

from .kv_buffers import KVDevicePool, KVHostBuffer


def page_tokens(pages: torch.Tensor, page_size: int) -> torch.Tensor:
    """Token slots of `pages` in page order: page p covers p*page_size .. +page_size-1."""
    within = torch.arange(page_size, dtype=torch.int64, device=pages.device)
    return (pages.to(torch.int64)[:, None] * page_size + within[None, :]).reshape(-1)


def gather_kv_torch(
    pool: KVDevicePool,
    host: KVHostBuffer,
    *,
    device_pages: torch.Tensor,
    host_pages: torch.Tensor,
) -> None:
    """host[kv, layer, host tokens] = pool[kv][layer][device tokens] for every layer."""
    device_tokens = page_tokens(device_pages.to(pool.device), pool.page_size)
    host_tokens = page_tokens(host_pages.cpu(), pool.page_size)
    for kv, layers in enumerate((pool.k_layers, pool.v_layers)):
        host_view = host.layer_major(kv)
        for layer_index, layer in enumerate(layers):
            rows = layer.index_select(0, device_tokens).cpu()
            host_view[layer_index].index_copy_(0, host_tokens, rows)


def scatter_kv_torch(
    host: KVHostBuffer,
    pool: KVDevicePool,
    *,
    host_pages: torch.Tensor,
    device_pages: torch.Tensor,
) -> None:
    """pool[kv][layer][device tokens] = host[kv, layer, host tokens] for every layer."""
    device_tokens = page_tokens(device_pages.to(pool.device), pool.page_size)
    host_tokens = page_tokens(host_pages.cpu(), pool.page_size)
    for kv, layers in enumerate((pool.k_layers, pool.v_layers)):
        host_view = host.layer_major(kv)
        for layer_index, layer in enumerate(layers):
            rows = host_view[layer_index].index_select(0, host_tokens)
            layer.index_copy_(0, device_tokens, rows.to(pool.device))
