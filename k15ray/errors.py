"""The two ways a ``k15ray`` command ends early on purpose, and how the command line reports them.

* ``UserError``: a mistake in what the user gave (a config value, a data file, a model directory,
  an env id, an output directory that already holds a run). Its message says what is wrong, where
  (file, line, field) and how to fix it; the command prints it on one line and exits with status 2,
  without a traceback (``k15ray --debug`` or ``K15RAY_DEBUG=1`` adds it). It is a ``ValueError``,
  so code that catches bad input as ``ValueError`` keeps working. Any other exception is a bug of
  k15ray and keeps its traceback.
* ``Interrupted``: Ctrl-C. Its message says what was kept (which checkpoint) and the exact command
  that resumes; the command prints it and exits with status 130 (128 + SIGINT, the shell's
  convention).
"""

from __future__ import annotations

EXIT_USER_ERROR = 2
"""Exit status of a user mistake (click's status for a usage error)."""
EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C: 128 + SIGINT."""


class UserError(ValueError):
    """A mistake in the user's input; the message names the place and the fix."""


class Interrupted(Exception):
    """Ctrl-C stopped the job; the message says what was kept and how to resume.

    An ``Exception`` (not ``KeyboardInterrupt``) on purpose: it is raised after the interrupt was
    handled, and must not be taken for a second Ctrl-C."""


RESUME_COMMAND = "k15ray train CONFIG --resume"
"""The resume command shown when the exact command line is not known."""


def interrupted(what: str, resume_command: str = "") -> Interrupted:
    """``Interrupted`` whose message reads ``interrupted: <what>`` then ``resume with: <command>``."""
    return Interrupted(f"interrupted: {what}\nresume with: {resume_command or RESUME_COMMAND}")


def user_error(where: str, err: Exception) -> UserError:
    """``err`` (a validation error) as a ``UserError`` whose message starts with ``where``
    (a config field such as ``env.config.data_path``) unless it already does."""
    message = str(err)
    if where and not message.startswith(where):
        message = f"{where}: {message}"
    return UserError(message)
