"""A rich progress bar that can be switched off: ``with progress_bar(on, label, total) as advance``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class progress_bar:  # noqa: N801 - used like a function in a with statement
    """``with progress_bar(True, "pass rate", 120) as advance: advance(32)``; off: ``advance`` does nothing."""

    def __init__(self, on: bool, label: str, total: int) -> None:
        self.on, self.label, self.total = on and total > 0, label, total
        self.progress: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.on:
            return lambda n: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self.progress.start()
        task = self.progress.add_task(self.label, total=self.total)
        return lambda n: self.progress.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
