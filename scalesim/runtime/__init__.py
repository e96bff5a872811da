"""The ScaleSim runtime: the code that decides, shared by the live server and the trace replay.

Standard library plus the core (``scalesim.distance``, ``scalesim.memory``): no torch, no sglang.
"""

from .config import HintTrustMode, PrefixOwnership, QueueOrder, RuntimeConfig
from .contract import (
    DEFAULT_NAMESPACE,
    MAX_BODY_BYTES,
    MAX_UPDATE_AGENTS,
    AdapterDeclaration,
    AgentMeta,
    ContractError,
    DistanceUpdate,
    owner_key,
    parse_adapter_declaration,
    parse_agent_meta,
    parse_distance_update,
    split_owner,
)
from .owners import NodeOwners, TreeNode, owned_side, stable_node
from .queue import QueuedCall, lag_order
from .runtime import (
    DropResult,
    NamespaceState,
    RuntimeCounters,
    ScaleSimRuntime,
    UpdateResult,
)

__all__ = [
    "DEFAULT_NAMESPACE",
    "MAX_BODY_BYTES",
    "MAX_UPDATE_AGENTS",
    "AdapterDeclaration",
    "AgentMeta",
    "ContractError",
    "DistanceUpdate",
    "DropResult",
    "HintTrustMode",
    "NamespaceState",
    "NodeOwners",
    "PrefixOwnership",
    "QueueOrder",
    "QueuedCall",
    "RuntimeConfig",
    "RuntimeCounters",
    "ScaleSimRuntime",
    "TreeNode",
    "UpdateResult",
    "lag_order",
    "owned_side",
    "owner_key",
    "parse_adapter_declaration",
    "parse_agent_meta",
    "parse_distance_update",
    "split_owner",
    "stable_node",
]
