"""``ScaleSim``: the blocking client of a ScaleSim-enabled SGLang server (api.md section 3).

Who calls it: simulations and the benchmark harness. LLM calls go through the official
``openai`` client with the agent's metadata in ``extra_body``; control calls (``tick``,
``state``, ``drop_namespace``) through ``httpx``, driving the plans of
``scalesim.client.plans`` (retries, versions). Thread-safe: ticks of one namespace are
serialised, so their versions reach the server in the order they were allocated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar, overload

import httpx
import openai
from openai import Stream
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam

from .base import NO_API_KEY, ClientBase
from .cluster import WORKERS_PATH
from .plans import adapters_plan, drop_plan, state_plan, tick_plan
from .records import DropReply, StateSnapshot, TickReply
from .retry import Backoff, HttpCall, Outcome, Plan
from .wire import adapter_declaration, check_namespace, model_name

_T = TypeVar("_T")


class ScaleSim(ClientBase):
    """Chat as an agent and push invocation distances, blocking.

    Constructor arguments: see :class:`~scalesim.client.base.ClientBase` (``url``, then
    keyword-only ``namespace``, ``api_key``, ``admin_key``, ``model``, ``retry``,
    ``first_version``). Use it as a context manager, or call :meth:`close`.
    """

    #: The underlying openai client, for any other OpenAI-compatible call.
    openai: openai.OpenAI

    def _connect(self) -> None:
        self.openai = openai.OpenAI(
            base_url=self.openai_base_url,
            api_key=self._api_key or NO_API_KEY,
            max_retries=self.retry.attempts - 1,
        )
        self._http = httpx.Client(
            base_url=self.url, headers=self._control_headers, timeout=self.retry.timeout_s
        )
        self._locks_guard = threading.Lock()
        self._tick_locks: dict[str, threading.Lock] = {}

    # ---- LLM calls --------------------------------------------------------------------------
    @overload
    def chat(
        self,
        agent: str,
        messages: Iterable[ChatCompletionMessageParam],
        *,
        adapter: str | None = None,
        clock: float | None = None,
        next_call: float | None = None,
        model: str | None = None,
        stream: Literal[False] = False,
        **kwargs: Any,
    ) -> ChatCompletion: ...

    @overload
    def chat(
        self,
        agent: str,
        messages: Iterable[ChatCompletionMessageParam],
        *,
        adapter: str | None = None,
        clock: float | None = None,
        next_call: float | None = None,
        model: str | None = None,
        stream: Literal[True],
        **kwargs: Any,
    ) -> Stream[ChatCompletionChunk]: ...

    def chat(
        self,
        agent: str,
        messages: Iterable[ChatCompletionMessageParam],
        *,
        adapter: str | None = None,
        clock: float | None = None,
        next_call: float | None = None,
        model: str | None = None,
        stream: bool = False,
        **kwargs: Any,
    ) -> ChatCompletion | Stream[ChatCompletionChunk]:
        """One chat completion as ``agent``, with ScaleSim metadata.

        Args:
            agent: the calling agent's id.
            messages: the OpenAI chat messages.
            adapter: a LoRA adapter to run (model ``base:adapter``), or None for the base.
            clock: the simulation's time now, in its own unit.
            next_call: this agent's next expected call after this one, absolute, same unit.
            model: the base model name for this call (default: the client's).
            stream: stream the reply (returns openai's ``Stream``).
            kwargs: any other ``chat.completions.create`` argument (``max_tokens``,
                ``temperature``, ``extra_body``: merged with the metadata, ...).

        Raises:
            ScaleSimValidationError: metadata the server would refuse; nothing is sent.
            openai.APIError: what the openai client raises for a failed call.
        """
        request = self._chat_request(
            agent, adapter=adapter, clock=clock, next_call=next_call, kwargs=kwargs
        )
        base_model = model or self._model or self._discover_model()
        return self.openai.chat.completions.create(
            model=model_name(base_model, adapter), messages=messages, stream=stream, **request
        )

    def _discover_model(self) -> str:
        return self._remember_model(list(self.openai.models.list()))

    # ---- control calls ----------------------------------------------------------------------
    def tick(
        self,
        clock: float,
        next_call: Mapping[str, float | None],
        *,
        unknown: Iterable[str] = (),
        namespace: str | None = None,
        version: int | None = None,
    ) -> TickReply:
        """One ``POST /scalesim/v1/distances``: the namespace's clock and agents' next calls.

        Args:
            clock: the simulation's time now (never less than the namespace's last clock).
            next_call: agent -> absolute next expected call time (>= clock), None: no call
                expected.
            unknown: agents whose prediction is withdrawn (ranked by recency again).
            namespace: default the client's.
            version: default the next one allocated (see ``scalesim.client.versions``); pass
                an earlier one to re-send an update whose outcome you did not learn.

        Returns:
            The server's reply; ``delivery`` is ``ALREADY_APPLIED`` when a re-sent version
            had been applied already (see ``scalesim.client.plans``).

        Raises:
            ScaleSimValidationError: the update breaks a rule; nothing is sent.
            ScaleSimConflictError: 409, the server holds a newer version or clock.
            ScaleSimHTTPError: any other error status (5xx once the retries are spent).
            ScaleSimConnectionError: no answer after every retry.
        """
        target = self.namespace if namespace is None else check_namespace(namespace)
        with self._tick_lock(target):
            update = self._update(
                clock=clock, next_call=next_call, unknown=unknown, namespace=target, version=version
            )
            return self._drive(tick_plan(update, versions=self.versions, policy=self.retry))

    def state(self, namespace: str | None = None) -> StateSnapshot:
        """``GET /scalesim/v1/state``: server-wide, or of ``namespace`` (404 if unknown)."""
        target = None if namespace is None else check_namespace(namespace)
        return self._drive(state_plan(target, policy=self.retry))

    def drop_namespace(self, namespace: str | None = None) -> DropReply:
        """``DELETE /scalesim/v1/namespaces/{ns}`` (default the client's namespace)."""
        target = self.namespace if namespace is None else check_namespace(namespace)
        with self._tick_lock(target):
            return self._drive(drop_plan(target, versions=self.versions, policy=self.retry))

    def declare_adapters(
        self, adapters: Mapping[str, str | None], *, namespace: str | None = None
    ) -> int:
        """``POST /scalesim/v1/adapters``: which LoRA adapter each agent uses (None: none),
        before their first calls; the server ranks adapter slots by these agents' distances.

        Args:
            adapters: agent -> adapter name as the server knows it (``--lora-paths``).
            namespace: default the client's.

        Returns:
            How many agents were declared.

        Raises:
            ScaleSimValidationError: a bad id or adapter name; nothing is sent.
            ScaleSimHTTPError: 503 on a server without adapters or ScaleSim's LoRA policy.
        """
        target = self.namespace if namespace is None else check_namespace(namespace)
        declaration = adapter_declaration(adapters, namespace=target)
        return self._drive(adapters_plan(declaration, policy=self.retry))

    # ---- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Close both HTTP clients."""
        self._http.close()
        self.openai.close()

    def __enter__(self) -> ScaleSim:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- plan driver ------------------------------------------------------------------------
    def _drive(self, plan: Plan[_T]) -> _T:
        """Run a plan: perform each HTTP call, sleep each backoff, return its result."""
        try:
            step = next(plan)
            while True:
                if isinstance(step, Backoff):
                    time.sleep(step.seconds)
                    step = plan.send(None)
                else:
                    step = plan.send(self._perform(step))
        except StopIteration as done:
            result: _T = done.value
            return result

    def _perform(self, call: HttpCall) -> Outcome:
        """One control call: to the server, or to every worker behind a router (combined)."""
        if self.cluster.is_router is False:
            return self._send(call)
        urls = self.cluster.targets(self._send(HttpCall("GET", WORKERS_PATH)))
        if urls is None:
            return self._send(call)
        outcomes = [self._send(call, root=url) for url in urls]
        return self.cluster.combine(call.method, urls, outcomes)

    def _send(self, call: HttpCall, *, root: str | None = None) -> Outcome:
        target = call.path if root is None else f"{root}{call.path}"
        try:
            return self._http.request(call.method, target, json=call.json, params=call.params)
        except httpx.TransportError as err:
            return err

    def _tick_lock(self, namespace: str) -> threading.Lock:
        with self._locks_guard:
            return self._tick_locks.setdefault(namespace, threading.Lock())
