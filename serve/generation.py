"""OpenAI-style completion on top of a token-level rollout backend: stop strings, chunks, streams.

A ``RolloutBackend`` (``k15ray.types``) maps token ids to token ids and knows only stop TOKENS. The
OpenAI API adds stop STRINGS, streaming and ``n`` choices; this module adds them, with no Ray in it,
so the Serve deployment and the in-process baseline of ``bench/serve_load.py`` share it.

* A choice is generated in chunks, each a continuation of prompt + tokens so far (the backends
  reproduce an uninterrupted generation that way, as partial rollouts rely on): of
  ``chunk_tokens`` new tokens when it is streamed or has stop strings, else of
  ``batch_chunk_tokens`` (0 = in one backend call). Between chunks, concurrent choices join and
  leave the deployment's batches (iteration-level batching at chunk granularity, for backends
  without continuous batching).
* After each chunk the text so far is decoded; the earliest stop string cuts it and ends the
  choice (``finish_reason = "stop"``, the stop string itself is not returned, as in OpenAI's API).
* A stream never emits text that could still turn out to begin a stop string, nor a trailing
  replacement character of a half-decoded multi-byte sequence.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from k15ray.types import GenerationRequest, GenerationResult, SamplingParams

OpenAIFinish = Literal["stop", "length"]
GenerateOne = Callable[[GenerationRequest, SamplingParams], Awaitable[GenerationResult]]
"""Generate for one request (the Serve deployment batches these calls into backend calls)."""


@dataclass(frozen=True)
class ChoiceSpec:
    """One choice to generate: ``max_tokens`` new tokens at most after ``prompt_ids``."""

    choice_id: str
    prompt_ids: tuple[int, ...]
    max_tokens: int
    params: SamplingParams
    stop: tuple[str, ...] = ()
    images: tuple[Any, ...] = field(default=(), compare=False)
    """The prompt's images (``GenerationRequest.images``), sent again with every chunk."""


@dataclass(frozen=True)
class Delta:
    """New text of one choice; ``finish_reason`` is set on the choice's last delta."""

    text: str
    finish_reason: OpenAIFinish | None
    completion_tokens: int


def find_stop(text: str, stops: Sequence[str]) -> int | None:
    """Index where the earliest stop string starts in ``text``, or None.

    >>> find_stop("12 + 3 = 15\\nDone", ["\\n", "="])
    5
    """
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None


def emittable_length(text: str, stops: Sequence[str]) -> int:
    """How much of an UNFINISHED choice's ``text`` a stream may send now: all of it but a suffix
    that is a proper prefix of some stop string (it could still become one), and but a trailing
    U+FFFD (an incomplete multi-byte character).

    >>> emittable_length("answer: 4", ["###"])
    9
    >>> emittable_length("answer: 4\\n#", ["\\n##"])
    9
    """
    held = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), held, -1):
            if text.endswith(stop[:k]):
                held = k
                break
    end = len(text) - held
    while end > 0 and text[end - 1] == "\ufffd":
        end -= 1
    return end


class CompletionEngine:
    """Turns ``ChoiceSpec``s into text deltas, driving ``generate_one``.

    Args:
        generate_one: async generation of one ``GenerationRequest``.
        decode: token ids -> text (the tokenizer's ``decode``).
        stop_token_ids: ids that end a choice (removed from its text).
        chunk_tokens: new tokens per backend call when streaming or watching stop strings.
        batch_chunk_tokens: new tokens per backend call for other choices; 0 = the whole choice.
    """

    def __init__(
        self,
        generate_one: GenerateOne,
        decode: Callable[[list[int]], str],
        stop_token_ids: Sequence[int],
        chunk_tokens: int = 8,
        batch_chunk_tokens: int = 0,
    ) -> None:
        if chunk_tokens < 1:
            raise ValueError(f"chunk_tokens must be >= 1, got {chunk_tokens}")
        self.generate_one = generate_one
        self.decode = decode
        self.stop_token_ids = frozenset(stop_token_ids)
        if batch_chunk_tokens < 0:
            raise ValueError(f"batch_chunk_tokens must be >= 0, got {batch_chunk_tokens}")
        self.chunk_tokens = chunk_tokens
        self.batch_chunk_tokens = batch_chunk_tokens

    def _text(self, tokens: list[int]) -> str:
        if tokens and tokens[-1] in self.stop_token_ids:
            tokens = tokens[:-1]  # the stop token ends the choice; it is not part of its text
        return self.decode(tokens)

    async def deltas(self, spec: ChoiceSpec, stream: bool) -> AsyncIterator[Delta]:
        """Yield the text of one choice as it is generated; the last delta carries the finish."""
        watched = stream or bool(spec.stop)
        step = self.chunk_tokens if watched else (self.batch_chunk_tokens or spec.max_tokens)
        tokens: list[int] = []
        emitted = 0
        while True:
            remaining = spec.max_tokens - len(tokens)
            request = GenerationRequest(
                request_id=f"{spec.choice_id}-{len(tokens)}",  # a fresh seeded stream per chunk
                token_ids=spec.prompt_ids + tuple(tokens),
                max_new_tokens=min(step, remaining),
                images=spec.images,
            )
            result = await self.generate_one(request, spec.params)
            tokens.extend(result.token_ids)
            finish: OpenAIFinish | None = None
            if result.finish_reason in ("stop", "repeat"):
                finish = "stop"
            elif len(tokens) >= spec.max_tokens or not result.token_ids:
                finish = "length"
            text = self._text(tokens)
            cut = find_stop(text, spec.stop)
            if cut is not None:
                text, finish = text[:cut], "stop"
            end = len(text) if finish else emittable_length(text, spec.stop)
            if finish or (stream and end > emitted):
                yield Delta(text[emitted:end], finish, len(tokens))
                emitted = end
            if finish:
                return

    async def complete(self, spec: ChoiceSpec) -> Delta:
        """The whole text of one choice (one ``Delta``)."""
        parts: list[str] = []
        last = Delta("", "length", 0)
        async for delta in self.deltas(spec, stream=False):
            parts.append(delta.text)
            last = delta
        return Delta("".join(parts), last.finish_reason, last.completion_tokens)

    async def complete_all(self, specs: Sequence[ChoiceSpec]) -> list[Delta]:
        """Every choice concurrently (so the deployment can batch them), in order."""
        return list(await asyncio.gather(*(self.complete(s) for s in specs)))

    async def stream_all(self, specs: Sequence[ChoiceSpec]) -> AsyncIterator[tuple[int, Delta]]:
        """Interleave the deltas of every choice as they come: ``(choice index, delta)``."""
        queue: asyncio.Queue[tuple[int, Delta | BaseException | None]] = asyncio.Queue()

        async def pump(index: int, spec: ChoiceSpec) -> None:
            try:
                async for delta in self.deltas(spec, stream=True):
                    await queue.put((index, delta))
            except BaseException as err:  # surfaced to the consumer below
                await queue.put((index, err))
            finally:
                await queue.put((index, None))

        tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(specs)]
        try:
            running = len(tasks)
            while running:
                index, item = await queue.get()
                if item is None:
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield index, item
        finally:
            for task in tasks:
                task.cancel()


def batch_key(params: SamplingParams) -> tuple[Any, ...]:
    """Requests with equal keys can share one backend call (``generate`` takes one params)."""
    return (params.temperature, params.top_p, params.stop_token_ids, params.seed, params.detect_repeats)
