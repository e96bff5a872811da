"""``scalesim cluster``'s command line and the router's flags, without starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalesim.cli import main
from scalesim.cluster import ClusterArgumentError, ClusterOptions, Routing, parse_cluster_args
from scalesim.cluster.router import router_command


def test_unknown_arguments_go_to_every_worker() -> None:
    argv = ["--workers", "2", "--model-path", "m", "--radix-eviction-policy", "scalesim"]
    options, serve_args = parse_cluster_args([*argv, "--port", "31000", "--routing", "round_robin"])
    assert options.workers == 2 and options.port == 31000
    assert options.routing is Routing.ROUND_ROBIN
    assert serve_args == ("--model-path", "m", "--radix-eviction-policy", "scalesim")


def test_worker_urls_front_servers_started_elsewhere() -> None:
    options, serve_args = parse_cluster_args(["--worker-urls", "http://a:1/", "http://b:2"])
    assert options.worker_urls == ("http://a:1", "http://b:2") and options.n_workers == 2
    assert serve_args == ()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "--workers must be >= 1"),
        (["--workers", "0"], "--workers must be >= 1"),
        (["--workers", "2", "--worker-urls", "http://a:1"], "not both"),
        (["--worker-urls", "a:1"], "http(s) URLs"),
        (["--worker-urls", "http://a:1", "--model-path", "m"], "no worker is started here"),
        (["--workers", "1", "--port", "70000"], "1-65535"),
    ],
)
def test_bad_command_lines_are_refused_with_the_reason(argv: list[str], message: str) -> None:
    with pytest.raises(ClusterArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_cluster_args(argv)


def test_the_command_exits_2_on_a_bad_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster", "--workers", "0"]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err


def test_options_validate_when_built_directly() -> None:
    with pytest.raises(ClusterArgumentError):
        ClusterOptions(workers=1, startup_timeout_s=0, log_dir=Path("x"))


@pytest.mark.parametrize(
    ("routing", "policy"),
    [
        (Routing.AFFINITY, "manual"),
        (Routing.ROUND_ROBIN, "round_robin"),
        (Routing.CACHE_AWARE, "cache_aware"),
    ],
)
def test_router_policy_per_routing(routing: Routing, policy: str) -> None:
    command = router_command(["http://w:1", "http://w:2"], routing=routing, host="h", port=9)
    assert command[command.index("--policy") + 1] == policy
    start = command.index("--worker-urls") + 1
    assert command[start : start + 2] == ["http://w:1", "http://w:2"]
    assert command[command.index("--cb-failure-threshold") + 1] == "1"
    assert command[command.index("--prometheus-port") + 1] != "29000"
