"""What the sync and async clients share: settings, local checks and request building.

Who uses it: ``ScaleSim`` and ``AsyncScaleSim`` inherit from :class:`ClientBase` and add only
their I/O (an ``openai`` client, an ``httpx`` client, a plan driver and per-namespace locks).
Nothing here sends anything, so every check runs before the first byte leaves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from scalesim.runtime import DEFAULT_NAMESPACE, DistanceUpdate

from .cluster import ROUTING_KEY_HEADER, ClusterView, routing_key
from .errors import ScaleSimProtocolError
from .retry import RetryPolicy
from .versions import VersionBook
from .wire import (
    base_url,
    check_agent,
    check_namespace,
    control_headers,
    distance_update,
    model_name,
    scalesim_extra_body,
)

#: The ``api_key`` the openai client sends when the server has none (it insists on one).
NO_API_KEY = "EMPTY"


class ClientBase:
    """Settings and request building shared by :class:`ScaleSim` and :class:`AsyncScaleSim`.

    Args:
        url: the SGLang server root, e.g. ``http://127.0.0.1:30000`` (a trailing ``/v1`` is
            accepted and removed).
        namespace: the simulation's namespace, used by every call that does not name one.
        api_key: SGLang's ``--api-key``: sent on LLM calls, and on control calls when there
            is no ``admin_key``.
        admin_key: SGLang's ``--admin-api-key``: sent on control calls.
        model: the base model name; default the first base model ``/v1/models`` lists,
            fetched once, on the first ``chat`` that needs it.
        retry: attempts, backoff and timeout of control calls (and the openai client's
            ``max_retries`` = attempts - 1).
        first_version: the first update version of every namespace, counting up; default
            time-based (microseconds since the epoch, see ``scalesim.client.versions``).
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        api_key: str | None = None,
        admin_key: str | None = None,
        model: str | None = None,
        retry: RetryPolicy | None = None,
        first_version: int | None = None,
    ) -> None:
        self.url = base_url(url)
        self.namespace = check_namespace(namespace)
        self.retry = retry if retry is not None else RetryPolicy()
        self.versions = VersionBook(first_version)
        self._api_key = api_key
        self._control_headers = control_headers(api_key=api_key, admin_key=admin_key)
        self._model = model
        self.cluster = ClusterView()  # a plain server or a router's workers (control fan-out)
        self._connect()

    def _connect(self) -> None:
        """Open the subclass's HTTP clients (called last by ``__init__``)."""
        raise NotImplementedError

    @property
    def openai_base_url(self) -> str:
        """The OpenAI-compatible base URL (``{url}/v1``)."""
        return f"{self.url}/v1"

    def extra_body(
        self,
        agent: str,
        *,
        clock: float | None = None,
        next_call: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The ``extra_body`` carrying this agent's metadata, for any OpenAI-compatible call.

        Args:
            agent: the calling agent's id.
            clock: the simulation's time now (its own unit); None leaves it out.
            next_call: this agent's next expected call, absolute (same unit); None leaves it
                out (the server then keeps what it knew).
            extra_body: the caller's own ``extra_body``, merged.

        Raises:
            ScaleSimValidationError: what the server would answer 400 to, naming the field.
        """
        return scalesim_extra_body(
            agent, namespace=self.namespace, clock=clock, next_call=next_call, extra_body=extra_body
        )

    def routing_headers(self, agent: str) -> dict[str, str]:
        """The header that keeps ``agent`` on one worker behind sglang-router (``scalesim
        cluster``'s affinity routing); a plain server ignores it. ``chat`` sends it; pass it as
        ``extra_headers`` on direct ``.openai`` calls.
        """
        return {ROUTING_KEY_HEADER: routing_key(self.namespace, check_agent(agent))}

    def _chat_request(
        self,
        agent: str,
        *,
        adapter: str | None,
        clock: float | None,
        next_call: float | None,
        kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        """``kwargs`` with the metadata merged into ``extra_body``, all checked (no model yet)."""
        model_name("base", adapter)  # checks the adapter name before anything is fetched
        request = dict(kwargs)
        request["extra_body"] = self.extra_body(
            agent, clock=clock, next_call=next_call, extra_body=request.get("extra_body")
        )
        request["extra_headers"] = {
            **self.routing_headers(agent),
            **(kwargs.get("extra_headers") or {}),
        }
        return request

    def _remember_model(self, models: Sequence[Any]) -> str:
        """The first base model (no ``parent``: LoRA adapters have one) of a model list."""
        for card in models:
            if getattr(card, "parent", None) is None and isinstance(getattr(card, "id", None), str):
                self._model = str(card.id)
                return self._model
        raise ScaleSimProtocolError(f"{self.openai_base_url}/models lists no base model")

    def _update(
        self,
        *,
        clock: float,
        next_call: Mapping[str, float | None],
        unknown: Iterable[str],
        namespace: str,
        version: int | None,
    ) -> DistanceUpdate:
        """A checked update of ``namespace`` with ``version``, or the next one allocated."""
        chosen = self.versions.next(namespace) if version is None else version
        update = distance_update(
            namespace=namespace, clock=clock, version=chosen, next_call=next_call, unknown=unknown
        )
        if version is not None:
            self.versions.observe(namespace, version)
        return update
