"""Benchmark ``curation``: does ``k15ray curate`` (paper 2.1) pick a better RL prompt set, and what
does ``k15ray gen-tests`` (paper 2.3.5) cost and catch? (docs/curation.md).

1. The judge: the quick-start's SFT step (``configs/quickstart.yaml``, seed 0, levels 1-2) on its
   own SFT split plus two small crafted families it learns by heart, because the tiny arithmetic
   model has nothing it finds too easy or can answer without its chain of thought (measured: 1+1
   digit sums 2.5% at T = 1.0, no answer at all in 32 tokens), while a pretrained LLM has both:

   * ``Repeat the number 4821.`` answered ``\\boxed{4821}`` with no thinking: *easy to hack*;
   * ``What is the last digit of 4821?`` answered with a one-line thought: *too easy*.

2. One raw pool, its kinds known to this bench only (``pool_labels.json``; the curation reads the
   prompts alone): ``useful`` (held-back problems of the quick-start's train split, levels 1-2),
   ``too_easy`` and ``easy_to_hack`` (fresh numbers of the two families), ``too_hard`` (levels 3-5:
   subtraction, multiplication, 2+2-2 digits, never in the SFT data) and ``excluded_format``
   (multiple-choice, true/false and proof questions in several wordings).
3. ``curate`` (the library function of ``k15ray curate``) on the pool with ``configs/curate.yaml``
   and the judge (k = 10 at T = 1.0, N = 8 no-CoT tries of 32 tokens), keeping pass rates in
   [0.05, 0.9]: some but not all of the 10 samples right, the prompts whose samples' rewards can
   differ from their mean (with the mean baseline of eq. (3), a prompt whose k samples all score the
   same gives no gradient). The fraction of each kind it removed, and why.
4. K15 from the judge on the raw pool and on the curated set, the quick-start's settings, the same
   number of iterations, 2 seeds each; held-out pass@1 gain on the quick-start's held-out split.
5. ``gen-tests`` on the built-in code set (``configs/curate_gen_tests.yaml``).

value = the curated arm's mean gain (points), baseline = the raw arm's mean gain (points),
ratio = value / baseline. Outputs in ``K15_BENCH_DIR`` (default: a temporary directory); a re-run
with the same folder reuses every finished stage (a K15 run without its ``summary.json`` starts over);
``K15_BENCH_UNTIL`` (``judge``, ``raw``) stops after that stage and ``K15_BENCH_MAX_RUNS=N`` after N new
K15 runs, so that each call of the bench stays short. Run: ``python bench/run.py curation``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "configs" / "quickstart.yaml"
CURATE = ROOT / "configs" / "curate.yaml"
GEN_TESTS = ROOT / "configs" / "curate_gen_tests.yaml"
SEEDS = (0, 1)
ITERATIONS = 20
PASS_RATE_RANGE = (0.05, 0.9)
FAMILY_SFT_ROWS = 300  # per crafted family, beside the quick-start's 4,000 SFT rows
POOL = {"useful": 240, "too_easy": 40, "easy_to_hack": 40, "too_hard": 60, "excluded_format": 60}
KINDS = tuple(POOL)
HACK_TEMPLATE = "{question}"  # no instruction: the 32-token budget is what leaves no room for a chain of thought
STAGES = ("judge", "raw", "curated")
_NEW_RUNS_LEFT = [
    int(os.environ.get("K15_BENCH_MAX_RUNS", "-1"))
]  # K15 runs this call may train (-1: all)


class _StageLimit(Exception):
    """``K15_BENCH_MAX_RUNS`` K15 runs were trained by this call: stop here (a re-run continues)."""


# ---------------------------------------------------------------------- crafted items
def _numbers(rng: random.Random, n: int, taken: set[int]) -> list[int]:
    out: list[int] = []
    while len(out) < n:
        x = rng.randint(1000, 9999)
        if x not in taken:
            taken.add(x)
            out.append(x)
    return out


def _repeat(x: int) -> dict[str, Any]:
    return {
        "id": f"repeat-{x}",
        "question": f"Repeat the number {x}.",
        "answer": str(x),
        "domain": "math",
        "difficulty": 1,
        "tags": ["recall"],
        "solution": f"\\boxed{{{x}}}",
    }


def _last_digit(x: int) -> dict[str, Any]:
    d = x % 10
    return {
        "id": f"lastdigit-{x}",
        "question": f"What is the last digit of {x}?",
        "answer": str(d),
        "domain": "math",
        "difficulty": 1,
        "tags": ["digits"],
        "solution": f"<think>The last digit of {x} is {d}.</think>\\boxed{{{d}}}",
    }


def _format_items(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """Multiple-choice, true/false and proof questions about sums, in several wordings each."""
    items = []
    for i in range(n):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        s = a + b
        wrong = [s + 10, s - 1, s + 1]
        options = [s, *wrong]
        rng.shuffle(options)
        letter = "ABCD"[options.index(s)]
        kind, style = ("multiple_choice", "true_false", "proof")[i % 3], (i // 3) % 3
        if kind == "multiple_choice":
            q = [
                f"Which of the following equals {a} + {b}?\n"
                + "\n".join(f"{L}) {o}" for L, o in zip("ABCD", options, strict=True)),
                f"What is {a} + {b}? (A) {options[0]} (B) {options[1]} (C) {options[2]} (D) {options[3]}",
                f"What is {a} + {b}? Options: {', '.join(map(str, options))}. Reply with the option's letter.",
            ][style]
            answer = letter
        elif kind == "true_false":
            shown = s if rng.random() < 0.5 else s + 1
            truth = shown == s
            q, answer = [
                (f"True or false: {a} + {b} = {shown}.", str(truth)),
                (
                    f"Is it correct that {a} + {b} = {shown}? Answer yes or no.",
                    "yes" if truth else "no",
                ),
                (
                    f"Determine whether the statement {a} + {b} = {shown} is true.",
                    str(truth).lower(),
                ),
            ][style]
        else:
            q, answer = [
                (f"Prove that {a} + {b} = {b} + {a}.", ""),
                (f"Show that {2 * a} + {2 * b} is even.", "proof"),
                (f"Explain why the sum of {2 * a + 1} and {2 * b + 1} must be even.", ""),
            ][style]
        items.append(
            {
                "id": f"format-{i}",
                "question": q,
                "answer": answer,
                "domain": "math",
                "difficulty": 1,
                "tags": ["format", kind],
            }
        )
    return items


def build_data(data_dir: Path, out: Path) -> tuple[Path, Path]:
    """The judge's SFT rows (the quick-start's + the two crafted families) and the labelled pool.

    Returns ``(sft file, pool file)``; the labels go to ``out/pool_labels.json``."""
    from k15ray.jsonl import read_jsonl, write_jsonl
    from k15ray.tasks import PROMPT_FIELDS, generate_prompt_set

    rng = random.Random(1234)
    taken: set[int] = set()
    families = [f(x) for f in (_repeat, _last_digit) for x in _numbers(rng, FAMILY_SFT_ROWS, taken)]
    train = [r for _, r in read_jsonl(data_dir / "train.jsonl")]
    sft_rows = [r for _, r in read_jsonl(data_dir / "sft.jsonl")]
    # the useful pool is the end of the train split, held back from the judge's SFT rows
    useful = train[-POOL["useful"] :]
    held_back = {r["id"] for r in useful}
    sft_file = out / "sft_judge.jsonl"
    rows = [r for r in sft_rows if r["id"] not in held_back] + families
    random.Random(0).shuffle(rows)
    write_jsonl(sft_file, rows)

    hard = generate_prompt_set(POOL["too_hard"], levels=(3, 4, 5), seed=7)
    pool: dict[str, list[dict[str, Any]]] = {
        "useful": useful,
        "too_easy": [_last_digit(x) for x in _numbers(rng, POOL["too_easy"], taken)],
        "easy_to_hack": [_repeat(x) for x in _numbers(rng, POOL["easy_to_hack"], taken)],
        "too_hard": hard,
        "excluded_format": _format_items(rng, POOL["excluded_format"]),
    }
    records = [{k: r[k] for k in PROMPT_FIELDS} for kind in KINDS for r in pool[kind]]
    random.Random(1).shuffle(records)
    pool_file = out / "pool.jsonl"
    write_jsonl(pool_file, records)
    labels = {r["id"]: kind for kind in KINDS for r in pool[kind]}
    (out / "pool_labels.json").write_text(json.dumps(labels, indent=1))
    return sft_file, pool_file


# ---------------------------------------------------------------------- stages
def judge_model(base: Path) -> tuple[str, Path, float]:
    """Step 1 and the pool: ``(the judge's model dir, the pool file, SFT minutes)``; reused when done."""
    import dataclasses

    from k15ray.config.experiment import load_experiment
    from k15ray.job import ensure_policy, prepare_data

    judge_dir, minutes_file = base / "judge", base / "judge_sft_minutes.json"
    base.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cfg = prepare_data(load_experiment(QUICKSTART, {"output_dir": str(judge_dir)}))
    sft_file, pool_file = build_data(judge_dir / "data", base)  # the same records every time
    cfg = dataclasses.replace(cfg, sft={**cfg.sft, "data": str(sft_file)})
    model_dir = ensure_policy(cfg, progress=False)
    if not minutes_file.is_file():
        minutes_file.write_text(json.dumps((time.perf_counter() - t0) / 60))
    return model_dir, pool_file, float(json.loads(minutes_file.read_text()))


def curation_stage(base: Path, model_dir: str, pool_file: Path) -> dict[str, Any]:
    """Step 3 (the curate report) and step 5 (the gen-tests report); a finished report is reused."""
    import ray

    from k15ray.config import load_config
    from k15ray.curation.config import CurationConfig
    from k15ray.curation.pipeline import curate
    from k15ray.testgen.config import TestGenConfig
    from k15ray.testgen.pipeline import gen_tests

    reports = {
        "curation": base / "curated" / "report.json",
        "gen_tests": base / "gen_tests" / "report.json",
    }
    if not reports["curation"].is_file():
        overrides = {
            "input": str(pool_file),
            "out_dir": str(base / "curated"),
            "model_dir": model_dir,
            "min_pass_rate": PASS_RATE_RANGE[0],
            "max_pass_rate": PASS_RATE_RANGE[1],
            "hack_template": HACK_TEMPLATE,
        }
        curate(load_config(CurationConfig, CURATE, overrides), progress=False)
    if not reports["gen_tests"].is_file():
        gen_tests(
            load_config(TestGenConfig, GEN_TESTS, {"out_dir": str(base / "gen_tests")}),
            progress=False,
        )
    ray.shutdown()
    return {name: json.loads(path.read_text()) for name, path in reports.items()}


def k15_run(base: Path, arm: str, seed: int, data_path: Path, model_dir: str) -> dict[str, Any]:
    """K15 from the judge on ``data_path`` (a finished run is reused); its figures."""
    from k15ray.config.experiment import load_experiment
    from k15ray.job import train

    out = base / arm / f"seed{seed}"
    if not (out / "summary.json").is_file():
        if _NEW_RUNS_LEFT[0] == 0:
            raise _StageLimit
        _NEW_RUNS_LEFT[0] -= 1
        shutil.rmtree(out, ignore_errors=True)  # a run cut short restarts from its first iteration
        heldout = base / "judge" / "data" / "heldout.jsonl"
        overrides = {
            "seed": seed,
            "output_dir": str(out),
            "data.generate": False,
            "policy.model_dir": model_dir,
            "env.config.data_path": str(data_path),
            "eval.env_config.data_path": str(heldout),
            "run.iterations": ITERATIONS,
            "run.time_budget_minutes": 25,  # a safety stop only: the iterations decide
        }
        train(load_experiment(QUICKSTART, overrides), progress=False)
    summary = json.loads((out / "summary.json").read_text())
    return {
        "seed": seed,
        "before": round(100 * summary["before"]["pass_at_1"], 2),
        "after": round(100 * summary["after"]["pass_at_1"], 2),
        "gain_points": round(summary["gain_points"], 2),
        "iterations": summary["iterations"],
        "rl_minutes": round(summary["rl_seconds"] / 60, 2),
    }


# ---------------------------------------------------------------------- figures
def removal(base: Path, report: dict[str, Any]) -> dict[str, Any]:
    """Per kind of the pool: the fraction the curation removed, and the reasons."""
    labels: dict[str, str] = json.loads((base / "pool_labels.json").read_text())
    dropped: dict[str, str] = report["dropped_ids"]
    by_kind: dict[str, Any] = {}
    for kind in KINDS:
        ids = [i for i, k in labels.items() if k == kind]
        reasons = Counter(dropped[i] for i in ids if i in dropped)
        rates = [report["pass_rates"][i] for i in ids if i in report["pass_rates"]]
        by_kind[kind] = {
            "n": len(ids),
            "removed": round(sum(reasons.values()) / len(ids), 3),
            "reasons": dict(reasons.most_common()),
            "mean_pass_rate": round(statistics.mean(rates), 3) if rates else None,
        }
    return by_kind


def _gen_tests_figures(r: dict[str, Any]) -> dict[str, Any]:
    s = r["sandbox"]
    return {
        "problems": r["problems"],
        "problems_kept": r["problems_kept"],
        "problems_dropped": r["problems_dropped"],
        "cases_generated": r["cases_generated"],
        "cases_valid": r["cases_valid"],
        "valid_fraction": r["valid_fraction"],
        "cases_per_s": round(r["cases_generated"] / s["seconds"], 1) if s["seconds"] else None,
        "solution_runs_per_s": s["solution_runs_per_s"],
        "process_launches": s["process_launches"],
        "wrong_solutions_caught": f"{r['planted_wrong_caught']} of {r['planted_wrong_solutions']}",
        "correct_solutions_failing": r["correct_solutions_failing"],
        "generator_errors": len(r["generator_errors"]),
        "minutes": round(r["seconds"] / 60, 2),
    }


def _arm_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "mean_gain_points": round(statistics.mean(r["gain_points"] for r in runs), 2),
        "seeds": runs,
    }


def run() -> dict[str, Any]:
    base = Path(os.environ.get("K15_BENCH_DIR") or tempfile.mkdtemp(prefix="k15-bench-curation-"))
    until = os.environ.get("K15_BENCH_UNTIL", "curated")
    if until not in STAGES:
        raise SystemExit(f"K15_BENCH_UNTIL={until!r}: choose one of {list(STAGES)}")
    t0 = time.perf_counter()
    model_dir, pool, sft_minutes = judge_model(base)
    stage = curation_stage(base, model_dir, pool)
    curated, report = base / "curated" / "curated.jsonl", stage["curation"]
    figures: dict[str, Any] = {
        "removed_by_kind": removal(base, report),
        "pool": report["prompts_in"],
        "curated": report["prompts_kept"],
        "pass_rate_range": list(PASS_RATE_RANGE),
        "curate_minutes": round(report["seconds"] / 60, 2),
        "curate_answers": report.get("answers"),
        "judge_sft_minutes": round(sft_minutes, 2),
        "gen_tests": _gen_tests_figures(stage["gen_tests"]),
    }
    arms: dict[str, list[dict[str, Any]]] = {"raw": [], "curated": []}
    data = {"raw": pool, "curated": curated}
    wanted = {"judge": (), "raw": ("raw",), "curated": ("raw", "curated")}[until]
    try:
        for seed in SEEDS:  # seed by seed, so that a partial run still pairs the arms
            for arm in wanted:
                arms[arm].append(k15_run(base, arm, seed, data[arm], model_dir))
    except _StageLimit:
        until = "K15_BENCH_MAX_RUNS"
    raw = _arm_figures(arms["raw"]) if arms["raw"] else None
    curated_arm = _arm_figures(arms["curated"]) if arms["curated"] else None
    complete = len(arms["raw"]) == len(arms["curated"]) >= 1  # the arms paired seed by seed
    value = curated_arm["mean_gain_points"] if curated_arm else float("nan")
    baseline = raw["mean_gain_points"] if raw else float("nan")
    result = {
        "value": value,
        "unit": f"points of held-out pass@1 gained by K15 on the curated set ({ITERATIONS} iterations, mean of {len(SEEDS)} seeds)",
        "baseline": baseline,
        "ratio": round(value / baseline, 3) if complete and baseline > 0 else float("nan"),
        "removed": {k: v["removed"] for k, v in figures["removed_by_kind"].items()},
        "raw_arm": raw,
        "curated_arm": curated_arm,
        **figures,
        "seeds_done": {arm: [r["seed"] for r in runs] for arm, runs in arms.items()},
        "stopped_after": until,
        "wall_minutes": round((time.perf_counter() - t0) / 60, 2),
        "outputs": str(base),
    }
    (base / "curation.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(run()))
