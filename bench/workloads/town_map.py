"""The map of the ``town`` workload: venues on a jittered grid, homes, favourite places.

Density follows Generative Agents' Smallville (about 25 agents on 140 x 100 tiles,
rounded to ``AREA_PER_AGENT`` tiles each), one venue per ``AGENTS_PER_VENUE`` agents
and one home per ``AGENTS_PER_HOME``. Each agent frequents venues in the grid cells
around its home, so walks stay short (tens of steps) at any town size, and the map
builds in time linear in the number of agents.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

AREA_PER_AGENT = 250.0
AGENTS_PER_VENUE = 8
AGENTS_PER_HOME = 2
FAVOURITE_VENUES = 4


@dataclass(frozen=True)
class Place:
    """A venue or a home: ``place_id`` indexes ``TownMap.places``; (x, y) in tiles."""

    place_id: int
    x: float
    y: float


@dataclass(frozen=True)
class TownMap:
    """All places, each agent's home and favourite venues (place ids)."""

    places: tuple[Place, ...]
    homes: tuple[int, ...]
    favourites: tuple[tuple[int, ...], ...]

    def walk_steps(self, origin: int, target: int, *, speed: float) -> int:
        """Steps to walk from place ``origin`` to ``target`` at ``speed`` tiles per step."""
        start, end = self.places[origin], self.places[target]
        return math.ceil(math.hypot(end.x - start.x, end.y - start.y) / speed)


def build_map(agents: int, rng: random.Random) -> TownMap:
    """A town for ``agents`` agents, drawn from ``rng``."""
    side = math.sqrt(AREA_PER_AGENT * max(agents, 1))
    cells = max(1, math.ceil(math.sqrt(max(agents, 1) / AGENTS_PER_VENUE)))
    cell = side / cells
    places = [
        Place(
            row * cells + col,
            (col + rng.uniform(0.2, 0.8)) * cell,
            (row + rng.uniform(0.2, 0.8)) * cell,
        )
        for row in range(cells)
        for col in range(cells)
    ]
    n_homes = max(1, math.ceil(agents / AGENTS_PER_HOME))
    home_cells: list[tuple[int, int]] = []
    for _ in range(n_homes):
        x, y = rng.uniform(0, side), rng.uniform(0, side)
        home_cells.append((min(cells - 1, int(y / cell)), min(cells - 1, int(x / cell))))
        places.append(Place(len(places), x, y))
    homes = tuple(cells * cells + index // AGENTS_PER_HOME for index in range(agents))
    favourites = tuple(
        _favourites(home_cells[index // AGENTS_PER_HOME], cells, rng) for index in range(agents)
    )
    return TownMap(places=tuple(places), homes=homes, favourites=favourites)


def _favourites(home_cell: tuple[int, int], cells: int, rng: random.Random) -> tuple[int, ...]:
    """Venues of up to ``FAVOURITE_VENUES`` cells among the 3 x 3 cells around home."""
    row, col = home_cell
    nearby = [
        other_row * cells + other_col
        for other_row in range(max(0, row - 1), min(cells, row + 2))
        for other_col in range(max(0, col - 1), min(cells, col + 2))
    ]
    return tuple(rng.sample(nearby, min(FAVOURITE_VENUES, len(nearby))))
