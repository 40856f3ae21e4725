"""``reward.kind: value_rm | cot_rm``: a model reward model, not the verifier, gives the training
reward, while the verifier still runs beside it for the fooling-rate metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from k15_testkit import small_config, tiny_model

from k15ray import metrics as M
from k15ray.config.reward import RewardConfig


def test_reward_section_checks_its_values() -> None:
    with pytest.raises(ValueError, match="reward.kind 'judge' is not one of"):
        RewardConfig(kind="judge")
    with pytest.raises(ValueError, match="reward.model_dir empty; kind cot_rm with backend local"):
        RewardConfig(kind="cot_rm")
    with pytest.raises(ValueError, match="reward.backend"):
        RewardConfig(backend="http")
    assert RewardConfig(kind="cot_rm", backend="serve").uses_model


def test_rm_verifier_metrics() -> None:
    rm = [True, True, False, True]
    verifier = [True, False, False, False]
    figures = M.rm_verifier_metrics(rm, verifier)
    assert figures[M.REWARD_VERIFIER_ACCURACY] == 0.25
    assert figures[M.REWARD_FOOLING_RATE] == pytest.approx(2 / 3)  # 2 of the 3 wrong ones passed
    assert figures[M.REWARD_RM_AGREEMENT] == 0.5


def test_value_rm_is_the_training_reward(ray_session: None, tmp_path: Path) -> None:
    from k15ray.rewards.models import RMExample, ValueRM, train_value_rm

    tiny = tiny_model(tmp_path / "tiny")
    labelled = [RMExample("1+1?", "2", "\\boxed{2}", True), RMExample("1+1?", "2", "\\boxed{3}", False)]
    value_dir = train_value_rm(labelled, tiny, tmp_path / "value_rm", steps=1, batch_size=2, max_length=256)
    config = (
        small_config(tiny, tmp_path / "logs", env="k15/Math-v0")
        .environment("k15/Math-v0", env_config={"num_prompts": 6})
        .k15_training(reward={"kind": "value_rm", "model_dir": str(value_dir)})
    )
    algo = config.build_algo()
    try:
        phase = algo._rollout
        prompt = next(iter(phase.prompts.values()))
        answers = [rf"so \boxed{{{prompt.answer}}}", r"\boxed{-1}", "no answer"]
        scored = phase._score([prompt] * 3, answers)
        expected = ValueRM(value_dir).score_batch([prompt] * 3, answers)
        assert [r.score for r in scored] == pytest.approx([r.score for r in expected])
        assert all(0.0 < r.score < 1.0 for r in scored)  # P(correct), not the verifier's 0/1

        results = [algo.train() for _ in range(2)]  # groups complete on the 2nd iteration
        last = results[-1]
        for key in (M.REWARD_VERIFIER_ACCURACY, M.REWARD_FOOLING_RATE, M.REWARD_RM_AGREEMENT):
            assert 0.0 <= last[key] <= 1.0, key
    finally:
        algo.stop()
