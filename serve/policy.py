"""The policy application: an OpenAI-compatible API over a trained checkpoint (docs/serve.md).

Routes (FastAPI ingress): ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions``
with ``n``, ``max_tokens``, ``temperature`` (0 = greedy), ``top_p``, ``stop``, ``seed`` and
``stream`` (server-sent events ``data: {...}\\n\\n`` ending with ``data: [DONE]\\n\\n``).
Chat messages may hold OpenAI content parts, images as base64 data URLs
(``k15ray.serve.content_parts``), for a vision-language policy; every chunk of every choice
carries the images again (``GenerationRequest.images``).

Batching, two ways:

* a backend with its own continuous batching (``AsyncBackend``: vLLM's async engine, GPU) gets every
  choice of every concurrent request as its own engine request, as it arrives;
* any other backend (``hf``): every choice becomes ``GenerationRequest``s, one per chunk
  (``batch_chunk_tokens``, or ``stream_chunk_tokens`` for streams and stop strings; see
  ``k15ray.serve.generation``), that a ``StepBatcher`` (``k15ray.serve.batcher``; it says why not ``@serve.batch``) gathers into
  one ``backend.generate`` call at a time, split by equal sampling parameters, run in a worker
  thread so the event loop keeps streaming. Each call takes every chunk waiting when it starts: a
  request that arrives while others generate joins them at the next chunk.

This deployment is a thin adapter: prompt encoding lives in ``policy_model``, stop strings and
streams in ``generation``, the HTTP edge in ``http``.

No ``from __future__ import annotations`` in this module: through ``@serve.ingress`` FastAPI
must see the request models as real types, or it takes them for query parameters.
"""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from ray import serve

from k15ray.config.serve import PolicyServeConfig
from k15ray.serve.batcher import StepBatcher
from k15ray.serve.content_parts import image_part_locations, read_chat
from k15ray.serve.generation import ChoiceSpec, CompletionEngine, Delta, batch_key
from k15ray.serve.http import ApiError, install_edge
from k15ray.serve.policy_model import AsyncBackend, ServedPolicy, load_served_policy
from k15ray.serve.schemas import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessage,
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    DeltaMessage,
    ModelCard,
    ModelList,
    Usage,
)
from k15ray.types import GenerationRequest, GenerationResult, SamplingParams

app = install_edge(FastAPI(title="k15ray policy (OpenAI-compatible)"))

POLICY_DEPLOYMENT = "Policy"


def sse(payload: BaseModel | str) -> str:
    """One server-sent event: ``data: <json>`` and a blank line."""
    data = payload if isinstance(payload, str) else payload.model_dump_json()
    return f"data: {data}\n\n"


def _usage(prompt_tokens: int, deltas: Sequence[Delta]) -> Usage:
    completion = sum(d.completion_tokens for d in deltas)
    return Usage(
        prompt_tokens=prompt_tokens, completion_tokens=completion,
        total_tokens=prompt_tokens + completion,
    )


def _error_event(err: Exception) -> str:
    return sse(json.dumps({"error": {"message": str(err), "type": "server_error"}}))


@serve.deployment(name=POLICY_DEPLOYMENT)
@serve.ingress(app)
class PolicyDeployment:
    """Serves one checkpoint; see the module docstring."""

    def __init__(self, config: PolicyServeConfig, max_body_bytes: int) -> None:
        app.state.max_body_bytes = max_body_bytes
        self.config = config
        self.policy: ServedPolicy = load_served_policy(config)
        backend = self.policy.backend
        continuous = isinstance(backend, AsyncBackend)  # it batches by itself: no batcher, no chunks
        self.engine = CompletionEngine(
            backend.agenerate if isinstance(backend, AsyncBackend) else self._generate_one,
            self.policy.decode, self.policy.stop_token_ids,
            chunk_tokens=config.stream_chunk_tokens,
            batch_chunk_tokens=0 if continuous else config.batch_chunk_tokens,
        )
        self.batcher: StepBatcher[tuple[GenerationRequest, SamplingParams], GenerationResult] = StepBatcher(
            self._generate_batch, config.max_batch_size, config.batch_wait_timeout_s
        )
        self.created = int(time.time())
        self.vocab_size = len(self.policy.tokenizer)

    # ------------------------------------------------------------------------ step batching

    async def _generate_batch(
        self, items: list[tuple[GenerationRequest, SamplingParams]]
    ) -> list[GenerationResult]:
        """One backend call per group of equal sampling parameters, in a worker thread."""
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, (_, params) in enumerate(items):
            groups.setdefault(batch_key(params), []).append(i)
        results: dict[int, GenerationResult] = {}
        for indices in groups.values():
            requests = [items[i][0] for i in indices]
            params = items[indices[0]][1]
            out = await asyncio.to_thread(self.policy.backend.generate, requests, params)  # type: ignore[union-attr]
            results.update(zip(indices, out, strict=True))
        return [results[i] for i in range(len(items))]

    def __del__(self) -> None:  # Serve calls it when the replica stops: free the GPU now
        shutdown = getattr(getattr(self, "policy", None) and self.policy.backend, "shutdown", None)
        if callable(shutdown):
            shutdown()

    def batch_stats(self) -> dict[str, int]:
        """Handle method: backend calls of the step batcher so far and the sequences in them
        (their ratio is the mean batch size; both stay 0 with a continuously batching backend)."""
        return {"batches": self.batcher.batches, "sequences": self.batcher.items}

    async def _generate_one(
        self, request: GenerationRequest, params: SamplingParams
    ) -> GenerationResult:
        return await self.batcher.submit((request, params))

    # ------------------------------------------------------------------------------ routes

    @app.get("/v1/models")
    async def models(self) -> ModelList:
        return ModelList(data=[ModelCard(id=self.policy.name, created=self.created)])

    @app.post("/v1/completions", response_model=None)
    async def completions(self, body: CompletionRequest) -> CompletionResponse | StreamingResponse:
        self._check_common(body)
        if body.echo:
            raise ApiError(400, "echo is not supported; leave it false", param="echo")
        prompts = self._completion_prompts(body.prompt)
        specs = self._specs(body, prompts)
        rid, model = f"cmpl-{uuid.uuid4().hex}", self.policy.name
        prompt_tokens = sum(len(p) for p in prompts)
        if body.stream:
            usage = bool(body.stream_options and body.stream_options.include_usage)
            events = self._completion_events(rid, model, specs, prompt_tokens, usage)
            return StreamingResponse(events, media_type="text/event-stream")
        deltas = await self._complete(specs)
        choices = [
            CompletionChoice(index=i, text=d.text, finish_reason=d.finish_reason)
            for i, d in enumerate(deltas)
        ]
        return CompletionResponse(
            id=rid, created=int(time.time()), model=model, choices=choices,
            usage=_usage(prompt_tokens, deltas),
        )

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(
        self, body: ChatCompletionRequest
    ) -> ChatCompletionResponse | StreamingResponse:
        self._check_common(body)
        prompt, images = self._chat_prompt(body.messages)
        specs = self._specs(body, [prompt], images)
        rid, model = f"chatcmpl-{uuid.uuid4().hex}", self.policy.name
        if body.stream:
            usage = bool(body.stream_options and body.stream_options.include_usage)
            events = self._chat_events(rid, model, specs, len(prompt), usage)
            return StreamingResponse(events, media_type="text/event-stream")
        deltas = await self._complete(specs)
        choices = [
            ChatChoice(index=i, message=AssistantMessage(content=d.text), finish_reason=d.finish_reason)
            for i, d in enumerate(deltas)
        ]
        return ChatCompletionResponse(
            id=rid, created=int(time.time()), model=model, choices=choices,
            usage=_usage(len(prompt), deltas),
        )

    # ------------------------------------------------------------------------- validation

    def _check_common(self, body: CompletionRequest | ChatCompletionRequest) -> None:
        if body.model != self.policy.name:
            raise ApiError(
                404, f"the model {body.model!r} does not exist; this server has {[self.policy.name]}",
                param="model", code="model_not_found",
            )
        if body.n > self.config.max_n:
            raise ApiError(400, f"n={body.n} exceeds the limit {self.config.max_n}", param="n")
        max_tokens = body.max_tokens or self.config.default_max_tokens
        if max_tokens > self.config.max_tokens_limit:
            raise ApiError(
                400, f"max_tokens={max_tokens} exceeds the limit {self.config.max_tokens_limit}",
                param="max_tokens",
            )

    def _chat_prompt(self, messages: Sequence[ChatMessage]) -> tuple[list[int], tuple[Any, ...]]:
        """Token ids and images of a conversation; a 400 naming the part for any bad content part,
        before anything is generated."""
        dumped = [m.model_dump(exclude_none=True) for m in messages]
        try:
            located = image_part_locations(dumped)
            if located and not self.policy.sees_images:
                raise ApiError(
                    400, f"{located[0]} is an image, but the model {self.policy.name!r} is a text-only "
                    "policy; send text only, or serve a vision-language policy (a LLaVA-style directory)",
                    param="messages",
                )
            chat = read_chat(dumped)
            return self.policy.encode_chat(chat.messages, chat.images), chat.images
        except ValueError as err:
            raise ApiError(400, str(err), param="messages") from err

    def _completion_prompts(self, prompt: str | list[str] | list[int]) -> list[list[int]]:
        if isinstance(prompt, str):
            texts = [prompt]
        elif all(isinstance(p, int) for p in prompt):
            bad = [t for t in prompt if not 0 <= int(t) < self.vocab_size]
            if bad:
                raise ApiError(
                    400, f"token ids {bad[:5]} are outside 0..{self.vocab_size - 1}", param="prompt"
                )
            return [[int(t) for t in prompt]]
        else:
            texts = [str(p) for p in prompt]
        encoded = [self.policy.encode_text(t) for t in texts]
        if any(not ids for ids in encoded):
            raise ApiError(400, "prompt is empty; send at least one character", param="prompt")
        return encoded

    def _specs(
        self, body: CompletionRequest | ChatCompletionRequest, prompts: Sequence[Sequence[int]],
        images: tuple[Any, ...] = (),
    ) -> list[ChoiceSpec]:
        """One ``ChoiceSpec`` per prompt and choice; ``images`` (a chat's, one prompt) go with each."""
        max_tokens = body.max_tokens or self.config.default_max_tokens
        limit = self.policy.max_model_len
        for ids in prompts:
            if limit is not None and len(ids) + max_tokens > limit:
                raise ApiError(
                    400, f"prompt ({len(ids)} tokens) + max_tokens ({max_tokens}) exceeds the "
                    f"model's context length {limit}; shorten the prompt or lower max_tokens",
                    param="max_tokens",
                )
        params = SamplingParams(
            temperature=body.temperature, top_p=body.top_p, stop_token_ids=self.policy.stop_token_ids,
            seed=body.seed, detect_repeats=self.config.detect_repeats,
        )
        base = uuid.uuid4().hex if body.seed is None else f"seed{body.seed}"
        return [
            ChoiceSpec(f"{base}-{p}-{j}", tuple(ids), max_tokens, params, body.stop_strings(), images)
            for p, ids in enumerate(prompts)
            for j in range(body.n)
        ]

    async def _complete(self, specs: Sequence[ChoiceSpec]) -> list[Delta]:
        try:
            return await self.engine.complete_all(specs)
        except ValueError as err:
            raise ApiError(400, str(err)) from err

    # -------------------------------------------------------------------------- streaming

    async def _completion_events(
        self, rid: str, model: str, specs: Sequence[ChoiceSpec], prompt_tokens: int,
        include_usage: bool,
    ) -> AsyncIterator[str]:
        created, finals = int(time.time()), []

        def chunk(choices: list[CompletionChoice], usage: Usage | None = None) -> str:
            return sse(CompletionResponse(
                id=rid, created=created, model=model, choices=choices, usage=usage
            ))

        try:
            async for index, delta in self.engine.stream_all(specs):
                yield chunk([CompletionChoice(
                    index=index, text=delta.text, finish_reason=delta.finish_reason
                )])
                finals += [delta] if delta.finish_reason else []
            if include_usage:
                yield chunk([], _usage(prompt_tokens, finals))
        except Exception as err:  # the status line is sent already: report in the stream
            yield _error_event(err)
        yield sse("[DONE]")

    async def _chat_events(
        self, rid: str, model: str, specs: Sequence[ChoiceSpec], prompt_tokens: int,
        include_usage: bool,
    ) -> AsyncIterator[str]:
        created, finals = int(time.time()), []

        def chunk(choices: list[ChatChunkChoice], usage: Usage | None = None) -> str:
            return sse(ChatCompletionChunk(
                id=rid, created=created, model=model, choices=choices, usage=usage
            ))

        try:
            for i in range(len(specs)):  # OpenAI opens every choice with the assistant's role
                yield chunk([ChatChunkChoice(index=i, delta=DeltaMessage(role="assistant", content=""))])
            async for index, delta in self.engine.stream_all(specs):
                message = DeltaMessage(content=delta.text)
                yield chunk([ChatChunkChoice(
                    index=index, delta=message, finish_reason=delta.finish_reason
                )])
                finals += [delta] if delta.finish_reason else []
            if include_usage:
                yield chunk([], _usage(prompt_tokens, finals))
        except Exception as err:  # the status line is sent already: report in the stream
            yield _error_event(err)
        yield sse("[DONE]")
