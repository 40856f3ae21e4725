"""Generated arithmetic tasks: determinism, schema, correct long-CoT solutions, disjoint splits."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from k15ray.rewards import verify_math
from k15ray.tasks import LEVELS, PROMPT_FIELDS, generate_prompt_set, write_splits
from k15ray.tasks.arithmetic import Problem, add_columns, mul_columns, solve, sub_columns


def test_same_seed_same_records_other_seed_differs() -> None:
    a = generate_prompt_set(50, seed=7)
    assert a == generate_prompt_set(50, seed=7)
    assert a != generate_prompt_set(50, seed=8)


def test_schema_levels_and_distinct_ids() -> None:
    records = generate_prompt_set(100, seed=1)
    assert [r["difficulty"] for r in records[:5]] == list(LEVELS)  # levels taken in turn
    assert len({r["id"] for r in records}) == 100
    for r in records:
        assert set(PROMPT_FIELDS) | {"solution"} == set(r)
        assert r["domain"] == "math" and r["tags"][0] == "arithmetic"


def test_every_solution_is_correct_and_boxed() -> None:
    for r in generate_prompt_set(200, seed=2, mistake_rate=0.5):
        assert verify_math(r["solution"], r["answer"]), r["solution"]
        assert r["solution"].startswith("<think>Plan:")
        assert "Check:" in r["solution"] and r["solution"].endswith(f"</think>\\boxed{{{r['answer']}}}")
        question = r["question"].removeprefix("What is ").removesuffix("?")
        assert int(r["answer"]) == eval(question.replace("×", "*"))  # noqa: S307 - our own text


def test_column_lines_by_hand() -> None:
    # 347 + 85: 7+5=12 (write 2 carry 1), 4+8+1=13 (write 3 carry 1), 3+0+1=4 -> 432
    lines, total = add_columns(347, 85)
    assert total == 432
    assert lines == ["7+5+0=12", "4+8+1=13", "3+0+1=4"]
    # 503 - 278: 3-8 borrows (13-8=5), 0-7-1 borrows (10-8=2), 5-2-1=2 -> 225
    lines, diff = sub_columns(503, 278)
    assert diff == 225 and lines[1] == "10-7-1=2 b1"
    # 296 x 9: 6*9=54, 9*9+5=86, 2*9+8=26 -> digits 4, 6, 6 and the last carry 2 -> 2664
    lines, product = mul_columns(296, 9)
    assert product == 2664 and lines == ["6×9+0=54", "9×9+5=86", "2×9+8=26"]


def test_reflection_slip_is_caught() -> None:
    problem = Problem(2, "478+718", "What is 478 + 718?", 1196, ("arithmetic", "addition"))
    rng = random.Random(0)
    text = solve(problem, rng, mistake_rate=1.0)
    assert "? No, " in text and text.endswith("\\boxed{1196}")
    assert "? No, " not in solve(problem, random.Random(0), mistake_rate=0.0)


def test_splits_are_disjoint(tmp_path: Path) -> None:
    paths = write_splits(tmp_path, n_train=300, n_heldout=100, seed=3)
    read = {k: [json.loads(line) for line in p.read_text().splitlines()] for k, p in paths.items()}
    train_ids = {r["id"] for r in read["train"]}
    heldout_ids = {r["id"] for r in read["heldout"]}
    assert len(train_ids) == 300 and len(heldout_ids) == 100
    assert not train_ids & heldout_ids
    assert set(read["train"][0]) == set(PROMPT_FIELDS)
    assert [r["id"] for r in read["sft"]] == [r["id"] for r in read["train"]]
    assert all("solution" in r for r in read["sft"])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="choose a non-empty subset"):
        generate_prompt_set(3, levels=[9])
    with pytest.raises(ValueError, match="ran out of distinct problems"):
        # 2-digit + 2-digit has 90 * 90 = 8,100 distinct problems
        generate_prompt_set(8_200, levels=[1])


# ---------------------------------------------------------------- solution styles (long2short, paper 2.4)
def _tokens(records: list[dict]) -> list[int]:
    from k15ray.models import build_tokenizer

    tokenizer = build_tokenizer()
    return [len(tokenizer(r["solution"])["input_ids"]) for r in records]


def test_long_style_is_2_to_4x_the_column_chain_and_varies() -> None:
    # The same seed draws the same problems in every style, so lengths compare problem by problem.
    for levels in ([1, 2], list(LEVELS)):
        long_ = generate_prompt_set(300, levels=levels, seed=4, style="long")
        short = generate_prompt_set(300, levels=levels, seed=4, style="minimal")
        assert [r["id"] for r in long_] == [r["id"] for r in short]
        long_len, short_len = _tokens(long_), _tokens(short)
        ratio = sum(long_len) / sum(short_len)
        assert 2.0 <= ratio <= 4.0, ratio
        spread = sorted(a / b for a, b in zip(long_len, short_len, strict=True))
        assert spread[0] < 2.6 and spread[-1] > 5.0, (spread[0], spread[-1])  # variable length
        assert all(r["solution"].startswith("<think>Plan:") and "Check:" in r["solution"] for r in long_)
        moves = ("Recheck:", "? No, ", "Redo to be sure:", "Also:")
        assert all(any(m in r["solution"] for r in long_) for m in moves)  # each move occurs


@pytest.mark.parametrize("style", ["long", "minimal", "short"])
def test_every_styled_solution_is_correct(style: str) -> None:
    for r in generate_prompt_set(250, seed=5, style=style):
        assert verify_math(r["solution"], r["answer"]), r["solution"]
        assert r["solution"].endswith(f"</think>\\boxed{{{r['answer']}}}")
        question = r["question"].removeprefix("What is ").removesuffix("?")
        assert int(r["answer"]) == eval(question.replace("×", "*"))  # noqa: S307 - our own text


def test_minimal_style_is_the_column_lines_only_and_short_is_one_line() -> None:
    # 47 + 85 -> columns 7+5+0=12, 4+8+1=13; nothing else before the answer
    problem = Problem(1, "47+85", "What is 47 + 85?", 132, ("arithmetic", "addition"))
    from k15ray.tasks.styles import solve_minimal, solve_short

    assert solve_minimal(problem) == "<think>7+5+0=12\n4+8+1=13</think>\\boxed{132}"
    assert solve_short(problem) == "<think>47+85=132</think>\\boxed{132}"
    two_steps = Problem(5, "12+34-5", "What is 12 + 34 - 5?", 41, ("arithmetic", "mixed"))
    assert solve_short(two_steps) == "<think>12+34-5=41</think>\\boxed{41}"
    times = Problem(4, "123x4", "What is 123 × 4?", 492, ("arithmetic", "multiplication"))
    assert solve_short(times) == "<think>123×4=492</think>\\boxed{492}"


def test_styles_are_deterministic_and_keep_the_standard_default(tmp_path: Path) -> None:
    assert generate_prompt_set(40, seed=6, style="long") == generate_prompt_set(40, seed=6, style="long")
    assert generate_prompt_set(40, seed=6, style="long") != generate_prompt_set(40, seed=7, style="long")
    assert generate_prompt_set(40, seed=6) == generate_prompt_set(40, seed=6, style="standard")
    a = write_splits(tmp_path / "long", 50, 20, seed=1, levels=[1, 2], style="long")
    b = write_splits(tmp_path / "std", 50, 20, seed=1, levels=[1, 2])
    for split in ("train", "heldout"):  # the prompt splits do not depend on the style
        assert a[split].read_text() == b[split].read_text()
    assert a["sft"].read_text() != b["sft"].read_text()
    with pytest.raises(ValueError, match="choose one of"):
        generate_prompt_set(3, style="verbose")
