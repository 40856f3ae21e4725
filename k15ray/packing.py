"""SFT examples and the micro-batches they are trained in (used by ``k15ray.sft``).

An example is (prompt tokens x, response tokens z + y + EOS); the loss is taken on the response
only. A micro-batch holds the examples of ``batch_size`` packed rows (``pack``: greedy, in a
seeded order; each epoch visits the rows in its own seeded order). ``sft.batching`` chooses only
their layout, so both layouts train on the same examples in the same steps and give the same losses
and gradients (to float rounding):

* ``padded`` (the default): those examples one per row, sorted by length and cut into
  ``PADDED_PARTS`` tensors, each right-padded to its longest row. Plain causal attention (the SDPA
  ``is_causal`` kernel, no mask tensor) already keeps every example to itself, and a query attends
  only to its own example's earlier tokens: on short examples much less attention work than a full
  row, and with rows of similar length in one tensor little goes to padding. (Forming micro-batches
  of similar lengths across the whole epoch instead, as ``group_by_length`` does, pads even less
  but slowed learning here: steps of look-alike problems, loss 0.78 against 0.54 after 200 steps.)
* ``packed``: the rows as they are, ``seq_len`` tokens each. Attention does NOT cross example
  boundaries: each row comes with an explicit block-diagonal causal mask (B, 1, T, T) and position
  ids that restart at 0 for each example, so each example is computed exactly as it would be alone,
  at the positions it has when generated. Rows stay full, but every query pays for the whole row's
  keys through the mask. (transformers can infer such a mask from restarting position ids alone, but
  in 5.23 with SDPA the inferred mask did not isolate the examples: measured logits differed from the
  example run alone. The explicit mask matches to 1e-5; ``tests/k15ray/test_sft.py`` checks it.)

A micro-batch is a pure function of (data, seed, index), so a resumed run continues with the same
data order (``StepBatches``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from k15ray.config.sft import BATCHINGS
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


def padded_tensors(
    batch: Sequence[Example], seq_len: int, pad_id: int
) -> tuple[torch.Tensor, None, torch.Tensor, None]:
    """(input_ids, None, targets, None) of single-example rows right-padded to the longest (at most
    ``seq_len``): no position ids and no mask are needed (causal attention; the padding comes after
    every real token and carries no loss)."""
    width = min(max(len(ex) for ex in batch), seq_len)
    parts = [row_tensors([ex], width, pad_id) for ex in batch]
    ids, _, targets, _ = (torch.tensor([p[k] for p in parts], dtype=torch.long) for k in range(4))
    return ids, None, targets, None


def split_by_length(examples: Sequence[Example], parts: int) -> list[list[Example]]:
    """``examples`` sorted by length and cut into ``parts`` runs of about equal count (fewer when
    there are fewer examples): rows of similar length share a padded tensor."""
    ordered = sorted(examples, key=len)
    parts = max(1, min(parts, len(ordered)))
    bounds = [round(i * len(ordered) / parts) for i in range(parts + 1)]
    return [ordered[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


PADDED_PARTS = 2
"""Tensors a ``padded`` micro-batch is cut into (rows sorted by length): measured on the quick-start's
examples (2 cores), 1 -> 2 parts saves much padding, more parts cost more calls than they save."""

MicroBatch = tuple[torch.Tensor, "torch.Tensor | None", torch.Tensor, "torch.Tensor | None"]
"""(input_ids (B, T), position_ids (B, T) or None, targets (B, T), attention mask (B, 1, T, T) or None)."""


class StepBatches:
    """Micro-batch ``index`` (0, 1, ... across epochs) of SFT ``examples``: ``batch_size`` packed
    rows, each epoch the rows in its own seeded order, so a micro-batch is a pure function of the
    data, the seed and the index; laid out by ``batching`` (module docstring)."""

    def __init__(
        self, examples: Sequence[Example], batching: str, seq_len: int, batch_size: int, seed: int
    ) -> None:
        if batching not in BATCHINGS:
            raise ValueError(f"batching: {batching!r} is not one of {list(BATCHINGS)}")
        self.batching, self.seq_len, self.batch_size, self.seed = batching, seq_len, batch_size, seed
        self.rows = pack(examples, seq_len, seed)
        self.per_epoch = -(-len(self.rows) // batch_size)  # micro-batches in one pass over the data
        self._orders: dict[int, list[int]] = {}

    def _order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            order = list(range(len(self.rows)))
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
            self._orders[epoch] = order
        return self._orders[epoch]

    def rows_of(self, index: int) -> list[list[Example]]:
        """The packed rows of micro-batch ``index`` (``batch_size`` rows, running on across epochs)."""
        out = []
        for k in range(index * self.batch_size, (index + 1) * self.batch_size):
            epoch, i = divmod(k, len(self.rows))
            out.append(self.rows[self._order(epoch)[i]])
        return out

    def tokens(self, index: int) -> int:
        """Data tokens (no padding) of micro-batch ``index``."""
        return sum(min(sum(map(len, row)), self.seq_len) for row in self.rows_of(index))

    def tensors(self, index: int, pad_id: int) -> list[MicroBatch]:
        """Micro-batch ``index`` as tensors: packed, one (B, seq_len) batch with its mask; padded,
        its examples one per row in ``PADDED_PARTS`` batches of similar lengths."""
        rows = self.rows_of(index)
        if self.batching == "packed":
            return [batch_tensors(rows, self.seq_len, pad_id)]
        examples = [ex for row in rows for ex in row]
        return [padded_tensors(part, self.seq_len, pad_id) for part in split_by_length(examples, PADDED_PARTS)]

    def epochs(self, micro_batches_done: int) -> float:
        """Passes over the data after ``micro_batches_done`` micro-batches."""
        return micro_batches_done * self.batch_size / len(self.rows)
