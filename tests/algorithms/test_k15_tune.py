"""K15 as a Ray Tune trainable: a grid over tau (2 values x 2 iterations) with results in tmp.

Each trial's placement group holds the learner's bundle plus one bundle per rollout actor
(``K15.default_resource_request``); without them the actors would wait forever inside the trial.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from k15_testkit import tiny_model

import k15ray.algorithms  # noqa: F401  (registers "K15" with Tune)
from k15ray import metrics as M
from k15ray.algorithms import K15, K15Config


def _config(model_dir: str) -> K15Config:
    return (
        K15Config()
        .environment("k15/Math-v0", env_config={"num_prompts": 8, "levels": [1]})
        .policy(model_dir=model_dir)
        .k15_rollouts(
            rollout={"num_workers": 1, "samples_per_prompt": 2},
            partial_rollout={"budget_tokens": 16, "max_response_tokens": 16},
        )
        .k15_rollouts(sampling={"prompts_per_iteration": 2})
        .k15_training(learner={"num_minibatches": 1})
    )


def test_resource_request_has_a_bundle_per_rollout_actor() -> None:
    config = _config("unused").k15_rollouts(rollout={"num_workers": 3, "num_cpus_per_worker": 0.5})
    config.num_cpus_for_main_process = 1
    pgf = K15.default_resource_request(config)
    assert pgf.bundles == [{"CPU": 1.0}, {"CPU": 0.5}, {"CPU": 0.5}, {"CPU": 0.5}]


def test_tune_grid_over_tau(ray_session: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ray import tune

    # Tune 2.60 refuses to run while the deprecated TUNE_RESULT_DIR / RAY_AIR_LOCAL_CACHE_DIR are
    # set (tests/conftest.py sets them); results go to storage_path instead.
    monkeypatch.delenv("TUNE_RESULT_DIR", raising=False)
    monkeypatch.delenv("RAY_AIR_LOCAL_CACHE_DIR", raising=False)

    space = _config(tiny_model(tmp_path / "m")).to_dict()
    space["k15_mirror_descent"]["tau"] = tune.grid_search([0.1, 1.0])
    tuner = tune.Tuner(
        "K15",
        param_space=space,
        run_config=tune.RunConfig(
            name="grid", storage_path=str(tmp_path / "results"), stop={"training_iteration": 2}, verbose=0
        ),
    )
    grid = tuner.fit()
    assert grid.num_errors == 0, [r.error for r in grid]
    taus = sorted(r.config["k15_mirror_descent"]["tau"] for r in grid)
    assert taus == [0.1, 1.0]
    for result in grid:
        assert result.metrics["training_iteration"] == 2
        assert M.ROLLOUT_PROMPTS in result.metrics and M.PERF_SECONDS_ITERATION in result.metrics
        assert list(Path(result.path).glob("events.out.tfevents*")), "TensorBoard files via Tune's logger"
        assert Path(result.path).is_relative_to(tmp_path)
