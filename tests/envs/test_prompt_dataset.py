"""Prompt sets on disk: JSONL and Parquet, streamed, with errors naming file, line and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from k15ray.envs.dataset import iter_prompts, load_prompts, prompt_from_record, write_prompts
from k15ray.types import CodeTest, Prompt

PROMPTS = [
    Prompt(id="m1", question="What is 2+2?", answer="4", difficulty=1, tags=("arith",)),
    Prompt(
        id="c1",
        question="Echo the input.",
        answer="",
        domain="code",
        difficulty=3,
        tests=(CodeTest("hi\n", "hi\n"), CodeTest("", "")),
    ),
    Prompt(id="v1", question="How many circles?", answer="3", domain="vision", images=("/abs/img.png",)),
]


def _write_lines(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("name", ["set.jsonl", "set.parquet"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert write_prompts(path, PROMPTS) == 3
    assert load_prompts(path) == PROMPTS
    assert list(iter_prompts(path)) == PROMPTS


def test_chat_questions_round_trip_in_jsonl(tmp_path: Path) -> None:
    chat = Prompt(id="chat", question=({"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": "2+2?"}), answer="4")
    path = tmp_path / "chat.jsonl"
    write_prompts(path, [chat])
    assert load_prompts(path) == [chat]
    with pytest.raises(ValueError, match="only supported in JSONL"):
        write_prompts(tmp_path / "chat.parquet", [chat])


def test_parquet_streams_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "big.parquet"
    rows = [{"id": f"p{i}", "question": f"q{i}", "answer": str(i)} for i in range(2500)]
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=500)
    stream = iter_prompts(path, batch_size=100)
    first = next(stream)
    assert first.id == "p0" and first.domain == "math" and first.difficulty == 1  # defaults
    assert sum(1 for _ in stream) == 2499


def test_defaults_conversions_and_relative_images(tmp_path: Path) -> None:
    path = _write_lines(
        tmp_path / "d.jsonl",
        [{"id": 7, "question": "q", "answer": 42, "images": ["img/a.png"], "extra": "ignored"}],
    )
    (prompt,) = load_prompts(path)
    assert (prompt.id, prompt.answer, prompt.domain, prompt.difficulty) == ("7", "42", "math", 1)
    assert prompt.images == (str(tmp_path / "img" / "a.png"),)  # resolved against the file's dir
    with pytest.raises(ValueError, match=r"d\.jsonl:1: field 'extra': unknown"):
        load_prompts(path, strict=True)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"question": "q", "answer": "1"}, "field 'id': missing"),
        ({"id": "a", "answer": "1"}, "field 'question': missing"),
        ({"id": "a", "question": "q"}, "field 'answer': missing"),
        ({"id": "a", "question": "  ", "answer": "1"}, "field 'question': is empty"),
        ({"id": "a", "question": [{"role": "user"}], "answer": "1"}, r"field 'question'\[0\]"),
        ({"id": "a", "question": "q", "answer": "1", "difficulty": 0}, "field 'difficulty'"),
        ({"id": "a", "question": "q", "answer": "1", "difficulty": "hard"}, "field 'difficulty'"),
        ({"id": "a", "question": "q", "answer": "1", "tags": "x"}, "field 'tags'"),
        ({"id": "a", "question": "q", "answer": "1", "images": [1]}, "field 'images'"),
        ({"id": "a", "question": "q", "answer": "", "tests": [{"stdin": "1"}]}, r"field 'tests'\[0\]"),
        ({"id": True, "question": "q", "answer": "1"}, "field 'id'"),
    ],
)
def test_errors_name_file_line_and_field(tmp_path: Path, record: dict[str, Any], message: str) -> None:
    good = {"id": "ok", "question": "fine", "answer": "1"}
    path = _write_lines(tmp_path / "bad.jsonl", [good, record])
    with pytest.raises(ValueError, match=rf"bad\.jsonl:2: {message}"):
        load_prompts(path)


def test_errors_in_parquet_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    rows = [{"id": "a", "question": "q", "answer": "1", "difficulty": 1},
            {"id": "b", "question": "q", "answer": "2", "difficulty": -1}]
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(ValueError, match=r"bad\.parquet: row 2: field 'difficulty'"):
        load_prompts(path)


def test_duplicates_and_files_that_are_not_prompt_sets(tmp_path: Path) -> None:
    dup = _write_lines(tmp_path / "dup.jsonl", [{"id": "a", "question": "q", "answer": "1"}] * 2)
    with pytest.raises(ValueError, match=r"dup\.jsonl:2: field 'id': 'a' already used at .*dup\.jsonl:1"):
        load_prompts(dup)
    with pytest.raises(ValueError, match="no such file"):
        load_prompts(tmp_path / "missing.jsonl")
    (tmp_path / "broken.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        load_prompts(tmp_path / "broken.parquet")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="holds no prompts"):
        load_prompts(tmp_path / "empty.jsonl")


def test_prompt_from_record_for_generated_records() -> None:
    prompt = prompt_from_record({"id": "x", "question": "q", "answer": "1", "difficulty": 2.0}, "gen")
    assert prompt.difficulty == 2
