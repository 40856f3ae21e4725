"""``k15ray.serve.batcher.StepBatcher``: one call at a time, each taking everything that waits."""

from __future__ import annotations

import asyncio

import pytest

from k15ray.serve.batcher import StepBatcher


class Recorder:
    """A ``run_batch`` that records each call's items and takes ``step_s`` per call."""

    def __init__(self, step_s: float = 0.02, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.step_s = step_s
        self.fail_on = fail_on

    async def __call__(self, items: list[str]) -> list[str]:
        self.calls.append(list(items))
        await asyncio.sleep(self.step_s)
        if self.fail_on in items:
            raise RuntimeError(f"backend failed on {self.fail_on}")
        return [f"{x}!" for x in items]


def test_concurrent_submits_share_one_call() -> None:
    async def main() -> tuple[list[str], Recorder]:
        run = Recorder()
        batcher = StepBatcher(run, max_batch_size=16, wait_s=0.01)
        out = await asyncio.gather(*(batcher.submit(f"r{i}") for i in range(16)))
        return list(out), run

    out, run = asyncio.run(main())
    assert out == [f"r{i}!" for i in range(16)]  # each caller gets its own result, in order
    assert len(run.calls) == 1 and len(run.calls[0]) == 16


def test_max_batch_size_splits_the_queue() -> None:
    async def main() -> Recorder:
        run = Recorder()
        batcher = StepBatcher(run, max_batch_size=4, wait_s=0.01)
        await asyncio.gather(*(batcher.submit(f"r{i}") for i in range(10)))
        return run

    # 10 items, at most 4 a call -> 4 + 4 + 2
    assert [len(c) for c in asyncio.run(main()).calls] == [4, 4, 2]


def test_arrivals_during_a_call_join_the_running_requests_at_the_next_call() -> None:
    # A generates 3 chunks; B and C arrive while A's first chunk runs. Serve's @serve.batch would
    # freeze [B, C] into a batch of their own while A runs, and A's second chunk would follow
    # alone; here the second call takes A's next chunk together with B and C.
    async def main() -> Recorder:
        run = Recorder(step_s=0.05)
        batcher = StepBatcher(run, max_batch_size=16, wait_s=0.0)

        async def choice(name: str, chunks: int) -> None:
            for k in range(chunks):
                await batcher.submit(f"{name}{k}")

        async def late(name: str) -> None:
            await asyncio.sleep(0.02)
            await choice(name, 2)

        await asyncio.gather(choice("A", 3), late("B"), late("C"))
        return run

    calls = asyncio.run(main()).calls
    assert calls == [["A0"], ["B0", "C0", "A1"], ["B1", "C1", "A2"]], calls


def test_a_failed_call_fails_its_callers_and_the_batcher_keeps_serving() -> None:
    async def main() -> tuple[list[object], str]:
        run = Recorder(fail_on="bad")
        batcher = StepBatcher(run, max_batch_size=8, wait_s=0.01)
        first = await asyncio.gather(
            batcher.submit("ok"), batcher.submit("bad"), return_exceptions=True
        )
        return list(first), await batcher.submit("later")

    first, later = asyncio.run(main())
    assert all(isinstance(x, RuntimeError) and "bad" in str(x) for x in first), first
    assert later == "later!"


@pytest.mark.parametrize(("size", "wait"), [(0, 0.01), (4, -1.0)])
def test_bad_limits_are_refused(size: int, wait: float) -> None:
    with pytest.raises(ValueError, match="max_batch_size|wait_s"):
        StepBatcher(Recorder(), max_batch_size=size, wait_s=wait)
