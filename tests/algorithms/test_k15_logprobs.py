"""K15 iterations with rollout log-probs off, and on for every 2nd iteration only.

The learner recomputes log pi_theta_i itself (the reference pass), so an iteration without rollout
log-probs trains as usual; the ``loss/rollout_logp_gap_*`` diagnostic is measured exactly on the
iterations whose rollouts asked for them, and nan (not measured) on the others."""

from __future__ import annotations

import math
from pathlib import Path

from k15_testkit import register_toy_env, small_config, tiny_model

from k15ray import metrics as M


def test_gap_is_measured_only_on_the_iterations_with_rollout_logprobs(
    ray_session: None, tmp_path: Path
) -> None:
    config = small_config(tiny_model(tmp_path / "tiny"), tmp_path / "logs", env=register_toy_env())
    # no partial rollouts here: every group completes, so every iteration trains
    config = config.k15_rollouts(
        rollout={"logprobs_every_iterations": 2},
        partial_rollout={"budget_tokens": 24, "max_response_tokens": 24},
    )
    algo = config.build_algo()
    try:
        results = [algo.train() for _ in range(3)]
    finally:
        algo.stop()
    assert all(r[M.LOSS_OPTIMIZER_STEPS] >= 1 for r in results)  # every iteration trained
    assert [r[M.ROLLOUT_POLICY_VERSION] for r in results] == [1.0, 2.0, 3.0]
    gap = [r[M.LOSS_ROLLOUT_LOGP_GAP_MEAN] for r in results]
    # iterations 0 and 2 asked for log-probs (float32 learner and backend, same weights)
    assert 0.0 <= gap[0] < 1e-4 and 0.0 <= gap[2] < 1e-4, gap
    assert math.isnan(gap[1]) and math.isnan(results[1][M.LOSS_ROLLOUT_LOGP_GAP_MAX]), gap


def test_iterations_without_rollout_logprobs_train(ray_session: None, tmp_path: Path) -> None:
    """The default (``logprobs_every_iterations: 0``) with partial rollouts carried over."""
    config = small_config(tiny_model(tmp_path / "tiny"), tmp_path / "logs", env=register_toy_env())
    assert config.settings().rollout.logprobs_every_iterations == 0
    algo = config.build_algo()
    try:
        results = [algo.train() for _ in range(2)]
    finally:
        algo.stop()
    # budget 12 of 24 tokens: iteration 0 carries trajectories over, iteration 1 resumes them
    assert results[0][M.ROLLOUT_FRAC_CARRIED] > 0.5 and results[1][M.ROLLOUT_RESUMED] >= 8
    assert results[1][M.LOSS_OPTIMIZER_STEPS] >= 1 and math.isfinite(results[1][M.LOSS_TOTAL])
    assert math.isnan(results[1][M.LOSS_ROLLOUT_LOGP_GAP_MEAN])
