"""CUDA checks: compiled Triton kernels against the torch fallback, on a side stream.

Marked `gpu`; skipped where CUDA is unavailable (CI, the development machine).
"""

from __future__ import annotations

import pytest
import torch
from kernel_helpers import DTYPES, assert_bits_equal
from scalesim.kernels import (
    HostLayout,
    Impl,
    KernelArgumentError,
    KVDevicePool,
    KVHostBuffer,
    Launch,
    gather_kv,
    load_lora_b,
    scatter_kv,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def cuda_pool(dtype: torch.dtype, *, page_size: int) -> KVDevicePool:
    shape = (64 * page_size, 8, 128)
    k_layers = [torch.randn(shape, device="cuda").to(dtype) for _ in range(4)]
    v_layers = [torch.randn(shape, device="cuda").to(dtype) for _ in range(4)]
    return KVDevicePool.from_layers(k_layers, v_layers, page_size=page_size)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", list(HostLayout))
@pytest.mark.parametrize("page_size", [1, 16])
def test_triton_matches_torch_on_cuda(
    dtype: torch.dtype, layout: HostLayout, page_size: int
) -> None:
    pool = cuda_pool(dtype, page_size=page_size)
    device_pages = torch.randperm(64, device="cuda")[:37]
    host_pages = torch.randperm(48)[:37]
    hosts = []
    for impl in (Impl.TORCH, Impl.TRITON):
        host = KVHostBuffer.allocate(pool, n_tokens=48 * page_size, layout=layout)
        host.tensor.fill_(float("nan"))
        stream = torch.cuda.Stream()
        launch = Launch(impl=impl, stream=stream)
        gather_kv(
            pool, host, device_pages=device_pages, host_pages=host_pages, launch=launch
        ).synchronize()
        hosts.append(host)
    assert_bits_equal(hosts[1].tensor, hosts[0].tensor)
    fresh = cuda_pool(dtype, page_size=page_size)
    event = scatter_kv(
        hosts[1],
        fresh,
        host_pages=host_pages,
        device_pages=device_pages,
        launch=Launch(impl=Impl.TRITON),
    )
    event.synchronize()
    for source, target in zip(
        pool.k_layers + pool.v_layers, fresh.k_layers + fresh.v_layers, strict=True
    ):
        rows = (device_pages[:, None] * page_size + torch.arange(page_size, device="cuda")).reshape(
            -1
        )
        assert_bits_equal(target[rows].cpu(), source[rows].cpu())


def test_unpinned_host_rejected_on_cuda() -> None:
    pool = cuda_pool(torch.bfloat16, page_size=1)
    host = KVHostBuffer(
        torch.zeros((2, 4, 8, 8, 128), dtype=torch.bfloat16), HostLayout.LAYER_FIRST
    )
    with pytest.raises(KernelArgumentError) as raised:
        gather_kv(pool, host, device_pages=torch.tensor([0]), host_pages=torch.tensor([0]))
    assert raised.value.argument == "host"


def test_stream_rejected_for_cpu_tensors() -> None:
    layers = [torch.zeros((4, 1, 8)) for _ in range(2)]
    pool = KVDevicePool.from_layers(layers[:1], layers[1:], page_size=1)
    host = KVHostBuffer.allocate(pool, n_tokens=4, layout=HostLayout.PAGE_FIRST)
    launch = Launch(stream=torch.cuda.Stream())
    with pytest.raises(KernelArgumentError) as raised:
        gather_kv(
            pool, host, device_pages=torch.tensor([0]), host_pages=torch.tensor([0]), launch=launch
        )
    assert raised.value.argument == "launch"


def test_lora_b_from_pinned_host() -> None:
    buffer = torch.full((4, 4096, 16), float("nan"), dtype=torch.bfloat16, device="cuda")
    weight = torch.randn((4096, 8)).to(torch.bfloat16).pin_memory()
    load_lora_b(buffer, weight, slot=3, launch=Launch(impl=Impl.TRITON)).synchronize()
    expected = torch.zeros((4096, 16), dtype=torch.bfloat16)
    expected[:, :8] = weight
    assert_bits_equal(buffer[3].cpu(), expected)
