"""``k15ray gen-tests``: test cases for code problems from generated inputs (paper section 2.3.5).

1. For each problem, ``inputs_per_problem`` inputs from its generator (CYaRon for the built-in set);
   a generator that raises is reported with the problem id and the problem dropped.
2. Every ground-truth solution runs on every input in the sandbox pool on Ray (``runner``); each
   problem's runs are saved as it finishes, so a rerun resumes.
3. ``agreement.judge_problem``: a case is valid when ceil(0.7 n) solutions agree on its output; a
   problem is kept when ceil(0.9 n) solutions pass all its valid cases.

Writes ``problems.jsonl`` (kept problems in the project's schema, valid cases as ``tests``, plus a
``solution`` that passes them: ``k15/Code-v0`` reads it with ``data_path``), ``report.json`` and
``report.md`` into ``out_dir``. A problem whose solutions crash, time out or disagree everywhere is
reported and dropped, never fatal.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from k15ray.errors import UserError
from k15ray.testgen.agreement import ProblemVerdict, judge_problem
from k15ray.testgen.config import TestGenConfig
from k15ray.testgen.problems import CodeProblem, builtin_problems, load_problems
from k15ray.testgen.runner import RunStore, run_on_ray, runs_fingerprint
from k15ray.types import CodeTest

RUNS_FILE = "runs.jsonl"


def _problems(cfg: TestGenConfig) -> list[CodeProblem]:
    try:
        if cfg.problems == "builtin":
            problems = builtin_problems(cfg.variants_per_family, cfg.families)
        else:
            problems = load_problems(cfg.problems)
    except ValueError as err:
        raise UserError(str(err)) from None
    return problems[: cfg.limit] if cfg.limit else problems


def _inputs(problem: CodeProblem, n: int) -> tuple[list[str], str | None]:
    """The problem's n inputs, or the generator's error (``"case 3: ValueError: ..."``)."""
    inputs = []
    for case in range(n):
        try:
            text = problem.make_input(problem.prompt.id, case)
        except Exception as err:  # a user's generator: reported with the problem id, not fatal
            return [], f"case {case}: {type(err).__name__}: {err}"
        if not isinstance(text, str):
            return [], f"case {case}: the generator returned {type(text).__name__}, not str"
        inputs.append(text)
    return inputs, None


def _ensure_ray(cfg: TestGenConfig) -> None:
    import os

    import ray

    from k15ray.noise import ray_runtime_env

    if not ray.is_initialized():
        ray.init(
            num_cpus=max(os.cpu_count() or 1, cfg.num_actors),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            runtime_env=ray_runtime_env(),
        )


def _kept_record(problem: CodeProblem, inputs: list[str], verdict: ProblemVerdict, max_tests: int) -> dict[str, Any]:
    from k15ray.envs.dataset import prompt_to_record

    valid = verdict.valid_indices[: max_tests or None]
    tests = tuple(CodeTest(inputs[i], verdict.cases[i].expected or "") for i in valid)
    passing = [s for s, ok in zip(problem.solutions, verdict.passing, strict=True) if ok]
    record = prompt_to_record(dataclasses.replace(problem.prompt, tests=tests))
    record["solution"] = passing[0]
    return record


def gen_tests(cfg: TestGenConfig, *, progress: bool = True) -> dict[str, Any]:
    """Generate, run, judge and write (module docstring); returns the report."""
    from k15ray.curation.progress import progress_bar
    from k15ray.jsonl import write_jsonl

    started = time.perf_counter()
    problems = _problems(cfg)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = RunStore(out / RUNS_FILE)
    inputs: dict[str, list[str]] = {}
    generator_errors: dict[str, str] = {}
    jobs = []
    for p in problems:
        inputs[p.prompt.id], error = _inputs(p, cfg.inputs_per_problem)
        if error is not None:
            generator_errors[p.prompt.id] = error
            continue
        fp = runs_fingerprint(p.solutions, inputs[p.prompt.id], cfg.timeout_s)
        if store.get(p.prompt.id, fp) is None:
            jobs.append((p.prompt.id, p.solutions, inputs[p.prompt.id], fp))
    t_run = time.perf_counter()
    if jobs:
        _ensure_ray(cfg)
        with progress_bar(progress, "gen-tests (problems)", len(jobs)) as advance:
            stream = run_on_ray(
                [(pid, sols, ins) for pid, sols, ins, _ in jobs], num_actors=cfg.num_actors,
                sandbox=cfg.sandbox, timeout_s=cfg.timeout_s, memory_mb=cfg.memory_mb,
            )
            for (pid, runs), job in zip(stream, jobs, strict=True):
                store.add(pid, job[3], runs)
                advance(1)
    run_seconds = time.perf_counter() - t_run
    records, verdicts = [], {}
    for p in problems:
        pid = p.prompt.id
        if pid in generator_errors:
            continue
        stored = store.get(pid, runs_fingerprint(p.solutions, inputs[pid], cfg.timeout_s))
        assert stored is not None, "every problem without a generator error has runs"
        verdicts[pid] = v = judge_problem(stored, cfg.min_case_agreement, cfg.min_problem_pass, cfg.min_valid_cases)
        if v.kept:
            records.append(_kept_record(p, inputs[pid], v, cfg.max_tests))
    write_jsonl(out / "problems.jsonl", records)
    executed = sum(len(sols) * len(ins) for _, sols, ins, _ in jobs)
    report = _report(cfg, problems, verdicts, generator_errors, records)
    report["sandbox"] = {
        "problems_run_now": len(jobs),
        "solution_runs": executed,
        "process_launches": sum(len(j[1]) for j in jobs),
        "seconds": round(run_seconds, 2),
        "solution_runs_per_s": round(executed / run_seconds, 1) if jobs and run_seconds > 0 else None,
        "num_actors": cfg.num_actors,
        "containers_per_actor": cfg.sandbox.workers,
    }
    report["seconds"] = round(time.perf_counter() - started, 2)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(_markdown(report))
    return report


def _report(
    cfg: TestGenConfig,
    problems: list[CodeProblem],
    verdicts: dict[str, ProblemVerdict],
    generator_errors: dict[str, str],
    records: list[dict[str, Any]],
) -> dict[str, Any]:
    cases = sum(len(v.cases) for v in verdicts.values())
    valid = sum(len(v.valid_indices) for v in verdicts.values())
    planted = caught = correct_flagged = 0
    for p in problems:
        v = verdicts.get(p.prompt.id)
        if v is None or not v.valid_indices:
            continue
        for s in range(len(p.solutions)):
            if s in p.planted_wrong:
                planted += 1
                caught += not v.passing[s]
            else:
                correct_flagged += not v.passing[s]
    dropped = {pid: v.reason for pid, v in verdicts.items() if not v.kept}
    return {
        "problems": len(problems),
        "problems_kept": len(records),
        "problems_dropped": dict(Counter(_category(r) for r in dropped.values())),
        "dropped_ids": dropped,
        "generator_errors": generator_errors,
        "cases_generated": cases,
        "cases_valid": valid,
        "valid_fraction": round(valid / cases, 4) if cases else 0.0,
        "kept_by_difficulty": dict(sorted(Counter(r["difficulty"] for r in records).items())),
        "planted_wrong_solutions": planted,
        "planted_wrong_caught": caught,
        "correct_solutions_failing": correct_flagged,
        "thresholds": {
            "min_case_agreement": cfg.min_case_agreement, "min_problem_pass": cfg.min_problem_pass,
            "min_valid_cases": cfg.min_valid_cases, "inputs_per_problem": cfg.inputs_per_problem,
        },
    }


def _category(reason: str) -> str:
    """``"3 valid cases (< 5)"`` -> ``"too few valid cases"``; ``"8 of 10 solutions pass ..."`` ->
    ``"too few solutions pass all valid cases"``."""
    if "valid cases (<" in reason:
        return "too few valid cases"
    if "solutions pass" in reason:
        return "too few solutions pass all valid cases"
    return reason


def _markdown(r: dict[str, Any]) -> str:
    s = r["sandbox"]
    lines = [
        "# gen-tests report",
        "",
        f"- problems: {r['problems']}, kept: {r['problems_kept']}, generator errors: {len(r['generator_errors'])}",
        f"- cases generated: {r['cases_generated']}, valid: {r['cases_valid']} ({r['valid_fraction']:.1%})",
        f"- planted wrong solutions caught: {r['planted_wrong_caught']} of {r['planted_wrong_solutions']}; "
        f"correct solutions failing kept cases: {r['correct_solutions_failing']}",
        f"- sandbox: {s['solution_runs']} solution runs in {s['process_launches']} process launches, "
        f"{s['seconds']} s ({s['solution_runs_per_s']} runs/s) on {s['num_actors']} actors",
        f"- time: {r['seconds']} s",
        "",
        "| dropped because | problems |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in r["problems_dropped"].items()),
        *(f"| generator error | {len(r['generator_errors'])} |" for _ in [0] if r["generator_errors"]),
        "",
        "| difficulty | kept |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in r["kept_by_difficulty"].items()),
    ]
    return "\n".join(lines) + "\n"
