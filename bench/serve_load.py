"""Benchmark ``serve_load``: bounded HTTP load on the served policy and math reward (docs/serve.md).

CPU mode (default). Starts Ray Serve on 127.0.0.1 (a free port) with the policy application (the
built-in tiny model, random weights, ``hf`` backend, step batching) and the math reward, then
sends, over HTTP:

* ``POLICY_REQUESTS`` = 100 ``POST /v1/completions`` (one prompt each, max_tokens 8, temperature 1)
  at concurrency 16, and ``LONG_REQUESTS`` = 48 more with max_tokens 64;
* math reward items (half settled by the fast path, half needing math-verify: ``\\frac{i}{4}``
  against ``i/4`` as a decimal): ``MATH_REQUESTS`` = 500 single-item requests at concurrency 16,
  and ``MATH_BATCH_ITEMS`` = 1,000 other items in requests of ``ITEMS_PER_REQUEST`` = 50 at
  concurrency 4 (the batch form the training loop uses);
* ``GET /v1/models`` at concurrency 16: the HTTP floor (Serve's proxy and the replica, no model).

Then, with Ray and Serve gone, the same work in-process as the baselines: ``HFBackend.generate``
over all the prompts as ONE batch (and in batches of 16, the most concurrency 16 can form), and
``math_reward`` from 16 threads over the same items.

value = served policy req/s (max_tokens 8); baseline = one in-process batch's req/s; ratio = value /
baseline. Beside it: ``policy_long_*`` (max_tokens 64), ``math_batched_*`` (items/s, ratio against
in-process), ``math_single_*``, p50/p99 latencies (ms), and the mean batch each served phase formed.

GPU mode (``K15_SERVE_LOAD=gpu``, one GPU with vLLM): the policy application on the ``vllm``
backend (vLLM's async engine, continuous batching) serving a Qwen2-0.5B-shaped model with random
weights (``bench/_gpu.py``) to ``GPU_REQUESTS`` = 256 completions of 128 prompt tokens and 256 new
tokens at concurrency ``GPU_CONCURRENCY`` = 64; baseline = raw offline ``vllm.LLM.generate`` of the
same prompts in batches of 64 (the same number in flight), same engine settings, after Serve is gone.
value = served tokens/s, baseline = raw tokens/s, ratio. Raw over all 256 at once is reported beside.

Run: ``python bench/run.py serve_load`` (GPU: ``K15_SERVE_LOAD=gpu python bench/run.py serve_load``).
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import shutil
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

POLICY_REQUESTS, LONG_REQUESTS = 100, 48
MAX_TOKENS, LONG_MAX_TOKENS = 8, 64
MATH_REQUESTS, MATH_BATCH_ITEMS, ITEMS_PER_REQUEST, BATCH_CONCURRENCY = 500, 1000, 50, 4
CONCURRENCY = 16
FLOOR_REQUESTS = 300
GPU_REQUESTS, GPU_CONCURRENCY, GPU_PROMPT_TOKENS, GPU_NEW_TOKENS = 256, 64, 128, 256
GPU_MEMORY = 0.6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (seconds) in milliseconds."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return round(1000 * ordered[rank], 2)


def _summary(
    prefix: str,
    latencies: list[float],
    wall_s: float,
    count: float | None = None,
    unit: str = "rps",
) -> dict[str, float]:
    """Throughput (``count`` things, default one per latency, over ``wall_s``) and latencies."""
    n = len(latencies) if count is None else count
    return {
        f"{prefix}_{unit}": round(n / wall_s, 2),
        f"{prefix}_p50_ms": _percentile(latencies, 50),
        f"{prefix}_p99_ms": _percentile(latencies, 99),
    }


def math_items(n: int, start: int = 0) -> list[tuple[str, str]]:
    """(response, reference) pairs; odd i need math-verify (a fraction against a decimal). Phases
    use disjoint ``start``s: ``math_reward`` caches verdicts."""
    return [
        (f"so \\boxed{{{i}}}", str(i))
        if i % 2 == 0
        else (f"\\boxed{{\\frac{{{i}}}{{4}}}}", str(i / 4))
        for i in range(start, start + n)
    ]


SINGLE_START, BATCH_START, WARM_START = 0, 100_000, 200_000


def policy_prompt(i: int) -> str:
    return f"{i}+{i + 7}="


async def _load(
    n: int, concurrency: int, call: Callable[[int], Awaitable[None]]
) -> tuple[list[float], float]:
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


def _batch_delta(before: dict[str, int], after: dict[str, int], key: str) -> float:
    """Mean ``key`` per batch between two ``batch_stats()`` readings."""
    batches = after["batches"] - before["batches"]
    return round((after[key] - before[key]) / batches, 2) if batches else 0.0


async def _served_cpu(base_url: str, model: str) -> dict[str, Any]:
    import httpx
    from ray import serve

    policy = serve.get_deployment_handle("Policy", "policy")
    rewards = serve.get_deployment_handle("Rewards", "rewards")
    single, batched = (
        math_items(MATH_REQUESTS, SINGLE_START),
        math_items(MATH_BATCH_ITEMS, BATCH_START),
    )
    warm = math_items(2 * CONCURRENCY, WARM_START)
    out: dict[str, Any] = {}
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, timeout=300, limits=limits) as http:

        async def models(i: int) -> None:
            r = await http.get("/v1/models")
            assert r.status_code == 200, r.text

        def completion(max_tokens: int) -> Callable[[int], Awaitable[None]]:
            async def call(i: int) -> None:
                body = {
                    "model": model,
                    "prompt": policy_prompt(i),
                    "max_tokens": max_tokens,
                    "temperature": 1.0,
                }
                r = await http.post("/v1/completions", json=body)
                assert r.status_code == 200, r.text

            return call

        async def math_one(items: list[tuple[str, str]], i: int) -> None:
            r = await http.post(
                "/v1/rewards/math", json={"response": items[i][0], "reference": items[i][1]}
            )
            assert r.status_code == 200 and r.json()["correct"], r.text

        async def math_batch(i: int) -> None:
            chunk = batched[i * ITEMS_PER_REQUEST : (i + 1) * ITEMS_PER_REQUEST]
            body = {"items": [{"response": resp, "reference": ref} for resp, ref in chunk]}
            r = await http.post("/v1/rewards/math", json=body)
            assert r.status_code == 200 and all(x["correct"] for x in r.json()["results"]), r.text

        await _load(len(warm), CONCURRENCY, lambda i: math_one(warm, i))  # warm-up
        await _load(CONCURRENCY, CONCURRENCY, completion(MAX_TOKENS))
        lat, wall = await _load(FLOOR_REQUESTS, CONCURRENCY, models)
        out.update(_summary("http_floor_get_models", lat, wall))
        for prefix, n, max_tokens in (
            ("policy", POLICY_REQUESTS, MAX_TOKENS),
            ("policy_long", LONG_REQUESTS, LONG_MAX_TOKENS),
        ):
            before = await policy.batch_stats.remote()
            lat, wall = await _load(n, CONCURRENCY, completion(max_tokens))
            after = await policy.batch_stats.remote()
            out.update(_summary(f"{prefix}_served", lat, wall))
            out[f"{prefix}_served_mean_batch"] = _batch_delta(before, after, "sequences")
        lat, wall = await _load(MATH_REQUESTS, CONCURRENCY, lambda i: math_one(single, i))
        out.update(_summary("math_single_served", lat, wall))
        before = await rewards.batch_stats.remote()
        n_requests = MATH_BATCH_ITEMS // ITEMS_PER_REQUEST
        lat, wall = await _load(n_requests, BATCH_CONCURRENCY, math_batch)
        after = await rewards.batch_stats.remote()
        out.update(
            _summary("math_batched_served", lat, wall, count=MATH_BATCH_ITEMS, unit="items_per_s")
        )
        out["math_batched_served_requests_per_pass"] = _batch_delta(before, after, "requests")
    return out


def _in_process_cpu(model_dir: Path) -> dict[str, Any]:
    import torch

    from k15ray.rewards import math_reward
    from k15ray.rollout.hf import HFBackend
    from k15ray.types import GenerationRequest, Prompt, SamplingParams

    out: dict[str, Any] = {}
    torch.set_num_threads(1)  # as the served replica (policy.torch_threads = 1)
    backend = HFBackend.from_pretrained(model_dir)
    params = SamplingParams(temperature=1.0, detect_repeats=False)
    for prefix, n, max_tokens in (
        ("policy", POLICY_REQUESTS, MAX_TOKENS),
        ("policy_long", LONG_REQUESTS, LONG_MAX_TOKENS),
    ):
        requests = [
            GenerationRequest(str(i), tuple(backend.tokenizer.encode(policy_prompt(i))), max_tokens)
            for i in range(n)
        ]
        backend.generate(requests[:CONCURRENCY], params)  # warm-up
        t = time.perf_counter()
        backend.generate(requests, params)
        out[f"{prefix}_inprocess_one_batch_rps"] = round(n / (time.perf_counter() - t), 2)
        t = time.perf_counter()
        for start in range(0, n, CONCURRENCY):
            backend.generate(requests[start : start + CONCURRENCY], params)
        out[f"{prefix}_inprocess_batches_of_16_rps"] = round(n / (time.perf_counter() - t), 2)

    def score(items: list[tuple[str, str]], i: int) -> float:
        start = time.perf_counter()
        result = math_reward(Prompt(id=str(i), question="", answer=items[i][1]), items[i][0])
        assert result.correct, result
        return time.perf_counter() - start

    warm = math_items(2 * CONCURRENCY, WARM_START)
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(lambda i: score(warm, i), range(len(warm))))
        for prefix, items in (
            ("math_single", math_items(MATH_REQUESTS, SINGLE_START)),
            ("math_batched", math_items(MATH_BATCH_ITEMS, BATCH_START)),
        ):
            t0 = time.perf_counter()
            lat = list(pool.map(functools.partial(score, items), range(len(items))))
            out.update(
                _summary(f"{prefix}_inprocess", lat, time.perf_counter() - t0, unit="items_per_s")
            )
    return out


@contextmanager
def _serve(config: Any, num_cpus: int) -> Iterator[None]:
    """Ray + Serve with ``config``'s applications; everything stopped on exit."""
    import ray
    from ray import serve

    from k15ray.serve.app import run_local

    ray_tmp = tempfile.mkdtemp(prefix="k15b-", dir="/tmp")  # short: Ray's socket paths
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, _temp_dir=ray_tmp)
    try:
        run_local(config)
        yield
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(ray_tmp, ignore_errors=True)


def run_cpu() -> dict[str, Any]:
    from k15ray.config.serve import (
        PolicyServeConfig,
        RewardServeConfig,
        SandboxServeConfig,
        ServeConfig,
    )
    from k15ray.models import create_model

    work = Path(tempfile.mkdtemp(prefix="k15serve-"))
    try:
        model_dir = create_model("tiny", work / "tiny", seed=0)
        config = ServeConfig(
            host="127.0.0.1",
            port=_free_port(),
            policy=PolicyServeConfig(
                model_dir=str(model_dir),
                model_name="tiny",
                max_batch_size=16,
                max_tokens_limit=LONG_MAX_TOKENS,
            ),
            rewards=RewardServeConfig(kinds=("math",), num_cpus=0.0, threads=CONCURRENCY),
            sandbox=SandboxServeConfig(enabled=False),
        )
        with _serve(config, max(2, os.cpu_count() or 2)):
            served = asyncio.run(_served_cpu(f"http://127.0.0.1:{config.port}", "tiny"))
        baseline = _in_process_cpu(model_dir)  # with Serve and Ray gone: the machine to itself
    finally:
        shutil.rmtree(work, ignore_errors=True)
    both = {**served, **baseline}
    for prefix in ("policy", "policy_long"):
        both[f"{prefix}_ratio"] = round(
            both[f"{prefix}_served_rps"] / both[f"{prefix}_inprocess_one_batch_rps"], 3
        )
        both[f"{prefix}_ratio_vs_batches_of_16"] = round(
            both[f"{prefix}_served_rps"] / both[f"{prefix}_inprocess_batches_of_16_rps"], 3
        )
    for prefix in ("math_single", "math_batched"):
        served_rate = both[f"{prefix}_served_{'rps' if prefix == 'math_single' else 'items_per_s'}"]
        both[f"{prefix}_ratio"] = round(served_rate / both[f"{prefix}_inprocess_items_per_s"], 3)
    return {
        "value": both["policy_served_rps"],
        "unit": f"req/s (policy over HTTP, concurrency {CONCURRENCY}, max_tokens {MAX_TOKENS})",
        "baseline": both["policy_inprocess_one_batch_rps"],
        "ratio": both["policy_ratio"],
        "concurrency": CONCURRENCY,
        **dict(sorted(both.items())),
    }


# ----------------------------------------------------------------------------------------- GPU


def _gpu_model_dir(work: Path) -> tuple[Path, int]:
    """``qwen2_05b_dir()`` with the built-in character tokenizer beside it (the deployment needs
    one; prompts are token ids below its size): the directory and the tokenizer's size."""
    from _gpu import qwen2_05b_dir

    from k15ray.models.tokenizer import build_tokenizer, save_tokenizer

    source = qwen2_05b_dir()
    target = work / "qwen2-0.5b-served"
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if not path.name.startswith("tokenizer"):
            (target / path.name).symlink_to(path.resolve())
    tokenizer = build_tokenizer()
    save_tokenizer(tokenizer, target)
    return target, len(tokenizer)


def _served_gpu(port: int, warm: list[list[int]], prompts: list[list[int]]) -> dict[str, Any]:
    """``GPU_CONCURRENCY`` client threads, each with its own keep-alive connection (the standard
    library only: the GPU machine's image need not have httpx)."""
    import http.client
    import itertools
    import json
    import threading

    def run(prompts: list[list[int]]) -> tuple[list[float], list[int], float]:
        n = len(prompts)
        latencies: list[float] = []
        tokens: list[int] = []
        counter, lock = itertools.count(), threading.Lock()

        def worker() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            while (i := next(counter)) < n:
                body = {
                    "model": "policy",
                    "prompt": prompts[i],
                    "max_tokens": GPU_NEW_TOKENS,
                    "temperature": 1.0,
                }
                t = time.perf_counter()
                conn.request(
                    "POST",
                    "/v1/completions",
                    json.dumps(body),
                    {"content-type": "application/json"},
                )
                reply = conn.getresponse()
                data = reply.read()
                assert reply.status == 200, data[:500]
                with lock:
                    latencies.append(time.perf_counter() - t)
                    tokens.append(int(json.loads(data)["usage"]["completion_tokens"]))
            conn.close()

        threads = [threading.Thread(target=worker) for _ in range(GPU_CONCURRENCY)]
        t0 = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return latencies, tokens, time.perf_counter() - t0

    run(warm)  # warm-up: CUDA graphs, caches (other prompts: no prefix-cache hits later)
    lat, tokens, wall = run(prompts)
    assert len(lat) == len(prompts), f"{len(prompts) - len(lat)} requests failed; see the log above"
    return {
        **_summary("served", lat, wall, count=sum(tokens), unit="tokens_per_s"),
        "served_tokens": sum(tokens),
    }


def run_gpu() -> dict[str, Any]:
    from k15ray.config.serve import (
        PolicyServeConfig,
        RewardServeConfig,
        SandboxServeConfig,
        ServeConfig,
    )
    from k15ray.models.tokenizer import SPECIAL_TOKENS

    work = Path(tempfile.mkdtemp(prefix="k15serve-gpu-"))
    try:
        model_dir, vocab = _gpu_model_dir(work)
        rng = random.Random(0)  # ids of the character tokenizer past its special tokens
        drawn = [
            [rng.randrange(len(SPECIAL_TOKENS), vocab) for _ in range(GPU_PROMPT_TOKENS)]
            for _ in range(GPU_CONCURRENCY + GPU_REQUESTS)
        ]
        warm, prompts = drawn[:GPU_CONCURRENCY], drawn[GPU_CONCURRENCY:]
        config = ServeConfig(
            host="127.0.0.1",
            port=_free_port(),
            policy=PolicyServeConfig(
                model_dir=str(model_dir),
                model_name="policy",
                backend="vllm",
                num_gpus=1.0,
                gpu_memory_utilization=GPU_MEMORY,
                max_tokens_limit=GPU_NEW_TOKENS,
            ),
            rewards=RewardServeConfig(kinds=()),
            sandbox=SandboxServeConfig(enabled=False),
        )
        with _serve(config, os.cpu_count() or 2):
            served = _served_gpu(config.port, warm, prompts)
        _wait_for_gpu_memory(GPU_MEMORY)
        raw = _raw_gpu(model_dir, warm, prompts)  # with Serve gone: the GPU to itself
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "value": served["served_tokens_per_s"],
        "unit": f"tokens/s (vLLM policy over HTTP, concurrency {GPU_CONCURRENCY})",
        "baseline": raw["raw_batches_of_64_tokens_per_s"],
        "ratio": round(served["served_tokens_per_s"] / raw["raw_batches_of_64_tokens_per_s"], 3),
        "ratio_vs_raw_all_at_once": round(
            served["served_tokens_per_s"] / raw["raw_all_at_once_tokens_per_s"], 3
        ),
        "requests": GPU_REQUESTS,
        "concurrency": GPU_CONCURRENCY,
        "prompt_tokens": GPU_PROMPT_TOKENS,
        "max_tokens": GPU_NEW_TOKENS,
        "model": "Qwen2-0.5B shape, random bf16 weights",
        **served,
        **raw,
    }


def _wait_for_gpu_memory(fraction: float, timeout_s: float = 120.0) -> None:
    """Wait until ``fraction`` of the GPU is free again (the served engine's process has exited)."""
    import torch

    deadline = time.monotonic() + timeout_s
    while True:
        free, total = torch.cuda.mem_get_info()
        if free >= fraction * total or time.monotonic() > deadline:
            return
        time.sleep(1.0)


def _raw_gpu(model_dir: Path, warm: list[list[int]], prompts: list[list[int]]) -> dict[str, Any]:
    from vllm import LLM
    from vllm import SamplingParams as VLLMSamplingParams
    from vllm.inputs import TokensPrompt

    llm = LLM(
        model=str(model_dir), gpu_memory_utilization=GPU_MEMORY, skip_tokenizer_init=True, seed=0
    )
    sampling = VLLMSamplingParams(temperature=1.0, max_tokens=GPU_NEW_TOKENS, detokenize=False)

    def generate(batch: list[list[int]]) -> int:
        outs = llm.generate(
            [TokensPrompt(prompt_token_ids=p) for p in batch], sampling, use_tqdm=False
        )
        return sum(len(o.outputs[0].token_ids) for o in outs)

    generate(warm)  # warm-up
    out: dict[str, Any] = {}
    llm.reset_prefix_cache()
    t, n = time.perf_counter(), 0
    for start in range(0, len(prompts), GPU_CONCURRENCY):
        n += generate(prompts[start : start + GPU_CONCURRENCY])
    out["raw_batches_of_64_tokens_per_s"] = round(n / (time.perf_counter() - t), 1)
    llm.reset_prefix_cache()
    t = time.perf_counter()
    n = generate(prompts)
    out["raw_all_at_once_tokens_per_s"] = round(n / (time.perf_counter() - t), 1)
    return out


def run() -> dict[str, Any]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    mode = os.environ.get("K15_SERVE_LOAD", "cpu")
    if mode not in ("cpu", "gpu"):
        raise SystemExit(f"K15_SERVE_LOAD={mode!r}: use cpu (default) or gpu")
    return run_gpu() if mode == "gpu" else run_cpu()
