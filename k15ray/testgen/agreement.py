"""Which generated test cases and which problems to keep (paper section 2.3.5).

The report's rule for generated test cases: run every ground-truth solution on every generated
input; "a test case is considered valid if at least 7 out of 10 ground truth solutions produce the
same output"; a problem is kept "if at least 9 out of 10 ground truth solutions can pass all the
selected test cases". With n solutions and fractions a = 0.7, b = 0.9 (configurable):

    valid(case)   = max_o #{s : out_s(case) = o, run_s ok} >= ceil(a * n)
    expected(case) = that most frequent output o
    kept(problem) = #{s : out_s(c) = expected(c) for every valid c} >= ceil(b * n)
                    and #{valid cases} >= min_valid_cases

Outputs are compared after ``normalise`` (the coding reward's ``whitespace`` rule: the same tokens),
so a trailing newline or a double space does not split a vote. A run that crashed or timed out votes
for nothing.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

RunOutput = tuple[str, str]
"""One run of one solution on one input: (status, stdout); status ``ok`` when it exited cleanly."""


def normalise(stdout: str) -> str:
    """The output's tokens joined by single spaces (``whitespace`` comparison).

    >>> normalise("1  2\\n3\\n") == normalise("1 2 3")
    True
    """
    return " ".join(stdout.split())


def needed(fraction: float, n: int) -> int:
    """ceil(fraction * n), robust to float error: 0.7 of 10 -> 7, 0.9 of 10 -> 9, 0.7 of 11 -> 8.

    >>> needed(0.7, 10), needed(0.9, 10), needed(0.7, 11)
    (7, 9, 8)
    """
    return math.ceil(fraction * n - 1e-9)


@dataclass(frozen=True)
class CaseVerdict:
    """One generated input: how many solutions agree on the majority output, and whether that is
    enough for a valid test case (``expected`` is then the majority's raw stdout)."""

    agreeing: int
    valid: bool
    expected: str | None


def judge_case(outputs: Sequence[RunOutput], min_agreement: float) -> CaseVerdict:
    """The verdict of one input from every solution's (status, stdout) on it.

    >>> judge_case([("ok", "3\\n")] * 7 + [("ok", "4\\n")] * 3, 0.7)
    CaseVerdict(agreeing=7, valid=True, expected='3\\n')
    >>> judge_case([("ok", "3\\n")] * 6 + [("timeout", "")] * 4, 0.7).valid   # 6 < ceil(0.7 * 10)
    False
    """
    votes = Counter(normalise(out) for status, out in outputs if status == "ok")
    if not votes:
        return CaseVerdict(0, False, None)
    majority, agreeing = votes.most_common(1)[0]
    expected = next(out for status, out in outputs if status == "ok" and normalise(out) == majority)
    return CaseVerdict(agreeing, agreeing >= needed(min_agreement, len(outputs)), expected)


@dataclass(frozen=True)
class ProblemVerdict:
    """A problem's verdict: its valid cases, which solutions pass all of them, and whether it is kept."""

    cases: tuple[CaseVerdict, ...]
    passing: tuple[bool, ...]
    kept: bool
    reason: str

    @property
    def valid_indices(self) -> list[int]:
        return [i for i, c in enumerate(self.cases) if c.valid]


def judge_problem(
    runs: Sequence[Sequence[RunOutput]], min_agreement: float, min_pass: float, min_valid_cases: int = 1
) -> ProblemVerdict:
    """``runs[s][i]``: solution s on input i. Keeps the valid cases, then the problem if at least
    ceil(min_pass * n) solutions pass every valid case (``reason`` says why one is dropped).

    >>> ok = [("ok", "1")] * 3
    >>> judge_problem([ok] * 9 + [[("ok", "1"), ("ok", "2"), ("ok", "1")]], 0.7, 0.9).kept   # 9 of 10 pass
    True
    """
    n = len(runs)
    if n == 0:
        return ProblemVerdict((), (), False, "no ground-truth solutions")
    n_inputs = len(runs[0])
    assert all(len(r) == n_inputs for r in runs), "every solution ran on every input"
    cases = tuple(judge_case([runs[s][i] for s in range(n)], min_agreement) for i in range(n_inputs))
    valid = [i for i, c in enumerate(cases) if c.valid]
    passing = tuple(
        all(
            runs[s][i][0] == "ok" and normalise(runs[s][i][1]) == normalise(cases[i].expected or "")
            for i in valid
        )
        for s in range(n)
    )
    if len(valid) < max(1, min_valid_cases):
        return ProblemVerdict(cases, passing, False, f"{len(valid)} valid cases (< {max(1, min_valid_cases)})")
    if sum(passing) < needed(min_pass, n):
        return ProblemVerdict(cases, passing, False, f"{sum(passing)} of {n} solutions pass all valid cases")
    return ProblemVerdict(cases, passing, True, "kept")
