"""Evaluation: pass@1 over k samples, greedy accuracy, per-level figures and their level means."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from k15ray.evaluation import _summarise, evaluate
from k15ray.models import create_model, load_policy
from k15ray.types import Prompt, RewardResult


def _record(pid: str, level: int, correct: bool, n_tokens: int) -> dict[str, object]:
    return {"id": pid, "difficulty": level, "correct": correct, "response_tokens": n_tokens}


def test_pass_at_1_averages_samples_per_prompt_first() -> None:
    # prompt a: 1 of 4 samples right -> 0.25; prompt b: 2 of 2 right -> 1.0; pass@1 = 0.625
    sampled = [_record("a", 1, c, 10) for c in (True, False, False, False)]
    sampled += [_record("b", 1, True, 20), _record("b", 1, True, 30)]
    greedy = [_record("a", 1, False, 5), _record("b", 1, True, 5)]
    report = _summarise(greedy, sampled)
    assert report.pass_at_1 == pytest.approx(0.625)
    assert report.greedy_accuracy == pytest.approx(0.5)
    assert report.mean_response_tokens == pytest.approx((4 * 10 + 20 + 30) / 6)  # 15.0
    assert report.total_response_tokens == 4 * 10 + 20 + 30  # 90: the sampled responses
    assert report.n_prompts == 2


def _even_length_reward(prompt: Prompt, response: str) -> RewardResult:
    """A deterministic stand-in verdict for an untrained model: right when the text is even-length."""
    ok = len(response) % 2 == 0
    return RewardResult(float(ok), ok)


def test_evaluate_end_to_end_with_hf_backend(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model, tokenizer = load_policy(create_model("tiny", tmp_path / "m"))
    prompts = [Prompt(id=f"p{i}", question=f"What is {i} + {i}?", answer=str(2 * i), difficulty=1 + i % 2)
               for i in range(6)]
    report = evaluate(model, tokenizer, prompts, reward_fn=_even_length_reward, k=2,
                      temperature=1.0, max_new_tokens=8, batch_size=4)
    assert set(report.by_difficulty) == {1, 2}
    assert report.by_difficulty[1].n_prompts == 3 and report.overall.n_prompts == 6
    assert len(report.samples) == 6 + 6 * 2  # one greedy + k=2 sampled per prompt
    assert all(s["response_tokens"] <= 8 for s in report.samples)
    # check every figure against the samples by hand
    greedy = [s for s in report.samples if s["temperature"] == 0.0]
    expected_greedy = {lv: sum(s["correct"] for s in greedy if s["difficulty"] == lv) / 3 for lv in (1, 2)}
    for lv in (1, 2):
        assert report.by_difficulty[lv].greedy_accuracy == pytest.approx(expected_greedy[lv])
    assert report.greedy_accuracy_level_mean == pytest.approx((expected_greedy[1] + expected_greedy[2]) / 2)
    assert report.to_dict()["k"] == 2


def test_default_reward_scores_real_answers(tmp_path: Path) -> None:
    model_dir = create_model("tiny", tmp_path / "m")
    prompts = [Prompt(id="p", question="What is 1 + 1?", answer="2")]
    report = evaluate(model_dir, None, prompts, k=0, max_new_tokens=4)
    assert report.greedy_accuracy == 0.0 and report.pass_at_1 is None  # random weights


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no prompts"):
        evaluate(tmp_path, None, [])
    with pytest.raises(ValueError, match="not a Hugging Face model directory"):
        evaluate(tmp_path, None, [Prompt(id="p", question="q", answer="1")])
