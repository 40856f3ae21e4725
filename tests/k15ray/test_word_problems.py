"""Grade-school word problems (``k15ray.tasks.word_problems``): right answers, graded levels,
held-out split disjoint by numbers, seeded, and ``data.task: word_problems`` in a run."""

from __future__ import annotations

import dataclasses
import json
import random
import re
from pathlib import Path

import pytest

from k15ray.config.experiment import DataConfig, ExperimentConfig
from k15ray.rewards import verify_math
from k15ray.tasks.word_problems import (
    WORD_LEVELS,
    generate_word_problems,
    word_problem,
    write_word_splits,
)


def _numbers(record: dict[str, object]) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", str(record["question"]))]


def test_answers_follow_the_level_arithmetic() -> None:
    rng = random.Random(0)
    for level in WORD_LEVELS:
        for story in (True, False):
            r = word_problem(level, rng, story)
            n = _numbers(r)
            # level 1: 3 + 4 = 7; 2: 61 - 5 = 56; 3: 74 + 27 = 101; 4: 6 × 4 = 24; 5: 97 + 52 - 70 = 79
            if level in (1, 3):
                expected = n[0] + n[1]
            elif level == 2:
                expected = n[0] - n[1]
            elif level == 4:
                expected = n[0] * n[1]
            else:
                expected = n[0] + n[1] - n[2]
            assert int(str(r["answer"])) == expected, r
            assert r["difficulty"] == level and r["domain"] == "math"
            assert verify_math(str(r["solution"]), str(r["answer"]))


def test_digit_ranges_grade_the_levels() -> None:
    records = generate_word_problems(200, seed=1)
    for r in records:
        n = _numbers(r)
        if r["difficulty"] == 1:
            assert all(1 <= x <= 9 for x in n)
        if r["difficulty"] == 3:
            assert all(10 <= x <= 99 for x in n)
    assert {r["tags"][2] for r in records} == {"word-problem", "bare"}


def test_splits_share_no_numbers_and_are_seeded(tmp_path: Path) -> None:
    paths = write_word_splits(tmp_path / "a", 600, 100, seed=3)
    again = write_word_splits(tmp_path / "b", 600, 100, seed=3)
    assert paths["train"].read_text() == again["train"].read_text()
    train = [json.loads(line) for line in paths["train"].read_text().splitlines()]
    heldout = [json.loads(line) for line in paths["heldout"].read_text().splitlines()]
    assert len(train) == 600 and len(heldout) == 100
    key = lambda r: r["id"].rsplit("-", 1)[0]  # noqa: E731 - the numbers, without story/bare form
    assert not {key(r) for r in train} & {key(r) for r in heldout}
    assert len({r["id"] for r in train}) == 600
    assert set(train[0]) == {"id", "question", "answer", "domain", "difficulty", "tags"}


def test_bad_levels() -> None:
    with pytest.raises(ValueError, match="subset of"):
        generate_word_problems(5, levels=[6])
    with pytest.raises(ValueError, match="data.task"):
        DataConfig(task="poems")


def test_run_with_word_problems_task(tmp_path: Path) -> None:
    from k15ray.job import prepare_data

    cfg = ExperimentConfig(output_dir=str(tmp_path), data=DataConfig(task="word_problems", n_train=20, n_heldout=5, levels=(1,)))
    prepared = prepare_data(cfg)
    train = [json.loads(line) for line in Path(prepared.env.config["data_path"]).read_text().splitlines()]
    assert len(train) == 20 and all(r["id"].startswith("word-add-") for r in train)
    arithmetic = prepare_data(dataclasses.replace(cfg, output_dir=str(tmp_path / "arith"), data=DataConfig(n_train=4, n_heldout=2, levels=(1,))))
    assert "arith-" in Path(arithmetic.env.config["data_path"]).read_text()
