"""Streaming JSONL reading and writing with errors that name the file and the line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` for each non-blank line of a JSONL file, one at a time.

    Raises ``ValueError`` naming ``path:line`` for a line that is not a JSON object.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such file; pass the path of a JSONL file (one JSON object per line)")
    with p.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{p}:{line_no}: not valid JSON ({err.msg} at column {err.colno}); "
                    "each line must be one JSON object"
                ) from err
            if not isinstance(record, dict):
                raise ValueError(
                    f"{p}:{line_no}: expected a JSON object, got {type(record).__name__}"
                )
            yield line_no, record


def write_jsonl(path: str | Path, records: Iterable[Mapping[str, Any]]) -> int:
    """Write records atomically (temp file, then rename); returns how many were written."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(p)
    return n
