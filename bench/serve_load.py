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
* ``GET /v1/models`` at concurrency 16: the HTTP floor (no model).

The load generator is a process of its own (``_raw_load``): plain asyncio streams, one keep-alive
HTTP/1.1 connection per request in flight, JSON bodies, every answer read whole, its status 200
and its JSON checked. All of it twice: behind Serve's HTTP proxy (the default; figures without a
prefix), then with direct ingress (``RAY_SERVE_ENABLE_DIRECT_INGRESS=1``: no proxy, each
application's replica answers HTTP on a port of its own; figures ``direct_*``).

Then, with Ray and Serve gone, the same work in-process as the baselines: ``HFBackend.generate``
over all the prompts as ONE batch (and in batches of 16, the most concurrency 16 can form), and
``math_reward`` from 16 threads over the same items.

value = served policy req/s (max_tokens 8) in the ``HEADLINE_INGRESS`` mode (``ingress``);
baseline = one in-process batch's req/s; ratio = value / baseline; p50/p99 beside it. Also:
``policy_long_*`` (max_tokens 64), ``math_batched_*`` (items/s, ratio against in-process),
``math_single_*``, p50/p99 latencies (ms), and the mean batch each served policy phase formed.

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
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

POLICY_REQUESTS, LONG_REQUESTS = 100, 48
MAX_TOKENS, LONG_MAX_TOKENS = 8, 64
MATH_REQUESTS, MATH_BATCH_ITEMS, ITEMS_PER_REQUEST, BATCH_CONCURRENCY = 500, 1000, 50, 4
CONCURRENCY = 16
FLOOR_REQUESTS = 300
BATCH_WAIT_S = 0.01
HEADLINE_INGRESS = "proxy"
DRAINING_ENV = "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"  # a stopping replica's hold, s
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


# ------------------------------------------------- the load generator (a process of its own)

# The request each phase sends for index i, and what its answer must hold. The load generator
# runs these in a child process, so its own CPU cost neither slows Ray's driver nor hides in it.
PHASES = ("models", "policy", "math_single", "math_batch")


def _request(phase: str, i: int, spec: dict[str, Any]) -> tuple[str, str, Any]:
    """(method, path, JSON body or None) of request ``i`` of ``phase``."""
    if phase == "models":
        return "GET", "/v1/models", None
    if phase == "policy":
        body = {
            "model": spec["model"],
            "prompt": policy_prompt(i),
            "max_tokens": spec["max_tokens"],
            "temperature": 1.0,
        }
        return "POST", "/v1/completions", body
    if phase == "math_single":
        resp, ref = math_items(1, spec["start"] + i)[0]
        return "POST", "/v1/rewards/math", {"response": resp, "reference": ref}
    chunk = math_items(ITEMS_PER_REQUEST, spec["start"] + i * ITEMS_PER_REQUEST)
    return "POST", "/v1/rewards/math", {
        "items": [{"response": resp, "reference": ref} for resp, ref in chunk]
    }


def _answer_ok(phase: str, data: Any) -> bool:
    if phase == "models":
        return bool(data["data"])
    if phase == "policy":
        return len(data["choices"]) == 1
    if phase == "math_single":
        return bool(data["correct"])
    return all(x["correct"] for x in data["results"])


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response: status and the whole body (content-length or chunked)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    assert headers.get("transfer-encoding", "").lower() == "chunked", headers
    parts = []
    while size := int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)  # the CRLF after each chunk
    await reader.readuntil(b"\r\n")  # no trailers: the blank line
    return status, b"".join(parts)


async def _raw_load(spec: dict[str, Any]) -> tuple[list[float], float]:
    """``spec["n"]`` requests of ``spec["phase"]``, ``spec["concurrency"]`` in flight, each on a
    keep-alive HTTP/1.1 connection of its own: plain asyncio streams, so that the load generator
    costs little CPU (httpx costs about 2 ms a request; docs/serve.md). Every answer must be 200
    and its JSON what the phase expects. Latencies and wall time, seconds."""
    host, port, phase = spec["host"], spec["port"], spec["phase"]
    latencies: list[float] = []
    indices = iter(range(spec["n"]))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        for i in indices:  # shared: each connection takes the next request when it is free
            method, path, body = _request(phase, i, spec)
            payload = b"" if body is None else json.dumps(body).encode()
            head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            if body is not None:
                head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            start = time.perf_counter()
            writer.write(head.encode() + b"\r\n" + payload)
            status, data = await _read_response(reader)
            latencies.append(time.perf_counter() - start)
            assert status == 200 and _answer_ok(phase, json.loads(data)), (status, data[:500])
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(spec["concurrency"])))
    return latencies, time.perf_counter() - start


def _load(url: str, phase: str, n: int, concurrency: int, **spec: Any) -> tuple[list[float], float]:
    """Run ``_raw_load`` in a child process against ``url`` (scheme://host:port[/prefix])."""
    from urllib.parse import urlsplit

    assert phase in PHASES, phase
    where = urlsplit(url)
    spec = {**spec, "host": where.hostname, "port": where.port, "phase": phase, "n": n,
            "concurrency": concurrency}
    child = subprocess.run(
        [sys.executable, __file__, json.dumps(spec)], capture_output=True, text=True
    )
    if child.returncode != 0:
        raise RuntimeError(f"load generator failed ({phase}):\n{child.stderr[-3000:]}")
    latencies, wall_s = json.loads(child.stdout)
    assert len(latencies) == n, f"{phase}: {len(latencies)} of {n} answers"
    return latencies, wall_s


def _batch_delta(before: dict[str, int], after: dict[str, int], key: str) -> float:
    """Mean ``key`` per batch between two ``batch_stats()`` readings."""
    batches = after["batches"] - before["batches"]
    return round((after[key] - before[key]) / batches, 2) if batches else 0.0


def _served_policy(urls: dict[str, str], model: str) -> dict[str, Any]:
    """The HTTP floor and the policy phases (max_tokens 8 and 64) at concurrency 16."""
    from ray import serve

    policy = serve.get_deployment_handle("Policy", "policy")
    url = urls["policy"]
    out: dict[str, Any] = {}
    _load(url, "policy", CONCURRENCY, CONCURRENCY, model=model, max_tokens=MAX_TOKENS)  # warm-up
    _load(url, "models", 2 * CONCURRENCY, CONCURRENCY)
    lat, wall = _load(url, "models", FLOOR_REQUESTS, CONCURRENCY)
    out.update(_summary("http_floor_get_models", lat, wall))
    for prefix, n, max_tokens in (
        ("policy", POLICY_REQUESTS, MAX_TOKENS),
        ("policy_long", LONG_REQUESTS, LONG_MAX_TOKENS),
    ):
        before = policy.batch_stats.remote().result()
        lat, wall = _load(url, "policy", n, CONCURRENCY, model=model, max_tokens=max_tokens)
        after = policy.batch_stats.remote().result()
        out.update(_summary(f"{prefix}_served", lat, wall))
        out[f"{prefix}_served_mean_batch"] = _batch_delta(before, after, "sequences")
    return out


def _served_math(urls: dict[str, str]) -> dict[str, Any]:
    """The math reward phases: single items at concurrency 16, batches of 50 at concurrency 4."""
    from ray import serve

    rewards = serve.get_deployment_handle("Rewards", "rewards")
    url = urls["rewards"]
    out: dict[str, Any] = {}
    _load(url, "math_single", 2 * CONCURRENCY, CONCURRENCY, start=WARM_START)  # warm-up
    lat, wall = _load(url, "math_single", MATH_REQUESTS, CONCURRENCY, start=SINGLE_START)
    out.update(_summary("math_single_served", lat, wall))
    before = rewards.batch_stats.remote().result()
    n_requests = MATH_BATCH_ITEMS // ITEMS_PER_REQUEST
    lat, wall = _load(url, "math_batch", n_requests, BATCH_CONCURRENCY, start=BATCH_START)
    after = rewards.batch_stats.remote().result()
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
def _serve(config: Any, num_cpus: int, direct: bool = False) -> Iterator[dict[str, str]]:
    """Ray + Serve with ``config``'s applications, behind Serve's HTTP proxy or, ``direct``, with
    direct ingress (each application's replica answers HTTP itself); yields ``name -> base URL``.
    Everything is stopped on exit."""
    import ray
    from ray import serve

    from k15ray.serve.app import DIRECT_INGRESS_ENV, run_local

    ray_tmp = tempfile.mkdtemp(prefix="k15b-", dir="/tmp")  # short: Ray's socket paths
    # read by Ray's processes as they start; a draining replica would hold shutdown for 30 s
    env = {DIRECT_INGRESS_ENV: "1" if direct else "0", DRAINING_ENV: "1"}
    previous = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, _temp_dir=ray_tmp)
    try:
        yield run_local(config)
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(ray_tmp, ignore_errors=True)
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


INGRESS = {"proxy": "", "direct": "direct_"}
"""Each way the benchmark serves, and the prefix of its figures: Serve's HTTP proxy (the default),
and direct ingress (``RAY_SERVE_ENABLE_DIRECT_INGRESS=1``, opt-in; docs/serve.md)."""


def run_cpu() -> dict[str, Any]:
    from k15ray.config.serve import (
        PolicyServeConfig,
        RewardServeConfig,
        SandboxServeConfig,
        ServeConfig,
    )
    from k15ray.models import create_model

    work = Path(tempfile.mkdtemp(prefix="k15serve-"))
    both: dict[str, Any] = {}
    try:
        model_dir = create_model("tiny", work / "tiny", seed=0)
        config = ServeConfig(
            host="127.0.0.1",
            port=_free_port(),
            policy=PolicyServeConfig(
                model_dir=str(model_dir),
                model_name="tiny",
                max_batch_size=CONCURRENCY,
                batch_wait_timeout_s=BATCH_WAIT_S,
                max_tokens_limit=LONG_MAX_TOKENS,
            ),
            rewards=RewardServeConfig(kinds=("math",), num_cpus=0.0, threads=CONCURRENCY),
            sandbox=SandboxServeConfig(enabled=False),
        )
        for ingress, prefix in INGRESS.items():
            with _serve(config, max(2, os.cpu_count() or 2), direct=ingress == "direct") as urls:
                served = {**_served_policy(urls, "tiny"), **_served_math(urls)}
            both.update({f"{prefix}{key}": value for key, value in served.items()})
        both.update(_in_process_cpu(model_dir))  # with Serve and Ray gone: the machine to itself
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for ingress in INGRESS.values():
        for prefix in ("policy", "policy_long"):
            served_rps = both[f"{ingress}{prefix}_served_rps"]
            both[f"{ingress}{prefix}_ratio"] = round(
                served_rps / both[f"{prefix}_inprocess_one_batch_rps"], 3
            )
            both[f"{ingress}{prefix}_ratio_vs_batches_of_16"] = round(
                served_rps / both[f"{prefix}_inprocess_batches_of_16_rps"], 3
            )
        for prefix, unit in (("math_single", "rps"), ("math_batched", "items_per_s")):
            both[f"{ingress}{prefix}_ratio"] = round(
                both[f"{ingress}{prefix}_served_{unit}"] / both[f"{prefix}_inprocess_items_per_s"], 3
            )
    head = INGRESS[HEADLINE_INGRESS]
    return {
        "value": both[f"{head}policy_served_rps"],
        "unit": f"req/s (policy over HTTP, concurrency {CONCURRENCY}, max_tokens {MAX_TOKENS})",
        "baseline": both["policy_inprocess_one_batch_rps"],
        "ratio": both[f"{head}policy_ratio"],
        "p50_ms": both[f"{head}policy_served_p50_ms"],
        "p99_ms": both[f"{head}policy_served_p99_ms"],
        "ingress": HEADLINE_INGRESS,
        "concurrency": CONCURRENCY,
        "load_generator": "raw HTTP/1.1 keep-alive over asyncio streams, in a process of its own",
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


if __name__ == "__main__":  # the load generator's process (``_load``)
    print(json.dumps(asyncio.run(_raw_load(json.loads(sys.argv[1])))))
