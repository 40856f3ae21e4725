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


def final_answer(response: str) -> str:
    """The response's final answer as the judge's trace quotes it (``\\boxed{}`` or last line)."""
    found = extract_answer(response)
    if found.answers:
        return ", ".join(found.answers)
    lines = [line.strip() for line in response.strip().splitlines() if line.strip()]
    return lines[-1][-40:] if lines else "(none)"


def judge_trace(response: str, reference: str, correct: bool) -> str:
    """The judge's target output for SFT: a one-line check, then the verdict (the label).

    >>> judge_trace("so \\\\boxed{7}", "8", False)
    'Check: the response\\'s final answer is 7; the reference is 8; they differ.\\n{"correct": false}'
    """
    relation = "they agree" if correct else "they differ"
    check = f"Check: the response's final answer is {final_answer(response)}; the reference is {reference}; {relation}."
    return check + "\n" + json.dumps({VERDICT_KEY: correct})


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
