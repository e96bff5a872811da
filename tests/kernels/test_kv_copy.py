"""gather_kv / scatter_kv: Triton (interpreted) and torch against a per-token loop oracle."""

from __future__ import annotations

import pytest
import torch
from kernel_helpers import CPU_IMPLS, DTYPES, assert_bits_equal
from scalesim.kernels import (
    CompletedCopy,
    HostLayout,
    Impl,
    KVDevicePool,
    KVHostBuffer,
    Launch,
    gather_kv,
    scatter_kv,
)

N_LAYERS, N_HEADS, HEAD_DIM = 3, 3, 5  # odd on purpose: masks and strides must be right
POISON = float("nan")


def make_pool(
    dtype: torch.dtype, generator: torch.Generator, *, n_pages: int, page_size: int
) -> KVDevicePool:
    # SGLang allocates size + page_size rows; 3 spare rows leave a partial trailing page.
    shape = (n_pages * page_size + 3, N_HEADS, HEAD_DIM)
    layers = [torch.randn(shape, generator=generator).to(dtype) for _ in range(2 * N_LAYERS)]
    return KVDevicePool.from_layers(layers[:N_LAYERS], layers[N_LAYERS:], page_size=page_size)


def make_host(pool: KVDevicePool, layout: HostLayout, *, n_pages: int) -> KVHostBuffer:
    host = KVHostBuffer.allocate(pool, n_tokens=n_pages * pool.page_size, layout=layout)
    host.tensor.fill_(POISON)
    return host


def oracle_gather(pool: KVDevicePool, host: KVHostBuffer, pairs: list[tuple[int, int]]) -> None:
    size = pool.page_size
    for kv, layers in enumerate((pool.k_layers, pool.v_layers)):
        for layer_index, layer in enumerate(layers):
            for device_page, host_page in pairs:
                for token in range(size):
                    row = layer[device_page * size + token]
                    host.layer_major(kv)[layer_index, host_page * size + token] = row


def random_pairs(
    generator: torch.Generator, n_copies: int, *, n_sources: int, n_targets: int
) -> list[tuple[int, int]]:
    """Distinct targets; sources drawn with repetition (a gather may read a page twice)."""
    targets = torch.randperm(n_targets, generator=generator)[:n_copies].tolist()
    sources = torch.randint(n_sources, (n_copies,), generator=generator).tolist()
    return list(zip(sources, targets, strict=True))


CASES = [
    pytest.param(
        dtype, layout, page_size, n_copies, id=f"{dtype}-{layout.value}-P{page_size}-n{n_copies}"
    )
    for dtype in DTYPES
    for layout in HostLayout
    for page_size, n_copies in ((1, 0), (1, 1), (1, 17), (16, 1), (16, 5))
]


@pytest.mark.parametrize(("dtype", "layout", "page_size", "n_copies"), CASES)
@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_gather_matches_oracle(
    generator: torch.Generator,
    impl: Impl,
    dtype: torch.dtype,
    layout: HostLayout,
    page_size: int,
    n_copies: int,
) -> None:
    pool = make_pool(dtype, generator, n_pages=19, page_size=page_size)
    host = make_host(pool, layout, n_pages=23)
    pairs = random_pairs(generator, n_copies, n_sources=19, n_targets=23)
    expected = make_host(pool, layout, n_pages=23)
    oracle_gather(pool, expected, pairs)
    event = gather_kv(
        pool,
        host,
        device_pages=torch.tensor([d for d, _ in pairs], dtype=torch.int64),
        host_pages=torch.tensor([h for _, h in pairs], dtype=torch.int32),
        launch=Launch(impl=impl),
    )
    assert isinstance(event, CompletedCopy) and event.query()
    assert_bits_equal(host.tensor, expected.tensor)


@pytest.mark.parametrize(("dtype", "layout", "page_size", "n_copies"), CASES)
@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_scatter_matches_oracle(
    generator: torch.Generator,
    impl: Impl,
    dtype: torch.dtype,
    layout: HostLayout,
    page_size: int,
    n_copies: int,
) -> None:
    source_pool = make_pool(dtype, generator, n_pages=23, page_size=page_size)
    host = make_host(source_pool, layout, n_pages=23)
    oracle_gather(source_pool, host, [(page, page) for page in range(23)])
    pool = make_pool(dtype, generator, n_pages=19, page_size=page_size)
    for layer in (*pool.k_layers, *pool.v_layers):
        layer.fill_(POISON)
    expected = [layer.clone() for layer in (*pool.k_layers, *pool.v_layers)]
    pairs = random_pairs(generator, n_copies, n_sources=23, n_targets=19)
    size = page_size
    for host_page, device_page in pairs:
        rows = slice(host_page * size, (host_page + 1) * size)
        for index in range(2 * N_LAYERS):
            kv, layer_index = divmod(index, N_LAYERS)
            target = expected[index][device_page * size : (device_page + 1) * size]
            target.copy_(host.layer_major(kv)[layer_index, rows])
    scatter_kv(
        host,
        pool,
        host_pages=torch.tensor([h for h, _ in pairs], dtype=torch.int32),
        device_pages=torch.tensor([d for _, d in pairs], dtype=torch.int64),
        launch=Launch(impl=impl),
    )
    for actual, wanted in zip((*pool.k_layers, *pool.v_layers), expected, strict=True):
        assert_bits_equal(actual, wanted)


def test_round_trip_restores_pool(generator: torch.Generator) -> None:
    """Gather then scatter into fresh pages returns the same bits, for a 16-token page."""
    pool = make_pool(torch.bfloat16, generator, n_pages=6, page_size=16)
    host = make_host(pool, HostLayout.PAGE_FIRST, n_pages=4)
    launch = Launch(impl=Impl.TRITON)
    pages = torch.tensor([4, 1, 3])
    gather_kv(pool, host, device_pages=pages, host_pages=torch.tensor([0, 3, 2]), launch=launch)
    scatter_kv(
        host,
        pool,
        host_pages=torch.tensor([0, 3, 2]),
        device_pages=torch.tensor([0, 2, 5]),
        launch=launch,
    )
    for layer in (*pool.k_layers, *pool.v_layers):
        for source, target in ((4, 0), (1, 2), (3, 5)):
            assert_bits_equal(
                layer[target * 16 : target * 16 + 16], layer[source * 16 : source * 16 + 16]
            )
