"""Format exclusion (paper section 2.1): questions whose answer can be guessed are left out.

The report: "we exclude some types of questions, such as multi-choice, true/false, and proof-based
questions" from the RL prompt set, because a policy can be rewarded for a lucky guess (a letter, a
yes/no) without reasoning, and because a proof cannot be checked by comparing answers.

``question_format(question, answer)`` names the excluded kind a prompt belongs to and the rule that
caught it, or returns ``None`` for a free-form question. The rules read the question text (every
message's content, for chat questions) and the reference answer; each rule is a regular expression
with a name, so the report can say *why* a prompt was dropped:

============== ===================================================================================
kind           rules (any one is enough)
============== ===================================================================================
multiple_choice at least two option labels in a row (``A)``, ``(B)``, ``C.``, ``D:`` at a line
               start or ``(A) ... (B)`` inline); "which of the following"; an answer that is a
               single option letter A-E while the question lists options
true_false     "true or false", "true/false", "T/F", "yes or no", "determine whether ... true";
               an answer that is one of true / false / yes / no
proof          "prove that", "prove or disprove", "show that", "give a proof", "justify your
               answer with a proof"; an empty answer or one that is itself "proof"
============== ===================================================================================

Code prompts are not checked: their reward runs tests, so a guessed letter or "YES" earns nothing
(and many programs rightly print YES / NO).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

FORMAT_KINDS: tuple[str, ...] = ("multiple_choice", "true_false", "proof")
"""The excluded kinds, in the order their rules are tried."""

_OPTION_LINE = re.compile(r"(?m)^\s*\(?([A-Ea-e])[).:]\s+\S")
_OPTION_INLINE = re.compile(r"\(([A-E])\)\s*\S")

_RULES: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    "multiple_choice": (
        ("which_of_the_following", re.compile(r"\bwhich (one )?of the following\b", re.I)),
        ("choose_option", re.compile(r"\b(choose|select|pick) (the )?(correct|best|right) (option|answer|choice)\b", re.I)),
        ("answer_choices", re.compile(r"\b(answer )?(choices|options)\s*:", re.I)),
    ),
    "true_false": (
        ("true_or_false", re.compile(r"\btrue\s*(or|/)\s*false\b", re.I)),
        ("t_f", re.compile(r"\(\s*T\s*/\s*F\s*\)|\bT/F\b")),
        ("yes_or_no", re.compile(r"\byes\s*(or|/)\s*no\b", re.I)),
        ("whether_true", re.compile(r"\b(determine|decide|state) whether\b.{0,80}\b(true|false|correct|holds)\b", re.I | re.S)),
    ),
    "proof": (
        ("prove_that", re.compile(r"\bprove\b", re.I)),
        ("show_that", re.compile(r"\bshow that\b", re.I)),
        ("give_a_proof", re.compile(r"\b(give|write|provide|present) (a|the) (rigorous )?proof\b", re.I)),
    ),
}
_TRUE_FALSE_ANSWERS = frozenset({"true", "false", "yes", "no", "t", "f"})
_OPTION_ANSWER = re.compile(r"^\(?[A-Ea-e]\)?$")


@dataclass(frozen=True)
class FormatMatch:
    """Why a prompt is excluded: its ``kind`` (one of ``FORMAT_KINDS``) and the ``rule`` that fired."""

    kind: str
    rule: str


def question_text(question: str | Sequence[Mapping[str, str]]) -> str:
    """The text the rules read: the question, or every chat message's content, one per line."""
    if isinstance(question, str):
        return question
    return "\n".join(str(m.get("content", "")) for m in question)


def _has_option_labels(text: str) -> bool:
    """Two or more consecutive option labels (A then B, ...) at line starts, or inline ``(A) (B)``."""
    for pattern in (_OPTION_LINE, _OPTION_INLINE):
        letters = {m.group(1).upper() for m in pattern.finditer(text)}
        if {"A", "B"} <= letters:
            return True
    return False


def question_format(question: str | Sequence[Mapping[str, str]], answer: str = "") -> FormatMatch | None:
    """The excluded kind of a question (multiple choice, true/false, proof) and the rule, or None.

    >>> question_format("Is 7 prime? Answer true or false.", "true")
    FormatMatch(kind='true_false', rule='true_or_false')
    >>> question_format("What is 2 + 3?", "5") is None
    True
    """
    text = question_text(question)
    reference = answer.strip().strip(".").strip()
    if _has_option_labels(text):
        return FormatMatch("multiple_choice", "option_labels")
    for kind in FORMAT_KINDS:
        for rule, pattern in _RULES[kind]:
            if pattern.search(text):
                return FormatMatch(kind, rule)
    if reference.lower() in _TRUE_FALSE_ANSWERS:
        return FormatMatch("true_false", "answer_true_false")
    if _OPTION_ANSWER.match(reference) and re.search(r"\boptions?\b|\bchoices?\b", text, re.I):
        return FormatMatch("multiple_choice", "answer_option_letter")
    if not reference or reference.lower() in {"proof", "q.e.d.", "qed"}:
        return FormatMatch("proof", "no_checkable_answer")
    return None
