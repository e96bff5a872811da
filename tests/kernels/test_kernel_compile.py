"""Ahead-of-time compilation of every kernel for sm_90, without a GPU.

Guards against kernels that only the interpreter accepts, and checks that the 16-byte
alignment hint on the per-layer base addresses still yields 128-bit loads. Passes under
``TRITON_INTERPRET=1`` too: there ``@triton.jit`` yields interpreted functions, which cannot
be compiled, so the test compiles a ``JITFunction`` rebuilt from the same Python source.
"""

from __future__ import annotations

from typing import Any

import pytest

triton = pytest.importorskip("triton")
from scalesim.kernels import triton_kernels  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402
from triton.runtime.interpreter import InterpretedFunction  # noqa: E402
from triton.runtime.jit import JITFunction  # noqa: E402

ALIGNED = [["tt.divisibility", 16]]
# Arguments a real launch passes as multiples of 16 (pointers, 8 x 128 rows, their strides).
DIVISIBLE = {
    "layer_ptrs",
    "host",
    "device_pages",
    "host_pages",
    "host_kv_stride",
    "host_layer_stride",
    "host_token_stride",
    "row_elems",
    "src",
    "dst",
    "src_row_stride",
    "dst_row_stride",
}
KV_SIGNATURE = {
    "layer_ptrs": "*i64",
    "host": "*i16",
    "device_pages": "*i64",
    "host_pages": "*i64",
    "host_kv_stride": "i64",
    "host_layer_stride": "i64",
    "host_token_stride": "i32",
    "n_layers": "i32",
    "row_elems": "i32",
    "PAGE_SIZE": "constexpr",
    "BLOCK": "constexpr",
    "TO_HOST": "constexpr",
}
PADDED_SIGNATURE = {
    "src": "*bf16",
    "dst": "*bf16",
    **{name: "i32" for name in ("src_rows", "src_cols", "src_row_stride")},
    **{name: "i32" for name in ("dst_rows", "dst_cols", "dst_row_stride")},
    "BLOCK_ROWS": "constexpr",
    "BLOCK_COLS": "constexpr",
}


def compile_ptx(kernel: Any, signature: dict[str, str], constexprs: dict[str, Any]) -> str:
    """PTX for sm_90, with the divisibility by 16 Triton infers at launch for aligned args."""
    attrs = {(list(signature).index(name),): ALIGNED for name in signature if name in DIVISIBLE}
    if isinstance(kernel, InterpretedFunction):  # TRITON_INTERPRET=1 at import time
        kernel = JITFunction(kernel.fn)
    source = ASTSource(fn=kernel, signature=signature, constexprs=constexprs, attrs=attrs)
    return str(triton.compile(source, target=GPUTarget("cuda", 90, 32)).asm["ptx"])


@pytest.mark.parametrize("to_host", [True, False])
@pytest.mark.parametrize("page_size", [1, 16])
def test_kv_kernel_compiles_with_vector_loads(to_host: bool, page_size: int) -> None:
    constexprs = {"PAGE_SIZE": page_size, "BLOCK": 1024, "TO_HOST": to_host}
    ptx = compile_ptx(triton_kernels.kv_copy_kernel, KV_SIGNATURE, constexprs)
    assert "ld.global.v4.b32" in ptx and "st.global.v4.b32" in ptx


def test_padded_copy_kernel_compiles() -> None:
    constexprs = {"BLOCK_ROWS": 16, "BLOCK_COLS": 128}
    ptx = compile_ptx(triton_kernels.padded_copy_kernel, PADDED_SIGNATURE, constexprs)
    assert ".entry padded_copy_kernel" in ptx
