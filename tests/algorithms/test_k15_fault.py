"""Fault tolerance: a rollout actor killed in the middle of an iteration is replaced, its requests
re-run on the replacement, and the iteration completes with every prompt's k samples."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import ray
from k15_testkit import register_toy_env, small_config, tiny_model

from k15ray.algorithms import metrics as M


def test_killed_rollout_actor_mid_iteration(ray_session: None, tmp_path: Path) -> None:
    config = small_config(tiny_model(tmp_path / "m"), tmp_path / "logs", env=register_toy_env())
    # long responses (300 tokens, no partial rollouts) so that generation is still running at the kill
    config.k15_rollouts(partial_rollout={"budget_tokens": 300, "max_response_tokens": 300})
    algo = config.build_algo()
    try:
        pool = algo._rollout.pool
        pool.ping()  # the actor is up before the iteration starts
        victim = pool.workers[0]

        def kill_during_generation() -> None:
            time.sleep(1.0)
            ray.kill(victim, no_restart=True)

        killer = threading.Thread(target=kill_during_generation)
        killer.start()
        t0 = time.perf_counter()
        result = algo.train()
        killer.join()
        assert pool.num_replacements >= 1, "the kill must land inside the iteration"
        assert time.perf_counter() - t0 > 1.0
        # 3 prompts x k=4: all 12 trajectories finished (300 tokens = max: truncated or stopped)
        assert result[M.ROLLOUT_PROMPTS] == 3
        assert result[M.ROLLOUT_TRAJECTORIES] == 12
        assert len(algo._rollout.buffer) == 0  # nothing lost, nothing left waiting
        assert result[M.LOSS_OPTIMIZER_STEPS] >= 1
        assert algo._rollout.actor_version() == 1  # the replacement got the new weights too
    finally:
        algo.stop()
