"""The math-verify worker process behind ``k15ray.rewards.verify_math`` (run as a script).

math-verify's timeouts use ``signal.alarm``, which only works in a main thread. Here, in a process of
its own, math-verify runs with its timeouts disabled; the parent enforces the time limit by killing
this process when an answer is late (which also stops C-level work such as a huge integer power,
which no signal handler can interrupt).

Protocol: one JSON object per line. After start-up the worker writes ``{"ready": true}``. Each
request ``{"gold": str, "preds": [str, ...]}`` is answered with ``{"status": s, "correct": bool,
"cpu_s": float}``: ``correct`` is true when every pred is equivalent to gold; ``status`` is ``ok``,
``parse_error`` (gold or a pred has no parsable answer) or ``error``. The worker exits at EOF.
This file imports nothing from k15ray, so it starts fast and runs from any working directory.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this folder is sys.path[0], and its math.py / code.py would shadow the standard
# library's math and code modules (sympy imports math): drop it before anything else is imported.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import contextlib  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

MEMORY_LIMIT_BYTES = 3 << 30  # an answer like 2^{10^{10}} fails with MemoryError, not by swapping


@functools.lru_cache(maxsize=8192)
def _parse_gold(gold: str) -> list[Any]:
    from math_verify import parse

    return list(parse(gold, parsing_timeout=None))  # type: ignore[arg-type]


def check(gold: str, preds: list[str]) -> tuple[str, bool]:
    """(status, correct): is every pred equivalent to gold according to math-verify?"""
    from math_verify import parse, verify

    gold_parsed = _parse_gold(gold)
    if not gold_parsed:
        return "parse_error", False
    for pred in preds:
        pred_parsed = parse(pred, parsing_timeout=None)  # type: ignore[arg-type]
        if not pred_parsed:
            return "parse_error", False
        if not verify(gold_parsed, pred_parsed, timeout_seconds=None):
            return "ok", False
    return "ok", True


def main() -> None:
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    sys.setrecursionlimit(10_000)
    logging.disable(logging.WARNING)  # math-verify warns that its own timeout is disabled
    import math_verify  # noqa: F401  (import before "ready" so start-up is not billed to a request)

    out = sys.stdout
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        start = time.process_time()
        try:
            request = json.loads(line)
            status, correct = check(str(request["gold"]), [str(p) for p in request["preds"]])
        except (RecursionError, MemoryError, OverflowError):
            status, correct = "parse_error", False
        except Exception:  # any failure of sympy/math-verify is a wrong answer, never a crash
            status, correct = "error", False
        reply = {"status": status, "correct": correct, "cpu_s": time.process_time() - start}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
