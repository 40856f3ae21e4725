"""Prompt sets D on disk: JSONL and Parquet, streamed, validated field by field.

Schema (one JSON object per JSONL line, or one Parquet row):

============ ======================================= =========================================
field        type                                    meaning
============ ======================================= =========================================
id           str (an int is turned into str)         unique prompt id (required)
question     str, or list of {"role", "content"}     the prompt x: text or chat messages (required)
answer       str (a number is turned into str)       reference answer y* (required unless
                                                     domain is "code")
domain       str, default "math"                     "math", "code", "vision", ...
difficulty   int >= 1, default 1                     curriculum level, 1 = easiest
tags         list of str, default []                 free labels
images       list of str, default []                 image paths; relative paths are resolved
                                                     against the data file's folder
tests        list of {"stdin", "expected_stdout"}    stdin/stdout tests of a coding prompt
============ ======================================= =========================================

Other fields are ignored (``strict=True`` rejects them). Errors name the file, the line (JSONL)
or row (Parquet) and the field, e.g. ``data.jsonl:3: field 'difficulty': expected an int >= 1``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from k15ray.jsonl import read_jsonl, write_jsonl
from k15ray.types import CodeTest, Prompt

FIELDS = ("id", "question", "answer", "domain", "difficulty", "tags", "images", "tests")
PARQUET_SUFFIXES = (".parquet", ".pq")


def _str_list(value: Any, where: str, name: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: field {name!r}: expected a list of strings, got {value!r:.80}")
    return tuple(value)


def _question(value: Any, where: str) -> str | tuple[Mapping[str, str], ...]:
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{where}: field 'question': is empty; give the prompt text")
        return value
    if isinstance(value, (list, tuple)) and value:
        messages = []
        for i, m in enumerate(value):
            ok = isinstance(m, Mapping) and isinstance(m.get("role"), str)
            if not ok or not isinstance(m.get("content"), str):
                raise ValueError(
                    f"{where}: field 'question'[{i}]: expected a chat message "
                    f'{{"role": str, "content": str}}, got {m!r:.80}'
                )
            messages.append({"role": m["role"], "content": m["content"]})
        return tuple(messages)
    raise ValueError(
        f"{where}: field 'question': expected a string or a non-empty list of chat messages, "
        f"got {value!r:.80}"
    )


def _tests(value: Any, where: str) -> tuple[CodeTest, ...]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where}: field 'tests': expected a list of {{stdin, expected_stdout}}")
    tests = []
    for i, t in enumerate(value):
        if not isinstance(t, Mapping) or not all(
            isinstance(t.get(k), str) for k in ("stdin", "expected_stdout")
        ):
            raise ValueError(
                f"{where}: field 'tests'[{i}]: expected "
                f'{{"stdin": str, "expected_stdout": str}}, got {t!r:.80}'
            )
        tests.append(CodeTest(stdin=t["stdin"], expected_stdout=t["expected_stdout"]))
    return tuple(tests)


def _scalar_str(value: Any, where: str, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{where}: field {name!r}: expected a string, got {value!r:.80}")
    return str(value)


def prompt_from_record(
    record: Mapping[str, Any], where: str, *, base_dir: str | Path | None = None, strict: bool = False
) -> Prompt:
    """Validate one record of the schema above and build its ``Prompt``.

    ``where`` prefixes every error (``"file.jsonl:3"``); ``base_dir`` resolves relative image
    paths; ``strict`` rejects fields outside the schema.
    """
    if not isinstance(record, Mapping):
        raise ValueError(f"{where}: expected an object with fields {list(FIELDS)}")
    rec = {k: v for k, v in record.items() if v is not None}  # Parquet nulls = field absent
    if strict:
        unknown = sorted(set(rec) - set(FIELDS))
        if unknown:
            raise ValueError(f"{where}: field {unknown[0]!r}: unknown; valid fields are {list(FIELDS)}")
    for name in ("id", "question"):
        if name not in rec:
            raise ValueError(f"{where}: field {name!r}: missing (required)")
    domain = rec.get("domain", "math")
    if not isinstance(domain, str) or not domain:
        raise ValueError(f"{where}: field 'domain': expected a non-empty string, got {domain!r:.80}")
    if "answer" not in rec and domain != "code":
        raise ValueError(f"{where}: field 'answer': missing (required unless domain is 'code')")
    difficulty = rec.get("difficulty", 1)
    if isinstance(difficulty, float) and difficulty.is_integer():
        difficulty = int(difficulty)
    if isinstance(difficulty, bool) or not isinstance(difficulty, int) or difficulty < 1:
        raise ValueError(f"{where}: field 'difficulty': expected an int >= 1, got {difficulty!r:.80}")
    images = _str_list(rec.get("images", ()), where, "images")
    if base_dir is not None:
        images = tuple(str(Path(base_dir) / p) if not Path(p).is_absolute() else p for p in images)
    return Prompt(
        id=_scalar_str(rec["id"], where, "id"),
        question=_question(rec["question"], where),
        answer=_scalar_str(rec.get("answer", ""), where, "answer"),
        domain=domain,
        difficulty=difficulty,
        tags=_str_list(rec.get("tags", ()), where, "tags"),
        images=images,
        tests=_tests(rec.get("tests", ()), where),
    )


def prompt_to_record(prompt: Prompt) -> dict[str, Any]:
    """The inverse of ``prompt_from_record``: a plain dict of the schema's fields."""
    question: Any = (
        prompt.question if isinstance(prompt.question, str) else [dict(m) for m in prompt.question]
    )
    return {
        "id": prompt.id,
        "question": question,
        "answer": prompt.answer,
        "domain": prompt.domain,
        "difficulty": prompt.difficulty,
        "tags": list(prompt.tags),
        "images": list(prompt.images),
        "tests": [{"stdin": t.stdin, "expected_stdout": t.expected_stdout} for t in prompt.tests],
    }


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def located_records(
    path: str | Path, batch_size: int = 1024
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The raw records of a JSONL or Parquet file, each with its place (``"f.jsonl:3"`` or
    ``"f.parquet: row 3"``) for error messages; Parquet is read ``batch_size`` rows at a time."""
    path = Path(path)
    if not _is_parquet(path):
        for line_no, record in read_jsonl(path):
            yield f"{path}:{line_no}", record
        return
    import pyarrow.parquet as pq

    if not path.is_file():
        raise ValueError(f"{path}: no such file; pass the path of a Parquet file")
    try:
        parquet = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises ArrowInvalid and friends
        raise ValueError(f"{path}: not a readable Parquet file ({err})") from err
    row = 0
    for batch in parquet.iter_batches(batch_size=batch_size):
        for record in batch.to_pylist():
            row += 1
            yield f"{path}: row {row}", record


def iter_prompts(
    path: str | Path, *, batch_size: int = 1024, strict: bool = False
) -> Iterator[Prompt]:
    """Stream the prompts of a JSONL or Parquet file (``.parquet``/``.pq``), one at a time.

    Parquet is read ``batch_size`` rows at a time (``ParquetFile.iter_batches``), so memory stays
    bounded for large files. Duplicate ids are not checked here (``load_prompts`` does).
    """
    p = Path(path)
    for where, record in located_records(p, batch_size):
        yield prompt_from_record(record, where, base_dir=p.parent, strict=strict)


def load_prompts(path: str | Path, *, strict: bool = False) -> list[Prompt]:
    """Read a whole prompt set; also rejects duplicate ids, naming both places."""
    p = Path(path)
    prompts = unique_prompts(
        (where, prompt_from_record(record, where, base_dir=p.parent, strict=strict))
        for where, record in located_records(p)
    )
    if not prompts:
        raise ValueError(f"{p}: holds no prompts")
    return prompts


def unique_prompts(located: Iterable[tuple[str, Prompt]]) -> list[Prompt]:
    """The prompts of ``(where, prompt)`` pairs in order; a repeated id is an error naming both
    places (``"f.jsonl:2: field 'id': 'a' already used at f.jsonl:1"``)."""
    prompts: list[Prompt] = []
    first_seen: dict[str, str] = {}
    for where, prompt in located:
        if prompt.id in first_seen:
            raise ValueError(
                f"{where}: field 'id': {prompt.id!r} already used at {first_seen[prompt.id]}; "
                "prompt ids must be unique"
            )
        first_seen[prompt.id] = where
        prompts.append(prompt)
    return prompts


def write_prompts(path: str | Path, prompts: Iterable[Prompt]) -> int:
    """Write prompts as JSONL, or Parquet when the suffix is ``.parquet``/``.pq``; returns the count."""
    p = Path(path)
    records = (prompt_to_record(pr) for pr in prompts)
    if not _is_parquet(p):
        return write_jsonl(p, records)
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = list(records)
    for row in rows:  # one Arrow type per column: chat questions as JSON-like structs do not mix
        if not isinstance(row["question"], str):
            raise ValueError(
                f"prompt {row['id']!r}: chat-message questions are only supported in JSONL; "
                "write a .jsonl file"
            )
    p.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("question", pa.string()),
            ("answer", pa.string()),
            ("domain", pa.string()),
            ("difficulty", pa.int64()),
            ("tags", pa.list_(pa.string())),
            ("images", pa.list_(pa.string())),
            ("tests", pa.list_(pa.struct([("stdin", pa.string()), ("expected_stdout", pa.string())]))),
        ]
    )
    tmp = p.with_suffix(p.suffix + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
    tmp.replace(p)
    return len(rows)
