"""The test runner of the coding environment: one solution against its stdin/stdout tests.

Paper 2.3.5: a coding prompt's reward comes from running the policy's program on test cases.
``run_tests`` runs the program once per ``CodeTest`` in the sandbox and compares each stdout with
the expected one:

* ``exact``: byte-for-byte equal strings;
* ``whitespace``: equal sequences of whitespace-separated tokens (``a.split() == b.split()``);
* ``float``: equal token counts, each pair equal as strings or, when both parse as numbers,
  ``|a - b| <= float_tol * max(1, |b|)`` (absolute near zero, relative for large values).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from k15ray.sandbox.result import SandboxResult, Status
from k15ray.sandbox.service import RunRequest, Sandbox, default_sandbox
from k15ray.types import CodeTest

Compare = Literal["exact", "whitespace", "float"]
COMPARES: tuple[Compare, ...] = ("exact", "whitespace", "float")


def _floats_match(actual: str, expected: str, float_tol: float) -> bool:
    if actual == expected:
        return True
    try:
        a, b = float(actual), float(expected)
    except ValueError:
        return False
    if math.isnan(a) or math.isnan(b):
        return False
    return abs(a - b) <= float_tol * max(1.0, abs(b))


def compare_output(
    actual: str, expected: str, compare: Compare = "whitespace", float_tol: float = 1e-6
) -> bool:
    """Whether a program's stdout ``actual`` matches ``expected`` under ``compare``.

    >>> compare_output("1 2\\n", "1  2", "whitespace")
    True
    >>> compare_output("0.3333333", "0.333333333", "float", float_tol=1e-6)
    True
    >>> compare_output("1 2\\n", "1 2", "exact")
    False
    """
    if compare == "exact":
        return actual == expected
    got, want = actual.split(), expected.split()
    if compare == "whitespace":
        return got == want
    if compare == "float":
        return len(got) == len(want) and all(
            _floats_match(g, w, float_tol) for g, w in zip(got, want, strict=False)
        )
    raise ValueError(f"compare = {compare!r}: use one of {', '.join(COMPARES)}")


@dataclass(frozen=True)
class TestOutcome:
    """One test: whether it passed and how its run went."""

    __test__ = False  # not a pytest test class

    passed: bool
    result: SandboxResult


@dataclass(frozen=True)
class TestReport:
    """A solution's score on its tests.

    ``status`` is ``ok`` when every run executed to completion (whatever its output), else the
    status of the first run that did not (``timeout``, ``runtime_error``, ...).
    """

    __test__ = False  # not a pytest test class

    passed: int
    total: int
    status: Status
    results: tuple[TestOutcome, ...]

    @property
    def all_passed(self) -> bool:
        return self.total > 0 and self.passed == self.total

    @property
    def pass_rate(self) -> float:
        return self.passed / self.total if self.total else 0.0


def _check_tests(tests: Sequence[CodeTest], compare: str, float_tol: float) -> None:
    if isinstance(tests, (str, bytes)) or not isinstance(tests, Sequence) or not tests:
        raise ValueError("tests must be a non-empty list of CodeTest(stdin, expected_stdout)")
    for i, t in enumerate(tests):
        if not isinstance(t, CodeTest):
            raise ValueError(
                f"tests[{i}] is a {type(t).__name__}: use k15ray.types.CodeTest(stdin, expected_stdout)"
            )
    if compare not in COMPARES:
        raise ValueError(f"compare = {compare!r}: use one of {', '.join(COMPARES)}")
    if isinstance(float_tol, bool) or not isinstance(float_tol, (int, float)) or not float_tol >= 0:
        raise ValueError(f"float_tol = {float_tol!r}: use a tolerance >= 0, e.g. 1e-6")


def run_tests(
    code: str,
    tests: Sequence[CodeTest],
    *,
    compare: Compare = "whitespace",
    float_tol: float = 1e-6,
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    language: str = "python",
    sandbox: Sandbox | None = None,
) -> TestReport:
    """Run ``code`` on every test's stdin and compare its stdout with the expected one.

    Each test is one sandboxed run with the given limits; Python runs spread over the pool's
    workers, a C++ program is compiled once and run on every input in one container. Bad
    arguments raise ValueError; a bad program only lowers the score.
    """
    _check_tests(tests, compare, float_tol)
    sb = sandbox or default_sandbox()
    stdins = [t.stdin for t in tests]
    if language == "python" and len(tests) > 1 and sb.pool.size > 1:
        batch = [RunRequest(code, s, timeout_s, memory_mb, language) for s in stdins]
        results = sb.run_many(batch)
    else:
        results = sb.run_inputs(code, stdins, timeout_s, memory_mb, language)
    outcomes = tuple(
        TestOutcome(r.ok and compare_output(r.stdout, t.expected_stdout, compare, float_tol), r)
        for r, t in zip(results, tests, strict=False)
    )
    status: Status = next((r.status for r in results if not r.ok), "ok")
    return TestReport(sum(o.passed for o in outcomes), len(tests), status, outcomes)
