"""``AsyncScaleSim``: :class:`~scalesim.client.ScaleSim` with ``await`` (api.md section 3).

Who calls it: asyncio simulations and the benchmark harness, which keep many agents' calls in
flight at once. Same arguments, same checks, same plans (``scalesim.client.plans``) and hence
the same retry and version semantics as the blocking client; only the I/O differs
(``openai.AsyncOpenAI``, ``httpx.AsyncClient``, ``asyncio.sleep``). Ticks of one namespace are
serialised by an ``asyncio.Lock``, so their versions reach the server in allocation order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar, overload

import httpx
import openai
from openai import AsyncStream
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam

from .base import NO_API_KEY, ClientBase
from .cluster import WORKERS_PATH
from .plans import adapters_plan, drop_plan, state_plan, tick_plan
from .records import DropReply, StateSnapshot, TickReply
from .retry import Backoff, HttpCall, Outcome, Plan
from .wire import adapter_declaration, check_namespace, model_name

_T = TypeVar("_T")


class AsyncScaleSim(ClientBase):
    """Chat as an agent and push invocation distances, with ``await``.

    Constructor arguments as :class:`~scalesim.client.ScaleSim`. Use it as an async context
    manager, or await :meth:`aclose`; create it inside the event loop that uses it.
    """

    #: The underlying openai client, for any other OpenAI-compatible call.
    openai: openai.AsyncOpenAI

    def _connect(self) -> None:
        self.openai = openai.AsyncOpenAI(
            base_url=self.openai_base_url,
            api_key=self._api_key or NO_API_KEY,
            max_retries=self.retry.attempts - 1,
        )
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=self._control_headers, timeout=self.retry.timeout_s
        )
        self._tick_locks: dict[str, asyncio.Lock] = {}

    # ---- LLM calls --------------------------------------------------------------------------
    @overload
    async def chat(
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
    async def chat(
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
    ) -> AsyncStream[ChatCompletionChunk]: ...

    async def chat(
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
    ) -> ChatCompletion | AsyncStream[ChatCompletionChunk]:
        """One chat completion as ``agent``; arguments as :meth:`ScaleSim.chat`."""
        request = self._chat_request(
            agent, adapter=adapter, clock=clock, next_call=next_call, kwargs=kwargs
        )
        base_model = model or self._model or await self._discover_model()
        return await self.openai.chat.completions.create(
            model=model_name(base_model, adapter), messages=messages, stream=stream, **request
        )

    async def _discover_model(self) -> str:
        return self._remember_model([card async for card in self.openai.models.list()])

    # ---- control calls ----------------------------------------------------------------------
    async def tick(
        self,
        clock: float,
        next_call: Mapping[str, float | None],
        *,
        unknown: Iterable[str] = (),
        namespace: str | None = None,
        version: int | None = None,
    ) -> TickReply:
        """One ``POST /scalesim/v1/distances``; arguments and errors as :meth:`ScaleSim.tick`."""
        target = self.namespace if namespace is None else check_namespace(namespace)
        async with self._tick_lock(target):
            update = self._update(
                clock=clock, next_call=next_call, unknown=unknown, namespace=target, version=version
            )
            return await self._drive(tick_plan(update, versions=self.versions, policy=self.retry))

    async def state(self, namespace: str | None = None) -> StateSnapshot:
        """``GET /scalesim/v1/state``: server-wide, or of ``namespace`` (404 if unknown)."""
        target = None if namespace is None else check_namespace(namespace)
        return await self._drive(state_plan(target, policy=self.retry))

    async def drop_namespace(self, namespace: str | None = None) -> DropReply:
        """``DELETE /scalesim/v1/namespaces/{ns}`` (default the client's namespace)."""
        target = self.namespace if namespace is None else check_namespace(namespace)
        async with self._tick_lock(target):
            plan = drop_plan(target, versions=self.versions, policy=self.retry)
            return await self._drive(plan)

    async def declare_adapters(
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
        return await self._drive(adapters_plan(declaration, policy=self.retry))

    # ---- lifecycle --------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close both HTTP clients."""
        await self._http.aclose()
        await self.openai.close()

    async def __aenter__(self) -> AsyncScaleSim:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ---- plan driver ------------------------------------------------------------------------
    async def _drive(self, plan: Plan[_T]) -> _T:
        """Run a plan: perform each HTTP call, await each backoff, return its result."""
        try:
            step = next(plan)
            while True:
                if isinstance(step, Backoff):
                    await asyncio.sleep(step.seconds)
                    step = plan.send(None)
                else:
                    step = plan.send(await self._perform(step))
        except StopIteration as done:
            result: _T = done.value
            return result

    async def _perform(self, call: HttpCall) -> Outcome:
        """One control call: to the server, or to every worker behind a router (combined)."""
        if self.cluster.is_router is False:
            return await self._send(call)
        urls = self.cluster.targets(await self._send(HttpCall("GET", WORKERS_PATH)))
        if urls is None:
            return await self._send(call)
        outcomes = await asyncio.gather(*(self._send(call, root=url) for url in urls))
        return self.cluster.combine(call.method, urls, outcomes)

    async def _send(self, call: HttpCall, *, root: str | None = None) -> Outcome:
        target = call.path if root is None else f"{root}{call.path}"
        try:
            return await self._http.request(call.method, target, json=call.json, params=call.params)
        except httpx.TransportError as err:
            return err

    def _tick_lock(self, namespace: str) -> asyncio.Lock:
        return self._tick_locks.setdefault(namespace, asyncio.Lock())
