"""Which sampled responses become training data (paper section 2.4): pure functions, no Ray.

For one prompt x with n responses y_1..y_n, their lengths |y_j| (tokens) and correctness
c_j = r(x, y_j, y*):

* shortest rejection sampling: "sample the same question n times (n = 8 in our experiments) and
  select the shortest correct response for supervised fine-tuning":

      y_sft = argmin_{j : c_j = 1} |y_j|        (none when no response is correct)

* DPO pairs: "the shortest correct solution as the positive sample, while longer responses are
  treated as negative samples, including both wrong longer responses and correct longer responses
  (1.5 times longer than the chosen positive sample)":

      y_w = y_sft,   y_l in {y_j : c_j = 0} U {y_j : c_j = 1, |y_j| >= 1.5 |y_w|}

Ties in length go to the response sampled first, so the choice is a function of the samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_LENGTH_RATIO = 1.5
"""A correct response at least this many times longer than the chosen one is a DPO negative."""


@dataclass(frozen=True)
class Sample:
    """One sampled response: its text, its length in tokens and whether its answer is correct."""

    text: str
    num_tokens: int
    correct: bool


def shortest_correct(samples: Sequence[Sample]) -> Sample | None:
    """y_sft = argmin over correct samples of |y| (first sampled among equals); None if none is correct."""
    correct = [s for s in samples if s.correct]
    return min(correct, key=lambda s: s.num_tokens) if correct else None


def preference_pairs(
    samples: Sequence[Sample], length_ratio: float = DEFAULT_LENGTH_RATIO, max_pairs: int = 0
) -> list[tuple[Sample, Sample]]:
    """(y_w, y_l) pairs of one prompt (module docstring); ``max_pairs`` > 0 keeps the first that many.

    No pair when no response is correct; rejected responses keep their sampling order."""
    if length_ratio < 1.0:
        raise ValueError(f"length_ratio must be >= 1 (a negative is at least as long), got {length_ratio}")
    chosen = shortest_correct(samples)
    if chosen is None:
        return []
    rejected = [
        s for s in samples
        if s is not chosen and (not s.correct or s.num_tokens >= length_ratio * chosen.num_tokens)
    ]  # y_l: wrong, or correct and >= 1.5 |y_w|
    pairs = [(chosen, s) for s in rejected]
    return pairs[:max_pairs] if max_pairs > 0 else pairs
