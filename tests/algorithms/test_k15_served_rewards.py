"""``reward.backend: serve``: the training loop scores through the Ray Serve rewards
application (a deployment handle) instead of in-process, with the same results."""

from __future__ import annotations

import socket
from pathlib import Path

from k15_testkit import small_config, tiny_model

from k15ray import metrics as M


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_training_loop_scores_through_served_rewards(ray_session: None, tmp_path: Path) -> None:
    from ray import serve

    from k15ray.config.serve import RewardServeConfig, SandboxServeConfig, ServeConfig
    from k15ray.serve.app import run_local

    config = small_config(tiny_model(tmp_path / "tiny"), tmp_path / "logs", env="k15/Math-v0")
    config = (
        config.environment("k15/Math-v0", env_config={"num_prompts": 6})
        .k15_rollouts(rollout={"samples_per_prompt": 4, "max_batch_size": 16})
        .k15_training(reward={"backend": "serve"})
    )
    algo = config.build_algo()
    try:
        phase = algo._rollout
        prompt = next(iter(phase.prompts.values()))
        answers = [rf"so \boxed{{{prompt.answer}}}", r"\boxed{-1}", "no answer"]
        prompts = [prompt] * len(answers)

        # No rewards application yet: every served score is a typed failure, never an exception.
        assert [r.status for r in phase._score(prompts, answers)] == ["error"] * 3

        run_local(
            ServeConfig(
                host="127.0.0.1", port=_free_port(),
                rewards=RewardServeConfig(kinds=("math",), num_cpus=0.0),
                sandbox=SandboxServeConfig(enabled=False),
            )
        )
        served = phase._score(prompts, answers)
        local = [algo._rollout.env.score(prompt, a) for a in answers]
        assert [(r.score, r.correct, r.status) for r in served] == [
            (r.score, r.correct, r.status) for r in local
        ]
        assert served[0].correct and not served[1].correct

        results = [algo.train() for _ in range(2)]  # groups complete on the 2nd iteration
        assert M.REWARD_MEAN in results[-1]
    finally:
        algo.stop()
        serve.shutdown()
