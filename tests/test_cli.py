"""The ``scalesim`` command line: subcommand dispatch and ``scalesim serve`` argument planning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scalesim.cli import build_parser, main
from scalesim.config import (
    CONFIG_ENV_VAR,
    ConfigError,
    CopyKernels,
    CpuAttention,
    DeviceMode,
    ScaleSimConfig,
)
from scalesim.serve import plan_serve
from scalesim.sglang.cpu_compat import STANDIN_DIR


def _value(argv: tuple[str, ...], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_serve_defaults_on_a_gpu_machine_only_add_cache_report() -> None:
    plan = plan_serve(["--model-path", "m"], environ={}, cuda_available=True)
    assert plan.sglang_argv == ("--model-path", "m", "--enable-cache-report")
    assert ScaleSimConfig.from_json(plan.env[CONFIG_ENV_VAR]) == ScaleSimConfig()
    assert plan.env["SGLANG_UNIFIED_RADIX_TREE_CORE_BACKEND"] == "python"
    assert "SGLANG_USE_CPU_ENGINE" not in plan.env
    assert "PYTHONPATH" not in plan.env


def test_cpu_mode_adds_cpu_defaults_but_user_flags_win() -> None:
    argv = ["--model-path", "m", "--device", "cpu", "--dtype=bfloat16"]
    plan = plan_serve(argv, environ={"PYTHONPATH": "/x"}, cuda_available=False)
    assert plan.config.device_mode is DeviceMode.CPU
    assert "--dtype=bfloat16" in plan.sglang_argv
    assert "--dtype" not in plan.sglang_argv
    assert _value(plan.sglang_argv, "--attention-backend") == "torch_native"
    assert "--disable-cuda-graph" in plan.sglang_argv
    assert "--hicache-io-backend" not in plan.sglang_argv
    assert plan.env["SGLANG_USE_CPU_ENGINE"] == "1"
    assert plan.env["PYTHONPATH"].split(":") == [str(STANDIN_DIR), "/x"]


def test_cpu_mode_with_cuda_present_never_shadows_sgl_kernel() -> None:
    plan = plan_serve(["--device", "cpu"], environ={}, cuda_available=True)
    assert plan.config.device_mode is DeviceMode.CPU
    assert "PYTHONPATH" not in plan.env


def test_cpu_hicache_gets_the_layout_the_cpu_transfer_supports() -> None:
    argv = ["--device", "cpu", "--enable-hierarchical-cache"]
    plan = plan_serve(argv, environ={}, cuda_available=False)
    assert _value(plan.sglang_argv, "--hicache-io-backend") == "direct"
    assert _value(plan.sglang_argv, "--hicache-mem-layout") == "layer_first"


def test_config_file_then_options(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"device_mode": "cpu"}), encoding="utf-8")
    plan = plan_serve(
        ["--scalesim-config", str(path), "--scalesim-disable"], environ={}, cuda_available=True
    )
    assert plan.config == ScaleSimConfig(enabled=False, device_mode=DeviceMode.CPU)
    assert _value(plan.sglang_argv, "--device") == "cpu"
    assert "SGLANG_UNIFIED_RADIX_TREE_CORE_BACKEND" not in plan.env


def test_copy_kernels_option_overrides_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"copy_kernels": "sglang"}), encoding="utf-8")
    argv = ["--scalesim-config", str(path), "--scalesim-copy-kernels", "triton"]
    plan = plan_serve(argv, environ={}, cuda_available=True)
    assert plan.config.copy_kernels is CopyKernels.TRITON
    assert json.loads(plan.env["SCALESIM_CONFIG"])["copy_kernels"] == "triton"
    with pytest.raises(SystemExit):
        plan_serve(["--scalesim-copy-kernels", "cuda"], environ={}, cuda_available=True)


def test_config_file_with_unknown_key_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"enabled": True, "typo": 1}), encoding="utf-8")
    with pytest.raises(ConfigError, match="typo"):
        plan_serve(["--scalesim-config", str(path)], environ={}, cuda_available=True)


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ('{"prefetch_windw": 2}', "prefetch_windw"),
        ('{"horizon": -1}', "horizon"),
        ("[1]", "object"),
    ],
)
def test_scalesim_policy_config_is_checked_before_launch(config: str, named: str) -> None:
    argv = ["--radix-eviction-policy", "scalesim", "--radix-eviction-policy-config", config]
    with pytest.raises(ConfigError, match=named):
        plan_serve(argv, environ={}, cuda_available=True)
    other_policy = ["--radix-eviction-policy", "lru", "--radix-eviction-policy-config", config]
    plan_serve(other_policy, environ={}, cuda_available=True)  # SGLang's own policy: SGLang's check


def test_serve_help_documents_scalesim_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--scalesim-config" in out
    assert "passed to SGLang" in out


def test_demo_options_parse() -> None:
    argv = ["demo", "--agents", "3", "--rounds", "2", "--policies", "scalesim"]
    options = build_parser().parse_args([*argv, "--pool-tokens", "4096"])
    assert (options.agents, options.rounds, options.policies) == (3, 2, "scalesim")
    assert options.pool_tokens == 4096


def test_make_tiny_model_writes_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["make-tiny-model", str(tmp_path / "m"), "--loras", "1"]) == 0
    assert (tmp_path / "m" / "config.json").is_file()
    assert (tmp_path / "m" / "loras" / "lora-0").is_dir()
    assert "lora-0" in capsys.readouterr().out


def test_bench_delegates_everything_after_it() -> None:
    pytest.importorskip("scalesim.bench.cli")
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--help"])
    assert exit_info.value.code == 0


def test_cpu_attention_option_reaches_every_sglang_process() -> None:
    plan = plan_serve(["--device", "cpu"], environ={}, cuda_available=False)
    assert plan.config.cpu_attention is CpuAttention.PREFIX
    argv = ["--device", "cpu", "--scalesim-disable", "--scalesim-cpu-attention", "sglang"]
    plan = plan_serve(argv, environ={}, cuda_available=False)
    assert json.loads(plan.env["SCALESIM_CONFIG"])["cpu_attention"] == "sglang"
    with pytest.raises(SystemExit):
        plan_serve(["--scalesim-cpu-attention", "flash"], environ={}, cuda_available=False)
