"""``k15ray train-rm``: the whole making of the two model reward models (paper section 2.3.5).

1. Sample: each policy of ``data.policies`` answers each prompt ``samples_per_prompt`` times at
   each temperature, through the Ray rollout actors (``k15ray.rollout.actor.RolloutPool``); each
   response is labelled by the rule-based verifier (``verify_math``). Chunks of
   ``data.chunk_prompts`` prompts are written as they finish (``data/samples/*.jsonl``), so a
   stopped run samples only what is missing.
2. Split by prompt (a seeded ``heldout_fraction`` of the prompts is never trained on) and balance
   the classes of each split: ``data/train.jsonl``, ``data/heldout.jsonl``.
3. Train the value-head RM (BCE) into ``value_rm/`` and the CoT judge (SFT on verdict traces)
   into ``cot_rm/final``; a model already there is kept.
4. ``report.json``: each RM's accuracy against the verifier labels on the held-out split.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from k15ray.config.reward_models import RMTrainConfig
from k15ray.rewards.models.data import (
    RMExample,
    add_near_misses,
    balance_classes,
    read_rm_examples,
    sample_examples,
    write_rm_examples,
)
from k15ray.types import Prompt, RewardFn

REPORT_FILE = "report.json"


def heldout_split(prompt_ids: Sequence[str], fraction: float, seed: int) -> set[str]:
    """The held-out prompt ids: a seeded draw of ``round(fraction * n)`` (at least 1) of them."""
    ids = sorted(set(prompt_ids))
    n = max(1, round(fraction * len(ids)))
    return set(random.Random(seed).sample(ids, n))


def rm_accuracy(reward_fn: RewardFn, examples: Sequence[RMExample], batch_size: int = 64) -> dict[str, Any]:
    """Agreement of ``reward_fn``'s ``correct`` with the verifier labels of ``examples``.

    Returns ``accuracy`` (all pairs), ``accuracy_correct`` / ``accuracy_wrong`` (per true class),
    ``not_ok`` (fraction of results whose status is not ``ok``, which count as wrong verdicts when
    the label is correct) and ``n``."""
    score_batch = getattr(reward_fn, "score_batch", None)
    verdicts: list[bool] = []
    not_ok = 0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        prompts = [Prompt(e.prompt_id or str(i), e.question, e.reference) for i, e in enumerate(chunk)]
        responses = [e.response for e in chunk]
        results = score_batch(prompts, responses) if score_batch else [reward_fn(p, r) for p, r in zip(prompts, responses, strict=True)]
        verdicts.extend(bool(r.correct) for r in results)
        not_ok += sum(r.status != "ok" for r in results)
    labels = [e.correct for e in examples]

    def agree(which: bool | None) -> float:
        pairs = [(v, c) for v, c in zip(verdicts, labels, strict=True) if which is None or c == which]
        return sum(v == c for v, c in pairs) / len(pairs) if pairs else float("nan")

    return {"accuracy": agree(None), "accuracy_correct": agree(True), "accuracy_wrong": agree(False),
            "not_ok": not_ok / max(len(examples), 1), "n": len(examples)}


def _chunk_path(samples_dir: Path, policy_index: int, temperature: float, chunk: int) -> Path:
    return samples_dir / f"policy{policy_index}_t{temperature:g}_chunk{chunk:04d}.jsonl"


def sample_and_label(config: RMTrainConfig, prompts: Sequence[Prompt], progress: bool = True) -> list[RMExample]:
    """Step 1 (module docstring): every chunk file present is kept, the missing ones are sampled
    through Ray rollout actors. Returns all labelled samples (unbalanced)."""
    from tqdm.auto import tqdm

    data = config.data
    samples_dir = Path(config.output_dir) / "data" / "samples"
    chunks = [list(prompts[i : i + data.chunk_prompts]) for i in range(0, len(prompts), data.chunk_prompts)]
    jobs = [(p, t, c) for p in range(len(data.policies)) for t in data.temperatures for c in range(len(chunks))]
    missing = [job for job in jobs if not _chunk_path(samples_dir, *job).exists()]
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(missing), desc="rm data", unit="chunk", disable=not progress)
    by_policy: dict[int, list[tuple[float, int]]] = {}
    for p, t, c in missing:
        by_policy.setdefault(p, []).append((t, c))
    for p, todo in by_policy.items():
        _sample_policy(config, p, [(t, c, chunks[c]) for t, c in todo], samples_dir, bar)
    bar.close()
    return [e for job in jobs for e in read_rm_examples(_chunk_path(samples_dir, *job))]


def _sample_policy(config: RMTrainConfig, policy_index: int, todo: list[tuple[float, int, list[Prompt]]],
                   samples_dir: Path, bar: Any) -> None:
    """Sample ``todo`` chunks of one policy with a pool of rollout actors, writing each chunk file."""
    from transformers import AutoTokenizer

    from k15ray.config.rollout import RolloutConfig
    from k15ray.prompting import stop_token_ids
    from k15ray.rollout.actor import RolloutPool
    from k15ray.types import SamplingParams

    data = config.data
    policy = data.policies[policy_index]
    tokenizer = AutoTokenizer.from_pretrained(policy)
    pool = RolloutPool(RolloutConfig(num_workers=data.num_workers, samples_per_prompt=data.samples_per_prompt),
                       model_dir=policy)
    try:
        for temperature, chunk, chunk_prompts in todo:
            seed = config.seed * 1_000_003 + policy_index * 10_007 + chunk * 101 + round(temperature * 100)
            params = SamplingParams(temperature=temperature, stop_token_ids=stop_token_ids(tokenizer),
                                    seed=seed, detect_repeats=False)
            examples = sample_examples(pool, tokenizer, chunk_prompts, data.samples_per_prompt, params,
                                       data.max_new_tokens, policy)
            write_rm_examples(_chunk_path(samples_dir, policy_index, temperature, chunk), examples)
            bar.update(1)
    finally:
        pool.shutdown()


def split_examples(examples: Sequence[RMExample], config: RMTrainConfig) -> tuple[list[RMExample], list[RMExample]]:
    """Step 2: ``(train, heldout)`` by prompt, each balanced when ``data.balance``; the training
    split gets ``data.near_misses`` (the held-out split stays the policies' own responses)."""
    held = heldout_split([e.prompt_id for e in examples], config.data.heldout_fraction, config.seed)
    train = [e for e in examples if e.prompt_id not in held]
    heldout = [e for e in examples if e.prompt_id in held]
    if config.data.near_misses:
        train = add_near_misses(train, config.data.near_misses, config.seed)
    if config.data.balance:
        for name, split in (("train", train), ("heldout", heldout)):
            n_correct = sum(e.correct for e in split)
            if n_correct in (0, len(split)):
                raise ValueError(
                    f"data: every {name} response is {'correct' if n_correct else 'wrong'} "
                    f"({len(split)} responses); add temperatures, a weaker or stronger policy, or more prompts"
                )
        train, heldout = balance_classes(train, config.seed), balance_classes(heldout, config.seed)
    return train, heldout


def load_rm_prompts(config: RMTrainConfig) -> list[Prompt]:
    """The first ``num_prompts`` math prompts of ``data.prompts``; errors name the field and fix."""
    from k15ray.envs.dataset import load_prompts

    prompts = load_prompts(config.data.prompts)
    not_math = [p.id for p in prompts if p.domain != "math" or not p.answer]
    if not_math:
        raise ValueError(
            f"data.prompts: {len(not_math)} prompts are not math prompts with an answer (first: "
            f"{not_math[0]!r}); the verifier labels math answers only, keep math prompts"
        )
    return prompts[: config.data.num_prompts] if config.data.num_prompts else prompts


def train_reward_models(config: RMTrainConfig, progress: bool = True) -> dict[str, Any]:
    """Steps 1-4 (module docstring); returns the report (also written to ``report.json``)."""
    import ray

    from k15ray.noise import ray_runtime_env
    from k15ray.rewards.models.cot_judge import CoTJudge, train_cot_judge
    from k15ray.rewards.models.value_head import ValueRM, train_value_rm

    out = Path(config.output_dir)
    prompts = load_rm_prompts(config)
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=max(os.cpu_count() or 1, config.data.num_workers), include_dashboard=False,
                 log_to_driver=False, configure_logging=False, runtime_env=ray_runtime_env())
    try:
        examples = sample_and_label(config, prompts, progress)
    finally:
        if started:
            ray.shutdown()
    train, heldout = split_examples(examples, config)
    write_rm_examples(out / "data" / "train.jsonl", train)
    write_rm_examples(out / "data" / "heldout.jsonl", heldout)
    base = config.data.policies[0]
    report: dict[str, Any] = {
        "samples": len(examples), "sampled_accuracy": sum(e.correct for e in examples) / len(examples),
        "train": len(train), "heldout": len(heldout), "models": {},
    }
    value, judge = config.value_rm, config.cot_rm
    if judge.enabled:  # first: the value head may start from it
        judge_dir = out / "cot_rm" / "final"
        if not (judge_dir / "config.json").exists():
            judge_dir = train_cot_judge(
                train, judge.base or base, out / "cot_rm", max_steps=judge.max_steps, batch_size=judge.batch_size,
                seq_len=judge.seq_len, lr=judge.lr, warmup_steps=judge.warmup_steps, num_threads=judge.num_threads,
                seed=config.seed, progress=progress,
            )
        report["models"]["cot_rm"] = {
            "dir": str(judge_dir),
            **rm_accuracy(CoTJudge(judge_dir, max_new_tokens=judge.max_new_tokens), heldout),
        }
    if value.enabled:
        value_dir = out / "value_rm"
        value_base = str(judge_dir) if value.base == "cot_rm" else (value.base or base)
        if not (value_dir / "config.json").exists():
            train_value_rm(train, value_base, value_dir, steps=value.steps, batch_size=value.batch_size,
                           lr=value.lr, max_length=value.max_length, seed=config.seed, num_threads=value.num_threads,
                           progress=progress)
        report["models"]["value_rm"] = {"dir": str(value_dir), "base": value_base,
                                        **rm_accuracy(ValueRM(value_dir, max_length=value.max_length), heldout)}
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


__all__ = ["heldout_split", "load_rm_prompts", "rm_accuracy", "sample_and_label", "split_examples", "train_reward_models"]
