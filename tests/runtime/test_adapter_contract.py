"""``POST /scalesim/v1/adapters`` bodies (``parse_adapter_declaration``): accepted shapes and
every refusal, naming the field, all or nothing."""

from __future__ import annotations

from typing import Any

import pytest

from scalesim.runtime import (
    DEFAULT_NAMESPACE,
    MAX_UPDATE_AGENTS,
    ContractError,
    parse_adapter_declaration,
)


def test_a_declaration_maps_agents_to_adapters_or_none() -> None:
    body = {"namespace": "town", "adapters": {"a1": "lora-1", "a2": None}}
    declaration = parse_adapter_declaration(body)
    assert declaration.namespace == "town"
    assert dict(declaration.adapters) == {"a1": "lora-1", "a2": None}
    assert parse_adapter_declaration({"adapters": {}}).namespace == DEFAULT_NAMESPACE


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"namespace": "t"}, "adapters"),
        ({"adapters": ["a1"]}, "adapters"),
        ({"adapters": {}, "clock": 3}, "clock"),
        ({"namespace": "a b", "adapters": {}}, "namespace"),
        ({"adapters": {"a 1": "lora-1"}}, "adapters key"),
        ({"adapters": {"a1": ""}}, "adapters['a1']"),
        ({"adapters": {"a1": 7}}, "adapters['a1']"),
        ({"adapters": {"a1": "x" * 129}}, "adapters['a1']"),
    ],
)
def test_malformed_declarations_are_400_naming_the_field(body: Any, field: str) -> None:
    with pytest.raises(ContractError) as raised:
        parse_adapter_declaration(body)
    assert raised.value.status == 400
    assert field in str(raised.value)


def test_more_agents_than_the_limit_is_413() -> None:
    adapters = {f"a{index}": "lora" for index in range(MAX_UPDATE_AGENTS + 1)}
    with pytest.raises(ContractError) as raised:
        parse_adapter_declaration({"adapters": adapters})
    assert raised.value.status == 413
