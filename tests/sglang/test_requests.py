"""Which agent a request belongs to when its metadata did not survive a router: the SDK's
``namespace|agent`` routing key (``scalesim.sglang.requests.meta_from_routing_key``)."""

from __future__ import annotations

import pytest

from scalesim.runtime import AgentMeta
from scalesim.sglang.requests import meta_from_routing_key


def test_the_sdks_routing_key_names_the_agent() -> None:
    assert meta_from_routing_key("town-1|a17") == AgentMeta("a17", "town-1")


@pytest.mark.parametrize("key", [None, 7, "", "user-123", "town|", "|a1", "a b|c", "t|a|b"])
def test_other_routing_keys_are_sglangs_own_business(key: object) -> None:
    assert meta_from_routing_key(key) is None
