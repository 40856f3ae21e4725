"""Grade-school word problems and bare arithmetic of graded difficulty, for small instruct models.

A pretrained 135M chat model (SmolLM2-135M-Instruct) adds one-digit numbers right about one time in
six and two-digit numbers almost never (DESIGN.md, "Models"): the column-arithmetic levels of
``k15ray.tasks.arithmetic`` start where it stops. This prompt set starts lower, so that RL (paper
2.3) finds some correct samples in every group of k on the easy levels and something left to learn
on the harder ones. The numbers of levels 3 and 5 come from ``arithmetic.sample_problem``.

====== ================================================ ======================
level  problem                                          answers
====== ================================================ ======================
1      one-digit + one-digit                            2..18
2      two-digit - one-digit (no negative result)       1..98
3      two-digit + two-digit (arithmetic level 1)        20..198
4      one-digit x one-digit (2..9)                      4..81
5      two-digit + two-digit - two-digit (arithmetic 5)  0..188
====== ================================================ ======================

Each problem is a story (``Tom has 7 apples ...``) or the bare question (``What is 7 + 5?``), at
even odds; the reference answer is the integer. The answer format (``\\boxed{}``) is asked for by the
environment's ``instruction`` (``k15ray.prompting.BOXED_ANSWER``), not written into the question.
``write_word_splits`` writes ``train.jsonl`` and a disjoint ``heldout.jsonl`` (and ``sft.jsonl``,
the train split with a one-line worked answer), the same files as ``k15ray.tasks.write_splits``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from k15ray.jsonl import write_jsonl
from k15ray.tasks.arithmetic import sample_problem

WORD_LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)
NAMES = ("Tom", "Ana", "Sam", "Mia", "Leo", "Zoe", "Ben", "Ivy")
THINGS = ("apples", "marbles", "stickers", "pencils", "books", "shells", "cards", "coins")
_MAX_TRIES = 1000

# (operation, story template): {n} a name, {t} a plural thing, {a} {b} {c} the numbers
STORIES: dict[str, tuple[str, ...]] = {
    "add": (
        "{n} has {a} {t} and gets {b} more. How many {t} does {n} have now?",
        "There are {a} {t} in one box and {b} {t} in another. How many {t} are there in all?",
    ),
    "sub": (
        "{n} has {a} {t} and gives away {b}. How many {t} does {n} have left?",
        "A shelf holds {a} {t}. {b} of them are taken. How many {t} are still on the shelf?",
    ),
    "mul": (
        "{n} has {a} bags with {b} {t} in each bag. How many {t} does {n} have?",
        "There are {a} rows of {t} with {b} {t} in each row. How many {t} are there?",
    ),
    "add_sub": (
        "{n} has {a} {t}, finds {b} more, then loses {c}. How many {t} does {n} have now?",
    ),
}
SYMBOLS = {"add": "{a} + {b}", "sub": "{a} - {b}", "mul": "{a} × {b}", "add_sub": "{a} + {b} - {c}"}


def _numbers(level: int, rng: random.Random) -> tuple[str, list[int], int]:
    """(operation, operands, answer) of one problem of ``level``."""
    if level == 1:
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        return "add", [a, b], a + b
    if level == 2:
        a, b = rng.randint(10, 99), rng.randint(1, 9)
        return "sub", [a, b], a - b
    if level == 3:
        p = sample_problem(1, rng)  # 2-digit + 2-digit
        a, b = (int(x) for x in p.key.split("+"))
        return "add", [a, b], p.answer
    if level == 4:
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        return "mul", [a, b], a * b
    if level == 5:
        p = sample_problem(5, rng)  # a + b - c, all 2-digit
        first, rest = p.key.split("+")
        second, third = rest.split("-")
        return "add_sub", [int(first), int(second), int(third)], p.answer
    raise ValueError(f"unknown word-problem level {level}; valid levels are {list(WORD_LEVELS)}")


def word_problem(level: int, rng: random.Random, story: bool) -> dict[str, Any]:
    """One prompt record of ``level``: a story problem (``story``) or the bare arithmetic question."""
    op, nums, answer = _numbers(level, rng)
    values = dict(zip("abc", nums, strict=False))
    expression = SYMBOLS[op].format(**values)
    if story:
        ti, ni, hi = rng.randrange(len(STORIES[op])), rng.randrange(len(NAMES)), rng.randrange(len(THINGS))
        question = STORIES[op][ti].format(n=NAMES[ni], t=THINGS[hi], **values)
        form = f"s{ti}{ni}{hi}"
    else:
        question = f"What is {expression}?"
        form = "q"
    key = "_".join(str(n) for n in nums)
    return {
        "id": f"word-{op}-{key}-{form}",
        "question": question,
        "answer": str(answer),
        "domain": "math",
        "difficulty": level,
        "tags": ["arithmetic", op, "word-problem" if story else "bare"],
        "solution": f"{expression} = {answer}. The answer is \\boxed{{{answer}}}.",
    }


def generate_word_problems(
    n: int, levels: Iterable[int] = WORD_LEVELS, seed: int = 0, exclude: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """``n`` distinct records (a story or the bare question, even odds), levels taken in turn,
    none whose numbers (the id without its form) are in ``exclude``: the few one-digit sums and
    products repeat with other stories, never across splits. Seeded: same arguments, same records."""
    levels = tuple(levels)
    if n < 0:
        raise ValueError(f"n={n}: the number of problems must be >= 0")
    if not levels or any(lv not in WORD_LEVELS for lv in levels):
        raise ValueError(f"levels={levels}: choose a non-empty subset of {list(WORD_LEVELS)}")
    rng = random.Random(seed)
    excluded = {_numbers_key(i) for i in exclude}
    seen: set[str] = set()
    records = []
    for i in range(n):
        level = levels[i % len(levels)]
        for _ in range(_MAX_TRIES):
            record = word_problem(level, rng, story=rng.random() < 0.5)
            if record["id"] not in seen and _numbers_key(record["id"]) not in excluded:
                break
        else:
            raise ValueError(f"level {level} ran out of distinct problems after {i} records; ask for fewer")
        seen.add(record["id"])
        records.append(record)
    return records


def _numbers_key(record_id: str) -> str:
    """The id without its story/bare suffix: the same numbers never appear in two splits."""
    return record_id.rsplit("-", 1)[0]


def write_word_splits(
    out_dir: str | Path, n_train: int, n_heldout: int, seed: int = 0, levels: Iterable[int] = WORD_LEVELS
) -> dict[str, Path]:
    """``train.jsonl`` / ``heldout.jsonl`` (prompt schema) and ``sft.jsonl`` (train + solution); the
    held-out problems are drawn first and their numbers excluded from the train draw."""
    from k15ray.tasks import PROMPT_FIELDS

    out = Path(out_dir)
    levels = tuple(levels)
    heldout = generate_word_problems(n_heldout, levels, seed=seed + 1_000_003)
    train = generate_word_problems(n_train, levels, seed=seed, exclude=[r["id"] for r in heldout])
    paths = {"train": out / "train.jsonl", "heldout": out / "heldout.jsonl", "sft": out / "sft.jsonl"}
    write_jsonl(paths["train"], ({k: r[k] for k in PROMPT_FIELDS} for r in train))
    write_jsonl(paths["heldout"], ({k: r[k] for k in PROMPT_FIELDS} for r in heldout))
    write_jsonl(paths["sft"], train)
    return paths
