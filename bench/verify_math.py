"""Benchmark ``k15ray.rewards.verify_math`` against plain math-verify, in the same run.

Two workloads of (response, reference) pairs shaped like RL rollouts (a few hundred characters of
reasoning, then ``\\boxed{answer}``); half arithmetic (integer answers, as in ``k15/Math-v0``'s
built-in tasks), half needing sympy (fractions vs decimals, factored vs expanded polynomials,
intervals, sets, percentages, radicals):

* ``groups`` (the headline figure): prompts x k = 8 samples, as one iteration scores them (paper
  2.3.2); each sample's final answer is drawn from the prompt's right form, an equivalent other
  form, and two wrong answers, so answers repeat within a group as they do in practice;
* ``distinct``: every pair different, half of them wrong (no repeats to exploit); ``hard_*``
  repeats it on the sympy half only;
* ``labelled_*`` (accuracy, not speed): ``bench/data/verify_pairs.jsonl``, hand-written
  (response, reference, label) pairs labelled by what is mathematically right: ordinary answers
  (integers, fractions, decimals, expressions, intervals, sets, text, near misses) and the hard
  kinds (truncated, hedged, units, degrees, several boxes, complex numbers, where the answer is
  stated). ``labelled_accuracy`` is the share of pairs where ``check_math`` agrees with the label,
  ``labelled_baseline_accuracy`` the same for plain math-verify, ``labelled_by_kind`` both per
  kind as [ours, plain, pairs].

Baseline: plain math-verify in this process, ``verify(parse(\\boxed{reference}), parse(response))``
with its own (signal-based, main-thread-only) timeouts. Ours: ``check_math`` from one thread (one
worker process busy). Figures are verifications per CPU-second ("per core"): for ours the
caller's CPU time plus the worker's CPU time per check. Each side sees every pair for the first
time (its own process, its own caches). Pathological responses run with a 2 s time limit.
``python bench/run.py verify_math``
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("K15RAY_MATH_WORKERS", "1")

N_PAIRS = 400
TIME_LIMIT_S = 2.0
LABELLED_PAIRS = Path(__file__).resolve().parent / "data" / "verify_pairs.jsonl"


def _filler(rng: random.Random) -> str:
    steps = [f"Step {i}: we compute {rng.randint(2, 99)} * {rng.randint(2, 99)} and carry." for i in range(8)]
    return "Let me think about this carefully.\n" + "\n".join(steps) + "\n"


def _symbolic(rng: random.Random, i: int, right: bool) -> tuple[str, str]:
    a, b, c = rng.randint(2, 60), rng.randint(61, 120), rng.randint(121, 200)
    kind = i % 6
    if kind == 0:  # a fraction against a terminating decimal
        den = rng.choice([2, 4, 5, 8, 16, 20, 25])
        num = a * 2 + 1
        ans = f"\\frac{{{num}}}{{{den}}}" if right else f"\\frac{{{num + 1}}}{{{den}}}"
        return ans, f"{num / den}"
    if kind == 1:  # factored vs expanded
        ans = f"(x+{a})(x-{b})" if right else f"(x-{a})(x+{b})"
        return ans, f"x^2{a - b:+d}x-{a * b}"
    if kind == 2:  # intervals
        ans = f"x \\in [{a}, {b})" if right else f"x \\in ({a}, {b}]"
        return ans, f"[{a},{b})"
    if kind == 3:  # sets, in another order
        ans = f"\\{{{c}, {a}, {b}\\}}" if right else f"\\{{{c}, {a}, {b + 1}\\}}"
        return ans, f"\\{{{a},{b},{c}\\}}"
    if kind == 4:  # percentages
        ans = f"{a}\\%" if right else f"{a + 1}\\%"
        return ans, f"{a / 100}"
    ans = f"\\sqrt{{{a * a * 2}}}" if right else f"\\sqrt{{{a * a * 3}}}"  # radicals
    return ans, f"{a}\\sqrt{{2}}"


def make_pairs(n: int, seed: int = 0) -> list[tuple[str, str, bool, bool]]:
    """(response, reference, truly_equivalent, needs_sympy) for n distinct pairs."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        right = i % 4 < 2
        if i % 2 == 0:
            x, y = rng.randint(100, 99999), rng.randint(100, 99999)
            ans, ref, sympy = str(x + y if right else x + y + rng.randint(1, 9)), str(x + y), False
        else:
            (ans, ref), sympy = _symbolic(rng, i // 2, right), True
        pairs.append((f"{_filler(rng)}So the final answer is \\boxed{{{ans}}}.", ref, right, sympy))
    return pairs


def make_groups(n_prompts: int, k: int = 8, seed: int = 0) -> list[tuple[str, str, bool, bool]]:
    """k samples for each of n_prompts prompts; answers drawn from 4 candidates per prompt."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n_prompts):
        if i % 2 == 0:
            x, y = rng.randint(100, 99999), rng.randint(100, 99999)
            ref = str(x + y)
            pool = [(ref, True), (f"{x + y:,}", True), (str(x + y + 1), False), (str(x - y), False)]
        else:
            right_form, ref = _symbolic(rng, i // 2, True)
            wrong_form, _ = _symbolic(random.Random(seed * 7919 + i), i // 2, False)
            pool = [(ref, True), (right_form, True), (wrong_form, False), (f"{ref}+1", False)]
        for _ in range(k):
            ans, truth = rng.choices(pool, weights=[3, 2, 2, 1])[0]
            pairs.append((f"{_filler(rng)}So the final answer is \\boxed{{{ans}}}.", ref, truth, i % 2 == 1))
    return pairs


def _plain(pairs: list[tuple[str, str, bool, bool]]) -> tuple[float, float, int]:
    from math_verify import parse, verify

    start_cpu, start = time.process_time(), time.perf_counter()
    right = 0
    for response, reference, truth, _ in pairs:
        got = bool(verify(parse(f"\\boxed{{{reference}}}"), parse(response)))
        right += got == truth
    return time.process_time() - start_cpu, time.perf_counter() - start, right


def _ours(pairs: list[tuple[str, str, bool, bool]]) -> tuple[float, float, int]:
    from k15ray.rewards import check_math

    worker_cpu = 0.0
    start_cpu, start = time.process_time(), time.perf_counter()
    right = 0
    for response, reference, truth, _ in pairs:
        verdict = check_math(response, reference)
        worker_cpu += verdict.worker_cpu_s
        right += verdict.correct == truth
    return time.process_time() - start_cpu + worker_cpu, time.perf_counter() - start, right


def pathological_latencies() -> dict[str, float]:
    from k15ray.rewards import verify_math

    cases = {
        "100KB_text": "x" * 100_000,
        "100KB_math": "1+" * 50_000 + "1",
        "nested_frac_30": "\\boxed{" + "\\frac{1}{" * 30 + "2" + "}" * 30 + "}",
        "nested_frac_120": "\\boxed{" + "\\frac{1}{" * 120 + "2" + "}" * 120 + "}",
        "nested_braces_5000": "\\boxed{" + "{" * 5000 + "}" * 5000 + "}",
        "power_tower": "\\boxed{9^{9^{9^{9}}}}",
        "huge_power": "\\boxed{2^{10^{10}}}",
    }
    latencies = {}
    for i, (name, response) in enumerate(cases.items()):
        # an uncached check first, so that the worker killed by the previous case has been
        # replaced: the limit bounds the check itself, not a worker's start-up
        verify_math(f"\\boxed{{\\frac{{1}}{{{i + 3}}}}}", str(1 / (i + 3)))
        start = time.perf_counter()
        assert verify_math(response, "5", timeout_s=TIME_LIMIT_S) is False
        latencies[name] = round(time.perf_counter() - start, 3)
    return latencies


def load_labelled(path: Path = LABELLED_PAIRS) -> list[dict[str, Any]]:
    """The labelled pairs: one JSON object per line with kind, response, reference, label, why."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def labelled_accuracy(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Share of pairs where each verifier's verdict equals the label, overall and per kind."""
    from math_verify import parse, verify

    from k15ray.rewards import check_math

    by_kind: dict[str, list[int]] = {}
    for row in rows:
        ours = check_math(row["response"], row["reference"]).correct
        plain = bool(verify(parse(f"\\boxed{{{row['reference']}}}"), parse(row["response"])))
        counts = by_kind.setdefault(row["kind"], [0, 0, 0])
        counts[0] += ours == row["label"]
        counts[1] += plain == row["label"]
        counts[2] += 1
    n = len(rows)
    ours_right = sum(c[0] for c in by_kind.values())
    plain_right = sum(c[1] for c in by_kind.values())
    return {
        "labelled_accuracy": round(ours_right / n, 3),
        "labelled_baseline_accuracy": round(plain_right / n, 3),
        "labelled_accuracy_ratio": round(ours_right / plain_right, 2),
        "labelled_pairs": n,
        "labelled_by_kind": {
            kind: [round(c[0] / c[2], 2), round(c[1] / c[2], 2), c[2]] for kind, c in by_kind.items()
        },
    }


def _compare(pairs: list[tuple[str, str, bool, bool]]) -> dict[str, float]:
    base_cpu, base_wall, base_right = _plain(pairs)
    our_cpu, our_wall, our_right = _ours(pairs)
    n = len(pairs)
    return {
        "value": n / our_cpu,
        "baseline": n / base_cpu,
        "ratio": base_cpu / our_cpu,
        "wall_per_s": n / our_wall,
        "baseline_wall_per_s": n / base_wall,
        "accuracy": our_right / n,
        "baseline_accuracy": base_right / n,
    }


def run() -> dict[str, Any]:
    from k15ray.rewards import verify_math

    warm = make_pairs(48, seed=1)  # import sympy and fill first-use caches on both sides
    _plain(warm)
    _ours(warm)
    groups = _compare(make_groups(N_PAIRS // 8, k=8, seed=10))
    distinct = _compare(make_pairs(N_PAIRS, seed=20))
    hard = _compare([p for p in make_pairs(N_PAIRS, seed=30) if p[3]])
    labelled = labelled_accuracy(load_labelled())
    latencies = pathological_latencies()
    assert verify_math("\\boxed{2}", "2")
    out: dict[str, Any] = {k: round(v, 2 if k == "ratio" else 1) for k, v in groups.items()}
    out["unit"] = "verifications/s per core (k=8 rollout groups)"
    out["accuracy"], out["baseline_accuracy"] = groups["accuracy"], groups["baseline_accuracy"]
    for name, figures in (("distinct", distinct), ("hard", hard)):
        for key in ("value", "baseline", "ratio", "accuracy", "baseline_accuracy"):
            out[f"{name}_{key}"] = round(figures[key], 2 if key != "value" and key != "baseline" else 1)
    out.update(labelled)
    out.update(
        n_pairs=N_PAIRS,
        time_limit_s=TIME_LIMIT_S,
        pathological_latency_s=latencies,
        pathological_max_s=max(latencies.values()),
    )
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
