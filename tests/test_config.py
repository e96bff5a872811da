"""ScaleSimConfig: validation in one place, unknown keys rejected, JSON/env round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalesim.config import CONFIG_ENV_VAR, ConfigError, DeviceMode, ScaleSimConfig


def test_defaults_enable_scalesim_on_cuda() -> None:
    config = ScaleSimConfig()
    assert config.enabled is True
    assert config.device_mode is DeviceMode.CUDA


def test_unknown_key_is_rejected_with_its_name() -> None:
    with pytest.raises(ConfigError, match="distance_horizonn"):
        ScaleSimConfig.from_mapping({"enabled": True, "distance_horizonn": 3})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"enabled": "yes"}, "enabled must be a bool"),
        ({"device_mode": "tpu"}, "device_mode must be one of"),
        ({"device_mode": 1}, "device_mode must be one of"),
    ],
)
def test_bad_values_are_rejected(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ScaleSimConfig.from_mapping(values)


def test_json_round_trip() -> None:
    config = ScaleSimConfig(enabled=False, device_mode=DeviceMode.CPU)
    assert ScaleSimConfig.from_json(config.to_json()) == config


def test_from_json_rejects_non_objects() -> None:
    with pytest.raises(ConfigError, match="JSON object"):
        ScaleSimConfig.from_json("[1, 2]")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ScaleSimConfig.from_json("{enabled: true")


def test_from_env_absent_means_scalesim_off() -> None:
    assert ScaleSimConfig.from_env({}) is None
    config = ScaleSimConfig.from_env({CONFIG_ENV_VAR: '{"device_mode": "cpu"}'})
    assert config == ScaleSimConfig(device_mode=DeviceMode.CPU)


def test_from_file(tmp_path: Path) -> None:
    path = tmp_path / "scalesim.json"
    path.write_text('{"enabled": false}', encoding="utf-8")
    assert ScaleSimConfig.from_file(path) == ScaleSimConfig(enabled=False)
    with pytest.raises(ConfigError, match="cannot read"):
        ScaleSimConfig.from_file(tmp_path / "missing.json")


def test_overrides_make_a_new_validated_config() -> None:
    base = ScaleSimConfig()
    changed = base.with_overrides({"device_mode": "cpu"})
    assert changed.device_mode is DeviceMode.CPU
    assert base.device_mode is DeviceMode.CUDA
    with pytest.raises(ConfigError, match="unknown"):
        base.with_overrides({"bogus": 1})
