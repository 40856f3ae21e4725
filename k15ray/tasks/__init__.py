"""Generated, verifiable reasoning tasks with long-CoT solutions (paper sections 2.1 and 2.2).

``generate_prompt_set(n, levels, seed)`` draws distinct arithmetic problems as JSONL-ready records
in the prompt-set schema (``id``, ``question``, ``answer``, ``domain``, ``difficulty``, ``tags``)
plus ``solution``, the long-CoT response used by the SFT warm-up. ``write_splits`` writes a train
split, a held-out split that shares no problem with it, and the SFT file. Everything is seeded.

``style`` picks the solution style (``k15ray.tasks.styles``): ``standard`` (the default, the
quick-start's), ``long`` (variable-length long CoT) or ``short`` (the minimal chain). The problems
drawn do not depend on the style: the same seed gives the same problems and splits in every style.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from k15ray.jsonl import write_jsonl
from k15ray.tasks.arithmetic import LEVELS, Problem, sample_problem, solve
from k15ray.tasks.styles import STYLES, check_style, styled_solution

__all__ = ["LEVELS", "STYLES", "Problem", "generate_prompt_set", "problem_record", "write_splits"]

PROMPT_FIELDS: tuple[str, ...] = ("id", "question", "answer", "domain", "difficulty", "tags")
"""The prompt-set schema shared with the environments (``solution`` is added for SFT)."""

_MAX_TRIES_PER_PROBLEM = 1000


def problem_record(problem: Problem, solution: str) -> dict[str, Any]:
    """The JSONL record of one problem."""
    return {
        "id": f"arith-{problem.key}",
        "question": problem.question,
        "answer": str(problem.answer),
        "domain": "math",
        "difficulty": problem.level,
        "tags": list(problem.tags),
        "solution": solution,
    }


def generate_prompt_set(
    n: int,
    levels: Iterable[int] = LEVELS,
    seed: int = 0,
    exclude: Collection[str] = (),
    mistake_rate: float = 0.15,
    style: str = "standard",
) -> list[dict[str, Any]]:
    """``n`` distinct problems, levels taken in turn from ``levels``, none whose id is in ``exclude``.

    The same arguments always give the same records. ``mistake_rate`` is the fraction of
    ``standard`` solutions that show a caught-and-corrected slip (reflection, paper 2.2);
    ``style`` is the solution style (module docstring).
    """
    check_style(style)
    levels = tuple(levels)
    if n < 0:
        raise ValueError(f"n={n}: the number of problems must be >= 0")
    if not levels or any(lv not in LEVELS for lv in levels):
        raise ValueError(f"levels={levels}: choose a non-empty subset of {list(LEVELS)}")
    if not 0.0 <= mistake_rate <= 1.0:
        raise ValueError(f"mistake_rate={mistake_rate}: must be in [0, 1]")
    rng = random.Random(seed)
    seen = set(exclude)
    records = []
    for i in range(n):
        level = levels[i % len(levels)]
        for _ in range(_MAX_TRIES_PER_PROBLEM):
            problem = sample_problem(level, rng)
            if f"arith-{problem.key}" not in seen:
                break
        else:
            raise ValueError(
                f"level {level} ran out of distinct problems after {i} records; ask for fewer "
                "problems or drop that level"
            )
        solution = solve(problem, rng, mistake_rate)  # drawn in every style: same problems after it
        if style != "standard":
            solution = styled_solution(problem, style, seed)
        record = problem_record(problem, solution)
        seen.add(record["id"])
        records.append(record)
    return records


def write_splits(
    out_dir: str | Path,
    n_train: int,
    n_heldout: int,
    seed: int = 0,
    levels: Iterable[int] = LEVELS,
    style: str = "standard",
) -> dict[str, Path]:
    """Write ``train.jsonl``, ``heldout.jsonl`` (prompt schema) and ``sft.jsonl`` (train + solution).

    The held-out problems are drawn first and excluded from the train draw, so the splits share
    no problem. ``style``: the solutions of ``sft.jsonl`` (the prompt splits do not depend on it).
    Returns the three paths by split name.
    """
    out = Path(out_dir)
    levels = tuple(levels)
    check_style(style)
    heldout = generate_prompt_set(n_heldout, levels, seed=seed + 1_000_003)
    train = generate_prompt_set(n_train, levels, seed=seed, exclude={r["id"] for r in heldout}, style=style)
    paths = {"train": out / "train.jsonl", "heldout": out / "heldout.jsonl", "sft": out / "sft.jsonl"}
    write_jsonl(paths["train"], ({k: r[k] for k in PROMPT_FIELDS} for r in train))
    write_jsonl(paths["heldout"], ({k: r[k] for k in PROMPT_FIELDS} for r in heldout))
    write_jsonl(paths["sft"], train)
    return paths
