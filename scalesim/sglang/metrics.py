"""ScaleSim's counters and gauges on SGLang's ``/metrics`` (api.md section 4).

Who calls it: the scheduler hook that runs once per scheduler iteration
(``scalesim.patches.scheduler``), on the ranks where SGLang itself reports metrics (attention
TP rank 0) and only with ``--enable-metrics``. The runtime keeps plain integer counters (the
policy knows nothing of telemetry); this module publishes their growth since the last call to
Prometheus counters and sets the gauges, through SGLang's multiprocess Prometheus setup, so
they appear beside SGLang's own series. Names carry the ``scalesim_`` prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from scalesim.runtime import RuntimeCounters, ScaleSimRuntime
from scalesim.runtime.adapters import AdapterCounters

#: Runtime counter -> (Prometheus counter name, labels).
_COUNTERS: dict[str, tuple[str, dict[str, str]]] = {
    "distance_updates": ("scalesim_distance_updates", {}),
    "rejected_updates": ("scalesim_rejected_updates", {}),
    "kv_prefetch_tokens": ("scalesim_kv_prefetch_tokens", {}),
    "kv_prefetch_failures": ("scalesim_kv_prefetch_failures", {}),
    "evicted_device_tokens": ("scalesim_evicted_tokens", {"tier": "device"}),
    "evicted_host_tokens": ("scalesim_evicted_tokens", {"tier": "host"}),
}
#: Adapter counter -> (Prometheus counter name, labels).
_ADAPTER_COUNTERS: dict[str, tuple[str, dict[str, str]]] = {
    "lora_loads_blocking": ("scalesim_lora_loads", {"kind": "blocking"}),
    "lora_loads_prefetch": ("scalesim_lora_loads", {"kind": "prefetch"}),
    "lora_prefetch_failures": ("scalesim_lora_prefetch_failures", {}),
}
_HELP = {
    "scalesim_distance_updates": "Agent distances applied (control updates and request next_call).",
    "scalesim_rejected_updates": "Control updates refused by the scheduler (stale version/clock).",
    "scalesim_kv_prefetch_tokens": "Tokens queued for host-to-device prefetch ahead of calls.",
    "scalesim_kv_prefetch_failures": "Prefetches SGLang refused (memory short); dropped.",
    "scalesim_evicted_tokens": "Tokens evicted under the scalesim policy, by tier.",
    "scalesim_lora_loads": "Adapters copied into GPU slots: blocking or prefetch.",
    "scalesim_lora_prefetch_failures": "Adapter prefetches SGLang refused or that failed; dropped.",
}
#: Live copies (``copy_kernels``): kind x path, path ``triton`` (ScaleSim's kernels) or
#: ``fallback`` (handed back to SGLang's own op).
_COPY_KINDS = ("kv_load", "kv_backup", "lora")
_COPY_PATHS = ("triton", "fallback")
#: (kind, path) -> copies run.
CopyCounts = Mapping[tuple[str, str], int]


class MetricsExporter:
    """Publishes one runtime's counters and gauges; one per scheduler process."""

    def __init__(self, labels: dict[str, str]) -> None:
        # Imported here: SGLang sets PROMETHEUS_MULTIPROC_DIR before its processes start.
        from prometheus_client import Counter, Gauge

        self._labels = labels
        families: dict[str, Any] = {}
        for name, extra in [*_COUNTERS.values(), *_ADAPTER_COUNTERS.values()]:
            if name not in families:
                labelnames = [*labels, *extra]
                families[name] = Counter(name, _HELP[name], labelnames=labelnames)
        self._counters = {
            field: families[name].labels(**labels, **extra)
            for field, (name, extra) in _COUNTERS.items()
        }
        self._adapter_counters = {
            field: families[name].labels(**labels, **extra)
            for field, (name, extra) in _ADAPTER_COUNTERS.items()
        }
        self._adapters_published = AdapterCounters()
        self._agents = Gauge(
            "scalesim_agents",
            "Agents with a distance in the runtime.",
            labelnames=list(labels),
            multiprocess_mode="mostrecent",
        ).labels(**labels)
        self._owned_nodes = Gauge(
            "scalesim_owned_nodes",
            "Radix nodes with an owner record.",
            labelnames=list(labels),
            multiprocess_mode="mostrecent",
        ).labels(**labels)
        self._published = RuntimeCounters()
        copies = Counter(
            "scalesim_copy_kernel_copies",
            "Live copies with copy_kernels=triton: on ScaleSim's kernels or handed back to SGLang.",
            labelnames=[*labels, "kind", "path"],
        )
        self._copies = {
            (kind, path): copies.labels(**labels, kind=kind, path=path)
            for kind in _COPY_KINDS
            for path in _COPY_PATHS
        }
        self._copies_published: dict[tuple[str, str], int] = {}
        for counter in [
            *self._counters.values(),
            *self._adapter_counters.values(),
            *self._copies.values(),
        ]:
            counter.inc(0)  # every series exists from the start

    def publish(
        self,
        runtime: ScaleSimRuntime | None,
        adapters: AdapterCounters | None = None,
        copies: CopyCounts | None = None,
    ) -> None:
        """Add what the runtime (the adapter slots, the live copy path) counted since the last
        call; set the gauges. Without a runtime (another radix policy) only the copies."""
        if adapters is not None:
            self._publish_adapters(adapters)
        if copies is not None:
            self._publish_copies(copies)
        if runtime is None:
            return
        now = asdict(runtime.counters)
        before = asdict(self._published)
        for field, counter in self._counters.items():
            if now[field] > before[field]:
                counter.inc(now[field] - before[field])
        self._published = RuntimeCounters(**now)
        self._agents.set(len(runtime.table))
        self._owned_nodes.set(runtime.owners.n_nodes)

    def _publish_adapters(self, adapters: AdapterCounters) -> None:
        now, before = asdict(adapters), asdict(self._adapters_published)
        for field, counter in self._adapter_counters.items():
            if now[field] > before[field]:
                counter.inc(now[field] - before[field])
        self._adapters_published = AdapterCounters(**now)

    def _publish_copies(self, copies: CopyCounts) -> None:
        for key, counter in self._copies.items():
            grown = copies.get(key, 0) - self._copies_published.get(key, 0)
            if grown > 0:
                counter.inc(grown)
                self._copies_published[key] = copies[key]


def publish_metrics(
    scheduler: Any,
    runtime: ScaleSimRuntime | None,
    adapters: AdapterCounters | None = None,
    copies: CopyCounts | None = None,
) -> None:
    """Publish on the reporting rank of a scheduler started with ``--enable-metrics``."""
    exporter = getattr(scheduler, "scalesim_metrics", None)
    if exporter is None:
        if not _reports_metrics(scheduler):
            return
        labels = dict(getattr(getattr(scheduler, "metrics_collector", None), "labels", {}) or {})
        exporter = scheduler.scalesim_metrics = MetricsExporter(
            {key: str(value) for key, value in labels.items()}
        )
    exporter.publish(runtime, adapters, copies)


def _reports_metrics(scheduler: Any) -> bool:
    from sglang.srt.runtime_context import get_observability, get_parallel

    return bool(get_observability().enable_metrics) and get_parallel().attn_tp_rank == 0
