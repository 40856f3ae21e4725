"""Normalising a stated answer before math-verify compares it with the reference (paper 2.1).

``normalise_answer`` rewrites an answer and the reference y* alike: it drops units and the words
around a number (``80 km/h``, ``8\\,\\text{inches}``, ``\\text{8 inches}``), degree signs
(``45^\\circ``, ``45°``) and writes the imaginary unit apart from its coefficient, so that math-verify
sees ``4 i`` as a product and not a new symbol. ``units_conflict`` tells two different units apart
(``80 m/s`` is not ``80 km/h``). Pure string functions; ``k15ray.rewards.answer`` finds the answer.
"""

from __future__ import annotations

import re

_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")

MATH_WORDS = frozenset(
    {
        "pi", "e", "i", "sqrt", "infty", "inf", "infinity", "sin", "cos", "tan", "cot", "sec", "csc",
        "log", "ln", "exp", "mod", "gcd", "lcm", "max", "min", "arcsin", "arccos", "arctan", "sinh",
        "cosh", "tanh", "det"
    }
)
"""Letter runs that are mathematics, never a unit or prose."""
STOP_WORDS = frozenset(
    {
        "and", "or", "but", "then", "so", "we", "it", "is", "are", "was", "be", "to", "the", "a",
        "an", "of", "by", "for", "with", "if", "when", "which", "that", "this", "because", "since",
        "as", "at", "on", "from", "into", "than", "not", "no", "yes", "each", "all", "any", "there",
        "here", "where", "thus", "hence", "therefore", "now", "next", "let", "get", "gives", "equals",
        "plus", "minus", "times", "over", "divided", "multiply", "add", "subtract", "more", "less",
        "answer", "final", "total", "only", "also", "first", "second"
    }
)
"""Words that make a clause: after a number they mean a sentence goes on, not a unit."""


def _strip_math(candidate: str) -> str:
    """Drop surrounding math delimiters ($...$, \\(...\\), \\[...\\]), markdown bold and final
    periods."""
    s = candidate.strip().strip("*").strip().rstrip(".").rstrip()
    changed = True
    while changed:
        changed = False
        for left, right in (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
                s = s[len(left) : len(s) - len(right)].strip().rstrip(".").rstrip()
                changed = True
    return s


_DEGREE = re.compile(
    r"(?:\^\s*\{?\s*\\circ\s*\}?|°|\\degree\b|\\textdegree\b)\s*(?:\\(?:text|mathrm)\{\s*[CF]\s*\}|[CF](?![A-Za-z]))?"
)
_IMAGINARY_COMMAND = re.compile(r"\\mathrm\{i\}|\\text\{i\}|\\operatorname\{i\}|\\imath\b")
_DIGIT_I = re.compile(r"(?<=[\d.])i(?![A-Za-z])")
_WRAPPED_NUMBER = re.compile(r"\\(?:text|mbox|textrm|mathrm|textnormal)\s*\{\s*([-+]?\d[^{}]*)\}")
_PERCENT_WORD = re.compile(r"(?i)(?:\\text\{\s*)?\bper\s?cent\s*\}?$")
_UNIT_SEPARATOR = r"(?:\\[,;:! ]|~|\s)"
_TRAILING_UNIT = re.compile(
    r"(?:"
    + _UNIT_SEPARATOR
    + r"*\\(?:text|mathrm|mbox|textrm|textnormal|operatorname)\s*\{([^{}]{1,40})\}"
    r"|"
    + _UNIT_SEPARATOR
    + r"+([A-Za-z]{1,20}(?:\^\{?-?\d\}?)?(?:/[A-Za-z]{1,20}(?:\^\{?-?\d\}?)?)*\.?))\s*$"
)
SINGLE_LETTER_UNITS = frozenset(["m", "g", "s", "h"])
"""One-letter words taken for units (metre, gram, second, hour); other letters are variables."""
_UNIT_ALIASES = {
    alias: group.split()[0]
    for group in (
        "mm millimeter millimeters", "cm centimeter centimeters centimetre centimetres",
        "m meter meters metre metres", "km kilometer kilometers kilometre kilometres",
        "in inch inches", "ft foot feet", "yd yard yards", "mi mile miles",
        "s sec secs second seconds", "min mins minute minutes", "h hr hrs hour hours",
        "km/h kmh kph km/hr kilometersperhour kilometresperhour", "m/s meterspersecond",
        "mph mi/h milesperhour", "g gram grams", "kg kilogram kilograms", "lb lbs pound pounds",
        "deg degree degrees", "dollar dollars", "cent cents",
    )
    for alias in group.split()
}
"""Spellings of a unit (its first name): only units found here are compared (``units_conflict``)."""


def _unit_word(word: str) -> bool:
    pieces = [p for p in re.split(r"[/^{}\-\d.]+", word.lower()) if p]
    return bool(pieces) and all(
        p not in STOP_WORDS and p not in MATH_WORDS and (len(p) > 1 or p in SINGLE_LETTER_UNITS)
        for p in pieces
    )


def _strip_unit(value: str) -> tuple[str, str]:
    """``"80 km/h"`` → ``("80", "km/h")`` when the rest is a number; else ``(value, "")``."""
    unit_words: list[str] = []
    rest = value
    for _ in range(4):
        tail = rest[-120:]
        m = _TRAILING_UNIT.search(tail)
        if m is None:
            break
        words = (m.group(1) or m.group(2)).split()
        if not words or not all(_unit_word(w) for w in words):
            break
        unit_words[:0] = words
        rest = rest[: len(rest) - len(tail) + m.start()].rstrip()
    numeric = _LATEX_COMMAND.sub("", rest)
    if not unit_words or re.search(r"[A-Za-z]", numeric) or not re.search(r"\d", numeric):
        return value, ""
    return rest, " ".join(unit_words)


def normalise_answer(answer: str) -> tuple[str, str]:
    """(value, unit) of an answer, for math-verify: math delimiters dropped, degree signs dropped
    (``45^\\circ`` → ``45``), words after a number split off as its unit (``80\\text{ km/h}``,
    ``\\text{8 inches}`` → ``8``, unit ``inches``), and the imaginary unit written one way
    (``\\frac{3-4i}{5}`` → ``\\frac{3-4 i}{5}``: latex2sympy reads ``4i`` and ``\\frac{4}{5}i`` as
    two different symbols i)."""
    value = _strip_math(answer)
    value = _DEGREE.sub("", value)
    value = _IMAGINARY_COMMAND.sub("i", value)
    value = _DIGIT_I.sub(" i", value)
    wrapped = _WRAPPED_NUMBER.fullmatch(value)
    if wrapped:
        value = wrapped.group(1).strip()
    percent = _PERCENT_WORD.search(value[-40:])
    if percent and re.search(r"\d", value):
        value = value[: len(value) - len(value[-40:]) + percent.start()].rstrip() + "\\%"
    eq = value.rfind("=")
    head, rhs = value[: eq + 1], value[eq + 1 :]
    rhs, unit = _strip_unit(rhs)
    return (head + rhs).strip(), unit


def units_conflict(unit: str, reference_unit: str) -> bool:
    """True when both answers carry a known unit and the units differ (``80 m/s`` vs ``80 km/h``);
    a unit on one side only, or one not in the table, is not checked."""
    keys = [
        _UNIT_ALIASES.get(re.sub(r"[\s.{}\\]|text|mathrm", "", u.lower()))
        for u in (unit, reference_unit)
    ]
    return keys[0] is not None and keys[1] is not None and keys[0] != keys[1]
