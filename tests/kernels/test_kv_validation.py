"""Bad KV copy arguments raise KernelArgumentError naming the argument, before any write."""

from __future__ import annotations

import pytest
import torch
from kernel_helpers import bits
from scalesim.kernels import (
    HostLayout,
    Impl,
    KernelArgumentError,
    KVDevicePool,
    KVHostBuffer,
    Launch,
    gather_kv,
    scatter_kv,
)
from scalesim.kernels.launch import resolve_impl

PAGE_SIZE, N_PAGES = 4, 5


def layers(n_layers: int = 2, *, dtype: torch.dtype = torch.float16) -> list[torch.Tensor]:
    return [torch.ones((N_PAGES * PAGE_SIZE, 3, 8), dtype=dtype) for _ in range(n_layers)]


@pytest.fixture
def pool() -> KVDevicePool:
    return KVDevicePool.from_layers(layers(), layers(), page_size=PAGE_SIZE)


@pytest.fixture
def host(pool: KVDevicePool) -> KVHostBuffer:
    return KVHostBuffer.allocate(pool, n_tokens=3 * PAGE_SIZE, layout=HostLayout.LAYER_FIRST)


def pages(*values: int) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int64)


@pytest.mark.parametrize(
    ("device_pages", "host_pages", "argument"),
    [
        (pages(N_PAGES), pages(0), "device_pages"),
        (pages(-1), pages(0), "device_pages"),
        (pages(0), pages(3), "host_pages"),
        (pages(0, 1), pages(2, 2), "host_pages"),
        (pages(0, 1), pages(0), "host_pages"),
        (pages(0).reshape(1, 1), pages(0), "device_pages"),
        (torch.tensor([0.0]), pages(0), "device_pages"),
    ],
)
@pytest.mark.parametrize("impl", [Impl.TORCH, Impl.TRITON])
def test_gather_rejects_bad_pages(
    pool: KVDevicePool,
    host: KVHostBuffer,
    impl: Impl,
    device_pages: torch.Tensor,
    host_pages: torch.Tensor,
    argument: str,
) -> None:
    before = bits(host.tensor).clone()
    with pytest.raises(KernelArgumentError) as raised:
        gather_kv(
            pool, host, device_pages=device_pages, host_pages=host_pages, launch=Launch(impl=impl)
        )
    assert raised.value.argument == argument
    assert torch.equal(bits(host.tensor), before)


def test_scatter_rejects_duplicate_destinations(pool: KVDevicePool, host: KVHostBuffer) -> None:
    """Two host pages into one device page would race on the GPU: refused, not last-wins."""
    with pytest.raises(KernelArgumentError) as raised:
        scatter_kv(host, pool, host_pages=pages(0, 1), device_pages=pages(4, 4))
    assert raised.value.argument == "device_pages"


def test_scatter_allows_repeated_sources(pool: KVDevicePool, host: KVHostBuffer) -> None:
    host.tensor.fill_(2.0)
    scatter_kv(host, pool, host_pages=pages(1, 1), device_pages=pages(0, 3))
    assert (pool.k_layers[1][:PAGE_SIZE] == 2.0).all() and (pool.v_layers[0][4] == 1.0).all()


def test_host_must_match_pool(pool: KVDevicePool) -> None:
    wrong_dtype = KVHostBuffer(torch.zeros((2, 2, 8, 3, 8)), HostLayout.LAYER_FIRST)
    wrong_layers = KVHostBuffer(
        torch.zeros((2, 8, 3, 3, 8), dtype=torch.float16), HostLayout.PAGE_FIRST
    )
    for host in (wrong_dtype, wrong_layers):
        with pytest.raises(KernelArgumentError) as raised:
            gather_kv(pool, host, device_pages=pages(0), host_pages=pages(0))
        assert raised.value.argument == "host"


def test_host_buffer_shape_checked() -> None:
    with pytest.raises(KernelArgumentError, match="host"):
        KVHostBuffer(torch.zeros((3, 2, 8, 3, 8)), HostLayout.LAYER_FIRST)
    with pytest.raises(KernelArgumentError, match="host"):
        KVHostBuffer(torch.zeros((2, 2, 8, 8, 3)).transpose(3, 4), HostLayout.LAYER_FIRST)


@pytest.mark.parametrize(
    ("k_layers", "v_layers", "page_size", "argument"),
    [
        (layers(), layers(3), PAGE_SIZE, "v_layers"),
        ([], [], PAGE_SIZE, "v_layers"),
        (layers(dtype=torch.float64), layers(dtype=torch.float64), PAGE_SIZE, "k_layers[0]"),
        (
            layers(),
            [*layers(1), torch.ones((4, 3, 8), dtype=torch.float16)],
            PAGE_SIZE,
            "v_layers[1]",
        ),
        (
            layers(),
            [*layers(1), torch.ones((8, 3, 20), dtype=torch.float16)[:, :, :8]],
            1,
            "v_layers[1]",
        ),
        (layers(), layers(), 0, "page_size"),
        (layers(), layers(), N_PAGES * PAGE_SIZE + 1, "page_size"),
    ],
)
def test_pool_rejects_bad_layers(
    k_layers: list[torch.Tensor], v_layers: list[torch.Tensor], page_size: int, argument: str
) -> None:
    with pytest.raises(KernelArgumentError) as raised:
        KVDevicePool.from_layers(k_layers, v_layers, page_size=page_size)
    assert raised.value.argument == argument


def test_auto_picks_torch_on_cpu() -> None:
    assert resolve_impl(Impl.AUTO, torch.device("cpu")) is Impl.TORCH
    assert resolve_impl(Impl.TRITON, torch.device("cpu")) is Impl.TRITON
