"""Evaluation of a policy on a prompt set: greedy accuracy and pass@1 over k samples.

For prompts x_1..x_N with k samples y_ij ~ pi(. | x_i) at temperature T and reward
r(x, y, y*) in {0, 1} (paper section 2.3.1):

    pass@1      = (1 / N) * sum_i (1 / k) * sum_j r(x_i, y_ij, y*_i)
    greedy acc. = (1 / N) * sum_i r(x_i, argmax-decoded y_i, y*_i)

Both are also given per difficulty level, and "averaged over difficulty levels" is the mean of
the per-level figures (each level weighs the same, whatever its number of prompts). Generation
goes through a ``RolloutBackend`` (``k15ray.rollout.hf.HFBackend`` by default), prompts through
``k15ray.prompting``: the same path as the RL rollouts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

from k15ray.prompting import encode_prompt, stop_token_ids
from k15ray.types import GenerationRequest, Prompt, RewardResult, RolloutBackend, SamplingParams

RewardCallable = Callable[[Prompt, str], RewardResult]

# The defaults are the quick-start's held-out settings (configs/quickstart.yaml, `eval`), so that
# `k15ray eval` on a model from elsewhere reads like the figures in README and docs/k15.md.
DEFAULT_K = 4
"""Samples per prompt for pass@1."""
DEFAULT_TEMPERATURE = 0.6
"""Sampling temperature of the k samples."""
DEFAULT_MAX_NEW_TOKENS = 384
"""Longest response (tokens)."""


@dataclass(frozen=True)
class LevelReport:
    """Figures of one difficulty level (or of all prompts). ``None``: that pass was not run.
    Response tokens count the sampled responses (the greedy ones when k = 0)."""

    n_prompts: int
    greedy_accuracy: float | None
    pass_at_1: float | None
    mean_response_tokens: float
    total_response_tokens: int = 0


@dataclass(frozen=True)
class EvalReport:
    """Result of ``evaluate``: overall figures, per-level figures, and their level means."""

    overall: LevelReport
    by_difficulty: dict[int, LevelReport]
    k: int
    temperature: float
    seconds: float = 0.0
    samples: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def greedy_accuracy(self) -> float | None:
        return self.overall.greedy_accuracy

    @property
    def pass_at_1(self) -> float | None:
        return self.overall.pass_at_1

    @property
    def mean_response_tokens(self) -> float:
        return self.overall.mean_response_tokens

    @property
    def greedy_accuracy_level_mean(self) -> float | None:
        """Greedy accuracy averaged over difficulty levels (mean of the per-level accuracies)."""
        values = [r.greedy_accuracy for r in self.by_difficulty.values()]
        return None if not values or None in values else mean(v for v in values if v is not None)

    @property
    def pass_at_1_level_mean(self) -> float | None:
        """pass@1 averaged over difficulty levels (mean of the per-level pass@1)."""
        values = [r.pass_at_1 for r in self.by_difficulty.values()]
        return None if not values or None in values else mean(v for v in values if v is not None)

    def to_dict(self) -> dict[str, Any]:
        """Plain figures for JSON (samples left out)."""
        return {
            "overall": asdict(self.overall),
            "by_difficulty": {str(k): asdict(v) for k, v in sorted(self.by_difficulty.items())},
            "greedy_accuracy_level_mean": self.greedy_accuracy_level_mean,
            "pass_at_1_level_mean": self.pass_at_1_level_mean,
            "k": self.k,
            "temperature": self.temperature,
            "seconds": round(self.seconds, 2),
        }


def _backend(model_dir_or_model: Any, tokenizer: Any, batch_size: int) -> tuple[RolloutBackend, Any]:
    """A rollout backend and its tokenizer from a directory, a model, or a ready backend."""
    from k15ray.rollout.hf import HFBackend

    if isinstance(model_dir_or_model, (str, Path)):
        backend = HFBackend.from_pretrained(model_dir_or_model, max_batch_size=batch_size)
        return backend, backend.tokenizer
    if isinstance(model_dir_or_model, RolloutBackend):
        if tokenizer is None:
            raise ValueError("evaluate: pass the tokenizer that goes with the given backend")
        return model_dir_or_model, tokenizer
    if tokenizer is None:
        raise ValueError("evaluate: pass the tokenizer with a model object (or pass a model directory)")
    return HFBackend(model_dir_or_model, tokenizer, max_batch_size=batch_size), tokenizer


def _default_reward() -> RewardCallable:
    from k15ray.rewards import math_reward

    return math_reward


def _run_pass(
    backend: RolloutBackend,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    reward_fn: RewardCallable,
    n_samples: int,
    params: SamplingParams,
    max_new_tokens: int,
) -> list[dict[str, Any]]:
    """Generate ``n_samples`` responses per prompt and score them; one record per response."""
    encoded = [tuple(encode_prompt(tokenizer, p)) for p in prompts]
    requests = [
        GenerationRequest(f"{i}/{j}", ids, max_new_tokens)
        for i, ids in enumerate(encoded)
        for j in range(n_samples)
    ]
    results = backend.generate(requests, params)
    records = []
    for req, res in zip(requests, results, strict=True):
        prompt = prompts[int(req.request_id.split("/")[0])]
        text = tokenizer.decode(list(res.token_ids), skip_special_tokens=True)
        reward = reward_fn(prompt, text)
        records.append(
            {
                "id": prompt.id,
                "difficulty": prompt.difficulty,
                "temperature": params.temperature,
                "correct": bool(reward.correct),
                "response_tokens": len(res.token_ids),
                "finish_reason": res.finish_reason,
                "response": text,
            }
        )
    return records


def _summarise(greedy: list[dict[str, Any]], sampled: list[dict[str, Any]]) -> LevelReport:
    def accuracy(records: list[dict[str, Any]]) -> float | None:
        if not records:
            return None
        per_prompt: dict[str, list[bool]] = defaultdict(list)
        for r in records:
            per_prompt[r["id"]].append(r["correct"])
        return mean(mean(float(c) for c in cs) for cs in per_prompt.values())

    lengths = [r["response_tokens"] for r in (sampled or greedy)]
    n = len({r["id"] for r in greedy + sampled})
    return LevelReport(n, accuracy(greedy), accuracy(sampled), mean(lengths) if lengths else 0.0, sum(lengths))


def evaluate(
    model_dir_or_model: Any,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    reward_fn: RewardCallable | None = None,
    k: int = DEFAULT_K,
    temperature: float = DEFAULT_TEMPERATURE,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    batch_size: int = 64,
    greedy: bool = True,
    seed: int = 0,
) -> EvalReport:
    """Evaluate a policy on ``prompts``: greedy accuracy and pass@1 over ``k`` samples at ``temperature``.

    ``model_dir_or_model``: a Hugging Face model directory (``tokenizer`` may be None), a model
    object (with its ``tokenizer``), or a ``RolloutBackend``. ``reward_fn``: a ``RewardFn``
    (default ``k15ray.rewards.math_reward``). ``k = 0`` skips sampling, ``greedy = False`` skips
    the greedy pass. ``mean_response_tokens`` counts sampled responses (greedy when k = 0).
    """
    import time

    if not prompts:
        raise ValueError("evaluate: no prompts; pass a non-empty list of Prompt")
    if k < 0 or max_new_tokens < 1 or batch_size < 1:
        raise ValueError(f"evaluate: need k >= 0, max_new_tokens >= 1, batch_size >= 1; got {k}, {max_new_tokens}, {batch_size}")
    if k == 0 and not greedy:
        raise ValueError("evaluate: k = 0 and greedy = False leave nothing to measure")
    start = time.perf_counter()
    backend, tokenizer = _backend(model_dir_or_model, tokenizer, batch_size)
    reward = reward_fn or _default_reward()
    stops = stop_token_ids(tokenizer)
    greedy_records: list[dict[str, Any]] = []
    sampled_records: list[dict[str, Any]] = []
    if greedy:
        params = SamplingParams(temperature=0.0, stop_token_ids=stops, seed=seed)
        greedy_records = _run_pass(backend, tokenizer, prompts, reward, 1, params, max_new_tokens)
    if k:
        params = SamplingParams(temperature=temperature, stop_token_ids=stops, seed=seed)
        sampled_records = _run_pass(backend, tokenizer, prompts, reward, k, params, max_new_tokens)
    levels = sorted({p.difficulty for p in prompts})
    by_level = {
        lv: _summarise(
            [r for r in greedy_records if r["difficulty"] == lv],
            [r for r in sampled_records if r["difficulty"] == lv],
        )
        for lv in levels
    }
    return EvalReport(
        overall=_summarise(greedy_records, sampled_records),
        by_difficulty=by_level,
        k=k,
        temperature=temperature,
        seconds=time.perf_counter() - start,
        samples=greedy_records + sampled_records,
    )
