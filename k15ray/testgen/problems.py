"""Code problems with ground-truth solutions and an input generator: built-in or from a file.

``builtin_problems()`` makes the generated code set: every family of ``families_basic`` and
``families_algo`` with ``variants_per_family`` parameter draws over the three input sizes, so the
difficulty (family level + size - 1) runs from 1 to 5. Each problem's ground truth is 10 of its
family's 12+ differently written correct programs; in every fourth problem (variant i % 4 == 1) one
of them is swapped for a known-wrong program, and in variant 4 two are (``planted_wrong``):
the agreement rules must catch the first kind (the wrong program fails a kept case, the problem is
kept with 9 of 10) and drop the second (8 of 10 pass).

``load_problems(path)`` reads problems of the project's schema (``k15ray/envs/dataset.py``) with two
more fields: ``solutions`` (a list of programs) and ``generator`` (an importable
``"module:function"``; ``function(problem_id, case)`` returns the input text of case ``case``).
"""

from __future__ import annotations

import importlib
import random
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k15ray.testgen.families_algo import FAMILIES_ALGO
from k15ray.testgen.families_basic import FAMILIES_BASIC
from k15ray.testgen.family import SIZES, Family, case_seed
from k15ray.types import Prompt

FAMILIES: dict[str, Family] = {f.name: f for f in FAMILIES_BASIC + FAMILIES_ALGO}
"""Every built-in family by name."""

InputFn = Callable[[str, int], str]


@dataclass(frozen=True)
class CodeProblem:
    """A problem statement (``prompt``, no tests yet), its ground-truth solutions and its inputs."""

    prompt: Prompt
    solutions: tuple[str, ...]
    make_input: InputFn = field(repr=False)
    """``make_input(problem_id, case)``: the text of input ``case`` (CYaRon-based for built-ins)."""
    planted_wrong: tuple[int, ...] = ()
    """Indices of ``solutions`` known to be wrong (built-in set only; read by the report, never by the rules)."""


def _family_input(family: Family, params: dict[str, Any], size: int) -> InputFn:
    def make(problem_id: str, case: int) -> str:
        random.seed(case_seed(problem_id, case))  # CYaRon draws from the global random module
        return family.generate(params, size, case)

    return make


def builtin_problems(
    variants_per_family: int = 18, families: Sequence[str] = (), solutions_per_problem: int = 10
) -> list[CodeProblem]:
    """The built-in generated code set (module docstring), in a fixed order."""
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise ValueError(f"families: {unknown[0]!r} is not one of {sorted(FAMILIES)}")
    problems = []
    for family in (FAMILIES[n] for n in (families or FAMILIES)):
        for i in range(variants_per_family):
            pid = f"gen-{family.name}-{i:02d}"
            rng = random.Random(zlib.crc32(pid.encode()))
            params = family.params(rng)
            size = SIZES[i % len(SIZES)]
            correct = family.correct_programs(params)
            if len(correct) < solutions_per_problem:
                raise ValueError(f"family {family.name}: {len(correct)} programs < {solutions_per_problem}")
            solutions = rng.sample(correct, solutions_per_problem)
            wrong = family.wrong_programs(params)
            n_planted = 2 if i == 4 else (1 if i % 4 == 1 else 0)
            planted = tuple(sorted(rng.sample(range(solutions_per_problem), n_planted)))
            for slot, w in zip(planted, rng.sample(wrong, n_planted), strict=True):
                solutions[slot] = w
            prompt = Prompt(
                id=pid,
                question=family.statement(params, size),
                answer="",
                domain="code",
                difficulty=family.level + size - 1,
                tags=(*family.tags, f"family={family.name}"),
            )
            problems.append(CodeProblem(prompt, tuple(solutions), _family_input(family, params, size), planted))
    return problems


def _entry_point(spec: str, where: str) -> InputFn:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{where}: field 'generator': {spec!r} must read 'module:function'")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{where}: field 'generator': cannot import {spec!r} ({err}); make it importable") from None
    if not callable(fn):
        raise ValueError(f"{where}: field 'generator': {spec!r} is not callable")
    return fn  # type: ignore[no-any-return]


def load_problems(path: str | Path) -> list[CodeProblem]:
    """Problems of a JSONL/Parquet file: the project's schema plus ``solutions`` and ``generator``."""
    from k15ray.envs.dataset import located_records, prompt_from_record, unique_prompts

    located = []
    extra: dict[str, tuple[tuple[str, ...], InputFn]] = {}
    for where, record in located_records(path):
        prompt = prompt_from_record(record, where)
        sols = record.get("solutions")
        if not isinstance(sols, list) or not sols or not all(isinstance(s, str) for s in sols):
            raise ValueError(f"{where}: field 'solutions': expected a non-empty list of programs (str)")
        gen = record.get("generator")
        if not isinstance(gen, str):
            raise ValueError(f"{where}: field 'generator': expected 'module:function' (str)")
        located.append((where, prompt))
        extra[prompt.id] = (tuple(sols), _entry_point(gen, where))
    prompts = unique_prompts(located)
    if not prompts:
        raise ValueError(f"{path}: holds no problems")
    return [CodeProblem(p, *extra[p.id]) for p in prompts]
