"""SFT examples and their packing into fixed-length training rows (used by ``k15ray.sft``).

An example is (prompt tokens x, response tokens z + y + EOS); the loss is taken on the response
only. Several examples are packed into one row of ``seq_len`` tokens. Attention does NOT cross
example boundaries: each row comes with an explicit block-diagonal causal mask (B, 1, T, T) and
position ids that restart at 0 for each example. Each example is therefore computed exactly as it
would be alone, at the positions it has when generated (the prompt starting at 0), so what is
learnt in training is what runs at inference; rows stay full, so little compute goes to padding.
(transformers can infer such a mask from restarting position ids alone, but in 5.23 with SDPA the
inferred mask did not isolate the examples: measured logits differed from the example run alone.
The explicit mask matches to 1e-5; ``tests/k15ray/test_sft.py`` checks it.)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from k15ray.jsonl import read_jsonl
from k15ray.prompting import encode_prompt

IGNORE_INDEX = -100
"""Target of positions that carry no loss (prompt tokens, padding, example ends)."""

QUESTION_FIELDS = ("question", "prompt", "messages")
RESPONSE_FIELDS = ("solution", "response")


@dataclass(frozen=True)
class Example:
    """One tokenized SFT example."""

    prompt_ids: tuple[int, ...]
    response_ids: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.prompt_ids) + len(self.response_ids)


def split_record(record: dict[str, Any], where: str) -> tuple[Any, str]:
    """(question, response) of one SFT record; ``ValueError`` listing the missing fields."""
    question = next((record[f] for f in QUESTION_FIELDS if f in record), None)
    response = next((record[f] for f in RESPONSE_FIELDS if f in record), None)
    if (
        response is None
        and isinstance(question, list)
        and question
        and question[-1].get("role") == "assistant"
    ):
        question, response = question[:-1], question[-1].get("content")
    missing = []
    if question is None:
        missing.append("|".join(QUESTION_FIELDS))
    if response is None:
        missing.append("|".join(RESPONSE_FIELDS))
    if missing:
        raise ValueError(
            f"{where}: missing field(s) {missing} (the record has {sorted(record)}); an SFT record "
            "needs a question (question, prompt or chat messages) and a response (solution or response)"
        )
    if not isinstance(response, str) or not isinstance(question, (str, list)):
        raise ValueError(
            f"{where}: the question must be text or chat messages and the response text"
        )
    return question, response


def load_examples(path: str | Path, tokenizer: Any) -> list[Example]:
    """Tokenize every record of an SFT JSONL file; errors name ``file:line``."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no eos_token; SFT teaches the model to end with it")
    examples = []
    for line_no, record in read_jsonl(path):
        question, response = split_record(record, f"{path}:{line_no}")
        prompt_ids = encode_prompt(tokenizer, question)
        response_ids = list(tokenizer.encode(response, add_special_tokens=False)) + [int(eos)]
        examples.append(Example(tuple(prompt_ids), tuple(response_ids)))
    if not examples:
        raise ValueError(f"{path}: no SFT records; write one JSON object per line")
    return examples


def pack(examples: Sequence[Example], seq_len: int, seed: int) -> list[list[Example]]:
    """Group examples (in a seeded random order) into rows of at most ``seq_len`` tokens.

    Greedy: an example goes into the current row if it fits, else starts a new one. An example
    longer than ``seq_len`` is kept alone in a row (and truncated by ``row_tensors``).
    """
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    rows: list[list[Example]] = []
    current: list[Example] = []
    used = 0
    for i in order:
        ex = examples[i]
        if current and used + len(ex) > seq_len:
            rows.append(current)
            current, used = [], 0
        current.append(ex)
        used += len(ex)
    if current:
        rows.append(current)
    return rows


def row_tensors(
    row: Sequence[Example], seq_len: int, pad_id: int
) -> tuple[list[int], list[int], list[int], list[int]]:
    """(input ids, position ids, targets, segment ids) of one packed row, each ``seq_len`` long.

    ``targets[t]`` is the token that position t must predict (``input[t + 1]``) when that token is
    a response token of the same example, else ``IGNORE_INDEX``: response-only loss.
    ``segments[t]`` is the index of the example token t belongs to (padding: one more segment).
    """
    ids: list[int] = []
    positions: list[int] = []
    targets: list[int] = []
    segments: list[int] = []
    for k, ex in enumerate(row):
        tokens = list(ex.prompt_ids) + list(ex.response_ids)
        is_response = [False] * len(ex.prompt_ids) + [True] * len(ex.response_ids)
        ids.extend(tokens)
        positions.extend(range(len(tokens)))
        segments.extend([k] * len(tokens))
        targets.extend(
            tokens[t + 1] if is_response[t + 1] else IGNORE_INDEX for t in range(len(tokens) - 1)
        )
        targets.append(IGNORE_INDEX)  # the last token predicts nothing of this example
    n_pad = seq_len - len(ids)
    if n_pad < 0:  # an over-long example: truncate
        return ids[:seq_len], positions[:seq_len], targets[:seq_len], segments[:seq_len]
    return (
        ids + [pad_id] * n_pad,
        positions + list(range(n_pad)),
        targets + [IGNORE_INDEX] * n_pad,
        segments + [len(row)] * n_pad,
    )


def block_causal_mask(segments: torch.Tensor) -> torch.Tensor:
    """Boolean attention mask (B, 1, T, T) from segment ids (B, T): query t sees key s iff s <= t
    and both belong to the same example (True = attend)."""
    T = segments.shape[-1]
    causal = torch.ones(T, T, dtype=torch.bool, device=segments.device).tril()  # (T, T)
    same = segments.unsqueeze(-1) == segments.unsqueeze(-2)  # (B, T, T)
    return (same & causal).unsqueeze(1)  # (B, 1, T, T)


def batch_tensors(
    rows: Sequence[Sequence[Example]], seq_len: int, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack rows into (input_ids, position_ids, targets) (B, seq_len) int64 and the attention
    mask (B, 1, seq_len, seq_len) bool."""
    parts = [row_tensors(r, seq_len, pad_id) for r in rows]
    ids, positions, targets, segments = (
        torch.tensor([p[k] for p in parts], dtype=torch.long) for k in range(4)
    )
    return ids, positions, targets, block_causal_mask(segments)
