"""End to end: request metadata checks and the control endpoints of api.md sections 1 and 2.

One server runs ``--radix-eviction-policy scalesim`` with no API key (control routes open);
a second, started only for the auth tests, runs with ``--api-key`` and ``--admin-api-key``.
Every refusal is checked twice: its status and message, and that the state snapshot did not
change (the request did not run, the update was not applied).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from e2e_helpers import serving
from openai import OpenAI

from scalesim.runtime import MAX_BODY_BYTES, MAX_UPDATE_AGENTS
from scalesim.server_process import RunningServer
from scalesim.tiny_model import ensure_tiny_model

pytestmark = pytest.mark.e2e

MODEL_NAME = "tiny"
_USER_KEY = "user-key"
_ADMIN_KEY = "admin-key"
_DISTANCES = "/scalesim/v1/distances"
_STATE = "/scalesim/v1/state"
_NAMESPACES = "/scalesim/v1/namespaces"


def _args(model_dir: Path) -> list[str]:
    model = ensure_tiny_model(model_dir, n_loras=0)
    args = ["--model-path", str(model.path), "--served-model-name", MODEL_NAME]
    return [*args, "--radix-eviction-policy", "scalesim"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model")


@pytest.fixture(scope="module")
def server(model_dir: Path, server_log_path: Path) -> Iterator[RunningServer]:
    with serving(_args(model_dir), log_path=server_log_path) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=120.0) as client:
        yield client


@pytest.fixture(scope="module")
def client(server: RunningServer) -> OpenAI:
    return OpenAI(base_url=server.openai_base_url, api_key="unused", max_retries=0)


def _state(http: httpx.Client, namespace: str | None = None) -> dict[str, Any]:
    params = {} if namespace is None else {"namespace": namespace}
    response = http.get(_STATE, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _post(http: httpx.Client, body: object) -> httpx.Response:
    return http.post(_DISTANCES, content=json.dumps(body))


# ---- section 1: request metadata ------------------------------------------------------------
_BAD_METADATA = [
    ({"agent": "a 1"}, "custom_params.scalesim.agent"),
    ({"namespace": "town-1"}, "custom_params.scalesim.agent"),
    ({"agent": "a1", "namespace": {"nested": 1}}, "custom_params.scalesim.namespace"),
    ({"agent": "a1", "clock": -1}, "custom_params.scalesim.clock"),
    ({"agent": "a1", "clock": 5, "next_call": 4}, "custom_params.scalesim.next_call"),
    ({"agent": "a1", "next_call": "soon"}, "custom_params.scalesim.next_call"),
    ({"agent": "a1", "priority": 3}, "priority"),
    ("a1", "custom_params.scalesim"),
]


@pytest.mark.parametrize(("meta", "field"), _BAD_METADATA)
@pytest.mark.parametrize("stream", [False, True])
def test_malformed_metadata_on_openai_routes_is_400_and_nothing_runs(
    client: OpenAI, http: httpx.Client, meta: object, field: str, stream: bool
) -> None:
    before = _state(http)
    extra = {"custom_params": {"scalesim": meta}}
    with pytest.raises(openai.BadRequestError) as chat:
        client.chat.completions.create(
            model=MODEL_NAME,
            messages=[{"role": "user", "content": "hello"}],
            max_tokens=2,
            stream=stream,
            extra_body=extra,
        )
    with pytest.raises(openai.BadRequestError) as completion:
        client.completions.create(
            model=MODEL_NAME, prompt="hello", max_tokens=2, stream=stream, extra_body=extra
        )
    assert field in chat.value.message and field in completion.value.message
    assert _state(http) == before


@pytest.mark.parametrize(("meta", "field"), _BAD_METADATA)
@pytest.mark.parametrize("stream", [False, True])
def test_malformed_metadata_on_native_generate_is_400_and_nothing_runs(
    http: httpx.Client, meta: object, field: str, stream: bool
) -> None:
    before = _state(http)
    params = {"max_new_tokens": 2, "custom_params": {"scalesim": meta}}
    single = http.post(
        "/generate", json={"text": "hi", "stream": stream, "sampling_params": params}
    )
    batch = http.post(
        "/generate",
        json={"text": ["hi", "ho"], "sampling_params": [{"max_new_tokens": 2}, params]},
    )
    for response in (single, batch):
        assert response.status_code == 400, response.text
        assert field in response.json()["error"]
    assert _state(http) == before


def test_request_metadata_reaches_the_runtime(client: OpenAI, http: httpx.Client) -> None:
    meta = {"agent": "a1", "namespace": "meta-1", "clock": 3, "next_call": 4}
    client.chat.completions.create(
        model=MODEL_NAME,
        messages=[{"role": "user", "content": "the market opens early " * 8}],
        max_tokens=2,
        extra_body={"custom_params": {"scalesim": meta}},
    )
    state = _state(http, "meta-1")
    assert state["namespaces"] == [{"name": "meta-1", "clock": 3.0, "version": None, "agents": 1}]
    assert state["path_owners"] == 1 and state["owned_nodes"] >= 1
    assert state["tokens"]["device"]["near"] > 0  # next call 1 step away: within the window
    assert state["tokens"]["device"]["far"] == state["tokens"]["device"]["unknown"] == 0


def test_requests_without_scalesim_run_as_stock(client: OpenAI) -> None:
    response = client.chat.completions.create(
        model=MODEL_NAME,
        messages=[{"role": "user", "content": "hello"}],
        max_tokens=2,
        extra_body={"custom_params": {"other": {"nested": "ok"}}},
    )
    assert response.choices[0].finish_reason is not None


# ---- section 2: distance updates ------------------------------------------------------------
_GOOD = {"namespace": "bad-1", "clock": 10, "version": 1, "next_call": {"a": 12}}
_MALFORMED_UPDATES = [
    ("{not json", 400, "not valid JSON"),
    ("", 400, "not valid JSON"),
    ([1, 2], 400, "JSON object"),
    ({**_GOOD, "extra": 1}, 400, "extra"),
    ({"namespace": "bad-1", "next_call": {}}, 400, "clock"),
    ({"namespace": "bad-1", "clock": 1}, 400, "next_call"),
    ({**_GOOD, "namespace": "bad ns"}, 400, "namespace"),
    ({**_GOOD, "clock": -1}, 400, "clock"),
    ('{"namespace": "bad-1", "clock": NaN, "next_call": {}}', 400, "clock"),
    ({**_GOOD, "version": -2}, 400, "version"),
    ({**_GOOD, "next_call": {"a": 9}}, 400, "next_call['a']"),
    ({**_GOOD, "next_call": {"a": 12, "b|c": 12}}, 400, "next_call key"),
    ({**_GOOD, "next_call": {"a": 12, "b": "soon"}}, 400, "next_call['b']"),
    ({**_GOOD, "unknown": ["a"]}, 400, "'a'"),
    ({**_GOOD, "unknown": "a"}, 400, "unknown"),
    (
        {**_GOOD, "next_call": {f"a{index}": 12 for index in range(MAX_UPDATE_AGENTS + 1)}},
        413,
        "more than 100000 agents",
    ),
    ('{"pad": "' + "x" * MAX_BODY_BYTES + '"}', 413, "larger than"),
]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    _MALFORMED_UPDATES,
    ids=[f"{status}-{message[:24]}" for _, status, message in _MALFORMED_UPDATES],
)
def test_malformed_update_is_refused_and_nothing_is_applied(
    http: httpx.Client, body: object, status: int, message: str
) -> None:
    before = _state(http)
    content = body if isinstance(body, str) else json.dumps(body)
    response = http.post(_DISTANCES, content=content)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert _state(http) == before


def test_good_update_is_applied_and_visible_in_state(http: httpx.Client) -> None:
    body = {
        "namespace": "town-1",
        "clock": 312,
        "version": 57,
        "next_call": {"a17": 340, "a18": None, "a19": 313.5},
        "unknown": ["a20"],
    }
    response = _post(http, body)
    assert response.status_code == 200, response.text
    assert response.json() == {"namespace": "town-1", "applied": 3, "version": 57, "clock": 312.0}
    state = _state(http, "town-1")
    assert state["namespaces"] == [{"name": "town-1", "clock": 312.0, "version": 57, "agents": 3}]
    assert state["agents"] == 3
    assert {"distance_updates", "rejected_updates"} <= set(state["counters"])
    assert "town-1" in [entry["name"] for entry in _state(http)["namespaces"]]


def test_stale_version_or_older_clock_is_409_and_nothing_is_applied(http: httpx.Client) -> None:
    assert _post(http, {"namespace": "v-1", "clock": 10, "version": 5, "next_call": {}}).is_success
    before = _state(http, "v-1")
    stale = [
        {"namespace": "v-1", "clock": 11, "version": 5, "next_call": {"a": 12}},
        {"namespace": "v-1", "clock": 11, "version": 4, "next_call": {"a": 12}},
        {"namespace": "v-1", "clock": 9, "version": 6, "next_call": {"a": 12}},
    ]
    for count, body in enumerate(stale, start=1):
        response = _post(http, body)
        assert response.status_code == 409, response.text
        after = _state(http, "v-1")
        assert after["namespaces"] == before["namespaces"]
        rejected = after["counters"]["rejected_updates"] - before["counters"]["rejected_updates"]
        assert rejected == count
    response = _post(http, {"namespace": "v-1", "clock": 11, "version": 6, "next_call": {"a": 12}})
    assert response.json() == {"namespace": "v-1", "applied": 1, "version": 6, "clock": 11.0}


def test_delete_unknown_is_404_and_known_is_dropped(http: httpx.Client) -> None:
    assert http.delete(f"{_NAMESPACES}/never-seen").status_code == 404
    assert _post(
        http, {"namespace": "gone/1", "clock": 1, "next_call": {"a": 2, "b": 3}}
    ).is_success
    response = http.delete(f"{_NAMESPACES}/gone/1")
    assert response.status_code == 200, response.text
    assert response.json() == {"namespace": "gone/1", "agents": 2, "path_owners": 0}
    assert http.get(_STATE, params={"namespace": "gone/1"}).status_code == 404
    assert "gone/1" not in [entry["name"] for entry in _state(http)["namespaces"]]
    assert http.delete(f"{_NAMESPACES}/gone/1").status_code == 404
    assert http.delete(f"{_NAMESPACES}/bad%20name").status_code == 400


def test_namespaces_are_isolated(http: httpx.Client) -> None:
    assert _post(
        http, {"namespace": "iso-a", "clock": 100, "version": 9, "next_call": {}}
    ).is_success
    response = _post(http, {"namespace": "iso-b", "clock": 1, "version": 1, "next_call": {"x": 2}})
    assert response.status_code == 200, response.text  # a's clock and version are a's alone
    before_b = _state(http, "iso-b")["namespaces"]
    assert _post(
        http, {"namespace": "iso-a", "clock": 200, "version": 10, "next_call": {}}
    ).is_success
    assert http.delete(f"{_NAMESPACES}/iso-a").status_code == 200
    assert _state(http, "iso-b")["namespaces"] == before_b


# ---- auth -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keyed_server(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    log_path = tmp_path_factory.mktemp("keyed-server") / "scalesim-serve.log"
    args = [*_args(model_dir), "--api-key", _USER_KEY, "--admin-api-key", _ADMIN_KEY]
    with serving(args, log_path=log_path) as running:
        yield running


_REFUSED_KEYS = [None, "wrong", _USER_KEY]


@pytest.mark.parametrize("key", _REFUSED_KEYS, ids=["no-key", "wrong-key", "user-api-key"])
def test_with_an_admin_key_nothing_else_opens_the_control_routes(
    keyed_server: RunningServer, key: str | None
) -> None:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    admin = {"Authorization": f"Bearer {_ADMIN_KEY}"}
    with httpx.Client(base_url=keyed_server.base_url, timeout=120.0) as http:
        body = json.dumps({"namespace": "auth-1", "clock": 1, "next_call": {"a": 2}})
        assert http.post(_DISTANCES, content=body, headers=headers).status_code == 401
        assert http.get(_STATE, headers=headers).status_code == 401
        assert http.delete(f"{_NAMESPACES}/auth-1", headers=headers).status_code == 401
        state = http.get(_STATE, headers=admin)
        assert state.status_code == 200 and state.json()["namespaces"] == []
        user = {"Authorization": f"Bearer {_USER_KEY}"}
        assert http.get("/v1/models", headers=user).status_code == 200  # the user key is valid


def test_the_admin_key_opens_the_control_routes(keyed_server: RunningServer) -> None:
    admin = {"Authorization": f"Bearer {_ADMIN_KEY}"}
    with httpx.Client(base_url=keyed_server.base_url, timeout=120.0, headers=admin) as http:
        body = json.dumps({"namespace": "auth-2", "clock": 1, "next_call": {"a": 2}})
        assert http.post(_DISTANCES, content=body).json()["applied"] == 1
        assert [entry["name"] for entry in _state(http)["namespaces"]] == ["auth-2"]
        assert http.delete(f"{_NAMESPACES}/auth-2").status_code == 200
