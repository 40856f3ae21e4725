"""The ``k15ray`` command. Each sub-command is a thin wrapper over a library function.

Commands: ``train``, ``sft``, ``eval``, ``serve``, ``gen-data`` ... (see ``k15ray --help``).
Sub-commands import their modules lazily so that ``k15ray --help`` stays fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
