"""Shortest rejection sampling (paper section 2.4): the shortest correct of n samples becomes SFT data.

``rejection_sample`` draws n responses per prompt from a model through the Ray rollout actors
(``k15ray.long2short.sampling``), keeps y_sft = the shortest correct one
(``k15ray.long2short.selection.shortest_correct``) and writes it as an SFT record
(``question`` + ``solution``, the format ``k15ray sft`` reads: ``k15ray.packing``). Prompts with no
correct sample are skipped. Fine-tuning the model on the file (``k15ray sft`` with
``model.path`` = the sampled model) completes the method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Any

from k15ray.long2short.selection import Sample, shortest_correct
from k15ray.types import Prompt


@dataclass(frozen=True)
class RejectionStats:
    """What one rejection-sampling pass produced."""

    num_prompts: int
    num_examples: int
    """prompts with at least one correct sample (= SFT records written)"""
    mean_sample_tokens: float
    """mean length of all samples"""
    mean_chosen_tokens: float
    """mean length of the chosen (shortest correct) samples"""
    out: str


def sft_records(prompts: Sequence[Prompt], groups: Sequence[Sequence[Sample]]) -> list[dict[str, Any]]:
    """One SFT record per prompt that has a correct sample: its shortest correct response."""
    if len(prompts) != len(groups):
        raise ValueError(f"{len(prompts)} prompts but {len(groups)} sample groups; give one group per prompt")
    records = []
    for prompt, samples in zip(prompts, groups, strict=True):
        chosen = shortest_correct(samples)
        if chosen is not None:
            records.append({
                "id": prompt.id, "question": prompt.question, "answer": prompt.answer,
                "difficulty": prompt.difficulty, "solution": chosen.text, "response_tokens": chosen.num_tokens,
            })
    return records


def rejection_sample(
    model_dir: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    n: int = 8,
    temperature: float = 1.0,
    max_new_tokens: int = 384,
    num_workers: int = 2,
    limit: int = 0,
    seed: int = 0,
) -> RejectionStats:
    """Sample ``n`` responses per prompt of ``data`` (the first ``limit``; 0 = all), write the
    shortest correct one per prompt to ``out`` (JSONL); the figures of the pass."""
    from k15ray.envs.dataset import load_prompts
    from k15ray.jsonl import write_jsonl
    from k15ray.long2short.sampling import sample_responses

    prompts = load_prompts(data)
    prompts = prompts[:limit] if limit else prompts
    groups = sample_responses(
        model_dir, prompts, n, temperature=temperature, max_new_tokens=max_new_tokens,
        num_workers=num_workers, seed=seed,
    )
    records = sft_records(prompts, groups)
    write_jsonl(out, records)
    all_tokens = [s.num_tokens for g in groups for s in g]
    return RejectionStats(
        num_prompts=len(prompts),
        num_examples=len(records),
        mean_sample_tokens=mean(all_tokens) if all_tokens else 0.0,
        mean_chosen_tokens=mean(r["response_tokens"] for r in records) if records else 0.0,
        out=str(out),
    )
