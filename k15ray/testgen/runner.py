"""Running every ground-truth solution on every generated input, in the sandbox pool on Ray.

Thin adapter (STYLE.md rule 1): each problem is one ``SandboxActor.run_many`` call holding one
``harness.harness_program`` per solution, so 10 solutions x 50 inputs cost 10 sandboxed process
launches, not 500; ``SandboxActorPool`` spreads the problems over ``num_actors`` actors (one CPU
each), and each actor runs its solutions over its containers in parallel.

``RunStore`` keeps each problem's runs as it finishes (``runs.jsonl``, compact: the distinct outputs
once, then per solution and input an index into them or a failure status), so an interrupted run
loses at most the problems in flight, and the verdicts can be recomputed with other thresholds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from k15ray.curation.probe import read_complete_lines
from k15ray.testgen.agreement import RunOutput
from k15ray.testgen.harness import harness_program, harness_stdin, parse_harness_output

Runs = list[list[RunOutput]]
"""``runs[s][i]``: solution s on input i."""


def runs_fingerprint(solutions: Sequence[str], inputs: Sequence[str], timeout_s: float) -> str:
    payload = json.dumps([list(solutions), list(inputs), timeout_s])
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


def _pack(runs: Runs) -> dict[str, Any]:
    outputs: dict[str, int] = {}
    table = []
    for row in runs:
        packed = []
        for status, out in row:
            packed.append(outputs.setdefault(out, len(outputs)) if status == "ok" else status)
        table.append(packed)
    return {"outputs": list(outputs), "runs": table}


def _unpack(data: dict[str, Any]) -> Runs:
    outs = data["outputs"]
    return [[("ok", outs[v]) if isinstance(v, int) else (v, "") for v in row] for row in data["runs"]]


class RunStore:
    """Problem id -> (fingerprint, runs), read from and appended to a JSONL file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.done: dict[str, tuple[str, Runs]] = {}
        for rec in read_complete_lines(self.path):  # a line cut by a kill mid-write: recomputed
            self.done[rec["id"]] = (rec["fingerprint"], _unpack(rec))

    def get(self, problem_id: str, fingerprint: str) -> Runs | None:
        hit = self.done.get(problem_id)
        return hit[1] if hit is not None and hit[0] == fingerprint else None

    def add(self, problem_id: str, fingerprint: str, runs: Runs) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps({"id": problem_id, "fingerprint": fingerprint, **_pack(runs)}) + "\n")
            f.flush()
        self.done[problem_id] = (fingerprint, runs)


def harness_batch(solutions: Sequence[str], inputs: Sequence[str], timeout_s: float, memory_mb: int) -> list[dict[str, Any]]:
    """One ``run_many`` batch: a harness run per solution over all ``inputs``."""
    from k15ray.sandbox.limits import MAX_TIMEOUT_S

    wall = min(MAX_TIMEOUT_S, timeout_s * len(inputs) + 10.0)  # every input may use its limit
    stdin = harness_stdin(inputs)
    return [
        {"code": harness_program(s, timeout_s), "stdin": stdin, "timeout_s": wall, "memory_mb": memory_mb}
        for s in solutions
    ]


def run_on_ray(
    jobs: Sequence[tuple[str, Sequence[str], Sequence[str]]],
    *,
    num_actors: int,
    sandbox: Any,
    timeout_s: float,
    memory_mb: int,
) -> Iterator[tuple[str, Runs]]:
    """For each job (problem id, solutions, inputs), in order as they finish in order: its runs."""
    from k15ray.sandbox import make_sandbox_pool

    pool = make_sandbox_pool(num_actors, sandbox)
    try:
        def submit(actor: Any, job: tuple[str, Sequence[str], Sequence[str]]) -> Any:
            return actor.run_many.remote(harness_batch(job[1], job[2], timeout_s, memory_mb))

        for job, results in zip(jobs, pool.map(submit, list(jobs)), strict=True):
            yield job[0], [parse_harness_output(r.status, r.stdout, len(job[2])) for r in results]
    finally:
        import ray

        for actor in pool.actors:
            ray.kill(actor, no_restart=True)


ProgressFn = Callable[[int], None]
