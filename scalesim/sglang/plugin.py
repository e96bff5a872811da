"""ScaleSim's SGLang plug-in: the ``sglang.srt.plugins`` entry point, run in every SGLang process.

SGLang calls :func:`load` from ``load_plugins()`` in the main process and again in each
scheduler, detokenizer and data-parallel process (they start by spawn, so nothing set up in the
parent reaches them). ``scalesim serve`` passes its validated config down in the
``SCALESIM_CONFIG`` environment variable; without it :func:`load` returns at once and SGLang is
untouched. With it: the CPU development layer is applied when CPU mode was asked for and CUDA is
absent (with the prefix-aware CPU attention unless ``cpu_attention`` is ``sglang``), and, when
ScaleSim is enabled, the SGLang version is checked (the one version gate) and every hook of
``scalesim.patches`` is registered and verified; the main (HTTP) process also gets the HTTP
hooks (request metadata checks, the control channel) and the control routes.

SGLang logs and swallows exceptions raised by a plug-in; a ScaleSim that is enabled but cannot
install itself must not silently serve as stock SGLang, so failures end the process instead.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from importlib import metadata

from scalesim import SGLANG_VERSION
from scalesim.config import CpuAttention, DeviceMode, ScaleSimConfig

logger = logging.getLogger(__name__)


class PluginRefusedError(RuntimeError):
    """The plug-in cannot install itself (wrong SGLang version, a hook left unpatched)."""


def check_sglang_version(installed: str | None = None) -> None:
    """The one version gate: raise unless the installed SGLang is the one the hooks target.

    Args:
        installed: version string to check; defaults to the installed ``sglang`` distribution's.
    """
    found = installed if installed is not None else metadata.version("sglang")
    if found != SGLANG_VERSION:
        raise PluginRefusedError(
            f"ScaleSim needs sglang=={SGLANG_VERSION} (its hooks target that release's "
            f"internals), but sglang {found} is installed"
        )


def load() -> None:
    """Entry point: install ScaleSim into this SGLang process as ``SCALESIM_CONFIG`` says."""
    config = ScaleSimConfig.from_env(os.environ)
    if config is None:
        return
    try:
        install(config)
    except PluginRefusedError as err:
        logger.critical("%s", err)
        raise SystemExit(f"ScaleSim plug-in refused to load: {err}") from err


def install(config: ScaleSimConfig) -> None:
    """Apply ``config`` to this process: CPU stand-ins if asked for, then the verified hooks."""
    if config.device_mode is DeviceMode.CPU:
        from scalesim.sglang import cpu_compat

        if cpu_compat.needed():
            cpu_compat.apply()
            if config.cpu_attention is CpuAttention.PREFIX:
                from scalesim.sglang import cpu_attention

                cpu_attention.install()
    if not config.enabled:
        return
    check_sglang_version()
    from scalesim.patches.registration import HookTargetError, register_and_verify
    from scalesim.patches.table import HOOKS, HTTP_HOOKS, register_extras, register_http_extras

    register_extras()
    try:
        register_and_verify(HOOKS)
        if is_http_process():
            register_and_verify(HTTP_HOOKS)
            register_http_extras()
    except HookTargetError as err:
        raise PluginRefusedError(str(err)) from err


def is_http_process() -> bool:
    """True in SGLang's main process (HTTP server and tokenizer manager); its scheduler,
    detokenizer and data-parallel processes are spawned children."""
    return multiprocessing.parent_process() is None
