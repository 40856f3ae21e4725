"""Benchmark ``rollout_vllm`` (GPU): tokens/s of k15ray's vLLM rollout path against raw ``LLM.generate``.

Same engine, same prompts (256 random 128-token prompts), exactly 256 new tokens each (EOS ignored)
at temperature 1. Same work on both sides: the baseline is ``LLM.generate`` asked for the same one log-prob per
token that a rollout needs (the learner compares them with its reference log-probs every iteration),
so the ratio is k15ray's own overhead: building requests and ``GenerationResult``s and the repeat
check. value = k15ray tokens/s, baseline = raw tokens/s with log-probs, ratio = value / baseline.
Raw generation WITHOUT log-probs (vLLM's fastest path, doing less work) is reported beside it: on an
H100, asking vLLM for log-probs at all costs about a third of its throughput.
"""

from __future__ import annotations

import time
from typing import Any

BATCH, PROMPT_LEN, NEW_TOKENS, ROUNDS = 256, 128, 256, 3


def run() -> dict[str, Any]:
    from _gpu import random_prompts, throughput_backend
    from vllm import SamplingParams as VLLMSamplingParams
    from vllm.inputs import TokensPrompt

    from k15ray.types import GenerationRequest, SamplingParams

    backend = throughput_backend()
    prompts = random_prompts(BATCH, PROMPT_LEN)
    raw_params = VLLMSamplingParams(
        temperature=1.0, max_tokens=NEW_TOKENS, ignore_eos=True, detokenize=False
    )
    requests = [GenerationRequest(f"r{i}", tuple(p), NEW_TOKENS) for i, p in enumerate(prompts)]
    # No per-request seed: vLLM samples seeded requests one by one on a slower path; the engine's
    # own seed keeps runs reproducible.
    params = SamplingParams(temperature=1.0, ignore_eos=True)
    raw_lp_params = VLLMSamplingParams(
        temperature=1.0, max_tokens=NEW_TOKENS, ignore_eos=True, detokenize=False, logprobs=0,
        flat_logprobs=True,
    )

    def raw(sampling: Any = raw_params) -> int:
        outs = backend.llm.generate(
            [TokensPrompt(prompt_token_ids=p) for p in prompts], sampling, use_tqdm=False
        )
        return sum(len(o.outputs[0].token_ids) for o in outs)

    def raw_logprobs() -> int:
        return raw(raw_lp_params)

    def ours() -> int:
        return sum(len(r.token_ids) for r in backend.generate(requests, params))

    raw(), ours()  # warm-up: CUDA graphs, caches
    best: dict[str, float] = {"raw": 0.0, "ours": 0.0, "raw_logprobs": 0.0}
    for _ in range(ROUNDS):  # alternate so drift hits all alike
        for name, fn in (("raw", raw), ("ours", ours), ("raw_logprobs", raw_logprobs)):
            backend.llm.reset_prefix_cache()
            t0 = time.perf_counter()
            tokens = fn()
            best[name] = max(best[name], tokens / (time.perf_counter() - t0))
    return {
        "value": round(best["ours"], 1),
        "unit": "tokens/s",
        "baseline": round(best["raw_logprobs"], 1),
        "ratio": round(best["ours"] / best["raw_logprobs"], 3),
        "raw_without_logprobs": round(best["raw"], 1),
        "ratio_vs_raw_without_logprobs": round(best["ours"] / best["raw"], 3),
        "batch": BATCH,
        "prompt_tokens": PROMPT_LEN,
        "new_tokens": NEW_TOKENS,
        "model": "Qwen2-0.5B shape, random bf16 weights",
    }
