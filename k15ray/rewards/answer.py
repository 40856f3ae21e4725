"""Finding the final answer y in a response (z, y): pure string functions, linear in its length.

The paper scores math by comparing the final answer with the reference y* (section 2.1, "reward
modeling for math"); this module decides *which part* of a long chain of thought is the answer:

1. every ``\\boxed{...}`` / ``\\fbox{...}`` (all of them must agree with y*: boxing several
   candidates is hedging, not an answer);
2. else the text after the last "answer is" / "Answer:" marker, up to the end of its line;
3. else the tail of the last non-empty line, where math-verify picks the last expression.

Each scan is a single pass with ``str.find`` or a regex without nested quantifiers, so a 100 KB
response costs well under a millisecond here; what math-verify then parses is bounded by
``MAX_ANSWER_CHARS`` (boxed/marker) or ``TAIL_CHARS`` (fallback).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

BOX_COMMANDS = ("\\boxed", "\\fbox")
MAX_ANSWER_CHARS = 1000
"""A boxed or marked answer longer than this is not an answer (and would only slow the parser)."""
MAX_DISTINCT_ANSWERS = 4
"""More distinct boxed answers than this is hedging: wrong without asking math-verify."""
TAIL_CHARS = 300
"""How much of the last line the fallback hands to math-verify's own extraction."""

_ANSWER_MARKER = re.compile(r"(?i)\banswer\s{0,3}(?:is\b\s{0,3}:?|:|=)")
_CANON_DROP = re.compile(r"\\left|\\right|\\!|\\,|\\;|\\:|\\ |\s")
_INTEGER = re.compile(r"[+-]?\d{1,60}")

AnswerKind = Literal["boxed", "marker", "tail", "none"]


@dataclass(frozen=True)
class ExtractedAnswer:
    """Where the answer was found (``kind``), the candidate texts, and what math-verify parses
    for each (``snippets``). ``problem`` explains an unusable answer (then ``answers`` is empty)."""

    kind: AnswerKind
    answers: tuple[str, ...] = ()
    snippets: tuple[str, ...] = ()
    problem: str = ""


def canonical(answer: str) -> str:
    """A whitespace- and delimiter-free form for exact comparison: ``" $\\dfrac{1}{2}$. "`` →
    ``"\\frac{1}{2}"``."""
    s = _strip_math(answer)
    s = _CANON_DROP.sub("", s)
    return s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")


def _braced(text: str, open_at: int) -> tuple[str | None, int]:
    """The content of the brace group opening at ``text[open_at] == "{"`` and the index after it;
    ``None`` when unbalanced or longer than ``MAX_ANSWER_CHARS``. ``\\{`` and ``\\}`` are literal."""
    depth = 0
    i = open_at
    limit = min(len(text), open_at + MAX_ANSWER_CHARS + 2)
    while i < limit:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : i], i + 1
        i += 1
    return None, i


def boxed_answers(text: str) -> tuple[list[str], str]:
    """All ``\\boxed{...}``/``\\fbox{...}`` contents in order, and a problem description ("" if
    none). ``\\boxed 5`` (no braces) counts as the single token after it."""
    found: list[tuple[int, str]] = []
    problem = ""
    for command in BOX_COMMANDS:
        start = text.find(command)
        while start != -1:
            i = start + len(command)
            if i < len(text) and (text[i].isalpha()):  # e.g. \boxedfoo: another command
                start = text.find(command, i)
                continue
            while i < len(text) and text[i] == " ":
                i += 1
            if i < len(text) and text[i] == "{":
                content, end = _braced(text, i)
                if content is None:
                    problem = f"{command}{{ at offset {start} is unbalanced or over {MAX_ANSWER_CHARS} chars"
                    end = i + 1
                else:
                    found.append((start, content))
            else:
                token = re.match(r"[^\s$]{1,100}", text[i : i + 100])
                end = i + (token.end() if token else 0)
                if token:
                    found.append((start, token.group(0)))
            start = text.find(command, max(end, start + 1))
    found.sort()
    return [content for _, content in found], problem


def _strip_math(candidate: str) -> str:
    """Drop surrounding math delimiters ($...$, \\(...\\), \\[...\\]) and final periods."""
    s = candidate.strip().rstrip(".").rstrip()
    changed = True
    while changed:
        changed = False
        for left, right in (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
                s = s[len(left) : len(s) - len(right)].strip().rstrip(".").rstrip()
                changed = True
    return s


def extract_answer(response: str) -> ExtractedAnswer:
    """Find the final answer of ``response`` (rules in the module docstring)."""
    boxed, problem = boxed_answers(response)
    if boxed or problem:
        distinct: dict[str, str] = {}
        for content in boxed:
            distinct.setdefault(canonical(content), content)
        if problem and not distinct:
            return ExtractedAnswer("boxed", problem=problem)
        if "" in distinct:
            return ExtractedAnswer("boxed", problem="an empty \\boxed{}")
        if len(distinct) > MAX_DISTINCT_ANSWERS:
            return ExtractedAnswer("boxed", problem=f"{len(distinct)} different boxed answers")
        answers = tuple(distinct.values())
        return ExtractedAnswer("boxed", answers, tuple(f"\\boxed{{{a}}}" for a in answers))
    marker = None
    for marker in _ANSWER_MARKER.finditer(response):  # noqa: B007 (keep the last match)
        pass
    if marker is not None:
        rest = response[marker.end() : marker.end() + MAX_ANSWER_CHARS]
        line = next((ln for ln in rest.split("\n") if ln.strip()), "")
        answer = _strip_math(line)
        if answer:
            return ExtractedAnswer("marker", (answer,), (f"\\boxed{{{answer}}}",))
    stripped = response.rstrip()
    if not stripped:
        return ExtractedAnswer("none", problem="the response is empty")
    last_line = stripped[stripped.rfind("\n") + 1 :][-TAIL_CHARS:]
    return ExtractedAnswer("tail", (last_line.strip(),), (last_line,))


def gold_snippet(reference: str) -> str:
    """What math-verify parses for the reference y*: ``\\boxed{y*}`` unless it is boxed already."""
    if any(command in reference for command in BOX_COMMANDS):
        return reference
    return f"\\boxed{{{_strip_math(reference)}}}"


def fast_verdict(answers: tuple[str, ...], reference: str) -> bool | None:
    """Decide without math-verify where that is certain: identical canonical forms are equal, and
    two plain integers are equal exactly when their values are. ``None``: ask math-verify."""
    ref = canonical(reference)
    if not ref or not answers:
        return None
    undecided = False
    for answer in answers:
        ans = canonical(answer)
        if ans == ref:
            continue
        if _INTEGER.fullmatch(ans) and _INTEGER.fullmatch(ref):
            if int(ans) != int(ref):
                return False  # one wrong candidate makes the whole answer wrong
            continue
        undecided = True
    return None if undecided else True
