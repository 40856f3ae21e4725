"""Benchmark ``sandbox``: isolated runs per second of a trivial program (docs/sandbox.md).

The program (``print(input())``) runs with the same interpreter and flags four ways, in one
process, with the blocks interleaved so that load from other processes hits all of them alike:

* plain ``subprocess.run`` one at a time (the latency baseline);
* ``Sandbox.run`` one at a time on a one-container sandbox (the sandbox's latency);
* plain ``subprocess.run`` from 2 threads (the throughput baseline: ``baseline``);
* ``Sandbox.run`` from 2 threads on a 2-container pool (``value``).

``ratio = value / baseline``; the target is >= 0.75. Overheads are differences of latency
quantiles, sandbox minus plain (target: p99 overhead <= 30 ms). ``start_s`` is the mean time to
start one container (the paper's "0.04 s start-up").
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from k15ray.config.sandbox import SandboxConfig
from k15ray.sandbox import Sandbox
from k15ray.sandbox.bwrap import bwrap_argv, find_bwrap
from k15ray.sandbox.worker import Worker

CODE = "print(input())"
ROUNDS = int(os.environ.get("K15_BENCH_SANDBOX_ROUNDS", "4"))
PER_ROUND = int(os.environ.get("K15_BENCH_SANDBOX_RUNS", "50"))
THREADS = 2


def _quantile(xs: list[float], q: float) -> float:
    return (
        statistics.quantiles(xs, n=100, method="inclusive")[round(q * 100) - 1]
        if len(xs) > 1
        else xs[0]
    )


def _timed(fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _concurrent_rate(fn: Callable[[], None], n: int) -> float:
    with ThreadPoolExecutor(THREADS) as ex:
        t = time.perf_counter()
        list(ex.map(lambda _: fn(), range(n)))
        return n / (time.perf_counter() - t)


def run() -> dict[str, Any]:
    config = SandboxConfig(workers=THREADS)
    with tempfile.TemporaryDirectory() as d:
        script = Path(d) / "main.py"
        script.write_text(CODE)

        def plain() -> None:
            r = subprocess.run(
                [config.python_path, "-I", str(script)],
                input="hi\n",
                capture_output=True,
                text=True,
                cwd=d,
            )
            assert r.stdout == "hi\n"

        seq_box = Sandbox(SandboxConfig(workers=1)).start()
        pool_box = Sandbox(config).start()

        def boxed(sb: Sandbox) -> Callable[[], None]:
            def once() -> None:
                r = sb.run(CODE, stdin="hi\n")
                assert r.stdout == "hi\n", r

            return once

        lat_plain: list[float] = []
        lat_box: list[float] = []
        rate_plain: list[float] = []
        rate_pool: list[float] = []
        for _ in range(ROUNDS):
            lat_plain += [_timed(plain) for _ in range(PER_ROUND)]
            lat_box += [_timed(boxed(seq_box)) for _ in range(PER_ROUND)]
            rate_plain.append(_concurrent_rate(plain, 2 * PER_ROUND))
            rate_pool.append(_concurrent_rate(boxed(pool_box), 2 * PER_ROUND))
        seq_box.close()
        pool_box.close()
    argv = bwrap_argv(find_bwrap(config), config)
    starts = []
    for _ in range(10):
        t = time.perf_counter()
        w = Worker(argv)
        starts.append(time.perf_counter() - t)
        w.kill()
    value = statistics.median(rate_pool)
    baseline = statistics.median(rate_plain)
    ms = 1000.0
    return {
        "value": round(value, 1),
        "unit": "runs/s (2 threads, 2-container pool)",
        "baseline": round(baseline, 1),
        "ratio": round(value / baseline, 3),
        "sequential_runs_per_s": round(len(lat_box) / sum(lat_box), 1),
        "plain_sequential_runs_per_s": round(len(lat_plain) / sum(lat_plain), 1),
        "sequential_ratio": round(sum(lat_plain) / sum(lat_box), 3),
        "plain_p50_ms": round(_quantile(lat_plain, 0.5) * ms, 2),
        "plain_p99_ms": round(_quantile(lat_plain, 0.99) * ms, 2),
        "sandbox_p50_ms": round(_quantile(lat_box, 0.5) * ms, 2),
        "sandbox_p99_ms": round(_quantile(lat_box, 0.99) * ms, 2),
        "overhead_p50_ms": round((_quantile(lat_box, 0.5) - _quantile(lat_plain, 0.5)) * ms, 2),
        "overhead_p99_ms": round((_quantile(lat_box, 0.99) - _quantile(lat_plain, 0.99)) * ms, 2),
        "start_s": round(statistics.mean(starts), 4),
        "containers_per_s_sequential": round(len(starts) / sum(starts), 1),
        "runs": ROUNDS * PER_ROUND * 6,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
