"""Solution styles of the arithmetic tasks: long CoT of variable length, the column chain, one line.

Section 2.4 of the paper (long2short) needs responses whose length varies and a trade-off to move:
a long-CoT model is more accurate but "overthinks", a short-CoT model is cheap but weaker, and the
four long2short methods move the long model's accuracy into fewer tokens. The ``standard`` style
(``k15ray.tasks.arithmetic.solve``, the quick-start's data) has almost fixed length; the three styles
here bracket it:

* ``short``: the one-line chain, ``<think>47+85=132</think>\\boxed{132}``: the result written down
  with no worked steps (mental arithmetic). The short-CoT model of the long2short benchmark: the
  tiny model learns it poorly (4% pass@1 on levels 1-2 after the long model's SFT steps, against
  47% for the long model; docs/long2short.md), so there is a trade-off to beat;
* ``minimal``: the minimal complete chain, the column lines only (for 2+2-2 also the header ``s-c:``
  that names the intermediate sum), then ``\\boxed{answer}``: the part of a long CoT that does the
  work, i.e. what an ideal long2short method keeps (27-40 tokens on levels 1-2);
* ``long``: the column chain plus the cognitive moves of section 2.2, each drawn at random, so
  lengths vary from about 2x to 7x the column chain (mean 3.5-3.7x over levels 1-2 or 1-5;
  ``tests/k15ray/test_tasks.py`` checks that the mean is within 2-4x):

  - planning: a first line naming the operations and the check to come;
  - checking a step: after a column, ``Recheck: 7+5+0=12 ✓`` (probability ``P_RECHECK`` per column);
  - noticing a slip and redoing it: a column first written off by one, caught with ``? No, ``
    (``P_SLIP`` per column), or the whole column pass redone, ``Redo to be sure:`` (``P_REDO`` per
    step);
  - trying a second method: the same result by splitting the second operand into tens and ones
    (``P_SECOND_METHOD`` per step);
  - final verification: ``Check:`` by the inverse operation, always.

The style's randomness comes from its own stream, seeded by the problem (``style_rng``), so the
problems drawn by ``generate_prompt_set`` are the same for every style and every seed's
held-out split is shared by all styles.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from k15ray.config.experiment import SOLUTION_STYLES
from k15ray.models.tokenizer import THINK_END, THINK_START
from k15ray.tasks.arithmetic import Problem, add_columns, mul_columns, sub_columns

STYLES: tuple[str, ...] = SOLUTION_STYLES
"""``standard``: the quick-start's solutions (``arithmetic.solve``); ``long`` and ``short``: here."""

P_RECHECK = 0.2
"""Probability that a column line is followed by a recheck line (long style)."""
P_SLIP = 0.15
"""Probability that a column is first written off by one and corrected (long style)."""
P_REDO = 0.2
"""Probability that a step's whole column pass is written a second time (long style)."""
P_SECOND_METHOD = 0.4
"""Probability that a step's result is confirmed by a second method (long style)."""

_Step = tuple[str, int, int, list[str], int]  # (operator, left, right, column lines, result)
_COLUMNS: dict[str, Callable[[int, int], tuple[list[str], int]]] = {
    "+": add_columns, "-": sub_columns, "×": mul_columns,
}
_INVERSE = {"+": "-", "-": "+", "×": "÷"}
_NAMES = {"+": "add", "-": "subtract", "×": "multiply"}


def check_style(style: str) -> None:
    """Raise ``ValueError`` naming the valid styles unless ``style`` is one."""
    if style not in STYLES:
        raise ValueError(f"style={style!r}: unknown solution style; choose one of {list(STYLES)}")


def style_rng(problem: Problem, seed: int, style: str) -> random.Random:
    """The random stream of one problem's styled solution (independent of the problem draw)."""
    return random.Random(f"{seed}:{style}:{problem.key}")


def _steps(problem: Problem) -> list[_Step]:
    """The operations of ``problem`` in order: one for levels 1-4, two for 2+2-2."""
    key = problem.key
    if problem.level == 5:
        a, rest = key.split("+")
        b, c = rest.split("-")
        s = int(a) + int(b)
        return [_step("+", int(a), int(b)), _step("-", s, int(c))]
    op = {"+": "+", "-": "-", "x": "×"}[next(ch for ch in key if ch in "+-x")]
    a, b = key.replace("x", "+").replace("-", "+").split("+")
    return [_step(op, int(a), int(b))]


def _step(op: str, a: int, b: int) -> _Step:
    lines, r = _COLUMNS[op](a, b)
    return op, a, b, lines, r


def solve_short(problem: Problem) -> str:
    """The one-line chain: the expression and its value, no worked steps, then the answer."""
    expression = problem.key.replace("x", "×")
    return f"{THINK_START}{expression}={problem.answer}{THINK_END}\\boxed{{{problem.answer}}}"


def solve_minimal(problem: Problem) -> str:
    """The minimal complete chain: column lines (and the header of a second step), the answer."""
    out: list[str] = []
    for i, (op, a, b, lines, _) in enumerate(_steps(problem)):
        if i:
            out.append(f"{a}{op}{b}:")  # names the intermediate result the next columns start from
        out.extend(lines)
    return f"{THINK_START}" + "\n".join(out) + f"{THINK_END}\\boxed{{{problem.answer}}}"


def _second_method(op: str, a: int, b: int, r: int) -> str:
    """The result again, another way: split an operand into its hundreds/tens and the rest."""
    if op == "×":
        head, rest = a - a % 100, a % 100
        return f"Also: {head}×{b}={head * b}, {rest}×{b}={rest * b}, {head * b}+{rest * b}={r} ✓"
    tens, ones = b - b % 10, b % 10
    mid = a + tens if op == "+" else a - tens
    return f"Also: {a}{op}{tens}={mid}, {mid}{op}{ones}={r} ✓"


def _slipped(line: str, rng: random.Random) -> str:
    """``7+5+0=13? No, 7+5+0=12``: a column value off by one, caught and rewritten."""
    lhs, rhs = line.split("=", 1)
    value, _, tail = rhs.partition(" ")
    wrong = int(value) + 1 if int(value) == 0 or rng.random() < 0.5 else int(value) - 1
    return f"{lhs}={wrong}{' ' + tail if tail else ''}? No, {line}"


def _long_step(step: _Step, rng: random.Random, header: bool) -> list[str]:
    op, a, b, lines, r = step
    out = [f"{a}{op}{b}:"] if header else []
    for line in lines:
        out.append(_slipped(line, rng) if rng.random() < P_SLIP else line)  # reflection
        if rng.random() < P_RECHECK:
            out.append(f"Recheck: {line} ✓")  # evaluation of one step
    out.append(f"So {a}{op}{b}={r}.")
    if rng.random() < P_REDO:  # redo the whole pass and compare
        out.append("Redo to be sure:")
        out.extend(lines)
        out.append(f"Same: {r} ✓")
    if rng.random() < P_SECOND_METHOD:  # exploration: a second method
        out.append(_second_method(op, a, b, r))
    return out


def solve_long(problem: Problem, rng: random.Random) -> str:
    """A long CoT with the moves of the module docstring, drawn from ``rng``."""
    steps = _steps(problem)
    plan = ", then ".join(_NAMES[op] for op, *_ in steps)
    out = [f"Plan: {plan}, check."]  # planning
    for i, step in enumerate(steps):
        out.extend(_long_step(step, rng, header=i > 0))
    op, a, b, _, r = steps[-1]
    out.append(f"Check: {r}{_INVERSE[op]}{b}={a} ✓")  # final verification: the inverse operation
    assert r == problem.answer, "the column algorithm must reproduce the answer"
    return f"{THINK_START}" + "\n".join(out) + f"{THINK_END}\\boxed{{{problem.answer}}}"


def styled_solution(problem: Problem, style: str, seed: int) -> str:
    """The ``long``, ``minimal`` or ``short`` solution of ``problem`` (``standard`` is ``arithmetic.solve``)."""
    check_style(style)
    if style == "short":
        return solve_short(problem)
    if style == "minimal":
        return solve_minimal(problem)
    if style == "long":
        return solve_long(problem, style_rng(problem, seed, style))
    raise ValueError("style 'standard' is drawn by k15ray.tasks.arithmetic.solve, not here")
