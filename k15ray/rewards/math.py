"""The math reward: is the response's final answer equivalent to the reference answer?

Paper section 2.1 / 2.3.1: for verifiable problems the reward is r(x, y, y*) ∈ {0, 1}, 1 when
the final answer y matches the reference y*; section 2.3.5 uses the same rule-based verdicts as
labels for the reward models. Equivalence is math-verify's (sympy-based: ``\\frac{1}{2}`` =
``0.5``, ``(a+2)(a-2)`` = ``a^2-4``, intervals, sets, tuples, percentages), after steps of our own:

1. ``answer.extract_answer`` finds the stated final answer (the final group of ``\\boxed{}``,
   "Answer:", or a last line "= X"); a response without one is wrong (``wrong_format``);
2. ``normalise.normalise_answer`` rewrites answer and reference alike: units and degree signs
   split off (``80\\text{ km/h}`` = ``80``, ``45^\\circ`` = ``45``; two different known units
   are wrong), one spelling of the imaginary unit;
3. ``answer.fast_verdict`` settles identical forms and plain integers without sympy;
4. a verdict cache answers an (answer, reference) pair seen before: the k samples of a prompt
   (section 2.3.2) often end in the same answer;
5. otherwise a math-verify worker process decides, under a time limit (``math_pool``), so this is
   safe from any thread or Ray actor and a pathological answer costs at most ``timeout_s``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from k15ray.rewards.answer import (
    AnswerKind,
    extract_answer,
    fast_verdict,
    gold_snippet,
)
from k15ray.rewards.math_pool import default_pool
from k15ray.rewards.normalise import normalise_answer, units_conflict
from k15ray.types import Prompt, RewardResult, RewardStatus

DEFAULT_TIMEOUT_S = 5.0
"""Default time limit of one verification (worker start-up excluded)."""
VERDICT_CACHE_SIZE = 65536
"""How many (answer snippets, reference) verdicts each process remembers (least recent dropped)."""

_cache: OrderedDict[tuple[tuple[str, ...], str], tuple[bool, RewardStatus]] = OrderedDict()
_cache_lock = threading.Lock()


def _cached(key: tuple[tuple[str, ...], str]) -> tuple[bool, RewardStatus] | None:
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
        return hit


def _remember(key: tuple[tuple[str, ...], str], verdict: tuple[bool, RewardStatus]) -> None:
    with _cache_lock:
        _cache[key] = verdict
        if len(_cache) > VERDICT_CACHE_SIZE:
            _cache.popitem(last=False)


@dataclass(frozen=True)
class MathCheck:
    """The full verdict of ``check_math``: ``correct``, why (``status``), which answers were
    compared, where they were found (``kind``), and whether math-verify was needed
    (``via``: ``"fast"``, ``"cache"``, or ``"math-verify"``, which took ``worker_cpu_s`` of CPU)."""

    correct: bool
    status: RewardStatus
    answers: tuple[str, ...] = ()
    kind: AnswerKind = "none"
    via: str = "fast"
    problem: str = ""
    worker_cpu_s: float = 0.0


def check_math(response: str, reference: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> MathCheck:
    """Compare ``response``'s final answer with ``reference``; never raises for bad responses."""
    if not isinstance(response, str) or not isinstance(reference, str):
        raise TypeError(
            f"check_math(response, reference) takes two strings, got "
            f"{type(response).__name__} and {type(reference).__name__}"
        )
    if timeout_s <= 0:
        raise ValueError(f"timeout_s={timeout_s}: must be > 0 seconds")
    found = extract_answer(response, reference)
    if not found.answers:
        return MathCheck(False, "wrong_format", kind=found.kind, problem=found.problem)
    reference_value, reference_unit = normalise_answer(reference)
    if any(units_conflict(unit, reference_unit) for unit in found.units):
        return MathCheck(False, "ok", found.answers, found.kind, "fast", problem="different units")
    verdict = fast_verdict(found.values, reference_value)
    if verdict is not None:
        return MathCheck(verdict, "ok", found.answers, found.kind, "fast")
    gold = gold_snippet(reference)
    key = (found.snippets, gold)
    hit = _cached(key)
    if hit is not None:
        return MathCheck(hit[0], hit[1], found.answers, found.kind, "cache")
    reply = default_pool().check(gold, list(found.snippets), timeout_s)
    status: RewardStatus = reply.status if reply.status in ("ok", "parse_error", "timeout") else "error"  # type: ignore[assignment]
    if status in ("ok", "parse_error"):  # deterministic verdicts only: a timeout may pass later
        _remember(key, (reply.correct, status))
    return MathCheck(
        reply.correct, status, found.answers, found.kind, "math-verify", worker_cpu_s=reply.cpu_s
    )


def verify_math(response: str, reference: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """True when the final answer of ``response`` is mathematically equivalent to ``reference``.

    The answer is the final group of ``\\boxed{}`` (every answer of it must agree, or match a list
    reference as a set), else the text after the last "Answer:"/"the answer is", else X of a last
    line "... = X" or "... is X." (rules in ``k15ray.rewards.answer``). Units and degree signs do
    not count.
    Thread-safe; returns False (never raises) for a missing, cut-off, unparsable, hedged or too
    slow answer.

    >>> verify_math("so the result is \\\\boxed{\\\\frac{1}{2}}", "0.5")
    True
    >>> verify_math("Answer: 7", "8")
    False
    """
    return check_math(response, reference, timeout_s=timeout_s).correct


def math_reward(
    prompt: Prompt, response: str, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> RewardResult:
    """The ``RewardFn`` of ``k15/Math-v0``: score 1.0 for a correct final answer, else 0.0."""
    try:
        verdict = check_math(response, prompt.answer, timeout_s=timeout_s)
    except (TypeError, ValueError) as err:
        return RewardResult(0.0, False, "error", {"error": str(err)})
    # only what the answer determines: no timing, no cache hit/miss (Gymnasium checks that two
    # identical steps give identical info)
    details = {"answer": verdict.answers[-1][:200] if verdict.answers else None}
    if verdict.problem:
        details["problem"] = verdict.problem
    return RewardResult(float(verdict.correct), verdict.correct, verdict.status, details)
