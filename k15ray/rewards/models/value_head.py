"""The classic value-head reward model (paper section 2.3.5).

"Classic RM: ... a value-head based reward model ... takes as input the question, the reference
answer, and the response, and outputs a single scalar that indicates whether the response is
correct." Here: the ecosystem's convention, ``AutoModelForSequenceClassification`` with
``num_labels = 1`` over ``value_input_text(x, y*, y)`` (the judge's input text plus one line that
sets the response's final answer beside the reference, character by character); its logit s gives

    P(correct | x, y*, y) = sigmoid(s)

and training minimises the binary cross-entropy against verifier labels c in {0, 1}:

    L(phi) = - mean_i [ c_i * log sigmoid(s_i) + (1 - c_i) * log(1 - sigmoid(s_i)) ]

Any Hugging Face directory works as the base (a causal LM's body gets a fresh score head); the
trained model is saved with ``save_pretrained`` and loads with ``AutoModelForSequenceClassification``
+ ``AutoTokenizer``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from k15ray.rewards.models.data import RMExample
from k15ray.rewards.models.template import question_text, value_input_text
from k15ray.types import Prompt, RewardResult


def _tokenizer(model_dir: str | Path) -> Any:
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.pad_token_id is None:  # many causal LMs ship without one; batching needs it
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    tokenizer.truncation_side = "left"  # keep the response's end, where its final answer is
    return tokenizer


def load_value_model(model_dir: str | Path, dtype: str = "float32") -> tuple[Any, Any]:
    """``(model, tokenizer)``: ``AutoModelForSequenceClassification`` with one label from
    ``model_dir`` (a trained value RM, or any base model whose body gets a new score head), with
    ``pad_token_id`` set in its config (sequence classification reads the last non-pad token)."""
    tokenizer = _tokenizer(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(model_dir), num_labels=1, dtype=getattr(torch, dtype), pad_token_id=tokenizer.pad_token_id
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def value_logits(model: Any, tokenizer: Any, texts: Sequence[str], max_length: int) -> torch.Tensor:
    """Scores s of ``texts`` (one forward pass, right padding), shape (B,)."""
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt", add_special_tokens=False)
    device = next(model.parameters()).device
    out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
    return out.logits[:, 0]  # (B, 1) -> (B,)


class ValueRM:
    """A ``RewardFn``: ``ValueRM(model_dir)(prompt, response)`` scores P(correct) in [0, 1].

    ``score`` is P(correct) = sigmoid(s); ``correct`` is P(correct) >= ``threshold``; ``details``
    holds ``logit`` and ``p_correct``. A failed forward pass gives ``status="error"`` and score 0.

    Args:
        model_dir: a directory written by ``train_value_rm`` (or any sequence-classification model).
        device, dtype: where and how the model runs.
        max_length: longest input in tokens (cut from the left).
        batch_size: most texts per forward pass in ``score_batch``.
        threshold: P(correct) from which a response counts as correct.
    """

    def __init__(self, model_dir: str | Path, device: str = "cpu", dtype: str = "float32",
                 max_length: int = 1024, batch_size: int = 32, threshold: float = 0.5) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        if max_length < 8 or batch_size < 1:
            raise ValueError(f"max_length must be >= 8 and batch_size >= 1, got {max_length}, {batch_size}")
        self.model, self.tokenizer = load_value_model(model_dir, dtype)
        self.model.to(torch.device(device)).eval()
        self.max_length = max_length
        self.batch_size = batch_size
        self.threshold = threshold

    def __call__(self, prompt: Prompt, response: str) -> RewardResult:
        return self.score_batch([prompt], [response])[0]

    def score_batch(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[RewardResult]:
        """One ``RewardResult`` per pair, in forward passes of ``batch_size``; never raises for a
        failed pass (those pairs get ``status="error"``)."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses; pair them up")
        texts = [value_input_text(question_text(p), p.answer, r) for p, r in zip(prompts, responses, strict=True)]
        results: list[RewardResult] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            try:
                with torch.inference_mode():
                    logits = value_logits(self.model, self.tokenizer, chunk, self.max_length).float().tolist()
            except Exception as err:  # a reward failure is a typed result (STYLE rule 8)
                error = {"error": f"{type(err).__name__}: {err}"[:500]}
                results.extend(RewardResult(0.0, False, "error", error) for _ in chunk)
                continue
            for s in logits:
                p_correct = 1.0 / (1.0 + math.exp(-s))  # sigmoid(s)
                results.append(RewardResult(
                    p_correct, p_correct >= self.threshold, "ok", {"logit": s, "p_correct": p_correct}
                ))
        return results


def train_value_rm(
    examples: Sequence[RMExample],
    base_model_dir: str | Path,
    out_dir: str | Path,
    *,
    steps: int = 100,
    batch_size: int = 16,
    lr: float = 1e-3,
    max_length: int = 1024,
    seed: int = 0,
    num_threads: int = 0,
    progress: bool = False,
) -> Path:
    """Fit a value-head RM on verifier-labelled ``examples`` by BCE (module docstring); writes
    ``out_dir`` with ``save_pretrained`` (model + tokenizer) and returns it.

    Each step draws a class-balanced mini-batch (half correct, half wrong, with replacement), so a
    skewed label set does not teach the head the base rate alone. AdamW at a constant ``lr``.
    """
    positives = [e for e in examples if e.correct]
    negatives = [e for e in examples if not e.correct]
    if not positives or not negatives:
        raise ValueError(
            f"train_value_rm needs both classes; got {len(positives)} correct and {len(negatives)} wrong "
            "examples (sample more responses, or at a higher temperature, with make_rm_examples)"
        )
    if steps < 1 or batch_size < 2:
        raise ValueError(f"steps must be >= 1 and batch_size >= 2, got {steps}, {batch_size}")
    if num_threads:
        torch.set_num_threads(num_threads)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model, tokenizer = load_value_model(base_model_dir)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    half = batch_size // 2
    for _ in tqdm(range(steps), desc="value_rm", unit="step", disable=not progress):
        batch = rng.choices(positives, k=half) + rng.choices(negatives, k=batch_size - half)
        texts = [value_input_text(e.question, e.reference, e.response) for e in batch]
        labels = torch.tensor([1.0 if e.correct else 0.0 for e in batch])  # c_i, (B,)
        logits = value_logits(model, tokenizer, texts, max_length)  # s_i, (B,)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)  # L(phi)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out
