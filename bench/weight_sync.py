"""Benchmark ``weight_sync`` (GPU): seconds to put the learner's new weights into colocated vLLM.

The learner is a transformers model of the Qwen2-0.5B shape on the same GPU as the engine. k15ray's
path hands the learner's GPU tensors to the in-process engine's ``load_weights`` (no copy through host
memory or disk). The baseline, measured in the same run, is the host round trip: the same weights
copied to CPU first, then loaded. value = seconds per sync (median of 5), ratio = baseline / value.
The colocated cycle (sleep level 2 -> wake -> load) is reported beside it.
"""

from __future__ import annotations

import statistics
import time
from typing import Any


def _median_seconds(fn: Any, repeats: int = 5) -> float:
    import torch

    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run() -> dict[str, Any]:
    import torch
    from _gpu import qwen2_05b_dir
    from transformers import AutoModelForCausalLM

    from k15ray.rollout.vllm import VLLMBackend

    model_dir = qwen2_05b_dir()
    learner: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    learner = learner.cuda()
    backend = VLLMBackend(
        model_dir,
        gpu_memory_utilization=0.4,
        skip_tokenizer_init=True,
        enable_sleep_mode=True,
        sleep_level=2,
    )
    version = [0]

    def push(state: dict[str, Any]) -> None:
        version[0] += 1
        backend.update_weights(state, version[0])

    gpu_state = learner.state_dict()
    n_bytes = sum(t.numel() * t.element_size() for t in gpu_state.values())
    ours = _median_seconds(lambda: push(gpu_state))
    host = _median_seconds(lambda: push({k: v.cpu() for k, v in learner.state_dict().items()}))

    def cycle() -> None:
        backend.sleep()
        backend.wake()
        push(gpu_state)

    sleep_s = _median_seconds(backend.sleep, 1)
    wake_s = _median_seconds(backend.wake, 1)
    push(gpu_state)
    full_cycle = _median_seconds(cycle, 3)
    return {
        "value": round(ours, 4),
        "unit": "s",
        "baseline": round(host, 4),
        "ratio": round(host / ours, 2),
        "weights_gb": round(n_bytes / 1e9, 3),
        "sleep_level2_s": round(sleep_s, 3),
        "wake_s": round(wake_s, 3),
        "sleep_wake_load_cycle_s": round(full_cycle, 3),
        "model": "Qwen2-0.5B shape, random bf16 weights",
        "target_s": 0.2,
    }
