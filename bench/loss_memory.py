"""Benchmark ``loss_memory``: the mirror-descent loss on a batch of long responses, forward +
backward from the last hidden states through the lm_head, with three ways to get token log-probs:

* ``naive``: logits = lm_head(hidden), ``log_softmax(logits).gather(...)`` (the baseline);
* ``logits``: the same logits through ``k15ray.logprobs.token_logprobs`` (no log-softmax tensor);
* ``hidden``: ``k15ray.logprobs.hidden_token_logprobs``, chunked over T with checkpointing, so the
  (B, T, V) logits never exist (the path ``policy_token_logprobs`` takes for Llama/Qwen2 models).

Each variant runs in its own subprocess; its peak memory is the growth of the peak resident set
(``ru_maxrss``) over the RSS after building the inputs, which sees torch's CPU allocations
(tracemalloc would not). ``value`` = naive peak / hidden-path peak (bigger is better, x times
less memory); ``time_ratio`` = naive time / hidden time (bigger is faster).
Sizes: B=4, T=2048, V=32000, H=256, float32 (override with K15_LOSS_BENCH="B,T,V,H").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

VARIANTS = ("naive", "logits", "hidden")


def sizes() -> tuple[int, int, int, int]:
    b, t, v, h = (int(x) for x in os.environ.get("K15_LOSS_BENCH", "4,2048,32000,256").split(","))
    return b, t, v, h


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def measure(variant: str, repeats: int = 1) -> dict[str, Any]:
    """Run one variant in this process: peak memory growth (MiB) and best time (s)."""
    import torch

    from k15ray.logprobs import hidden_token_logprobs, naive_token_logprobs, token_logprobs
    from k15ray.mirror_descent import mirror_descent_loss

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    b, t, v, h = sizes()
    if repeats > 0:  # warm-up on a tiny shape: load every code path before the baseline RSS
        os.environ["K15_LOSS_BENCH"], saved = f"{b},64,{v},{h}", os.environ.get("K15_LOSS_BENCH")
        measure(variant, repeats=0)
        if saved is None:
            del os.environ["K15_LOSS_BENCH"]
        else:
            os.environ["K15_LOSS_BENCH"] = saved
        b, t, v, h = sizes()
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(b, t, h, generator=g, requires_grad=True)  # (B, T, H)
    weight = (torch.randn(v, h, generator=g) / h**0.5).requires_grad_()  # (V, H) lm_head
    ids = torch.randint(0, v, (b, t), generator=g)  # (B, T) response tokens
    rewards = torch.tensor([1.0, 0.0] * (b // 2) + [1.0] * (b % 2))
    base_kib = _rss_kib()
    times = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        if variant == "hidden":
            token_logp = hidden_token_logprobs(hidden, weight, ids)
        else:
            logits = hidden @ weight.T  # (B, T, V)
            fn = naive_token_logprobs if variant == "naive" else token_logprobs
            token_logp = fn(logits, ids)
        logp = token_logp.sum(-1)  # (B,) sequence log-probs (all tokens are response tokens)
        loss, _ = mirror_descent_loss(logp[None], logp.detach()[None] - 0.1, rewards[None], tau=0.1)
        loss.backward()
        times.append(time.perf_counter() - start)
        del token_logp, logp, loss
        hidden.grad = weight.grad = None
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"variant": variant, "peak_mib": (peak_kib - base_kib) / 1024, "time_s": min(times)}


def run() -> dict[str, Any]:
    results = {}
    for variant in VARIANTS:
        out = subprocess.run(
            [sys.executable, __file__, "--variant", variant],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    naive, logits, hidden = (results[k] for k in VARIANTS)
    b, t, v, h = sizes()
    return {
        "value": round(naive["peak_mib"] / hidden["peak_mib"], 2),
        "unit": "x less peak memory (naive / ours, bigger is better)",
        "baseline": round(naive["peak_mib"], 1),
        "ratio": round(naive["peak_mib"] / hidden["peak_mib"], 2),
        "peak_mib_naive": round(naive["peak_mib"], 1),
        "peak_mib_hidden": round(hidden["peak_mib"], 1),
        "peak_mib_logits": round(logits["peak_mib"], 1),
        "memory_ratio_logits": round(naive["peak_mib"] / logits["peak_mib"], 2),
        "time_s_naive": round(naive["time_s"], 3),
        "time_s_hidden": round(hidden["time_s"], 3),
        "time_s_logits": round(logits["time_s"], 3),
        "time_ratio": round(naive["time_s"] / hidden["time_s"], 3),
        "time_ratio_logits": round(naive["time_s"] / logits["time_s"], 3),
        "shape": {"B": b, "T": t, "V": v, "H": h, "dtype": "float32"},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    print(json.dumps(measure(parser.parse_args().variant)))
