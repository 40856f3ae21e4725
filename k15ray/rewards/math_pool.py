"""A pool of persistent math-verify worker processes with a per-call time limit.

Why processes: math-verify's own timeout is ``signal.alarm``, usable only in a main thread, and no
signal handler can interrupt C-level work (``9^{9^{9^9}}``). A worker (``_math_worker.py``) runs
math-verify with its timeouts off; the caller waits on the worker's pipe with ``select`` and kills
the worker when the time limit passes. Any thread, and any Ray actor, can call ``check``: each call
takes an idle worker (starting one, up to ``max_workers``) and gives it back afterwards. Workers
start once and are reused, so the cost per call is one pipe round trip (tens of microseconds).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORKER_SCRIPT = Path(__file__).with_name("_math_worker.py")
STARTUP_TIMEOUT_S = 120.0
"""A cold start imports sympy (about a second); on a loaded machine it can take much longer."""


@dataclass(frozen=True)
class WorkerReply:
    """One worker answer: ``status`` is ``ok``/``parse_error``/``error``, or ``timeout`` when the
    time limit passed (the worker was killed), ``cpu_s`` the worker's CPU time for it."""

    status: str
    correct: bool
    cpu_s: float = 0.0


class _Worker:
    """One worker process and the bytes read from it so far."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-u", str(WORKER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        self._buf = b""
        ready = self._read_line(time.monotonic() + STARTUP_TIMEOUT_S)
        if ready is None or not json.loads(ready).get("ready"):
            self.kill()
            raise RuntimeError(f"the math-verify worker ({WORKER_SCRIPT}) did not start")

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def _read_line(self, deadline: float) -> str | None:
        """The next line, or ``None`` on timeout or when the worker died."""
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:  # EOF: the worker died (memory limit, crash)
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def request(self, gold: str, preds: list[str], timeout_s: float) -> WorkerReply:
        assert self._proc.stdin is not None
        payload = json.dumps({"gold": gold, "preds": preds}) + "\n"
        try:
            self._proc.stdin.write(payload.encode())
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.kill()
            return WorkerReply("error", False)
        line = self._read_line(time.monotonic() + timeout_s)
        if line is None:
            status = "timeout" if self.alive else "error"
            self.kill()
            return WorkerReply(status, False)
        reply: dict[str, Any] = json.loads(line)
        return WorkerReply(str(reply["status"]), bool(reply["correct"]), float(reply["cpu_s"]))

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                stream.close()


class MathVerifyPool:
    """Up to ``max_workers`` math-verify processes shared by every thread of this process."""

    def __init__(self, max_workers: int = 2) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers={max_workers}: must be >= 1")
        self.max_workers = max_workers
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._busy = 0
        self._pid = os.getpid()

    def _acquire(self) -> _Worker | None:
        """An idle worker, or ``None`` meaning "start one yourself" (a slot is reserved)."""
        with self._cond:
            if os.getpid() != self._pid:  # forked: the parent's pipes are not ours
                self._idle, self._busy, self._pid = [], 0, os.getpid()
            while not self._idle and self._busy >= self.max_workers:
                self._cond.wait()
            self._busy += 1
            return self._idle.pop() if self._idle else None

    def _release(self, worker: _Worker | None, *, replace_dead: bool = True) -> None:
        with self._cond:
            if replace_dead and worker is not None and not worker.alive:
                # killed at its time limit: start the replacement now, in the background, so the
                # next call does not wait for sympy to import (the slot stays reserved meanwhile)
                threading.Thread(target=self._replace, daemon=True).start()
                return
            self._busy -= 1
            if worker is not None and worker.alive:
                self._idle.append(worker)
            self._cond.notify()

    def _replace(self) -> None:
        try:
            worker: _Worker | None = _Worker()
        except RuntimeError:
            worker = None
        self._release(worker, replace_dead=False)

    def check(self, gold: str, preds: list[str], timeout_s: float) -> WorkerReply:
        """Is every pred equivalent to gold? At most ``timeout_s`` of work, start-up not counted."""
        worker = self._acquire()
        try:
            if worker is None:
                worker = _Worker()
            return worker.request(gold, preds, timeout_s)
        except RuntimeError:
            return WorkerReply("error", False)
        finally:
            self._release(worker)

    def close(self) -> None:
        """Stop the idle workers (busy ones stop when their caller gives them back and exits)."""
        with self._cond:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


_default_pool: MathVerifyPool | None = None
_default_lock = threading.Lock()


def default_pool() -> MathVerifyPool:
    """The process-wide pool (``K15RAY_MATH_WORKERS`` workers, default 2), created on first use."""
    global _default_pool
    with _default_lock:
        if _default_pool is None:
            _default_pool = MathVerifyPool(int(os.environ.get("K15RAY_MATH_WORKERS", "2")))
            atexit.register(_default_pool.close)
        return _default_pool
