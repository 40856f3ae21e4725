"""Benchmark ``rollout_vllm`` (GPU): tokens/s of k15ray's vLLM rollout path against raw ``LLM.generate``.

Same prompts (256 random 128-token prompts), exactly 256 new tokens each (EOS ignored) at
temperature 1, on a Qwen2-0.5B-shaped model with random bf16 weights (``_gpu.py``). Two pairs, each
measured on ONE engine, alternating rounds so drift hits both sides alike:

* without log-probs (the K15 default, ``rollout.logprobs_every_iterations: 0``): ``value`` = k15ray
  ``VLLMBackend.generate`` with ``SamplingParams(logprobs=False)``, ``baseline`` = raw
  ``LLM.generate`` without log-probs, ``ratio`` = value / baseline (target >= 0.95);
* with one log-prob per sampled token (the iterations that sample them for the
  ``loss/rollout_logp_gap_*`` diagnostic): ``logprobs_value`` / ``logprobs_baseline`` =
  ``logprobs_ratio`` (k15ray's own overhead when both sides do that work).

k15ray's engine runs with ``logprobs_mode=processed_logprobs`` (log-probs at the sampling
temperature, ``k15ray.rollout.vllm``), in which vLLM's sampler takes a full-vocabulary log-softmax
every step even when no request asks for log-probs. So beside the pairs, a second engine with vLLM's
own default (``raw_logprobs``) times raw ``LLM.generate`` without log-probs again:
``default_engine_raw`` and ``ratio_vs_default_engine`` = value / that (what the mode costs).
Each engine lives in its own subprocess (one engine per process: vLLM frees GPU memory at exit).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BATCH, PROMPT_LEN, NEW_TOKENS, ROUNDS = 256, 128, 256, 3
PARTS = ("k15ray_engine", "default_engine")


def _measure(part: str) -> dict[str, float]:
    """Best tokens/s of each side over ``ROUNDS`` alternating rounds on this part's engine."""
    from _gpu import qwen2_05b_dir, random_prompts
    from vllm import SamplingParams as VLLMSamplingParams
    from vllm.inputs import TokensPrompt

    from k15ray.rollout.vllm import VLLMBackend
    from k15ray.types import GenerationRequest, SamplingParams

    engine_kwargs: dict[str, Any] = (
        {} if part == "k15ray_engine" else {"logprobs_mode": "raw_logprobs"}
    )
    backend = VLLMBackend(
        qwen2_05b_dir(),
        gpu_memory_utilization=0.6,
        skip_tokenizer_init=True,
        enable_sleep_mode=False,
        seed=0,
        **engine_kwargs,
    )
    prompts = [TokensPrompt(prompt_token_ids=p) for p in random_prompts(BATCH, PROMPT_LEN)]
    requests = [
        GenerationRequest(f"r{i}", tuple(p["prompt_token_ids"]), NEW_TOKENS)
        for i, p in enumerate(prompts)
    ]

    def raw(logprobs: bool) -> int:
        sampling = VLLMSamplingParams(
            temperature=1.0,
            max_tokens=NEW_TOKENS,
            ignore_eos=True,
            detokenize=False,
            **({"logprobs": 0, "flat_logprobs": True} if logprobs else {}),
        )
        outs = backend.llm.generate(prompts, sampling, use_tqdm=False)
        return sum(len(o.outputs[0].token_ids) for o in outs)

    def ours(logprobs: bool) -> int:
        # No per-request seed: vLLM samples seeded requests one by one on a slower path; the
        # engine's own seed keeps runs reproducible.
        params = SamplingParams(temperature=1.0, ignore_eos=True, logprobs=logprobs)
        return sum(len(r.token_ids) for r in backend.generate(requests, params))

    sides = {"raw": (raw, False), "ours": (ours, False)}
    if part == "k15ray_engine":
        sides |= {"raw_logprobs": (raw, True), "ours_logprobs": (ours, True)}
    for fn, logprobs in sides.values():  # warm-up: CUDA graphs, caches
        fn(logprobs)
    best = dict.fromkeys(sides, 0.0)
    for _ in range(ROUNDS):
        for name, (fn, logprobs) in sides.items():
            backend.llm.reset_prefix_cache()
            t0 = time.perf_counter()
            tokens = fn(logprobs)
            best[name] = max(best[name], tokens / (time.perf_counter() - t0))
    return best


def _part(part: str) -> dict[str, float]:
    """Run ``_measure(part)`` in a fresh Python process; its last JSON line on stdout is the result."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), part],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"rollout_vllm part {part!r} failed:\n{proc.stderr[-4000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"rollout_vllm part {part!r} printed no result:\n{proc.stdout[-2000:]}")
    return dict(json.loads(lines[-1]))


def run() -> dict[str, Any]:
    k15, default = _part("k15ray_engine"), _part("default_engine")
    return {
        "value": round(k15["ours"], 1),
        "unit": "tokens/s",
        "baseline": round(k15["raw"], 1),
        "ratio": round(k15["ours"] / k15["raw"], 3),
        "logprobs_value": round(k15["ours_logprobs"], 1),
        "logprobs_baseline": round(k15["raw_logprobs"], 1),
        "logprobs_ratio": round(k15["ours_logprobs"] / k15["raw_logprobs"], 3),
        "logprobs_cost": round(k15["raw_logprobs"] / k15["raw"], 3),
        "default_engine_raw": round(default["raw"], 1),
        "default_engine_ours": round(default["ours"], 1),
        "ratio_vs_default_engine": round(k15["ours"] / default["raw"], 3),
        "batch": BATCH,
        "prompt_tokens": PROMPT_LEN,
        "new_tokens": NEW_TOKENS,
        "model": "Qwen2-0.5B shape, random bf16 weights",
    }


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in PARTS:
        raise SystemExit(
            f"usage: python bench/rollout_vllm.py {{{'|'.join(PARTS)}}} (or bench/run.py rollout_vllm)"
        )
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    print(json.dumps(_measure(sys.argv[1])), flush=True)
