"""Finding the final answer y in a response (z, y): pure string functions, linear in its length.

The paper scores math by comparing the final answer with the reference y* (section 2.1, "reward
modeling for math"); this module decides *which part* of a long chain of thought is the answer.
A response must *state* a final answer, in one of three forms (the first that applies wins):

1. ``\\boxed{...}`` / ``\\fbox{...}``: the *final group* of boxes. Boxes are statements and a later
   statement replaces an earlier one (an intermediate result boxed on the way), so the group is
   the last box plus each earlier box that belongs to the same statement: no sentence or line
   break with words in it between them (``x = \\boxed{2}`` ``\\n`` ``x = \\boxed{-3}``), or a later
   sentence that opens with "or"/"and"/"also" or hedges ("maybe", "perhaps", ...). Every distinct
   answer of the group must agree with y* (several different candidates are hedging), unless y*
   is a list of n items (``2, -3``, ``\\{2, -3\\}``): then the group, extended back over earlier
   boxes while it has fewer than n items, is compared with y* as a set.
2. else the last "answer is" / "Answer:" / "Final Answer" heading: the text after it up to the end
   of its sentence, or its leading formula (``$...$``) with any formulas joined to it by "or",
   "and" or a comma; the last such statement wins.
3. else a last line that ends "= X", or "is X." with the period, X a formula (units may follow
   it, nothing else): ``Thus 2 + 2 = 4``, ``\\[ x = \\frac{1}{2} \\]``, ``So the speed is 80 km/h.``

Nothing else is a stated answer (kind ``"none"``, wrong): a response cut off mid-sentence
(``... 3 + 4 = 7 and then we multiply by``) scores 0 whatever numbers it contains, and so does a
last "answer is" line that stops mid-sentence after a number (``The answer is 7 and then``).
A cut exactly after a complete "= X" or "Answer: X" cannot be told from a finished response here.

Each scan of the whole response is a single pass with ``str.find`` or a regex that cannot
backtrack (a few milliseconds for 100 KB); the finer rules read at most ``MAX_ANSWER_CHARS``, and
so does math-verify. ``k15ray.rewards.normalise.normalise_answer`` (units, degree signs, the imaginary
unit) runs on each answer and on y* before math-verify compares them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from k15ray.rewards.normalise import (
    _LATEX_COMMAND,
    MATH_WORDS,
    STOP_WORDS,
    _strip_math,
    normalise_answer,
)

BOX_COMMANDS = ("\\boxed", "\\fbox")
MAX_ANSWER_CHARS = 1000
"""A boxed or marked answer longer than this is not an answer (and would only slow the parser)."""
MAX_DISTINCT_ANSWERS = 4
"""More distinct boxed answers than this is hedging: wrong without asking math-verify."""
TAIL_CHARS = 300
"""How much of the last line the "= X" rule reads."""

_ANSWER_MARKER = re.compile(
    r"(?i)\banswer\s{0,3}(?:is\b\s{0,3}:?|:|=)|\bfinal\s+answer\b[ \t*#:]{0,8}\n"
)
_CANON_DROP = re.compile(r"\\left|\\right|\\!|\\,|\\;|\\:|\\ |\s")
_INTEGER = re.compile(r"[+-]?\d{1,60}")
_SENTENCE_END = re.compile(r"\n|[.!?;](?=\s|$)")
_MATH_SEGMENT = re.compile(
    r"\$\$(.{1,1000}?)\$\$|\$(.{1,1000}?)\$|\\\((.{1,1000}?)\\\)|\\\[(.{1,1000}?)\\\]", re.S
)
_JOINED_SEGMENT = re.compile(
    r"\s{0,3}(?:,|\bor\b|\band\b|,\s{0,3}(?:or|and)\b)\s{0,3}(?=\$|\\\(|\\\[)"
)
_CLAUSE_OPENS_ADDITION = re.compile(r"(?i)^[\W_]{0,10}(?:or|and|also|alternatively|otherwise)\b")
_CLAUSE_HEDGES = re.compile(r"(?i)\b(?:maybe|perhaps|possibly|alternatively|might|could also)\b")
_ENDS_WITH_OPERATOR = re.compile(
    r"(?:[-+*/^_=,(\[{&]|\\(?:times|cdot|div|pm|mp|frac|sqrt|le|ge|leq|geq|in))\s*$"
)
_WORD = re.compile(r"[A-Za-z]{2,}")
_ASSIGNMENT = re.compile(r"^\s*[A-Za-z](?:_\{?\w{1,8}\}?)?\s*=\s*")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_LIST_WORD = re.compile(r"(?<!\s)(?:\s*\\text\{\s*(?:or|and)\s*\}\s*|\s+(?:or|and)\s+)")

AnswerKind = Literal["boxed", "marker", "tail", "none"]


@dataclass(frozen=True)
class ExtractedAnswer:
    """Where the answer was found (``kind``), the candidate texts as written (``answers``), and
    for each the normalised form (``values``), its unit ("" if none) and what math-verify parses
    (``snippets``). ``problem`` explains a missing or unusable answer (then ``answers`` is empty)."""

    kind: AnswerKind
    answers: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
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


def boxes(text: str) -> tuple[list[tuple[int, int, str]], str]:
    """Every ``\\boxed{...}``/``\\fbox{...}`` as (start, end, content) in order, and a problem
    description ("" if none). ``\\boxed 5`` (no braces) counts as the single token after it."""
    found: list[tuple[int, int, str]] = []
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
                    found.append((start, end, content))
            else:
                token = re.match(r"[^\s$]{1,100}", text[i : i + 100])
                end = i + (token.end() if token else 0)
                if token:
                    found.append((start, end, token.group(0)))
            start = text.find(command, max(end, start + 1))
    found.sort()
    return found, problem


def _prose_words(text: str) -> list[str]:
    """The words of ``text`` that are neither LaTeX commands nor mathematics (``\\text{or}`` is)."""
    words = _WORD.findall(_LATEX_COMMAND.sub(" ", text))
    return [
        w for w in words if w.lower() not in MATH_WORDS and (len(w) > 2 or w.lower() in STOP_WORDS)
    ]


def closed(value: str, *, allow_words: bool) -> bool:
    """Is ``value`` (normalised) a complete answer rather than the start of a sentence cut off?
    Balanced brackets, no trailing operator, and no prose words after the maths; plain words
    without any maths (``no solution``) pass only with ``allow_words``."""
    opens = sum(value.count(c) for c in "([{")
    if (
        not value
        or opens != sum(value.count(c) for c in ")]}")
        or _ENDS_WITH_OPERATOR.search(value)
    ):
        return False
    if not _prose_words(value):
        return True
    has_math = any(c.isdigit() for c in value) or "=" in value
    return allow_words and not has_math


def list_items(answer: str) -> list[str]:
    """The items of a list answer (``2, -3``, ``\\{2, -3\\}``, ``x = 2 \\text{ or } x = -3``,
    ``\\pm 2`` has two), each without its ``x =``; a tuple, an interval or ``1,000`` is one item."""
    s = _strip_math(answer)
    if s.startswith("\\{") and s.endswith("\\}"):
        s = s[2:-2]
    elif s[:1] in "([" and s[-1:] in ")]" or _THOUSANDS.fullmatch(s):
        return [s]
    items, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and ch in ",;":
            items.append(s[start:i])
            start = i + 1
    items.append(s[start:])
    items = [part for item in items for part in _LIST_WORD.split(item)]
    items = [_ASSIGNMENT.sub("", item).strip() for item in items if item.strip()]
    if len(items) == 1 and items[0].startswith("\\pm"):
        return [items[0][3:].strip(), "-" + items[0][3:].strip()]
    return items


def _joins(gap: str) -> bool:
    """Do two boxes with ``gap`` between them belong to one statement (rules in the docstring)?"""
    if not _SENTENCE_END.search(gap) or not _prose_words(gap):
        return True
    last_clause = gap[-TAIL_CHARS:]  # the later box's sentence (its last TAIL_CHARS at most)
    ends = list(_SENTENCE_END.finditer(last_clause))
    if ends:
        last_clause = last_clause[ends[-1].end() :]
    return bool(_CLAUSE_OPENS_ADDITION.search(last_clause) or _CLAUSE_HEDGES.search(last_clause))


def _boxed_answers(response: str, found: list[tuple[int, int, str]], n_items: int) -> list[str]:
    """The final group of boxes; for a list reference of ``n_items``, extended back to that many."""
    first = len(found) - 1
    while first > 0 and _joins(response[found[first - 1][1] : found[first][0]]):
        first -= 1
    if n_items > 1:
        count = sum(len(list_items(content)) for _, _, content in found[first:])
        while first > 0 and count < n_items:
            first -= 1
            count += len(list_items(found[first][2]))
    return [content for _, _, content in found[first:]]


def _marker_answers(response: str) -> tuple[list[str], str] | None:
    """The answers after the last "answer is"/"Answer:" marker and a problem ("" if none);
    ``None`` when there is no marker with text after it."""
    marker = None
    for marker in _ANSWER_MARKER.finditer(response):  # noqa: B007 (keep the last match)
        pass
    if marker is None:
        return None
    rest = response[marker.end() : marker.end() + MAX_ANSWER_CHARS]
    offset = len(rest) - len(rest.lstrip())
    line = rest[offset:].split("\n", 1)[0]
    if not line.strip().strip("*#:").strip():
        return None
    last_line = not response[marker.end() + offset + len(line) :].strip()
    line = line.strip().lstrip("*#: ").rstrip()
    segment = _MATH_SEGMENT.match(line)
    if segment:
        answers = [next(g for g in segment.groups() if g is not None)]
        at = segment.end()
        while (joined := _JOINED_SEGMENT.match(line, at)) and (
            more := _MATH_SEGMENT.match(line, joined.end())
        ):
            answers.append(next(g for g in more.groups() if g is not None))
            at = more.end()
    else:
        end = _SENTENCE_END.search(line)
        answers = [line[: end.start()] if end else line]
    answers = [a.strip() for a in answers if _strip_math(a)]
    if not answers:
        return None
    terminated = line.rstrip("* ").endswith((".", "!", "?", "$", ")", "]", "}"))
    if (
        last_line
        and not terminated
        and not closed(normalise_answer(_strip_math(line))[0], allow_words=True)
    ):
        return [], "the last line stops mid-sentence after its 'answer' (cut off?)"
    return answers, ""


def _drop_closing(text: str) -> str:
    """``text`` without trailing space, a final period and one closing math delimiter."""
    text = text.rstrip().rstrip(".")
    for delimiter in ("\\]", "\\)", "$$", "$"):
        if text.endswith(delimiter):
            return text[: -len(delimiter)]
    return text


def _final_line_answer(response: str) -> str | None:
    """X of a last line "... = X" or "... is X." (display delimiters and a final period ignored;
    "is" only before the period that ends the response), or ``None``."""
    body = response[-(MAX_ANSWER_CHARS + TAIL_CHARS) :]
    while (trimmed := _drop_closing(body)) != body:
        body = trimmed
    line = body[body.rfind("\n") + 1 :][-TAIL_CHARS:]
    eq = line.rfind("=")
    if eq > 0 and line[eq - 1] in "<>!":
        return None
    is_ = line.rfind(" is ") if response.rstrip().endswith(".") else -1
    start = max(eq + 1, is_ + 4 if is_ >= 0 else 0)
    if start == 0:
        return None
    x = line[start:].replace("$", " ").replace("\\(", " ").replace("\\)", " ").strip()
    value, _ = normalise_answer(x)
    return x if value and closed(value, allow_words=False) else None


def extract_answer(response: str, reference: str = "") -> ExtractedAnswer:
    """Find the final answer of ``response`` (rules in the module docstring). ``reference`` only
    says how many items a list answer has (rule 1)."""
    found, problem = boxes(response)
    if found or problem:
        if problem and not found:
            return ExtractedAnswer("boxed", problem=problem)
        n_items = len(list_items(reference)) if reference else 1
        group = _boxed_answers(response, found, n_items)
        return _answer("boxed", group, list_answer=n_items > 1 and len(group) > 1)
    marked = _marker_answers(response)
    if marked is not None:
        answers, problem = marked
        return _answer("marker", answers) if answers else ExtractedAnswer("marker", problem=problem)
    x = _final_line_answer(response)
    if x is not None:
        return _answer("tail", [x])
    if not response.strip():
        return ExtractedAnswer("none", problem="the response is empty")
    return ExtractedAnswer(
        "none", problem="no stated final answer (\\boxed{}, 'answer is', or a last line '= X')"
    )


def _answer(kind: AnswerKind, answers: list[str], *, list_answer: bool = False) -> ExtractedAnswer:
    """Normalise the distinct candidates; with ``list_answer``, join them into one set."""
    distinct: dict[str, str] = {}
    for content in answers:
        distinct.setdefault(canonical(content), content)
    if "" in distinct:
        return ExtractedAnswer(
            kind, problem="an empty \\boxed{}" if kind == "boxed" else "an empty answer"
        )
    if list_answer:
        items = {
            canonical(i): normalise_answer(i)[0] for a in distinct.values() for i in list_items(a)
        }
        value = "\\{" + ", ".join(items.values()) + "\\}"
        return ExtractedAnswer(
            kind, tuple(distinct.values()), (value,), ("",), (f"\\boxed{{{value}}}",)
        )
    if len(distinct) > MAX_DISTINCT_ANSWERS:
        return ExtractedAnswer(kind, problem=f"{len(distinct)} different answers")
    normalised = [normalise_answer(a) for a in distinct.values()]
    values = tuple(v for v, _ in normalised)
    return ExtractedAnswer(
        kind,
        tuple(distinct.values()),
        values,
        tuple(u for _, u in normalised),
        tuple(f"\\boxed{{{v}}}" for v in values),
    )


def gold_snippet(reference: str) -> str:
    """What math-verify parses for the reference y*: ``\\boxed{y*}`` (normalised) unless it is
    boxed already."""
    if any(command in reference for command in BOX_COMMANDS):
        return reference
    return f"\\boxed{{{normalise_answer(reference)[0]}}}"


def fast_verdict(values: tuple[str, ...], reference: str) -> bool | None:
    """Decide without math-verify where that is certain: identical canonical forms are equal, and
    two plain integers are equal exactly when their values are. ``None``: ask math-verify."""
    ref = canonical(reference)
    if not ref or not values:
        return None
    undecided = False
    for value in values:
        ans = canonical(value)
        if ans == ref:
            continue
        if _INTEGER.fullmatch(ans) and _INTEGER.fullmatch(ref):
            if int(ans) != int(ref):
                return False  # one wrong candidate makes the whole answer wrong
            continue
        undecided = True
    return None if undecided else True
