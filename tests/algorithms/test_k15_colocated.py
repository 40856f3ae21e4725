"""Colocated rollouts (paper 2.6.3): the rollout backend runs in the learner's process.

On CPU the colocated pool holds the transformers backend; the same code path drives vLLM on a GPU
(sleep while training, weights loaded in place). Every iteration reports the gap between the
learner's reference log-probs and the log-probs the backend reported while sampling (asked for on
every iteration here: ``rollout.logprobs_every_iterations: 1``)."""

from __future__ import annotations

from pathlib import Path

from k15_testkit import register_toy_env, small_config, tiny_model

from k15ray import metrics as M
from k15ray.rollout.local import LocalRolloutPool


def test_colocated_iteration_trains_syncs_in_place_and_reports_the_logp_gap(
    ray_session: None, tmp_path: Path
) -> None:
    env = register_toy_env()
    config = small_config(tiny_model(tmp_path / "tiny"), tmp_path / "logs", env=env)
    config = config.k15_rollouts(
        rollout={"colocate": True, "samples_per_prompt": 4, "max_batch_size": 16, "logprobs_every_iterations": 1}
    )
    algo = config.build_algo()
    try:
        assert isinstance(algo._rollout.pool, LocalRolloutPool)
        before = {k: v.clone() for k, v in algo._rollout.pool.backend.model.state_dict().items()}
        # budget 12 of 24 tokens: groups complete (and the learner steps) from the 2nd iteration
        results = [algo.train() for _ in range(2)]
        result = results[-1]
        after = algo._rollout.pool.backend.model.state_dict()
        assert algo._rollout.pool.policy_version == 1
        assert any(not before[k].equal(after[k]) for k in before)  # new weights reached the engine
        # float32 learner and float32 backend, same weights: the same numbers up to rounding
        assert 0.0 <= result[M.LOSS_ROLLOUT_LOGP_GAP_MEAN] < 1e-4
        assert result[M.LOSS_ROLLOUT_LOGP_GAP_MAX] < 1e-3
    finally:
        algo.stop()
