"""Difficulty from the SFT model's pass rate, and the easy-to-hack rule (paper section 2.1).

Difficulty (2.1, "Difficulty Balance"): the SFT model answers each prompt ``k`` = 10 times at a high
sampling temperature; the pass rate

    p(x) = (1 / k) * sum_j r(x, y_j, y*)        r in {0, 1}

is the difficulty proxy: the lower the pass rate, the harder the prompt. ``difficulty_bucket`` turns
p into the integer ``Prompt.difficulty`` (1 = easiest) that the curriculum sampler reads, with
descending ``bucket_edges`` e_1 > e_2 > ...:  difficulty = 1 + #{m : p < e_m}.

Easy to hack (2.1, "Easy-to-hack prompts"): the model is asked to answer with no chain of thought;
when one of N = 8 such tries is correct, the prompt is dropped ("the prompt is easy-to-hack"):

    hackable(x) = any_{j <= N} r(x, y_j^no-CoT, y*)

The pass rate travels with the prompt as the tag ``pass_rate=0.30`` (``pass_rate_tag``), which the
samplers read back (``stored_pass_rate``) to start their success rates s_i from it.
"""

from __future__ import annotations

from collections.abc import Sequence

from k15ray.types import Prompt

PASS_RATE_TAG = "pass_rate="
"""Prefix of the tag that stores a prompt's pass rate, e.g. ``pass_rate=0.30``."""


def pass_rate(correct: Sequence[bool]) -> float:
    """p = (1/k) * sum_j r_j over the k sampled answers.

    >>> pass_rate([True, False, False, True])   # 2 / 4
    0.5
    """
    if not correct:
        raise ValueError("pass_rate: no samples; draw at least one answer per prompt")
    return sum(bool(c) for c in correct) / len(correct)


def difficulty_bucket(p: float, bucket_edges: Sequence[float]) -> int:
    """difficulty = 1 + #{m : p < e_m}; edges descending, so 1 = easiest.

    >>> difficulty_bucket(0.9, (0.7, 0.3)), difficulty_bucket(0.5, (0.7, 0.3)), difficulty_bucket(0.0, (0.7, 0.3))
    (1, 2, 3)
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"pass rate {p} is outside [0, 1]")
    return 1 + sum(p < edge for edge in bucket_edges)


def is_easy_to_hack(no_cot_correct: Sequence[bool], tries: int) -> bool:
    """Whether any of the first ``tries`` no-chain-of-thought answers is correct (N = 8 in the paper).

    >>> is_easy_to_hack([False] * 7 + [True], 8), is_easy_to_hack([False] * 8 + [True], 8)
    (True, False)
    """
    if tries < 1:
        raise ValueError(f"tries = {tries}: use at least 1 (the paper uses N = 8)")
    return any(no_cot_correct[:tries])


def pass_rate_tag(p: float) -> str:
    """The tag that stores p on a prompt: ``pass_rate=0.30`` (two decimals: k is at most 100)."""
    return f"{PASS_RATE_TAG}{p:.2f}"


def stored_pass_rate(prompt: Prompt) -> float | None:
    """The pass rate a curation run stored on ``prompt`` (its last ``pass_rate=`` tag), else None."""
    for tag in reversed(prompt.tags):
        if tag.startswith(PASS_RATE_TAG):
            try:
                value = float(tag[len(PASS_RATE_TAG):])
            except ValueError:
                raise ValueError(
                    f"prompt {prompt.id!r}: tag {tag!r} is not a number; write e.g. pass_rate=0.30"
                ) from None
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"prompt {prompt.id!r}: tag {tag!r} is outside [0, 1]")
            return value
    return None
