"""``k15ray dpo CONFIG``: DPO pairs from the long-CoT model's own samples, then DPO training (paper 2.4).

1. pairs: n samples per prompt through the Ray rollout actors (``k15ray.long2short.sampling``),
   shortest correct = chosen, wrong or >= 1.5x longer = rejected
   (``k15ray.long2short.selection.preference_pairs``), written to ``out_dir/pairs.jsonl``;
   or ``pairs:`` an existing file;
2. the reference log-probs log pi_ref(y|x) of every pair, once, from the frozen starting model;
3. ``epochs`` passes of minibatch AdamW steps on ``k15ray.long2short.dpo.dpo_loss``;
4. ``out_dir/final``: the trained model (Hugging Face directory with the tokenizer), and
   ``metrics.jsonl`` (loss, implicit-reward margin and accuracy per step).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from k15ray.config.dpo import DPOConfig
from k15ray.errors import UserError
from k15ray.long2short.dpo import dpo_loss

PAIRS_FILE = "pairs.jsonl"
METRICS_FILE = "metrics.jsonl"


@dataclass(frozen=True)
class DPOResult:
    """What ``train_dpo`` did."""

    final_dir: str
    num_pairs: int
    steps: int
    first_loss: float
    last_loss: float
    seconds: float


def check_dpo_inputs(config: DPOConfig) -> None:
    """Every input, before Ray or a model starts: a ``UserError`` naming the field and the fix."""
    from k15ray.models import check_model_dir

    check_model_dir(config.model_dir, "model_dir")
    source = config.pairs or config.data
    if not Path(source).is_file():
        field = "pairs" if config.pairs else "data"
        raise UserError(f"{field}: {source}: no such file; give a prompt set (k15ray gen-data writes train.jsonl)")


def make_pairs(config: DPOConfig) -> list[dict[str, Any]]:
    """Sample and pair (step 1); the records of ``pairs.jsonl``."""
    from k15ray.envs.dataset import load_prompts
    from k15ray.long2short.sampling import sample_responses
    from k15ray.long2short.selection import preference_pairs

    prompts = load_prompts(config.data)
    prompts = prompts[: config.num_prompts] if config.num_prompts else prompts
    groups = sample_responses(
        config.model_dir, prompts, config.samples_per_prompt, temperature=config.temperature,
        max_new_tokens=config.max_new_tokens, num_workers=config.num_workers, seed=config.seed,
    )
    records = []
    for prompt, samples in zip(prompts, groups, strict=True):
        for chosen, rejected in preference_pairs(samples, config.length_ratio, config.max_pairs_per_prompt):
            records.append({
                "id": prompt.id, "question": prompt.question, "chosen": chosen.text, "rejected": rejected.text,
                "chosen_tokens": chosen.num_tokens, "rejected_tokens": rejected.num_tokens,
                "rejected_correct": rejected.correct,
            })
    return records


def _encode(tokenizer: Any, question: Any, response: str) -> tuple[list[int], int]:
    """(prompt + response + EOS token ids, prompt length): the SFT encoding (``k15ray.packing``)."""
    from k15ray.prompting import encode_prompt

    prompt_ids = encode_prompt(tokenizer, question)
    response_ids = list(tokenizer.encode(response, add_special_tokens=False)) + [int(tokenizer.eos_token_id)]
    return prompt_ids + response_ids, len(prompt_ids)


def batch_sequence_logps(model: Any, sequences: Sequence[tuple[list[int], int]], pad_id: int) -> Tensor:
    """log pi(y|x) of each (ids, prompt length): the sum of the response tokens' log-probs, (N,)."""
    from k15ray.logprobs import policy_token_logprobs, sequence_logprobs

    width = max(len(ids) for ids, _ in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)  # (N, T), right padded
    attention = torch.zeros((len(sequences), width), dtype=torch.long)  # (N, T)
    response_mask = torch.zeros((len(sequences), width))  # (N, T): 1 on response tokens
    for row, (ids, prompt_len) in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        response_mask[row, prompt_len : len(ids)] = 1.0
    token_logp = policy_token_logprobs(model, input_ids, attention)  # (N, T), position t: log p(ids[t] | ids[:t])
    return sequence_logprobs(token_logp, response_mask)  # (N,)


def train_dpo(config: DPOConfig, progress: bool = True) -> DPOResult:
    """Steps 1-4 of the module docstring; returns where the model went and the loss it ended at."""
    from k15ray.jsonl import read_jsonl, write_jsonl
    from k15ray.models import load_policy, save_tokenizer

    check_dpo_inputs(config)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.pairs:
        records = [r for _, r in read_jsonl(config.pairs)]
    else:
        records = make_pairs(config)
        write_jsonl(out_dir / PAIRS_FILE, records)
    if not records:
        raise UserError(
            "dpo: no pairs (no prompt had a correct sample with a wrong or >= length_ratio x longer one); "
            "sample more prompts (num_prompts), raise temperature or start from a more accurate model"
        )
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    policy, tokenizer = load_policy(config.model_dir)
    reference, _ = load_policy(config.model_dir)  # frozen pi_ref: the starting model
    reference.requires_grad_(False)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    chosen = [_encode(tokenizer, r["question"], r["chosen"]) for r in records]
    rejected = [_encode(tokenizer, r["question"], r["rejected"]) for r in records]
    bs = config.batch_size
    with torch.no_grad():
        ref_chosen = torch.cat([batch_sequence_logps(reference, chosen[i : i + bs], pad_id) for i in range(0, len(chosen), bs)])
        ref_rejected = torch.cat([batch_sequence_logps(reference, rejected[i : i + bs], pad_id) for i in range(0, len(rejected), bs)])
    del reference
    policy.train()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.lr, weight_decay=0.0)
    rng = random.Random(config.seed)
    losses: list[float] = []
    start = time.perf_counter()
    with (out_dir / METRICS_FILE).open("w", encoding="utf-8") as log:
        for _ in range(config.epochs):
            order = list(range(len(records)))
            rng.shuffle(order)
            for s in range(0, len(order), bs):
                idx = order[s : s + bs]
                logps = batch_sequence_logps(policy, [chosen[i] for i in idx] + [rejected[i] for i in idx], pad_id)
                loss, r_w, r_l = dpo_loss(logps[: len(idx)], logps[len(idx):], ref_chosen[idx], ref_rejected[idx], config.beta)
                optimizer.zero_grad(set_to_none=True)
                loss.mean().backward()
                if config.grad_clip:
                    torch.nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)
                optimizer.step()
                losses.append(float(loss.detach().mean()))
                log.write(json.dumps({
                    "step": len(losses), "loss": losses[-1], "reward_margin": float((r_w - r_l).mean()),
                    "reward_accuracy": float((r_w > r_l).float().mean()),
                }) + "\n")
                if progress and len(losses) % 10 == 1:
                    print(f"dpo step {len(losses)}: loss {losses[-1]:.4f}", flush=True)
                if config.max_steps and len(losses) >= config.max_steps:
                    break
            if config.max_steps and len(losses) >= config.max_steps:
                break
    final = out_dir / "final"
    policy.save_pretrained(str(final))
    save_tokenizer(tokenizer, final)
    return DPOResult(str(final), len(records), len(losses), losses[0], losses[-1], time.perf_counter() - start)
