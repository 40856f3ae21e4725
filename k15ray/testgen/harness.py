"""One sandboxed process runs one solution on many inputs (``harness_program``).

Launching a process per (solution, input) would cost 10 x 50 = 500 interpreter starts per
problem; instead the harness, a small Python program, runs inside the sandbox like any solution
and executes the solution's code once per input: before each run it points file descriptors 0 and
1 at that input and a fresh output file (so ``input()``, ``sys.stdin.read()``, ``open(0)`` and
``print`` all see them), arms a per-input timer (``SIGALRM``), and catches what the run raises.
It prints one JSON list of ``[status, stdout]`` per input on the original stdout. Everything still
runs in the sandbox (bubblewrap, rlimits, the wall-clock kill): the harness only saves launches.

A solution that kills its own process (``os._exit``, a segfault) or prints garbage on the saved
descriptor loses every input of that call: ``parse_harness_output`` reports them all as failed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from k15ray.testgen.agreement import RunOutput

_HARNESS = r'''
import io, json, os, signal, sys
SOURCE = __SOURCE__
TIMEOUT_S = __TIMEOUT__
LIMIT = __LIMIT__
inputs = json.loads(sys.stdin.read())
real_out = os.dup(1)
code = compile(SOURCE, "solution.py", "exec")
class _Timeout(BaseException):
    pass
def _alarm(signum, frame):
    raise _Timeout()
signal.signal(signal.SIGALRM, _alarm)
results = []
for index, text in enumerate(inputs):
    in_path, out_path = "in.txt", "out.txt"
    with open(in_path, "w") as f:
        f.write(text)
    fd_in = os.open(in_path, os.O_RDONLY)
    fd_out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    for fd, target in ((fd_in, 0), (fd_out, 1)):
        if fd != target:  # a solution's open(0) may have closed 0: then os.open reused it
            os.dup2(fd, target)
            os.close(fd)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
    status = "ok"
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT_S)
    try:
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit as exit_:
        if exit_.code not in (None, 0):
            status = "runtime_error"
    except _Timeout:
        status = "timeout"
    except BaseException:
        status = "runtime_error"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        sys.stdout.flush()
    except BaseException:
        status = "runtime_error"
    with open(out_path, errors="replace") as f:
        out = f.read(LIMIT + 1)
    if len(out) > LIMIT:
        status, out = "output_limit", ""
    results.append([status, out])
os.write(real_out, json.dumps(results).encode())
'''


def harness_program(solution: str, timeout_s: float, output_limit_chars: int = 65536) -> str:
    """The Python program that runs ``solution`` once per input of a JSON list on stdin, each run
    limited to ``timeout_s`` seconds and ``output_limit_chars`` characters of output."""
    return (
        _HARNESS.replace("__SOURCE__", repr(solution))
        .replace("__TIMEOUT__", repr(float(timeout_s)))
        .replace("__LIMIT__", str(int(output_limit_chars)))
    )


def harness_stdin(inputs: Sequence[str]) -> str:
    """The harness's stdin: the inputs as one JSON list."""
    return json.dumps(list(inputs))


def parse_harness_output(status: str, stdout: str, n_inputs: int) -> list[RunOutput]:
    """One (status, stdout) per input from the sandbox's result of one harness run; a run that
    did not end cleanly, or whose output is not the harness's list, fails every input with the
    sandbox's status (e.g. ``timeout``) or ``runtime_error``."""
    failed = [(status if status != "ok" else "runtime_error", "")] * n_inputs
    if status != "ok":
        return failed
    try:
        parsed = json.loads(stdout)
    except json.JSONDecodeError:
        return failed
    if not isinstance(parsed, list) or len(parsed) != n_inputs:
        return failed
    out: list[RunOutput] = []
    for item in parsed:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            return failed
        out.append((item[0], item[1]))
    return out
