"""Benchmark ``serve_load``: bounded HTTP load on the served math reward and policy (docs/serve.md).

Starts Ray Serve on 127.0.0.1 (a free port) with the policy application (the built-in tiny model,
random weights, built in a temporary directory) and the math reward, then sends

* ``MATH_REQUESTS`` = 500 single-item ``POST /v1/rewards/math`` at concurrency 16 (half settled by
  the fast path, half needing math-verify: ``\\frac{i}{4}`` against ``i/4`` as a decimal), and
* ``POLICY_REQUESTS`` = 100 ``POST /v1/completions`` (max_tokens 8, temperature 1) at concurrency 16,

and makes the same calls in-process as the baseline: ``math_reward`` from 16 threads, and
``HFBackend.generate`` one request at a time (plus, as an extra figure, all 100 in one batch).

value = served math throughput (req/s); baseline = in-process math throughput (req/s);
ratio = value / baseline. Extra keys: p50/p99 latency (ms) and throughput of every variant.
Run: ``python bench/run.py serve_load``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

MATH_REQUESTS = 500
POLICY_REQUESTS = 100
CONCURRENCY = 16
MAX_TOKENS = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (seconds) in milliseconds."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return round(1000 * ordered[rank], 2)


def _summary(prefix: str, latencies: list[float], wall_s: float) -> dict[str, float]:
    return {
        f"{prefix}_rps": round(len(latencies) / wall_s, 2),
        f"{prefix}_p50_ms": _percentile(latencies, 50),
        f"{prefix}_p99_ms": _percentile(latencies, 99),
        f"{prefix}_mean_ms": round(1000 * statistics.fmean(latencies), 2),
    }


def math_items(n: int) -> list[tuple[str, str]]:
    """(response, reference) pairs; odd i need math-verify (a fraction against a decimal)."""
    return [
        (f"so \\boxed{{{i}}}", str(i)) if i % 2 == 0 else (f"\\boxed{{\\frac{{{i}}}{{4}}}}", str(i / 4))
        for i in range(n)
    ]


async def _load(n: int, concurrency: int, call: Callable[[int], Awaitable[None]]) -> tuple[list[float], float]:
    """Run ``call(i)`` for i < n with at most ``concurrency`` in flight: latencies, wall time."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(i: int) -> None:
        async with gate:
            start = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return latencies, time.perf_counter() - start


async def _served(base_url: str, model: str) -> dict[str, Any]:
    import httpx

    items = math_items(MATH_REQUESTS)
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as http:
        async def math(i: int) -> None:
            r = await http.post("/v1/rewards/math", json={"response": items[i][0], "reference": items[i][1]})
            assert r.status_code == 200 and r.json()["correct"], r.text

        async def policy(i: int) -> None:
            body = {"model": model, "prompt": f"{i}+{i + 7}=", "max_tokens": MAX_TOKENS, "temperature": 1.0}
            r = await http.post("/v1/completions", json=body)
            assert r.status_code == 200, r.text

        await _load(2 * CONCURRENCY, CONCURRENCY, math)  # warm-up
        await _load(CONCURRENCY, CONCURRENCY, policy)
        math_lat, math_wall = await _load(MATH_REQUESTS, CONCURRENCY, math)
        pol_lat, pol_wall = await _load(POLICY_REQUESTS, CONCURRENCY, policy)
    return {**_summary("math_served", math_lat, math_wall), **_summary("policy_served", pol_lat, pol_wall)}


def _in_process(model_dir: Path) -> dict[str, Any]:
    import torch

    from k15ray.rewards import math_reward
    from k15ray.rollout.hf import HFBackend
    from k15ray.types import GenerationRequest, Prompt, SamplingParams

    items = math_items(MATH_REQUESTS)

    def score(i: int) -> float:
        start = time.perf_counter()
        result = math_reward(Prompt(id=str(i), question="", answer=items[i][1]), items[i][0])
        assert result.correct, result
        return time.perf_counter() - start

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(score, range(2 * CONCURRENCY)))  # warm-up
        start = time.perf_counter()
        math_lat = list(pool.map(score, range(MATH_REQUESTS)))
        math_wall = time.perf_counter() - start

    torch.set_num_threads(1)  # as the served replica (policy.torch_threads = 1)
    backend = HFBackend.from_pretrained(model_dir)
    params = SamplingParams(temperature=1.0, detect_repeats=False)
    requests = [
        GenerationRequest(str(i), tuple(backend.tokenizer.encode(f"{i}+{i + 7}=")), MAX_TOKENS)
        for i in range(POLICY_REQUESTS)
    ]
    backend.generate(requests[:CONCURRENCY], params)  # warm-up
    pol_lat = []
    start = time.perf_counter()
    for request in requests:
        t = time.perf_counter()
        backend.generate([request], params)
        pol_lat.append(time.perf_counter() - t)
    pol_wall = time.perf_counter() - start
    t = time.perf_counter()
    backend.generate(requests, params)
    batched_wall = time.perf_counter() - t
    return {
        **_summary("math_inprocess", math_lat, math_wall),
        **_summary("policy_inprocess", pol_lat, pol_wall),
        "policy_inprocess_one_batch_rps": round(POLICY_REQUESTS / batched_wall, 2),
    }


def run() -> dict[str, Any]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray import serve

    from k15ray.config.serve import (
        PolicyServeConfig,
        RewardServeConfig,
        SandboxServeConfig,
        ServeConfig,
    )
    from k15ray.models import create_model
    from k15ray.serve.app import run_local

    work = Path(tempfile.mkdtemp(prefix="k15serve-"))
    model_dir = create_model("tiny", work / "tiny", seed=0)
    config = ServeConfig(
        host="127.0.0.1", port=_free_port(),
        policy=PolicyServeConfig(model_dir=str(model_dir), model_name="tiny", max_batch_size=16),
        rewards=RewardServeConfig(kinds=("math",), num_cpus=0.0, threads=CONCURRENCY),
        sandbox=SandboxServeConfig(enabled=False),
    )
    ray_tmp = tempfile.mkdtemp(prefix="k15b-", dir="/tmp")  # short: Ray's socket paths
    ray.init(num_cpus=max(2, os.cpu_count() or 2), include_dashboard=False, log_to_driver=False,
             _temp_dir=ray_tmp)
    try:
        try:
            run_local(config)
            served = asyncio.run(_served(f"http://127.0.0.1:{config.port}", "tiny"))
        finally:
            serve.shutdown()
            ray.shutdown()
            shutil.rmtree(ray_tmp, ignore_errors=True)
        baseline = _in_process(model_dir)  # with Serve and Ray gone: the machine to itself
    finally:
        shutil.rmtree(work, ignore_errors=True)
    value, base = served["math_served_rps"], baseline["math_inprocess_rps"]
    return {
        "value": value,
        "unit": "req/s (math reward over HTTP, concurrency 16)",
        "baseline": base,
        "ratio": round(value / base, 3),
        "math_requests": MATH_REQUESTS,
        "policy_requests": POLICY_REQUESTS,
        "concurrency": CONCURRENCY,
        "policy_max_tokens": MAX_TOKENS,
        **served,
        **baseline,
    }
