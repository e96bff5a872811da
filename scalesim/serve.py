"""``scalesim serve``: SGLang's HTTP server with ScaleSim's plug-in active.

Takes every ``sglang serve`` argument plus ScaleSim's own ``--scalesim-...`` options, builds one
validated :class:`~scalesim.config.ScaleSimConfig`, prepares the environment every SGLang process
inherits (the config as ``SCALESIM_CONFIG``, the Python radix-tree core a custom eviction
strategy needs, and in CPU development mode the CPU engine and the stand-in ``sgl_kernel``), then
replaces this process with ``python -m sglang.launch_server``. Replacing (exec) keeps signal
handling SGLang's own: SIGTERM or SIGINT to this pid stops the server and all its children.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from scalesim.config import (
    CONFIG_ENV_VAR,
    ConfigError,
    CopyKernels,
    CpuAttention,
    DeviceMode,
    ScaleSimConfig,
)

#: SGLang flags ``--device cpu`` adds unless the user gave them (flag, value or None).
CPU_DEFAULTS: tuple[tuple[str, str | None], ...] = (
    ("--attention-backend", "torch_native"),
    ("--disable-cuda-graph", None),
    ("--dtype", "float32"),
    ("--lora-backend", "torch_native"),
    ("--max-total-tokens", "65536"),  # SGLang sizes the CPU pool to all free RAM otherwise
)
#: Added on CPU with ``--enable-hierarchical-cache``: the layout the torch transfer op supports.
CPU_HICACHE_DEFAULTS: tuple[tuple[str, str | None], ...] = (
    ("--hicache-io-backend", "direct"),
    ("--hicache-mem-layout", "layer_first"),
)
_LAUNCH_WARNING_FILTER = "ignore:'python -m sglang.launch_server' is still supported:UserWarning"


@dataclass(frozen=True)
class ServePlan:
    """What to exec: the validated config, SGLang's argv and the children's environment."""

    config: ScaleSimConfig
    sglang_argv: tuple[str, ...]
    env: Mapping[str, str]

    def command(self) -> list[str]:
        """The command line that starts SGLang's server with this plan's arguments."""
        launch = ["-W", _LAUNCH_WARNING_FILTER, "-m", "sglang.launch_server"]
        return [sys.executable, *launch, *self.sglang_argv]


def build_parser() -> argparse.ArgumentParser:
    """The parser for ScaleSim's own options; everything it does not know goes to SGLang."""
    parser = argparse.ArgumentParser(
        prog="scalesim serve",
        allow_abbrev=False,
        description="Start SGLang's OpenAI-compatible server with ScaleSim's plug-in active.",
        epilog="Every other argument is passed to SGLang unchanged (see `sglang serve --help`). "
        "--enable-cache-report is on by default; --radix-eviction-policy scalesim selects "
        "ScaleSim's eviction order. With adapters (--enable-lora or --lora-paths) "
        "--lora-eviction-policy scalesim is the default: GPU adapter slots are ranked by the "
        "distance of the agents that use them (with --radix-eviction-policy scalesim; LRU "
        "otherwise) and the adapters of agents due soon are prefetched into slots; "
        "--lora-eviction-policy lru keeps SGLang's order. --device cpu is the development "
        "mode for machines without a GPU: it adds CPU-safe SGLang defaults (your flags win).",
    )
    parser.add_argument(
        "--scalesim-config",
        type=Path,
        metavar="FILE.json",
        help="ScaleSim config as a JSON object; the options below override its keys",
    )
    parser.add_argument(
        "--scalesim-disable",
        action="store_true",
        help="register no ScaleSim hooks: stock SGLang behaviour (config key enabled=false)",
    )
    parser.add_argument(
        "--scalesim-copy-kernels",
        choices=[kernels.value for kernels in CopyKernels],
        help="who runs HiCache's host<->device KV copies and LoRA slot loads: SGLang's own "
        "ops (default) or ScaleSim's Triton kernels, with SGLang's path as the fallback "
        "(config key copy_kernels)",
    )
    parser.add_argument(
        "--scalesim-cpu-attention",
        choices=[attention.value for attention in CpuAttention],
        help="with --device cpu: attend from each request's new tokens only, so a cached "
        "prefix costs no attention as on a GPU (prefix, default), or run SGLang's own CPU "
        "attention over the whole sequence (sglang); stock and ScaleSim servers alike "
        "(config key cpu_attention)",
    )
    return parser


def plan_serve(
    argv: Sequence[str], *, environ: Mapping[str, str], cuda_available: bool
) -> ServePlan:
    """Parse ``scalesim serve`` arguments into the config, SGLang's argv and the environment.

    Raises:
        ConfigError: the ScaleSim options or config file are invalid.
    """
    options, sglang_argv = build_parser().parse_known_args(list(argv))
    base = (
        ScaleSimConfig.from_file(options.scalesim_config)
        if options.scalesim_config
        else ScaleSimConfig()
    )
    overrides: dict[str, object] = {}
    if options.scalesim_disable:
        overrides["enabled"] = False
    if options.scalesim_copy_kernels:
        overrides["copy_kernels"] = options.scalesim_copy_kernels
    if options.scalesim_cpu_attention:
        overrides["cpu_attention"] = options.scalesim_cpu_attention
    if flag_value(sglang_argv, "--device") == DeviceMode.CPU.value:
        overrides["device_mode"] = DeviceMode.CPU.value
    config = base.with_overrides(overrides)
    if config.enabled:
        check_policy_config(sglang_argv)
    return ServePlan(
        config=config,
        sglang_argv=tuple(_sglang_args(sglang_argv, config)),
        env=_child_env(environ, config, cuda_available=cuda_available),
    )


def serve(argv: Sequence[str]) -> NoReturn:
    """Validate, then replace this process with SGLang's server (never returns)."""
    import torch

    from scalesim.sglang.plugin import PluginRefusedError, check_sglang_version

    try:
        plan = plan_serve(argv, environ=os.environ, cuda_available=torch.cuda.is_available())
        if plan.config.enabled:
            check_sglang_version()
    except (ConfigError, PluginRefusedError) as err:
        raise SystemExit(f"scalesim serve: {err}") from err
    command = plan.command()
    os.execve(command[0], command, dict(plan.env))


def check_policy_config(sglang_argv: Sequence[str]) -> None:
    """With ``--radix-eviction-policy scalesim``, check ``--radix-eviction-policy-config`` here,
    so that an unknown or bad key stops ``scalesim serve`` with one clear line instead of a
    scheduler traceback.

    Raises:
        ConfigError: the JSON is not an object, or a key is unknown or invalid.
    """
    from scalesim.runtime import RuntimeConfig

    if (flag_value(sglang_argv, "--radix-eviction-policy") or "").lower() != "scalesim":
        return
    text = flag_value(sglang_argv, "--radix-eviction-policy-config")
    if text is None:
        return
    try:
        values = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--radix-eviction-policy-config is not valid JSON: {err}") from err
    if not isinstance(values, dict):
        raise ConfigError("--radix-eviction-policy-config must be a JSON object")
    RuntimeConfig.from_mapping(values)


def _sglang_args(argv: list[str], config: ScaleSimConfig) -> list[str]:
    args = list(argv)
    defaults: list[tuple[str, str | None]] = [("--enable-cache-report", None)]
    if config.enabled and (_has_flag(args, "--enable-lora") or _has_flag(args, "--lora-paths")):
        defaults.append(("--lora-eviction-policy", "scalesim"))
    if config.device_mode is DeviceMode.CPU:
        defaults += [("--device", DeviceMode.CPU.value), *CPU_DEFAULTS]
        if "--enable-hierarchical-cache" in args:
            defaults += CPU_HICACHE_DEFAULTS
    for flag, value in defaults:
        if not _has_flag(args, flag):
            args += [flag] if value is None else [flag, value]
    return args


def _child_env(
    environ: Mapping[str, str], config: ScaleSimConfig, *, cuda_available: bool
) -> dict[str, str]:
    env = dict(environ)
    env[CONFIG_ENV_VAR] = config.to_json()
    # `python -m` puts the working directory first on sys.path; from a ScaleSim checkout its
    # kernels/ folder would shadow the `kernels` package that transformers probes.
    env.setdefault("PYTHONSAFEPATH", "1")
    if config.enabled:
        # The Rust radix-tree core ignores custom eviction strategies.
        env.setdefault("SGLANG_UNIFIED_RADIX_TREE_CORE_BACKEND", "python")
    if config.device_mode is DeviceMode.CPU and not cuda_available:
        from scalesim.sglang.cpu_compat import STANDIN_DIR

        env["SGLANG_USE_CPU_ENGINE"] = "1"
        paths = [str(STANDIN_DIR), *filter(None, [environ.get("PYTHONPATH")])]
        env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _has_flag(argv: Sequence[str], flag: str) -> bool:
    return any(arg == flag or arg.startswith(flag + "=") for arg in argv)


def flag_value(argv: Sequence[str], flag: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and index + 1 < len(argv):
            return argv[index + 1]
    return None
