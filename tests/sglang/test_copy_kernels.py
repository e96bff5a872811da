"""The live copy paths on ScaleSim's kernels against SGLang's own, on real SGLang objects.

SGLang's ``MHATokenToKVPool`` and ``MHATokenToKVPoolHost`` are built on the CPU (and on CUDA
when present); two identical pairs are filled with the same random bits, SGLang's own method
copies one pair and :class:`CopyPath` (``copy_kernels: "triton"``, the Triton interpreter on the
CPU) the other, and every K, V and host buffer must then be equal bit for bit. On the CPU
SGLang's ``direct`` op is the development layer's torch stand-in (``cpu_compat``); on CUDA it
is sgl_kernel's, and the ``kernel`` io backend (sgl_kernel / JIT ops) is compared too.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from scalesim.patches import copy_kernels as hooks
from sglang.srt.lora import utils as lora_utils
from sglang.srt.mem_cache.memory_pool import MHATokenToKVPool
from sglang.srt.mem_cache.pool_host import mha
from sglang.srt.mem_cache.pool_host.mha import MHATokenToKVPoolHost

from scalesim.config import CopyKernels, ScaleSimConfig
from scalesim.sglang import cpu_compat
from scalesim.sglang.copy_kernels import CopyKind, CopyPath, process_copy_path

_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
_LAYERS, _HEADS, _HEAD_DIM, _DEVICE_TOKENS = 3, 2, 64, 128

_BACKUP = inspect.unwrap(MHATokenToKVPoolHost.backup_from_device_all_layer)
_LOAD = inspect.unwrap(MHATokenToKVPoolHost.load_to_device_per_layer)
_COPY_WEIGHT = inspect.unwrap(lora_utils.copy_weight_into_buffer)

#: (device, host layout, io backend) SGLang itself can run here.
_CASES = [
    pytest.param("cpu", "layer_first", "direct", id="cpu-layer_first-direct"),
    pytest.param("cuda", "layer_first", "direct", marks=_CUDA, id="cuda-layer_first-direct"),
    pytest.param("cuda", "layer_first", "kernel", marks=_CUDA, id="cuda-layer_first-kernel"),
    pytest.param("cuda", "page_first", "kernel", marks=_CUDA, id="cuda-page_first-kernel"),
]


@pytest.fixture(autouse=True)
def sglang_direct_op(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """SGLang's ``direct`` op for CPU pools is the development layer's torch stand-in (SGLang
    imports none without CUDA, and sgl_kernel's needs CUDA tensors)."""
    callspec = getattr(request.node, "callspec", None)
    device = callspec.params.get("device", "cpu") if callspec is not None else "cpu"
    if device == "cpu":
        monkeypatch.setattr(mha, "transfer_kv_direct", cpu_compat.transfer_kv_direct, raising=False)


@dataclass
class _Pools:
    device: MHATokenToKVPool
    host: MHATokenToKVPoolHost

    def buffers(self) -> list[torch.Tensor]:
        return [*self.device.k_buffer, *self.device.v_buffer, self.host.kv_buffer]


def _pools(device: str, layout: str, *, page_size: int, seed: int) -> _Pools:
    kv = MHATokenToKVPool(
        _DEVICE_TOKENS, page_size, torch.float16, _HEADS, _HEAD_DIM, _LAYERS, device, False,
        start_layer=0, end_layer=_LAYERS,
    )  # fmt: skip
    host = MHATokenToKVPoolHost(
        kv.get_device_pool_infos()[0].buffer_info, 2.0, 0, page_size, layout,
        pin_memory=device == "cuda", device_capacity_tokens=kv.size,
        start_layer=0, end_layer=_LAYERS,
    )  # fmt: skip
    generator = torch.Generator().manual_seed(seed)
    pools = _Pools(kv, host)
    for buffer in pools.buffers():  # random bits, NaN patterns included: copies move bits
        bits = torch.randint(-(2**15), 2**15, buffer.shape, generator=generator, dtype=torch.int16)
        buffer.view(torch.int16).copy_(bits.to(buffer.device))
    return pools


def _indices(pools: _Pools, *, n_pages: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(host, device) token slots of `n_pages` random whole pages, host sorted as SGLang's
    ``move_indices`` leaves them; the device pool's slot 0 (padding) never used."""
    generator = torch.Generator().manual_seed(seed)
    page = pools.host.page_size
    host_pages = torch.randperm(pools.host.size // page, generator=generator)[:n_pages]
    device_pages = torch.randperm(_DEVICE_TOKENS // page - 1, generator=generator)[:n_pages] + 1
    within = torch.arange(page)
    host_tokens = (host_pages[:, None] * page + within).reshape(-1)
    device_tokens = (device_pages[:, None] * page + within).reshape(-1)
    host_tokens, order = host_tokens.sort()
    return host_tokens, device_tokens[order]


def _placed(tokens: torch.Tensor, *, io_backend: str, device: str) -> torch.Tensor:
    return tokens.to(device) if io_backend == "kernel" else tokens


def _bits(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's bits as integers on the CPU (NaN patterns compare equal)."""
    unit = {2: torch.int16, 4: torch.int32}[tensor.element_size()]
    return tensor.view(unit).cpu()


def _assert_same_bits(ours: _Pools, sglang: _Pools) -> None:
    for mine, theirs in zip(ours.buffers(), sglang.buffers(), strict=True):
        assert torch.equal(_bits(mine), _bits(theirs))


@pytest.fixture
def triton_path() -> CopyPath:
    return CopyPath(CopyKernels.TRITON)


@pytest.mark.parametrize("page_size", [1, 4])
@pytest.mark.parametrize(("device", "layout", "io_backend"), _CASES)
def test_backup_matches_sglang_bit_for_bit(
    triton_path: CopyPath, device: str, layout: str, io_backend: str, page_size: int
) -> None:
    ours, sglang = (_pools(device, layout, page_size=page_size, seed=1) for _ in range(2))
    host_tokens, device_tokens = _indices(ours, n_pages=24 // page_size, seed=2)
    hi, di = (
        _placed(t, io_backend=io_backend, device=device) for t in (host_tokens, device_tokens)
    )
    assert triton_path.backup_kv(
        ours.host, host_indices=hi, device_indices=di, io_backend=io_backend
    )
    _BACKUP(sglang.host, sglang.device, hi, di, io_backend)
    _assert_same_bits(ours, sglang)
    assert triton_path.counts == {(CopyKind.KV_BACKUP, "triton"): 1}


@pytest.mark.parametrize("page_size", [1, 4])
@pytest.mark.parametrize(("device", "layout", "io_backend"), _CASES)
def test_per_layer_load_matches_sglang_bit_for_bit(
    triton_path: CopyPath, device: str, layout: str, io_backend: str, page_size: int
) -> None:
    ours, sglang = (_pools(device, layout, page_size=page_size, seed=3) for _ in range(2))
    host_tokens, device_tokens = _indices(ours, n_pages=24 // page_size, seed=4)
    hi, di = (
        _placed(t, io_backend=io_backend, device=device) for t in (host_tokens, device_tokens)
    )
    for layer in range(_LAYERS):
        assert triton_path.load_kv_layer(
            ours.host, host_indices=hi, device_indices=di, layer_id=layer, io_backend=io_backend
        )
        _LOAD(sglang.host, sglang.device, hi, di, layer, io_backend)
        _assert_same_bits(ours, sglang)  # after every layer: no other layer touched
    assert triton_path.counts == {(CopyKind.KV_LOAD, "triton"): _LAYERS}


def test_page_first_on_cpu_places_every_token(triton_path: CopyPath) -> None:
    """SGLang has no CPU op for ``page_first``; the host buffer is checked by its layout:
    ``kv_buffer[kv, token, layer]`` holds device layer ``layer``'s row ``token``."""
    pools = _pools("cpu", "page_first", page_size=1, seed=5)
    host_tokens, device_tokens = _indices(pools, n_pages=20, seed=6)
    assert triton_path.backup_kv(
        pools.host, host_indices=host_tokens, device_indices=device_tokens, io_backend="kernel"
    )
    for kv, layers in enumerate((pools.device.k_buffer, pools.device.v_buffer)):
        for layer, rows in enumerate(layers):
            stored = pools.host.kv_buffer[kv, host_tokens, layer]
            assert torch.equal(_bits(stored), _bits(rows[device_tokens]))
    for layer, rows in enumerate(pools.device.k_buffer):
        rows.zero_()
        assert triton_path.load_kv_layer(
            pools.host, host_indices=host_tokens, device_indices=device_tokens,
            layer_id=layer, io_backend="kernel",
        )  # fmt: skip
        expected = pools.host.kv_buffer[0, host_tokens, layer]
        assert torch.equal(_bits(rows[device_tokens]), _bits(expected))


def test_unsupported_copies_go_to_sglang_and_are_logged_once(
    triton_path: CopyPath, caplog: pytest.LogCaptureFixture
) -> None:
    pools = _pools("cpu", "layer_first", page_size=1, seed=7)
    before = [buffer.clone() for buffer in pools.buffers()]
    host_tokens, device_tokens = _indices(pools, n_pages=4, seed=8)
    caplog.set_level(logging.WARNING, logger="scalesim.sglang.copy_kernels")
    for _ in range(2):
        assert not triton_path.backup_kv(
            pools.host, host_indices=host_tokens, device_indices=device_tokens,
            io_backend="kernel_ascend",
        )  # fmt: skip
    assert not triton_path.load_kv_layer(
        pools.host, host_indices=host_tokens, device_indices=device_tokens, layer_id=_LAYERS,
        io_backend="direct",
    )  # fmt: skip
    after = pools.buffers()
    assert all(torch.equal(_bits(a), _bits(b)) for a, b in zip(before, after, strict=True))
    assert triton_path.counts == {
        (CopyKind.KV_BACKUP, "fallback"): 2,
        (CopyKind.KV_LOAD, "fallback"): 1,
    }
    assert sum("io backend kernel_ascend" in r.getMessage() for r in caplog.records) == 1


def test_a_failing_kernel_leaves_the_kind_on_sglang(
    triton_path: CopyPath, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[object] = []

    def broken(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise RuntimeError("simulated launch failure")

    monkeypatch.setattr("scalesim.sglang.copy_kernels.scatter_kv", broken)
    pools = _pools("cpu", "layer_first", page_size=1, seed=9)
    host_tokens, device_tokens = _indices(pools, n_pages=4, seed=10)
    for _ in range(3):
        assert not triton_path.load_kv_layer(
            pools.host, host_indices=host_tokens, device_indices=device_tokens, layer_id=0,
            io_backend="direct",
        )  # fmt: skip
    assert len(calls) == 1  # after the failure the kind stays on SGLang's path
    assert sum("simulated" in (r.exc_text or "") for r in caplog.records) <= 1
    assert triton_path.backup_kv(
        pools.host, host_indices=host_tokens, device_indices=device_tokens, io_backend="direct"
    )  # other kinds still run on the kernels


_LORA_DEVICES = ["cpu", pytest.param("cuda", marks=_CUDA)]


@pytest.mark.parametrize("device", _LORA_DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_lora_slot_views_match_sglang_bit_for_bit(
    triton_path: CopyPath, device: str, dtype: torch.dtype
) -> None:
    """The views ``LoRAMemoryPool.load_lora_weight_to_buffer`` hands to
    ``copy_weight_into_buffer``: A ``[slot, :rank*stack, :]``, B ``[slot, :, :rank]``."""
    slots, max_rank, rank, stack, in_dim, out_dim = 4, 16, 8, 3, 64, 96
    generator = torch.Generator().manual_seed(11)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(dtype)

    pin = device == "cuda"
    a_weight, b_weight = rand(rank * stack, in_dim), rand(out_dim, rank)
    if pin:
        a_weight, b_weight = a_weight.pin_memory(), b_weight.pin_memory()
    buffers = (rand(slots, max_rank * stack, in_dim), rand(slots, out_dim, max_rank))
    ours = [b.to(device, copy=True) for b in buffers]
    sglang = [b.to(device, copy=True) for b in buffers]
    views = (
        lambda a_buf, b_buf: a_buf[2, : rank * stack, :],
        lambda a_buf, b_buf: b_buf[2, :, :rank],
    )
    for pick, weight in zip(views, (a_weight, b_weight), strict=True):
        assert triton_path.copy_lora_weight(pick(*ours), weight)
        _COPY_WEIGHT(pick(*sglang), weight)
    if device == "cuda":
        torch.cuda.synchronize()
    for mine, theirs in zip(ours, sglang, strict=True):
        assert torch.equal(_bits(mine), _bits(theirs))
    assert triton_path.counts == {(CopyKind.LORA, "triton"): 2}


def test_lora_dtype_cast_stays_on_sglang(triton_path: CopyPath) -> None:
    """SGLang casts a weight of another dtype; the kernels copy bits only, so they decline."""
    buffer = torch.zeros(2, 8, 16, dtype=torch.float16)
    assert not triton_path.copy_lora_weight(buffer[0, :4], torch.ones(4, 16))
    assert triton_path.counts == {(CopyKind.LORA, "fallback"): 1}


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Sets ``SCALESIM_CONFIG`` for :func:`process_copy_path` and forgets it afterwards."""

    def configure(**values: object) -> CopyPath:
        config = ScaleSimConfig.from_mapping({"device_mode": "cpu", **values})
        monkeypatch.setenv("SCALESIM_CONFIG", config.to_json())
        process_copy_path.cache_clear()
        return process_copy_path()

    yield configure
    process_copy_path.cache_clear()


def test_hooks_take_the_kernels_only_when_the_switch_says_triton(configured: Any) -> None:
    pools = _pools("cpu", "layer_first", page_size=1, seed=12)
    host_tokens, device_tokens = _indices(pools, n_pages=6, seed=13)
    sglang_calls: list[str] = []

    def recording(real: Any) -> Any:
        """Stands in for SGLang's function (its signature; records the call, copies nothing)."""

        @functools.wraps(real)
        def original(*args: object, **kwargs: object) -> None:
            sglang_calls.append(real.__name__)

        return original

    backup, load, copy = (recording(f) for f in (_BACKUP, _LOAD, _COPY_WEIGHT))
    args = (pools.host, pools.device, host_tokens, device_tokens)
    assert configured().mode is CopyKernels.SGLANG  # the default
    hooks.around_backup_from_device_all_layer(backup, *args, "direct")
    hooks.around_load_to_device_per_layer(load, *args, 0, io_backend="direct")
    hooks.around_copy_weight_into_buffer(copy, torch.zeros(2, 2), torch.ones(2, 2))
    assert sglang_calls == [
        "backup_from_device_all_layer",
        "load_to_device_per_layer",
        "copy_weight_into_buffer",
    ]

    sglang_calls.clear()
    path = configured(copy_kernels="triton")
    hooks.around_backup_from_device_all_layer(backup, *args, "direct")
    hooks.around_load_to_device_per_layer(load, *args, 0, io_backend="direct")
    hooks.around_load_to_device_per_layer(load, *args, 1, "direct", is_draft=False)
    target = torch.zeros(2, 2)
    hooks.around_copy_weight_into_buffer(copy, target, torch.ones(2, 2))
    assert sglang_calls == []
    assert torch.equal(target, torch.ones(2, 2))
    assert path.counts == {
        (CopyKind.KV_BACKUP, "triton"): 1,
        (CopyKind.KV_LOAD, "triton"): 2,
        (CopyKind.LORA, "triton"): 1,
    }
    hooks.around_load_to_device_per_layer(load, *args, 0, "kernel_ascend")
    assert sglang_calls == ["load_to_device_per_layer"]  # declined: SGLang's function runs


def test_disabled_scalesim_keeps_sglang_copies(configured: Any) -> None:
    assert configured(enabled=False, copy_kernels="triton").mode is CopyKernels.SGLANG


_REGISTRATION = """
import json
from scalesim.patches.registration import register_and_verify
from scalesim.patches.table import COPY_HOOKS, HOOKS
register_and_verify(COPY_HOOKS)
from sglang.srt.lora import mem_pool, utils
print(json.dumps({
    "in_table": all(spec in HOOKS for spec in COPY_HOOKS),
    "mem_pool_bound": mem_pool.copy_weight_into_buffer is utils.copy_weight_into_buffer,
    "wrapped": utils.copy_weight_into_buffer.__wrapped__.__name__,
}))
"""


def test_lora_hook_reaches_the_name_mem_pool_imported() -> None:
    """``mem_pool`` imported ``copy_weight_into_buffer`` by name; the registry must rebind it
    there too, or slot loads would never see the hook."""
    done = subprocess.run(
        [sys.executable, "-c", _REGISTRATION], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {
        "in_table": True,
        "mem_pool_bound": True,
        "wrapped": "copy_weight_into_buffer",
    }


@_CUDA
def test_gpu_indices_are_fetched_once_per_load_operation() -> None:
    """Regression guard: CUDA indices (io backend ``kernel``) checked on the CPU cost one
    device synchronisation; it must happen once per load operation, not once per layer."""
    from scalesim.sglang.copy_kernels import _IndicesOnCpu

    memo = _IndicesOnCpu()
    host, device = torch.arange(8, device="cuda"), torch.arange(8, 16, device="cuda")
    first = memo.on_cpu(host, device)
    assert memo.on_cpu(host, device) is first  # the next layer of the same operation
    device.add_(1)  # an in-place write: fetched again
    second = memo.on_cpu(host, device)
    assert second is not first and second[1].tolist() == list(range(9, 17))
    assert memo.on_cpu(host.clone(), device) is not second  # another operation's tensors
