"""Fault tolerance: a rollout actor killed in the middle of an iteration is replaced, its requests
re-run on the replacement, and the iteration completes with every prompt's k samples."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import ray
from k15_testkit import register_toy_env, small_config, tiny_model

from k15ray import metrics as M


def test_killed_rollout_actor_mid_iteration(ray_session: None, tmp_path: Path) -> None:
    config = small_config(tiny_model(tmp_path / "m"), tmp_path / "logs", env=register_toy_env())
    # long responses (400 tokens, no partial rollouts): generation is still running at the kill
    config.k15_rollouts(partial_rollout={"budget_tokens": 400, "max_response_tokens": 400})
    algo = config.build_algo()
    try:
        pool, buffer = algo._rollout.pool, algo._rollout.buffer
        pool.ping()  # the actor is up before the iteration starts
        victim = pool.actors[0]
        killed_mid_generation: list[bool] = []

        def kill_during_generation() -> None:
            while len(buffer) == 0:  # the buffer fills just before pool.generate is called ...
                time.sleep(0.005)
            time.sleep(0.2)
            killed_mid_generation.append(len(buffer) > 0)  # ... and empties once results apply
            ray.kill(victim, no_restart=True)

        killer = threading.Thread(target=kill_during_generation)
        killer.start()
        result = algo.train()
        killer.join()
        assert killed_mid_generation == [True]
        assert pool.num_replacements == 1
        assert result[M.ROLLOUT_ACTOR_REPLACEMENTS] == 1.0  # the replacement is visible as a metric
        # 3 prompts x k=4: all 12 trajectories finished (stopped, or truncated at 400 tokens)
        assert result[M.ROLLOUT_PROMPTS] == 3
        assert result[M.ROLLOUT_TRAJECTORIES] == 12
        assert len(buffer) == 0  # nothing lost, nothing left waiting
        assert result[M.LOSS_OPTIMIZER_STEPS] >= 1
        assert algo._rollout.actor_version() == 1  # the replacement got the new weights too
    finally:
        algo.stop()
