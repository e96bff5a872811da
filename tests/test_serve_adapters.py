"""``scalesim serve`` with adapters: the ``scalesim`` LoRA policy by default, the config's
``adapters`` key checked before SGLang starts."""

from __future__ import annotations

import pytest

from scalesim.config import ConfigError, ScaleSimConfig
from scalesim.serve import plan_serve


def _argv(*args: str) -> tuple[str, ...]:
    return plan_serve(["--model-path", "m", *args], environ={}, cuda_available=True).sglang_argv


def _policy(argv: tuple[str, ...]) -> str | None:
    flag = "--lora-eviction-policy"
    return argv[argv.index(flag) + 1] if flag in argv else None


def test_adapters_select_the_scalesim_lora_policy_unless_one_is_given() -> None:
    assert _policy(_argv("--enable-lora")) == "scalesim"
    assert _policy(_argv("--lora-paths", "a=/x")) == "scalesim"
    assert _policy(_argv("--enable-lora", "--lora-eviction-policy", "lru")) == "lru"
    assert _policy(_argv()) is None
    assert _policy(_argv("--enable-lora", "--scalesim-disable")) is None


def test_declared_adapters_round_trip_and_bad_ids_are_refused() -> None:
    config = ScaleSimConfig.from_json('{"adapters": {"town-1": {"a17": "lora17"}}}')
    assert ScaleSimConfig.from_json(config.to_json()) == config
    assert config.adapters == {"town-1": {"a17": "lora17"}}
    with pytest.raises(ConfigError, match="agent"):
        ScaleSimConfig.from_json('{"adapters": {"town-1": {"a 17": "lora17"}}}')
    with pytest.raises(ConfigError, match="adapter name"):
        ScaleSimConfig.from_json('{"adapters": {"town-1": {"a17": 3}}}')
    with pytest.raises(ConfigError, match="object"):
        ScaleSimConfig.from_json('{"adapters": ["a17"]}')
