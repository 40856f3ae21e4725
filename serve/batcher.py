"""Step batching for a backend without continuous batching: one backend call at a time, each
taking everything that waits when it starts (no Ray in this module).

``StepBatcher(run_batch, max_batch_size, wait_s)``: ``await batcher.submit(item)`` queues ``item``;
one worker task calls ``run_batch(items)`` on up to ``max_batch_size`` queued items, and only
after that call has returned and its callers have had a turn of the event loop (so that a choice
generated in chunks queues its next chunk at once) does it take the next batch. When the backend
was idle it first waits ``wait_s`` for more arrivals.

Why not ``ray.serve.batch``: it forms the next batch ``batch_wait_timeout_s`` after that batch's
first item arrives, even while the previous batch still runs; with one batch at a time the formed
batch then waits, frozen, and the chunks of the running requests return too late to join it. At
concurrency 16 on the policy that gave batches of 2 to 3 sequences (docs/serve.md); here every
request in flight is in every call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class StepBatcher(Generic[T, R]):
    """Gathers concurrent ``submit`` calls into ``run_batch`` calls, one at a time.

    Args:
        run_batch: async, one result per item, in order.
        max_batch_size: most items in one call (the rest wait for the next).
        wait_s: after an idle period, how long to wait for more items before the first call.
    """

    def __init__(
        self,
        run_batch: Callable[[list[T]], Awaitable[Sequence[R]]],
        max_batch_size: int,
        wait_s: float,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if wait_s < 0:
            raise ValueError(f"wait_s must be >= 0, got {wait_s}")
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.wait_s = wait_s
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._arrived: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0
        self.items = 0

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait for its result (the exception of its batch, if it failed)."""
        loop = asyncio.get_running_loop()
        if self._arrived is None:
            self._arrived = asyncio.Event()
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._work())
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, future))
        self._arrived.set()
        return await future

    async def _work(self) -> None:
        assert self._arrived is not None
        idle = True
        while True:
            if not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
                idle = True
            if idle and self.wait_s > 0 and len(self._queue) < self.max_batch_size:
                await asyncio.sleep(self.wait_s)
            batch, self._queue = (
                self._queue[: self.max_batch_size],
                self._queue[self.max_batch_size :],
            )
            batch = [(item, future) for item, future in batch if not future.cancelled()]
            if batch:
                await self._run(batch)
            # let the callers resume: a chunked choice queues its next chunk before the next call
            for _ in range(2):
                await asyncio.sleep(0)
            idle = False

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = list(await self.run_batch([item for item, _ in batch]))
            if len(results) != len(batch):
                raise RuntimeError(
                    f"run_batch returned {len(results)} results for {len(batch)} items"
                )
        except Exception as err:  # every caller of this batch gets it; the worker keeps serving
            for _, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        self.batches += 1
        self.items += len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
