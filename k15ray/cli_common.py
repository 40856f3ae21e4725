"""What the ``k15ray`` commands share: a config file with ``--set`` overrides, and what an
interrupted run prints: what it kept and the command line that resumes it (``k15ray.cli``,
``k15ray.cli_data``)."""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from k15ray.errors import UserError, interrupted

T = TypeVar("T")


def config_from(cls: type[T], config: str, sets: Sequence[str] | None) -> T:
    """``cls`` loaded from the YAML ``config`` with each ``--set key=value`` applied; a bad file,
    key or value is a one-line ``UserError``."""
    from k15ray.config import load_config
    from k15ray.config.experiment import parse_override

    try:
        return load_config(cls, config, dict(parse_override(item) for item in sets or []))
    except ValueError as err:
        raise UserError(str(err)) from err


def rerun(command: str, config: str, sets: Sequence[str] | None, *extra: str) -> str:
    """The shell line ``k15ray COMMAND CONFIG --set ... EXTRA`` (what resumes an interrupted run)."""
    return shlex.join(["k15ray", command, config, *(arg for item in sets or [] for arg in ("--set", item)), *extra])


@contextmanager
def resumes(command: str, config: str, sets: Sequence[str] | None, kept: str) -> Iterator[None]:
    """Ctrl-C inside the block ends the command with ``interrupted: <kept>`` and the ``rerun`` line."""
    try:
        yield
    except KeyboardInterrupt:
        raise interrupted(kept, rerun(command, config, sets)) from None
