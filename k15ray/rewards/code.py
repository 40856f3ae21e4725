"""The code reward: run the response's program on the prompt's stdin/stdout tests.

Paper section 2.1 / 2.3.5: a coding problem's reward is 1 when the program passes all of its test
cases (the paper's rule, the default), else 0; ``partial_credit=True`` gives the fraction of tests
passed instead. The program is the last fenced code block of the response (one tagged with the
language, e.g. ```` ```python ````, is preferred over an untagged one); it runs in
``k15ray.sandbox`` (bubblewrap, resource limits, a reused worker pool).
"""

from __future__ import annotations

import re
from typing import Any

from k15ray.types import Prompt, RewardResult, RewardStatus

LANGUAGE_TAGS: dict[str, tuple[str, ...]] = {
    "python": ("python", "python3", "py"),
    "cpp": ("cpp", "c++", "cc", "cxx"),
}
"""The fence tags recognised for each sandbox language."""

FEEDBACK_CHARS = 300
"""Inputs and outputs in ``details["first_failure"]`` are cut to this many characters."""

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)```", re.DOTALL)
_SANDBOX_STATUS: dict[str, RewardStatus] = {
    "ok": "ok",
    "timeout": "timeout",
    "runtime_error": "runtime_error",
    "memory": "runtime_error",
    "output_limit": "runtime_error",
    "killed": "runtime_error",
}


def extract_code(response: str, language: str = "python") -> str | None:
    """The program in ``response``: the last ```` ```<language> ```` block, else the last fenced
    block; ``None`` when there is none (an unterminated fence does not count)."""
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(response)]
    if not blocks:
        return None
    tags = LANGUAGE_TAGS.get(language, (language,))
    tagged = [code for tag, code in blocks if tag in tags]
    code = tagged[-1] if tagged else blocks[-1][1]
    return code if code.strip() else None


def _cut(text: str) -> str:
    return text if len(text) <= FEEDBACK_CHARS else text[:FEEDBACK_CHARS] + "..."


def code_reward(
    prompt: Prompt,
    response: str,
    partial_credit: bool = False,
    *,
    compare: str = "whitespace",
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    language: str = "python",
) -> RewardResult:
    """The ``RewardFn`` of ``k15/Code-v0``: 1.0 when every test passes, else 0.0 (or the pass
    rate with ``partial_credit``). Never raises: a missing program is ``wrong_format``, a sandbox
    failure ``sandbox_error``. ``details`` holds ``passed``, ``total`` and the first failing test
    (``first_failure``: index, stdin, expected, got, status, stderr), for multi-turn feedback."""
    if not prompt.tests:
        return RewardResult(0.0, False, "error", {"error": f"prompt {prompt.id!r} has no tests"})
    code = extract_code(response, language) if isinstance(response, str) else None
    if code is None:
        return RewardResult(
            0.0, False, "wrong_format", {"problem": f"no ```{language} code block in the response"}
        )
    try:
        from k15ray.sandbox import run_tests

        report = run_tests(
            code,
            prompt.tests,
            compare=compare,  # type: ignore[arg-type]
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            language=language,
        )
    except Exception as err:  # no bubblewrap, a bad limit, a dead pool: a typed result, not a crash
        return RewardResult(0.0, False, "sandbox_error", {"error": f"{type(err).__name__}: {err}"})
    details: dict[str, Any] = {"passed": report.passed, "total": report.total}
    for index, (outcome, test) in enumerate(zip(report.results, prompt.tests, strict=True)):
        if not outcome.passed:
            details["first_failure"] = {
                "index": index,
                "stdin": _cut(test.stdin),
                "expected": _cut(test.expected_stdout),
                "got": _cut(outcome.result.stdout),
                "status": outcome.result.status,
                "stderr": _cut(outcome.result.stderr),
            }
            break
    correct = report.all_passed
    score = 1.0 if correct else (report.pass_rate if partial_credit else 0.0)
    return RewardResult(score, correct, _SANDBOX_STATUS.get(report.status, "error"), details)
