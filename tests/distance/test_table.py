"""DistanceTable: freshness rules, staleness, versions, validation and rank keys."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import pytest

from scalesim.distance import (
    KNOWN,
    MAX_ID_CHARS,
    UNKNOWN,
    DistanceTable,
    InvalidEntryError,
    Knowledge,
    RankKey,
    Source,
)


def test_lookup_reports_remaining_distance_from_eta() -> None:
    table = DistanceTable()
    assert table.update("a", 10.0, now=5.0)
    reading = table.lookup("a", now=8.0)
    assert reading.knowledge is Knowledge.KNOWN
    assert reading.eta == 15.0
    assert reading.distance == 7.0
    assert table.lookup("a", now=20.0).distance == 0.0  # overdue: clamped, still nearest


def test_unknown_and_no_call_agents_have_no_distance() -> None:
    table = DistanceTable()
    table.update("quiet", None, now=0.0)
    assert table.lookup("quiet", now=1.0).knowledge is Knowledge.NO_CALL
    assert table.lookup("ghost", now=1.0) == (Knowledge.UNKNOWN, None, None, None)
    assert table.owner_rank("quiet", now=1.0) == table.owner_rank("ghost", now=1.0)


def test_entry_decays_to_stale_after_horizon() -> None:
    table = DistanceTable(horizon=10.0)
    table.update("a", 100.0, now=0.0)
    assert table.lookup("a", now=10.0).knowledge is Knowledge.KNOWN  # boundary is fresh
    stale = table.lookup("a", now=10.5)
    assert stale.knowledge is Knowledge.STALE
    assert stale.entry is not None and stale.entry.set_at == 0.0
    assert table.owner_rank("a", now=10.5).known == UNKNOWN


def test_overdue_prediction_decays_after_grace() -> None:
    """A predicted call that never came must stop ranking its agent as nearest of all."""
    table = DistanceTable(overdue_grace=5.0)
    table.update_batch({"late": 2.0, "far": 40.0}, now=0.0)
    assert table.lookup("late", now=7.0).knowledge is Knowledge.KNOWN  # eta 2 + grace 5
    assert table.owner_rank("late", now=7.0) > table.owner_rank("far", now=7.0)
    assert table.lookup("late", now=7.5).knowledge is Knowledge.STALE
    assert table.owner_rank("late", now=7.5) < table.owner_rank("far", now=7.5)
    assert table.advance(8.0) == ("late",)
    table.update("quiet", None, now=0.0)  # no call expected: nothing to be late for
    assert table.lookup("quiet", now=1e9).knowledge is Knowledge.NO_CALL


def test_horizon_and_overdue_grace_take_the_earlier_expiry() -> None:
    table = DistanceTable(horizon=10.0, overdue_grace=3.0)
    table.update_batch({"near": 1.0, "far": 100.0}, now=0.0)
    assert table.lookup("near", now=4.5).knowledge is Knowledge.STALE  # 1 + 3 < 10
    assert table.lookup("far", now=10.5).knowledge is Knowledge.STALE  # horizon first
    with pytest.raises(InvalidEntryError, match="overdue_grace"):
        DistanceTable(overdue_grace=-1.0)


def test_advance_reports_each_expiry_once_and_notifies() -> None:
    table = DistanceTable(horizon=5.0)
    seen: list[tuple[str, float]] = []
    table.subscribe(lambda agent, now: seen.append((agent, now)))
    table.update_batch({"b": 1.0, "a": 2.0}, now=0.0)
    table.update("b", 1.0, now=3.0)  # refreshed: expires at 8, not 5
    seen.clear()
    assert table.advance(6.0) == ("a",)
    assert table.advance(6.0) == ()
    assert table.advance(9.0) == ("b",)
    assert seen == [("a", 6.0), ("b", 9.0)]


def test_older_update_is_ignored() -> None:
    table = DistanceTable()
    table.update("a", 4.0, now=10.0)
    assert not table.update("a", 1.0, now=9.0)
    assert table.lookup("a", now=10.0).eta == 14.0


def test_hint_beats_estimate_at_equal_time_and_fresher_wins_otherwise() -> None:
    table = DistanceTable()
    table.update("a", 3.0, now=1.0, source=Source.HINT)
    assert not table.update("a", 50.0, now=1.0, source=Source.ESTIMATE)
    assert table.update("a", 50.0, now=2.0, source=Source.ESTIMATE)
    assert table.update("a", 7.0, now=2.0, source=Source.HINT)
    reading = table.lookup("a", now=2.0)
    assert reading.entry is not None and reading.entry.source is Source.HINT
    assert reading.eta == 9.0


def test_replace_applies_only_newer_versions() -> None:
    table = DistanceTable()
    table.update("hinted", 1.0, now=0.0)
    assert table.replace({"a": 5.0, "b": 6.0}, version=2, now=1.0)
    assert table.version == 2
    assert table.lookup("hinted", now=1.0).knowledge is Knowledge.UNKNOWN  # not in the table
    assert not table.replace({"a": 99.0}, version=1, now=2.0)
    assert not table.replace({"a": 99.0}, version=2, now=2.0)
    assert table.lookup("a", now=1.0).eta == 6.0
    entry = table.lookup("b", now=1.0).entry
    assert entry is not None and entry.version == 2 and entry.source is Source.TABLE


def test_replace_keeps_entries_fresher_than_the_table() -> None:
    table = DistanceTable()
    table.update("a", 1.0, now=10.0)
    assert table.replace({"a": 50.0}, version=1, now=5.0)
    assert table.lookup("a", now=10.0).eta == 11.0


@pytest.mark.parametrize(
    ("distance", "message"),
    [
        (math.nan, "not finite"),
        (math.inf, "not finite"),
        (-1.0, "negative"),
        ("3", "not a number"),
        (True, "not a number"),
        ([1.0], "not a number"),
    ],
)
def test_invalid_distance_in_a_batch_changes_nothing(distance: object, message: str) -> None:
    table = DistanceTable()
    table.update("a", 1.0, now=0.0)
    with pytest.raises(InvalidEntryError, match=message) as caught:
        table.update_batch({"a": 9.0, "bad": distance, "c": 2.0}, now=1.0)  # type: ignore[dict-item]
    assert "'bad'" in str(caught.value)
    assert len(table) == 1
    assert table.lookup("a", now=1.0).eta == 1.0


@pytest.mark.parametrize("agent", [7, None, "", "x" * (MAX_ID_CHARS + 1), "a\nb", "a\x00b", b"a"])
def test_malformed_agent_id_raises_and_changes_nothing(agent: object) -> None:
    table = DistanceTable()
    with pytest.raises(InvalidEntryError, match="agent id"):
        table.update_batch({"ok": 1.0, agent: 2.0}, now=0.0)  # type: ignore[dict-item]
    with pytest.raises(InvalidEntryError):
        table.replace({agent: 2.0}, version=1, now=0.0)  # type: ignore[dict-item]
    assert len(table) == 0
    assert table.version == 0


@pytest.mark.parametrize("now", [math.nan, math.inf, "0", False])
def test_invalid_now_raises(now: object) -> None:
    with pytest.raises(InvalidEntryError, match="now"):
        DistanceTable().update("a", 1.0, now=now)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", [-1, 1.5, True, "2"])
def test_invalid_version_raises(version: object) -> None:
    with pytest.raises(InvalidEntryError, match="version"):
        DistanceTable().replace({}, version=version, now=0.0)  # type: ignore[arg-type]


def test_rank_key_uses_nearest_owner_then_recency_then_key() -> None:
    table = DistanceTable()
    table.update_batch({"near": 2.0, "far": 30.0}, now=0.0)
    shared = table.rank_key(["far", "near", "ghost"], 5.0, now=0.0, tiebreak="r1")
    assert shared == RankKey(KNOWN, -2.0, 5.0, "r1")
    far_only = table.rank_key(["far"], 9.0, now=0.0, tiebreak="r0")
    unknown_old = table.rank_key(["ghost"], 1.0, now=0.0, tiebreak="r3")
    unknown_new = table.rank_key([], 4.0, now=0.0, tiebreak="r2")
    assert sorted([shared, far_only, unknown_new, unknown_old]) == [
        unknown_old,
        unknown_new,
        far_only,
        shared,
    ]


def test_rank_keys_stay_comparable_as_time_passes() -> None:
    """Keys taken at different instants order like remaining distances at any instant."""
    table = DistanceTable()
    table.update("a", 10.0, now=0.0)  # next call at 10
    early = table.rank_key(["a"], 0.0, now=0.0, tiebreak="x")
    table.update("b", 3.0, now=8.0)  # next call at 11: farther than a
    late = table.rank_key(["b"], 0.0, now=8.0, tiebreak="y")
    assert late < early
    assert early.remaining(8.0) == 2.0 and late.remaining(8.0) == 3.0


def test_core_imports_without_torch_sglang_or_numpy() -> None:
    script = textwrap.dedent(
        """
        import importlib.abc, sys

        class Blocker(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"torch", "sglang", "numpy", "triton"}:
                    raise ImportError("blocked: " + name)
                return None

        sys.meta_path.insert(0, Blocker())
        import scalesim.distance, scalesim.memory
        import scalesim.distance.spatial, scalesim.memory.index
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
