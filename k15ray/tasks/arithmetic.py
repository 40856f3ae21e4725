"""Column-arithmetic problems with long chain-of-thought solutions (paper section 2.2).

The warm-up data of section 2.2 "encapsulates key cognitive processes ... planning, evaluation,
reflection, and exploration". Each solution here shows them at a scale a 1 M-parameter model
can learn in CPU-minutes:

* planning: a first line that says how the problem will be solved;
* step-by-step computation: one line per digit column, least significant first, carrying in the
  previous column's tens digit (a borrow is written out as ``b1``);
* reflection: with probability ``mistake_rate`` one column is first written with a wrong sum,
  then caught ("? No, ...") and recomputed;
* evaluation: a final check by the inverse operation, then the answer in ``\\boxed{}``.

Difficulty levels (the ``difficulty`` label that curriculum sampling, paper 2.3.4, reads):

====== ============================== =====================
level  problem                        distinct problems
====== ============================== =====================
1      2-digit + 2-digit              8,100
2      3-digit + 3-digit              810,000
3      3-digit - 3-digit (no negative) about 405,000
4      3-digit x 1-digit (2..9)       7,200
5      2-digit + 2-digit - 2-digit    about 700,000
====== ============================== =====================
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from k15ray.models.tokenizer import THINK_END, THINK_START

LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Problem:
    """One arithmetic problem: ``key`` identifies it (train and held-out splits share no key)."""

    level: int
    key: str
    question: str
    answer: int
    tags: tuple[str, ...]


def _digits(n: int, width: int) -> list[int]:
    """Digits of ``n``, least significant first, padded with zeros to ``width``."""
    return [(n // 10**i) % 10 for i in range(width)]


def _slip(rng: random.Random, value: int) -> int:
    """A plausible wrong value for a column (off by one), never negative."""
    return value + 1 if value == 0 or rng.random() < 0.5 else value - 1


def _column_lines(lines: list[str], slip_at: int, rng: random.Random) -> list[str]:
    """Insert a caught-and-corrected slip into column line ``slip_at`` (-1: none).

    A column line reads ``"7+5+0=12"``; the slip turns it into ``"7+5+0=13? No, 7+5+0=12"``.
    """
    if slip_at < 0 or slip_at >= len(lines) or "=" not in lines[slip_at]:
        return lines
    line = lines[slip_at]
    lhs, rhs = line.split("=", 1)
    value_text = rhs.split(" ", 1)[0]
    if not value_text.lstrip("-").isdigit():
        return lines
    wrong = _slip(rng, int(value_text))
    out = list(lines)
    out[slip_at] = f"{lhs}={wrong}? No, {line}"
    return out


def add_columns(a: int, b: int) -> tuple[list[str], int]:
    """Column addition lines for a + b and the sum."""
    width = max(len(str(a)), len(str(b)))
    carry, lines = 0, []
    for da, db in zip(_digits(a, width), _digits(b, width), strict=True):
        s = da + db + carry
        lines.append(f"{da}+{db}+{carry}={s}")  # the carry is the tens digit of s
        carry = s // 10
    return lines, a + b


def sub_columns(a: int, b: int) -> tuple[list[str], int]:
    """Column subtraction lines for a - b (a >= b) and the difference."""
    assert a >= b, "the generators only ask for non-negative differences"
    width = len(str(a))
    borrow, lines = 0, []
    for da, db in zip(_digits(a, width), _digits(b, width), strict=True):
        d = da - db - borrow
        if d >= 0:
            lines.append(f"{da}-{db}-{borrow}={d} b0")
            borrow = 0
        else:
            lines.append(f"1{da}-{db}-{borrow}={d + 10} b1")  # borrowed ten
            borrow = 1
    return lines, a - b


def mul_columns(a: int, b: int) -> tuple[list[str], int]:
    """Column multiplication lines for a x b (b one digit) and the product."""
    carry, lines = 0, []
    for da in _digits(a, len(str(a))):
        p = da * b + carry
        lines.append(f"{da}×{b}+{carry}={p}")  # the carry is the tens digit of p
        carry = p // 10
    return lines, a * b


def _number(rng: random.Random, n_digits: int) -> int:
    return rng.randint(10 ** (n_digits - 1), 10**n_digits - 1)


def sample_problem(level: int, rng: random.Random) -> Problem:
    """Draw one problem of ``level`` (1..5) from ``rng``."""
    if level in (1, 2):
        a, b = _number(rng, level + 1), _number(rng, level + 1)
        return Problem(level, f"{a}+{b}", f"What is {a} + {b}?", a + b, ("arithmetic", "addition"))
    if level == 3:
        a, b = _number(rng, 3), _number(rng, 3)
        a, b = max(a, b), min(a, b)
        return Problem(level, f"{a}-{b}", f"What is {a} - {b}?", a - b, ("arithmetic", "subtraction"))
    if level == 4:
        a, b = _number(rng, 3), rng.randint(2, 9)
        return Problem(level, f"{a}x{b}", f"What is {a} × {b}?", a * b, ("arithmetic", "multiplication"))
    if level == 5:
        a, b = _number(rng, 2), _number(rng, 2)
        c = rng.randint(10, min(99, a + b))
        return Problem(
            level, f"{a}+{b}-{c}", f"What is {a} + {b} - {c}?", a + b - c,
            ("arithmetic", "addition", "subtraction", "multi-step"),
        )
    raise ValueError(f"unknown difficulty level {level}; valid levels are {list(LEVELS)}")


def _operands(problem: Problem) -> list[int]:
    return [int(x) for x in problem.key.replace("x", "+").replace("-", "+").split("+")]


def solve(problem: Problem, rng: random.Random, mistake_rate: float = 0.15) -> str:
    """The long-CoT response for ``problem``: thinking, then ``\\boxed{answer}``.

    ``rng`` decides whether (and where) a caught-and-corrected slip appears.
    """
    ops = _operands(problem)
    steps: list[tuple[str, list[str], str, str]] = []  # (header, column lines, result, check)
    if problem.level in (1, 2):
        a, b = ops
        lines, r = add_columns(a, b)
        plan = "Plan: add columns right to left."
        steps.append(("", lines, f"So {a}+{b}={r}.", f"Check: {r}-{b}={a} ✓"))
    elif problem.level == 3:
        a, b = ops
        lines, r = sub_columns(a, b)
        plan = "Plan: subtract columns right to left."
        steps.append(("", lines, f"So {a}-{b}={r}.", f"Check: {r}+{b}={a} ✓"))
    elif problem.level == 4:
        a, b = ops
        lines, r = mul_columns(a, b)
        plan = f"Plan: multiply digits by {b} right to left."
        steps.append(("", lines, f"So {a}×{b}={r}.", f"Check: {r}÷{b}={a} ✓"))
    else:
        a, b, c = ops
        plan = f"Plan: first {a}+{b}, then subtract {c}."
        lines1, s = add_columns(a, b)
        lines2, r = sub_columns(s, c)
        steps.append((f"{a}+{b}:", lines1, f"So {a}+{b}={s}.", ""))
        steps.append((f"{s}-{c}:", lines2, f"So {s}-{c}={r}.", f"Check: {r}+{c}={s} ✓"))
    slip_step = rng.randrange(len(steps)) if rng.random() < mistake_rate else -1
    out = [plan]
    for i, (header, lines, result, check) in enumerate(steps):
        if header:
            out.append(header)
        slip_at = rng.randrange(len(lines)) if i == slip_step else -1
        out.extend(_column_lines(lines, slip_at, rng))
        out.append(result)
        if check:
            out.append(check)
    assert r == problem.answer, "the column algorithm must reproduce the answer"
    return f"{THINK_START}" + "\n".join(out) + f"{THINK_END}\\boxed{{{problem.answer}}}"
