"""The OASIS social-media data behind ``social``: users' hourly activity, follows, cascades.

Who calls it: ``social.py`` (and the tests, to compare a trace with the data). Reads
``oasis/user_all_id_time.csv`` (111 real users: the accounts each follows, 24 hourly
activity counts, real follower and following counts) and ``oasis/all_topics.csv`` (198
real Twitter15/16 cascades: users reached, depth of the repost tree, mean / median /
max activation time after the source in hours); see their ``SOURCE.md``.

Invariants: every user has 24 non-negative hourly counts; cascades whose times are not
positive and ordered (mean and median within (0, max]) are data errors and are dropped
(2 of 198), counted in :attr:`SocialData.dropped_cascades`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .real_data import OASIS, data_file

HOURS_PER_DAY = 24


@dataclass(frozen=True)
class SocialUser:
    """One real user: whom it follows (user indices), activity per hour of the day."""

    following: tuple[int, ...]
    hourly: tuple[int, ...]
    followers_count: int
    following_count: int


@dataclass(frozen=True)
class RealCascade:
    """One real cascade: users reached, repost-tree depth, activation times in hours."""

    users: int
    depth: int
    mean_hours: float
    median_hours: float
    max_hours: float

    def quantile_hours(self, share: float) -> float:
        """Activation time (hours after the source) below which ``share`` of users act.

        Piecewise linear through (0, 0), (0.5, median), (0.75, q3) and (1, max), with q3
        chosen (within [median, max]) so that the distribution's mean is the real mean:
        mean = 0.375 median + 0.25 q3 + 0.125 max.
        """
        median, top = self.median_hours, self.max_hours
        q3 = (self.mean_hours - 0.375 * median - 0.125 * top) / 0.25
        q3 = min(max(q3, median), top)
        if share <= 0.5:
            return 2 * share * median
        if share <= 0.75:
            return median + (share - 0.5) * 4 * (q3 - median)
        return q3 + (share - 0.75) * 4 * (top - q3)


@dataclass(frozen=True)
class SocialData:
    """All users and the valid cascades of the data set."""

    users: tuple[SocialUser, ...]
    cascades: tuple[RealCascade, ...]
    dropped_cascades: int


def load_social(data_dir: Path | None = None) -> SocialData:
    """The data set under ``data_dir`` (default: ``real_data.default_data_dir()``).

    Raises:
        FileNotFoundError: the data set is missing (the message says how to point at it).
        ValueError: a user's row is malformed (the message names the row).
    """
    users = data_file(data_dir, OASIS, "user_all_id_time.csv")
    topics = data_file(data_dir, OASIS, "all_topics.csv")
    return _load(str(users.resolve()), str(topics.resolve()))


@lru_cache(maxsize=4)
def _load(users_path: str, topics_path: str) -> SocialData:
    with open(users_path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    users = tuple(_user(row, number, len(rows)) for number, row in enumerate(rows))
    with open(topics_path, encoding="utf-8", newline="") as handle:
        cascades = [_cascade(row) for row in csv.DictReader(handle)]
    valid = tuple(cascade for cascade in cascades if cascade is not None)
    return SocialData(users, valid, len(cascades) - len(valid))


def _user(row: dict[str, str], number: int, count: int) -> SocialUser:
    following = json.loads(row["following_agentid_list"])
    hourly = json.loads(row["activity_level_frequency"])
    if len(hourly) != HOURS_PER_DAY or any(not isinstance(c, int) or c < 0 for c in hourly):
        raise ValueError(f"user row {number}: activity_level_frequency needs 24 counts >= 0")
    if any(not isinstance(other, int) or not 0 <= other < count for other in following):
        raise ValueError(f"user row {number}: following_agentid_list names unknown users")
    return SocialUser(
        following=tuple(sorted(set(following) - {number})),
        hourly=tuple(hourly),
        followers_count=int(row["followers_count"]),
        following_count=int(row["following_count"]),
    )


def _cascade(row: dict[str, str]) -> RealCascade | None:
    cascade = RealCascade(
        users=int(row["num_users"]),
        depth=int(row["max_depth"]),
        mean_hours=float(row["mean_time"]),
        median_hours=float(row["median_time"]),
        max_hours=float(row["max_time"]),
    )
    top = cascade.max_hours
    if not (0 < cascade.mean_hours <= top and 0 < cascade.median_hours <= top):
        return None
    return cascade
