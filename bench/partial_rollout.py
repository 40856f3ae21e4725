"""Benchmark ``partial_rollout`` (GPU): iteration throughput with a per-iteration token budget
(paper 2.6.2) against full rollouts, on a heavy-tailed length mix, with the same tokens trained.

1536 trajectories (192 prompts x k=8) get target lengths from a log-normal (median ~200 tokens, clipped
to [16, 2048]); a trajectory "stops" when it reaches its target (the benchmark turns the backend's
``length`` into ``stop`` there, the way an EOS would). Both modes generate exactly those tokens through
k15ray's ``PartialRolloutBuffer`` and ``VLLMBackend`` and keep at most 128 trajectories in flight:

* full rollouts: budget = max length; an iteration of 16 prompts ends when its longest sample ends;
* partial rollouts: budget 256 tokens; unfinished trajectories wait in the buffer and new prompts fill
  the free places each iteration. (The run ends when the last prompt's group is done, so it includes
  a drain phase with few trajectories in flight that steady-state training never has: 192 prompts
  keep that phase a small part of the run.)

value = partial trajectories-tokens/s, baseline = full rollouts' tokens/s, ratio = value / baseline.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

PROMPTS, K, IN_FLIGHT, MAX_LEN, BUDGET, PROMPT_LEN = 192, 8, 128, 2048, 256, 64


def _targets(seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [
        [min(MAX_LEN, max(16, int(math.exp(rng.gauss(5.3, 1.0))))) for _ in range(K)]
        for _ in range(PROMPTS)
    ]


def _run_mode(
    backend: Any, prompts: list[list[int]], targets: list[list[int]], budget: int
) -> tuple[float, int, int]:
    from k15ray.config.partial_rollout import PartialRolloutConfig
    from k15ray.partial_rollout import PartialRolloutBuffer
    from k15ray.types import BackendFinish, GenerationRequest, GenerationResult, SamplingParams

    buffer = PartialRolloutBuffer(
        PartialRolloutConfig(budget_tokens=budget, max_response_tokens=MAX_LEN)
    )
    params = SamplingParams(temperature=1.0, seed=0, detect_repeats=False, ignore_eos=True)
    target_of: dict[tuple[str, int], int] = {}
    next_prompt, done_tokens, iterations = 0, 0, 0
    t0 = time.perf_counter()
    n_prompts = len(prompts)
    while next_prompt < n_prompts or len(buffer):
        requests = buffer.resume_requests()
        new_ids: list[str] = []
        new_tokens: list[list[int]] = []
        while next_prompt < n_prompts and len(requests) + K * (len(new_ids) + 1) <= IN_FLIGHT:
            new_ids.append(f"p{next_prompt}")
            new_tokens.append(prompts[next_prompt])
            for j, n in enumerate(targets[next_prompt]):
                target_of[(f"p{next_prompt}", j)] = n
            next_prompt += 1
        requests += buffer.new_requests(new_ids, new_tokens, K)
        # Each trajectory may not run past its target length.
        trajs = {r.request_id: buffer.trajectory(r.request_id) for r in requests}
        capped = []
        for r in requests:
            t = trajs[r.request_id]
            left = target_of[(t.prompt_id, t.sample_index)] - t.num_response_tokens
            capped.append(GenerationRequest(r.request_id, r.token_ids, min(r.max_new_tokens, left)))
        results = backend.generate(capped, params)
        fixed = []
        for req, res in zip(capped, results, strict=True):
            t = trajs[req.request_id]
            reached = (
                t.num_response_tokens + len(res.token_ids)
                >= target_of[(t.prompt_id, t.sample_index)]
            )
            reason: BackendFinish = "stop" if reached else res.finish_reason
            fixed.append(
                GenerationResult(
                    res.request_id, res.token_ids, res.logprobs, reason, res.policy_version
                )
            )
        update = buffer.apply_results(fixed)
        done_tokens += sum(t.num_response_tokens for g in update.groups for t in g.trajectories)
        iterations += 1
    return time.perf_counter() - t0, done_tokens, iterations


def run() -> dict[str, Any]:
    from _gpu import random_prompts, throughput_backend

    backend = throughput_backend()
    prompts = random_prompts(PROMPTS, PROMPT_LEN, seed=1)
    targets = _targets()
    _run_mode(backend, prompts[:8], targets[:8], BUDGET)  # warm-up
    full_s, full_tokens, full_iters = _run_mode(backend, prompts, targets, MAX_LEN)
    part_s, part_tokens, part_iters = _run_mode(backend, prompts, targets, BUDGET)
    assert full_tokens == part_tokens, (full_tokens, part_tokens)
    return {
        "value": round(part_tokens / part_s, 1),
        "unit": "trained tokens/s",
        "baseline": round(full_tokens / full_s, 1),
        "ratio": round(full_s / part_s, 3),
        "tokens": part_tokens,
        "full_s": round(full_s, 2),
        "partial_s": round(part_s, 2),
        "full_iterations": full_iters,
        "partial_iterations": part_iters,
        "budget_tokens": BUDGET,
        "max_tokens": MAX_LEN,
        "in_flight": IN_FLIGHT,
    }
