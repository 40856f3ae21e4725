"""A pool of pre-started containers: the paper's container reuse (section 2.6.4).

Starting a container (namespaces, mounts, an interpreter) costs tens of milliseconds; the pool
keeps ``size`` of them running and hands each request to an idle one, so that a run costs about
what a plain ``fork``/``exec`` costs. The zygote cleans a container between requests (every
process killed, ``/work`` emptied); a worker that died is replaced before its next request.

Thread-safe: any number of threads may call ``execute`` at once; each blocks until a worker is
free. Containers are started from one long-lived thread because bubblewrap's
``--die-with-parent`` follows the *thread* that started it: a container started from a
short-lived thread would die with that thread.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from k15ray.sandbox.worker import Worker, WorkerDied


class WorkerPool:
    """``size`` containers started from ``argv``; ``execute`` runs one request on an idle one."""

    def __init__(self, argv: list[str], size: int, seccomp: bytes | None = None) -> None:
        if size < 1:
            raise ValueError(f"pool size = {size}: use at least 1 worker")
        self._argv = argv
        self._seccomp = seccomp
        self.size = size
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="k15ray-sandbox-spawn")
        self._idle: queue.Queue[Worker | None] = queue.Queue()
        self._lock = threading.Lock()
        self._workers: list[Worker] = []
        self._closed = False
        self.restarts = 0
        for _ in range(size):
            self._idle.put(None)  # a slot whose worker starts on first use

    def start(self) -> None:
        """Start every worker now, rather than on first use."""
        slots = [self._idle.get() for _ in range(self.size)]
        try:
            slots = [w if w is not None and w.alive else self._spawn() for w in slots]
        finally:
            for w in slots:
                self._idle.put(w)

    def _spawn(self) -> Worker:
        worker = self._spawner.submit(Worker, self._argv, self._seccomp).result()
        with self._lock:
            self._workers = [w for w in self._workers if w.alive] + [worker]
        return worker

    def execute(self, payload: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Run one request; raises ``WorkerDied`` when its worker died (it is replaced)."""
        if self._closed:
            raise RuntimeError("this sandbox pool is closed; create a new Sandbox")
        worker = self._idle.get()
        try:
            if worker is None or not worker.alive:
                if worker is not None:
                    worker.kill()
                    self.restarts += 1
                worker = self._spawn()
            return worker.request(payload, timeout_s)
        finally:
            self._idle.put(worker)

    @property
    def pids(self) -> list[int]:
        """Host pids of the live containers' bubblewrap processes (for tests and monitoring)."""
        with self._lock:
            return [w.proc.pid for w in self._workers if w.alive]

    def close(self) -> None:
        """Kill every container. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            workers, self._workers = self._workers, []
        for w in workers:
            w.kill()
        self._spawner.shutdown(wait=False)


__all__ = ["WorkerDied", "WorkerPool"]
