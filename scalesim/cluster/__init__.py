"""Several ScaleSim servers behind sglang-router, each agent kept on one worker.

Who uses it: ``scalesim cluster`` (``command.py``), the live bench (``--workers``) and the e2e
tests. ``options.py`` parses and validates; ``workers.py`` starts local ``scalesim serve``
processes (one per GPU on a CUDA machine); ``router.py`` chooses sglang-router's flags and
talks to its worker API; ``monitor.py`` reports dead workers and removes them from the router;
``running.py`` ties them into one context manager that always stops everything. The client
side (the routing header, control calls fanned out to the workers) is
``scalesim.client.cluster``. See docs/scale-out.md.
"""

from .monitor import WorkerEvent, WorkerMonitor
from .options import ClusterArgumentError, ClusterOptions, Routing, parse_cluster_args
from .router import RouterError
from .running import RunningCluster, running_cluster

__all__ = [
    "ClusterArgumentError",
    "ClusterOptions",
    "RouterError",
    "Routing",
    "RunningCluster",
    "WorkerEvent",
    "WorkerMonitor",
    "parse_cluster_args",
    "running_cluster",
]
