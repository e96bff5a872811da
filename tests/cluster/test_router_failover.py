"""The router flags ``scalesim cluster`` sets: sticky keys, and no failed call when a worker dies.

The real sglang-router fronts two stdlib stand-in workers on loopback (they answer the routes
the router registers a worker with, and echo which worker served a call), so the router's own
behaviour is checked in seconds: a routing key stays on one worker, and once a worker's port
is closed, every key's next call is answered by the other worker, with no error, before any
monitor removed anything (``--worker-urls`` workers are never removed by the cluster). The real
``scalesim serve`` workers are in ``tests/e2e/test_cluster.py``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from scalesim.cluster import ClusterOptions, running_cluster
from scalesim.tiny_model import ensure_tiny_model

KEYS = tuple(f"town|a{i}" for i in range(12))


def _stand_in(model_path: str) -> ThreadingHTTPServer:
    """A worker that answers registration routes and says which port served a call."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            port = self.server.server_address[1]
            body: object = {"worker": port}
            if self.path.startswith("/v1/models"):
                body = {"object": "list", "data": [{"id": model_path, "object": "model"}]}
            elif "info" in self.path:
                body = {"model_path": model_path, "tp_size": 1, "dp_size": 1}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[ThreadingHTTPServer]]:
    model = ensure_tiny_model(tmp_path / "model", n_loras=0)  # the router loads its tokenizer
    servers = [_stand_in(str(model.path)) for _ in range(2)]
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


def _served_by(url: str, key: str) -> int:
    reply = httpx.post(
        f"{url}/v1/completions",
        json={"model": "m", "prompt": "hi", "max_tokens": 1},
        headers={"X-SMG-Routing-Key": key},
        timeout=60,
    )
    assert reply.status_code == 200, (key, reply.status_code, reply.text[:300])
    port: int = reply.json()["worker"]
    return port


def test_keys_stick_and_survive_a_dead_worker(
    workers: list[ThreadingHTTPServer], tmp_path: Path
) -> None:
    urls = tuple(f"http://127.0.0.1:{server.server_address[1]}" for server in workers)
    options = ClusterOptions(workers=0, worker_urls=urls, log_dir=tmp_path / "logs")
    with running_cluster(options, (), report=lambda event: None) as cluster:
        first = {key: _served_by(cluster.url, key) for key in KEYS}
        assert {key: _served_by(cluster.url, key) for key in KEYS} == first  # sticky
        victim = workers[0]
        victim_port = victim.server_address[1]
        victim.shutdown()
        victim.server_close()  # its port now refuses connections
        after = {key: _served_by(cluster.url, key) for key in KEYS}  # no call fails
    assert set(after.values()) == {workers[1].server_address[1]}
    moved = [key for key, port in first.items() if port == victim_port]
    assert moved  # some keys did live on the dead worker (random assignment of 12 keys)
