"""Checkpoints through RLlib's Checkpointable: a restored K15 continues exactly.

The checkpoint holds the learner's weights (RLlib's LearnerGroup component) and, in the algorithm
state, the sampler (success rates, iteration, RNG), the partial-rollout buffer (unfinished
trajectories with their segments), the RNG states and the policy version. After a restore, the
next iteration must draw and learn exactly what the uninterrupted run draws and learns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from k15_testkit import register_toy_env, small_config, tiny_model

from k15ray import metrics as M
from k15ray.algorithms import K15


def _weights(algo: K15) -> dict[str, np.ndarray]:
    return algo.learner_group.get_weights()["default_policy"]


def test_resume_restores_sampler_buffer_and_continues_exactly(ray_session: None, tmp_path: Path) -> None:
    config = small_config(tiny_model(tmp_path / "m"), tmp_path / "logs", env=register_toy_env())
    original = config.build_algo()
    try:
        original.train()
        original.train()  # an update happened, and new trajectories wait in the buffer
        assert len(original._rollout.buffer.unfinished()) > 0
        checkpoint = original.save_to_path(tmp_path / "ckpt")
        sampler_state = original._rollout.sampler.state_dict()
        buffer_state = original._rollout.buffer.state_dict()

        restored = config.build_algo()
        try:
            restored.restore_from_path(checkpoint)
            assert restored._rollout.sampler.state_dict() == sampler_state
            assert restored._rollout.buffer.state_dict() == buffer_state
            assert restored.iteration == original.iteration == 2
            assert restored._policy_version == original._policy_version == 1
            assert restored._rollout.actor_version() == 1  # weights re-pushed to the new actors
            w0, w1 = _weights(original), _weights(restored)
            assert all(np.array_equal(w0[k], w1[k]) for k in w0)

            # the next iteration is the same in both: same prompts, samples, rewards and update
            a, b = original.train(), restored.train()
            for key in (M.ROLLOUT_TOKENS, M.ROLLOUT_TRAJECTORIES, M.REWARD_MEAN, M.LOSS_TOTAL):
                assert a[key] == b[key], key
            assert original._rollout.buffer.state_dict() == restored._rollout.buffer.state_dict()
            assert original._rollout.sampler.state_dict() == restored._rollout.sampler.state_dict()
            w0, w1 = _weights(original), _weights(restored)
            assert all(np.array_equal(w0[k], w1[k]) for k in w0)
        finally:
            restored.stop()
    finally:
        original.stop()
