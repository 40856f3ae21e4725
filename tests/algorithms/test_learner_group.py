"""Data-parallel learners: ``learner.num_learners = 2`` through RLlib's LearnerGroup (torch DDP, gloo).

Two learner actors, each stepping on a shard of whole prompt groups, must take the same step as
one learner on the whole minibatch (float tolerance), hold identical weights afterwards, and resume
exactly from a checkpoint. Placement errors come before any actor starts and say what to change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from k15_testkit import register_toy_env, small_config, tiny_model

from k15ray import metrics as M
from k15ray.algorithms import K15Config
from k15ray.algorithms.config import check_cluster_fits
from k15ray.config.k15 import K15Settings

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, num_learners: int) -> K15Config:
    config = small_config(
        tiny_model(tmp_path / "m"), tmp_path / f"logs{num_learners}", env=register_toy_env()
    )
    # 5 prompts in 2 minibatches of 3 and 2 groups: on 2 learners, shards of 2 + 1 and 1 + 1 groups
    config.k15_rollouts(sampling={"prompts_per_iteration": 5})
    config.learners(
        num_cpus_per_learner=0.5
    )  # 2 x 0.5 + the rollout actor's 1: the session's 2 CPUs
    return config.k15_training(
        learner={**config.k15_learner, "num_learners": num_learners, "num_threads": 1}
    )


def _weights(algo: Any) -> dict[str, np.ndarray]:
    return algo.learner_group.get_weights()["default_policy"]  # type: ignore[no-any-return]


def _first_update(
    config: K15Config,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], list[Any]]:
    """Train until the first iteration that updates the weights (before it, both runs roll out
    with the same initial weights, so they draw the same samples): that iteration's result, the
    weights before and after it (learner 0), and every learner's weights after it."""
    algo: Any = config.build_algo()
    try:
        before = _weights(algo)
        for _ in range(4):
            result = algo.train()
            if result.get(M.LOSS_OPTIMIZER_STEPS, 0) >= 1:
                break
        group: Any = algo.learner_group
        every = [
            r.get()
            for r in group.foreach_learner(
                lambda learner: learner.get_state(components="rl_module")["rl_module"]
            )
        ]
        return result, before, _weights(algo), every
    finally:
        algo.stop()


def test_two_learners_take_the_step_of_one(ray_session: None, tmp_path: Path) -> None:
    one_result, before, one, _ = _first_update(_config(tmp_path, 0))
    two_result, _, two, every = _first_update(_config(tmp_path, 2))
    assert one_result[M.LOSS_OPTIMIZER_STEPS] == two_result[M.LOSS_OPTIMIZER_STEPS] >= 1
    assert one_result["training_iteration"] == two_result["training_iteration"]
    # the same prompts and samples reached both learners (the rollout does not depend on them) ...
    for key in (M.ROLLOUT_TOKENS, M.ROLLOUT_TRAJECTORIES, M.REWARD_MEAN):
        assert two_result[key] == one_result[key], key
    # ... and the update moved the weights, identically up to float error. Adam's first steps are
    # about lr * g / |g| per element (lr 1e-3 here), so on an element whose gradient is near zero
    # the float error of a sum over two shards moves the step by a few 1e-6 to 1e-5 (seen: 1.4e-5
    # on 1 of 16,128); a wrong shard weighting moves whole rows by a sizeable fraction of 1e-3.
    assert any(not np.array_equal(before[k], one[k]) for k in one)
    for k in one:
        np.testing.assert_allclose(two[k], one[k], rtol=1e-4, atol=5e-5, err_msg=k)
    # DDP keeps the learners in step: both actors hold the same weights
    assert len(every) == 2
    for k, v in every[0]["default_policy"].items():
        np.testing.assert_array_equal(every[1]["default_policy"][k], v, err_msg=k)


def test_two_learner_run_resumes_exactly(ray_session: None, tmp_path: Path) -> None:
    config = _config(tmp_path, 2)
    original: Any = config.build_algo()
    try:  # the session's 2 CPUs hold one run at a time: the original's 3rd iteration, then stop
        original.train()
        original.train()
        checkpoint = original.save_to_path(tmp_path / "ckpt")
        a, w0 = original.train(), _weights(original)
    finally:
        original.stop()
    restored: Any = config.build_algo()
    try:
        restored.restore_from_path(checkpoint)
        assert restored.iteration == 2
        b = restored.train()
        assert a[M.LOSS_OPTIMIZER_STEPS] >= 1
        for key in (M.ROLLOUT_TOKENS, M.REWARD_MEAN, M.LOSS_TOTAL):
            assert a[key] == b[key], key
        w1 = _weights(restored)
        for k in w0:
            np.testing.assert_array_equal(w1[k], w0[k], err_msg=k)
        # a replacement rollout actor would take learner 0's weights with their version
        state, version = restored._rollout.pool._weights_source()
        assert version == restored._policy_version >= 1
        name = next(iter(state))  # a Hugging Face name; the RLModule holds it as policy.<name>
        np.testing.assert_array_equal(state[name].numpy(), w1[f"policy.{name}"])
    finally:
        restored.stop()


def test_more_cpu_learners_than_cpus_fails_before_any_actor(
    ray_session: None, tmp_path: Path
) -> None:
    config = _config(tmp_path, 3).learners(num_cpus_per_learner="auto")  # 1 CPU each
    # 3 learners x 1 CPU + 1 rollout actor x 1 CPU on the test session's 2 CPUs
    with pytest.raises(ValueError, match=r"the run needs 4 CPUs .* but the Ray cluster has 2"):
        config.build_algo()


def test_placement_errors_say_what_to_change(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m")
    colocated = small_config(model, tmp_path).k15_rollouts(rollout={"colocate": True})
    colocated.k15_training(learner={"num_learners": 2})
    with pytest.raises(
        ValueError, match=r"set rollout\.colocate: false .* or learner\.num_learners: 0"
    ):
        colocated.validate()
    nccl = small_config(model, tmp_path).k15_rollouts(
        rollout={"backend": "vllm", "num_gpus_per_worker": 1, "weight_sync": "nccl"}
    )
    nccl.k15_training(learner={"num_learners": 2, "num_gpus": 1})
    with pytest.raises(
        ValueError, match=r"set rollout\.weight_sync: object_store, or learner\.num_learners: 0"
    ):
        nccl.validate()
    # GPUs: 2 learners x 1 + 2 engines x 1 = 4 on a 2-GPU cluster
    settings = K15Settings.from_sections(
        {
            **K15Settings().to_sections(),
            "learner": {"num_learners": 2, "num_gpus": 1.0},
            "rollout": {"num_workers": 2, "num_gpus_per_worker": 1.0},
        }
    )
    with pytest.raises(ValueError, match=r"the run needs 4 GPUs .* but the Ray cluster has 2"):
        check_cluster_fits(settings, {"CPU": 16.0, "GPU": 2.0})
    check_cluster_fits(settings, {"CPU": 16.0, "GPU": 4.0})  # fits: no error


def test_num_learners_is_one_value() -> None:
    """RLlib's builder, the learner section and a Tune dict set the same number."""
    assert K15Config().learners(num_learners=2).settings().learner.num_learners == 2
    cfg = K15Config().k15_training(learner={"num_learners": 3})
    assert cfg.num_learners == 3
    assert K15Config().update_from_dict(cfg.to_dict()).num_learners == 3
    with pytest.raises(ValueError, match=r"learner\.num_learners must be >= 0"):
        K15Config().k15_training(learner={"num_learners": -1}).settings()
