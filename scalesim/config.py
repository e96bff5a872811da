"""ScaleSim's configuration: one frozen dataclass, built from JSON, CLI options or the environment.

``scalesim serve`` builds the config once (``--scalesim-config FILE.json`` overlaid with
``--scalesim-...`` options), validates it here, and hands it to every SGLang process through the
``SCALESIM_CONFIG`` environment variable (JSON); the plug-in reads it back with
:meth:`ScaleSimConfig.from_env`. An absent variable means ScaleSim is off: the plug-in is a no-op.

Invariants: unknown keys are rejected, every value is checked in ``__post_init__`` (the one place
that validates), and a config never changes after it is built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import TypeVar

#: The environment variable that carries the validated config (JSON) to SGLang's processes.
CONFIG_ENV_VAR = "SCALESIM_CONFIG"


_Choice = TypeVar("_Choice", bound=Enum)


class ConfigError(ValueError):
    """A ScaleSim configuration that cannot be used; the message names the key."""


class CopyKernels(Enum):
    """Which code runs HiCache's host<->device KV copies and LoRA slot loads.

    ``sglang``: SGLang's own transfer ops and ``copy_``. ``triton``: ScaleSim's kernels
    (``scalesim.kernels``), with SGLang's path as the fallback for any layout they do not cover.
    """

    SGLANG = "sglang"
    TRITON = "triton"


class CpuAttention(Enum):
    """Which extend attention the CPU development mode runs (``scalesim.sglang.cpu_attention``).

    ``prefix``: queries of the new tokens only, as GPU backends do, so a cached prefix saves
    its attention too. ``sglang``: SGLang's own CPU attention, which recomputes attention over
    the whole sequence for every request.
    """

    PREFIX = "prefix"
    SGLANG = "sglang"


class DeviceMode(Enum):
    """Where SGLang runs: ``cuda`` (production) or ``cpu`` (development and tests only)."""

    CUDA = "cuda"
    CPU = "cpu"


@dataclass(frozen=True)
class ScaleSimConfig:
    """ScaleSim's settings. Keys (JSON name = field name):

    - ``enabled`` (bool, default ``true``): register ScaleSim's hooks in SGLang. ``false`` keeps
      stock SGLang behaviour while still applying the CPU development layer when
      ``device_mode`` is ``cpu``.
    - ``device_mode`` (``"cuda"`` | ``"cpu"``, default ``"cuda"``): ``"cpu"`` is the development
      mode that runs the real SGLang server without a GPU (set by ``scalesim serve --device cpu``);
      its compatibility layer is only applied where CUDA is absent.
    - ``adapters`` (object, default ``{}``): agents' LoRA adapters declared up front, as
      ``{namespace: {agent: adapter_name}}``; the ``scalesim`` LoRA policy ranks an adapter's
      slot by its agents before their first request names it (a request's ``base:adapter``
      then takes over for its agent).
    - ``copy_kernels`` (``"sglang"`` | ``"triton"``, default ``"sglang"``): ``"triton"`` runs
      HiCache's host<->device KV copies and LoRA slot loads through ``scalesim.kernels``
      (falling back to SGLang's path, logged once, for anything they do not support).
    - ``cpu_attention`` (``"prefix"`` | ``"sglang"``, default ``"prefix"``): in CPU mode, whether
      requests attend from their new tokens only (``prefix``: a cached prefix costs no
      attention, as on a GPU) or through SGLang's own CPU attention (``sglang``), for stock and
      ScaleSim servers alike; ignored on a GPU.
    """

    enabled: bool = True
    device_mode: DeviceMode = DeviceMode.CUDA
    adapters: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    copy_kernels: CopyKernels = CopyKernels.SGLANG
    cpu_attention: CpuAttention = CpuAttention.PREFIX

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigError(f"enabled must be a bool, got {self.enabled!r}")
        if not isinstance(self.device_mode, DeviceMode):
            raise ConfigError(f"device_mode must be a DeviceMode, got {self.device_mode!r}")
        _check_adapters(self.adapters)
        if not isinstance(self.copy_kernels, CopyKernels):
            raise ConfigError(f"copy_kernels must be a CopyKernels, got {self.copy_kernels!r}")
        if not isinstance(self.cpu_attention, CpuAttention):
            raise ConfigError(f"cpu_attention must be a CpuAttention, got {self.cpu_attention!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> ScaleSimConfig:
        """Build from JSON-like values (enums as their string values); rejects unknown keys."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown ScaleSim config key(s): {', '.join(unknown)}")
        converted = dict(values)
        choices: tuple[tuple[str, type[Enum]], ...] = (
            ("device_mode", DeviceMode),
            ("copy_kernels", CopyKernels),
            ("cpu_attention", CpuAttention),
        )
        for key, choice_type in choices:
            if key in converted:
                converted[key] = parse_choice(choice_type, converted[key], key=key)
        return cls(**converted)  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, text: str) -> ScaleSimConfig:
        """Build from a JSON object."""
        try:
            values = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"ScaleSim config is not valid JSON: {err}") from err
        if not isinstance(values, dict):
            raise ConfigError("ScaleSim config must be a JSON object")
        return cls.from_mapping(values)

    @classmethod
    def from_file(cls, path: Path) -> ScaleSimConfig:
        """Build from a JSON file (``--scalesim-config FILE.json``)."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"cannot read ScaleSim config {path}: {err}") from err
        return cls.from_json(text)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ScaleSimConfig | None:
        """The config ``scalesim serve`` passed down, or None when ScaleSim is not in use."""
        text = environ.get(CONFIG_ENV_VAR)
        if text is None:
            return None
        return cls.from_json(text)

    def to_json(self) -> str:
        """JSON that :meth:`from_json` turns back into an equal config."""
        values = asdict(self)
        values["device_mode"] = self.device_mode.value
        values["copy_kernels"] = self.copy_kernels.value
        values["cpu_attention"] = self.cpu_attention.value
        return json.dumps(values, sort_keys=True)

    def with_overrides(self, overrides: Mapping[str, object]) -> ScaleSimConfig:
        """A new config with ``overrides`` (JSON-like values) laid over this one."""
        values: dict[str, object] = json.loads(self.to_json())
        values.update(overrides)
        return ScaleSimConfig.from_mapping(values)


def _check_adapters(adapters: object) -> None:
    """``{namespace: {agent: adapter}}`` with ids by the request metadata rules (api.md 1)."""
    from scalesim.runtime.contract import ContractError, check_name

    if not isinstance(adapters, Mapping):
        raise ConfigError("adapters must be an object {namespace: {agent: adapter}}")
    try:
        for namespace, agents in adapters.items():
            check_name(namespace, field="adapters namespace")
            if not isinstance(agents, Mapping):
                raise ConfigError(f"adapters[{namespace!r}] must be an object {{agent: adapter}}")
            for agent, adapter in agents.items():
                check_name(agent, field=f"adapters[{namespace!r}] agent")
                if not isinstance(adapter, str) or not adapter:
                    raise ConfigError(f"adapters[{namespace!r}][{agent!r}] must be an adapter name")
    except ContractError as err:
        raise ConfigError(str(err)) from err


def parse_choice(choice_type: type[_Choice], value: object, *, key: str) -> _Choice:
    """``value`` as a member of the enum ``choice_type`` (a member or its string value)."""
    if isinstance(value, choice_type):
        return value
    choices = [member.value for member in choice_type]
    if value not in choices:
        raise ConfigError(f"{key} must be one of {choices}, got {value!r}")
    return choice_type(value)
