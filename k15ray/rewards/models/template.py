"""Text formats of the model reward models (paper section 2.3.5): their input, the judge's trace,
and the strict parsing of the judge's JSON verdict.

Both reward models read one text made of the question x, the reference answer y* and the
response y (``rm_input_text``). The chain-of-thought judge then writes a short check and ends
with its verdict as the last JSON object of its output, ``{"correct": true}`` or
``{"correct": false}``; ``parse_verdict`` reads that object and nothing else.

>>> parse_verdict('Check: 4 = 4; they agree.\\n{"correct": true}')
True
>>> parse_verdict('{"correct": true} on second thought {"correct": false}')
False
>>> parse_verdict('no verdict') is None
True
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from k15ray.rewards.answer import extract_answer
from k15ray.types import Prompt

RM_TEMPLATE = "Question: {question}\nReference answer: {reference}\nResponse: {response}\nVerdict:"
"""The one input text of both reward models. Long inputs are cut from the left (the question's
start goes first), so the response's final answer, which decides the verdict, is always kept."""

VERDICT_KEY = "correct"
"""The judge's verdict: ``{"correct": true|false}``, the last JSON object of its output."""


def question_text(prompt: Prompt) -> str:
    """The question of ``prompt`` as plain text (chat messages joined by newlines)."""
    if isinstance(prompt.question, str):
        return prompt.question
    return "\n".join(str(m.get("content", "")) for m in prompt.question)


def rm_input_text(question: str, reference: str, response: str) -> str:
    """``RM_TEMPLATE`` filled in: what the value head scores and what the judge continues."""
    return RM_TEMPLATE.format(question=question, reference=reference, response=response)


def final_answer(response: str, reference: str = "") -> str:
    """The response's final answer as the judge's trace quotes it (``\\boxed{}`` or last line);
    ``reference`` says how many items a list answer has, as for the verifier."""
    found = extract_answer(response, reference)
    if found.answers:
        return ", ".join(found.answers)
    lines = [line.strip() for line in response.strip().splitlines() if line.strip()]
    return lines[-1][-40:] if lines else "(none)"


ANSWER_WIDTH = 6
"""Both strings of an answer comparison are padded with ``_`` to at least this many characters, so
that short answers always give the same shape of check."""


def answer_pairs(answer: str, reference: str) -> list[tuple[str, str]]:
    """``answer`` and ``reference`` side by side, character by character: both left-aligned and
    padded with ``_`` to the longer one's length (at least ``ANSWER_WIDTH``).

    >>> answer_pairs("132", "122")[:4]
    [('1', '1'), ('3', '2'), ('2', '2'), ('_', '_')]
    """
    width = max(ANSWER_WIDTH, len(answer), len(reference))
    return list(zip(answer.ljust(width, "_"), reference.ljust(width, "_"), strict=True))


def judge_trace(response: str, reference: str, correct: bool) -> str:
    """The judge's target output for SFT: its check, then the verdict (the label).

    The check quotes the response's final answer beside the reference one character at a time,
    each pair followed by ``=`` (same) or ``x`` (different): a comparison made of steps that a
    small model can take one at a time (two adjacent characters each), instead of comparing two
    numbers written far apart in one step. When the verifier's label and the characters disagree
    (an equal value written differently, or the same characters judged wrong), the relation line
    says so, so the trace never contradicts its verdict.

    >>> print(judge_trace("so \\\\boxed{132}", "122", False))
    Check: 11= 32x 22= __= __= __=
    They differ.
    {"correct": false}
    """
    pairs = answer_pairs(final_answer(response, reference), reference)
    same = all(a == b for a, b in pairs)
    check = " ".join(f"{a}{b}{'=' if a == b else 'x'}" for a, b in pairs)
    if correct:
        relation = "They agree." if same else "They differ in form but are the same answer."
    else:
        relation = "They differ." if not same else "They look the same but the response is not right."
    return f"Check: {check}\n{relation}\n" + json.dumps({VERDICT_KEY: correct})


def value_input_text(question: str, reference: str, response: str) -> str:
    """What the value head scores: ``rm_input_text`` with one more line before ``Verdict:``, the
    response's final answer and the reference interleaved character by character
    (``answer_pairs``), so that the head's last token can compare neighbours instead of two
    numbers hundreds of characters apart. Only a layout: the head still learns the comparison,
    and the line is built from x, y* and y alone.

    >>> value_input_text("2+3?", "5", "so \\\\boxed{6}").splitlines()[-2:]
    ['Answer vs reference: 65 __ __ __ __ __', 'Verdict:']
    """
    pairs = " ".join(a + b for a, b in answer_pairs(final_answer(response, reference), reference))
    return RM_TEMPLATE.format(question=question, reference=reference, response=response).removesuffix(
        "Verdict:") + f"Answer vs reference: {pairs}\nVerdict:"


def parse_verdict(text: str) -> bool | None:
    """The boolean under ``"correct"`` in the LAST JSON object of ``text``; None when there is no
    JSON object, when a ``{`` after the last one starts a malformed object, or when its
    ``correct`` is missing or not a JSON boolean.

    Strict on purpose: an earlier verdict that the judge went on to revise never counts, and a
    broken final verdict is not replaced by an earlier one.
    """
    decoder = json.JSONDecoder()
    last: object = None
    last_end = -1
    i = text.find("{")
    while i >= 0:
        try:
            value, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            i = text.find("{", i + 1)
            continue
        last, last_end = value, end
        i = text.find("{", end)
    if last_end < 0 or "{" in text[last_end:] or not isinstance(last, Mapping):
        return None
    verdict = last.get(VERDICT_KEY)
    return verdict if isinstance(verdict, bool) else None
