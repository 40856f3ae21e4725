"""The worker pool under concurrency, and the Ray actor-pool adapter."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from k15ray.config.sandbox import SandboxConfig
from k15ray.sandbox import Sandbox
from k15ray.types import CodeTest


def test_concurrent_callers_get_their_own_answers() -> None:
    with Sandbox(SandboxConfig(workers=2)) as sb:
        code = "import time\nn = int(input())\ntime.sleep(0.01)\nprint(n * n)"

        def square(n: int) -> str:
            return sb.run(code, stdin=f"{n}\n").stdout

        with ThreadPoolExecutor(6) as ex:  # 6 threads share 2 containers
            outputs = list(ex.map(square, range(24)))
        assert outputs == [f"{n * n}\n" for n in range(24)]
        assert len(sb.pool.pids) == 2 and sb.pool.restarts == 0


def test_containers_survive_the_thread_that_started_them() -> None:
    # bwrap --die-with-parent follows the starting *thread*: the pool starts containers from its
    # own long-lived thread, so a caller's short-lived thread may trigger the start.
    with Sandbox(SandboxConfig(workers=1)) as sb:
        t = threading.Thread(target=lambda: sb.run("print(1)"))
        t.start()
        t.join()
        time.sleep(0.2)  # the starting thread is gone
        pids = sb.pool.pids
        assert len(pids) == 1
        assert sb.run("print(2)").stdout == "2\n"
        assert sb.pool.pids == pids and sb.pool.restarts == 0


def test_close_kills_every_container() -> None:
    sb = Sandbox(SandboxConfig(workers=2)).start()
    pids = sb.pool.pids
    assert len(pids) == 2 and all(os.path.exists(f"/proc/{p}") for p in pids)
    sb.close()
    assert not any(os.path.exists(f"/proc/{p}") for p in pids)
    with pytest.raises(RuntimeError, match="closed"):
        sb.run("print(1)")


@pytest.mark.slow
def test_ray_actor_pool_runs_tests_and_its_containers_die_with_it(ray_session: None) -> None:
    import ray

    from k15ray.sandbox import make_sandbox_pool

    pool = make_sandbox_pool(1, SandboxConfig(workers=1), num_cpus=0.5)
    tests = [CodeTest("2\n", "4\n"), CodeTest("3\n", "9\n")]
    jobs = [("n = int(input())\nprint(n * n)", tests), ("print(4)", tests)]
    reports = list(pool.map(lambda a, job: a.run_tests.remote(*job), jobs))
    # squares pass both tests (2*2=4, 3*3=9); a constant 4 passes only the first
    assert [(r.passed, r.total) for r in reports] == [(2, 2), (1, 2)]
    (actor,) = pool.actors
    pids = ray.get(actor.worker_pids.remote())
    assert len(pids) == 1
    ray.kill(actor)
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{p}") for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(os.path.exists(f"/proc/{p}") for p in pids)  # --die-with-parent
    with pytest.raises(ValueError, match="positive number"):
        make_sandbox_pool(0)
