"""Invocation distance: how soon each agent will call the LLM again. Pure Python."""

from .estimators import (
    ActionState,
    ActivationPaths,
    ActivationState,
    DistanceEstimator,
    IndependentAgents,
)
from .rank import (
    KNOWN,
    NO_CALL,
    NO_CALL_RANK,
    NOBODY,
    NOBODY_RANK,
    UNKNOWN,
    UNKNOWN_RANK,
    OwnerRank,
    RankKey,
    fetch_order,
    strictly_farther,
)
from .spatial import (
    InteractingAgents,
    MetropolisRules,
    OutOfOrderAgents,
    SpatialAgent,
    StepAgent,
)
from .table import DistanceEntry, DistanceLookup, DistanceTable, Knowledge, Listener, Source
from .validation import MAX_ID_CHARS, InvalidEntryError, check_id

__all__ = [
    "KNOWN",
    "MAX_ID_CHARS",
    "NOBODY",
    "NOBODY_RANK",
    "NO_CALL",
    "NO_CALL_RANK",
    "UNKNOWN",
    "UNKNOWN_RANK",
    "ActionState",
    "ActivationPaths",
    "ActivationState",
    "DistanceEntry",
    "DistanceEstimator",
    "DistanceLookup",
    "DistanceTable",
    "IndependentAgents",
    "InteractingAgents",
    "InvalidEntryError",
    "Knowledge",
    "Listener",
    "MetropolisRules",
    "OutOfOrderAgents",
    "OwnerRank",
    "RankKey",
    "Source",
    "SpatialAgent",
    "StepAgent",
    "check_id",
    "fetch_order",
    "strictly_farther",
]
