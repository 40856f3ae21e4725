"""k15/Math-v0: prompts from generated tasks, files or lists; reward through verify_math."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest

import k15ray.envs  # noqa: F401  (registers the ids)
from k15ray.envs import write_prompts
from k15ray.envs.math_env import MathEnv
from k15ray.types import Prompt, RewardResult

PROMPTS = [
    Prompt(id="half", question="What is 1/2 as a decimal?", answer="0.5", difficulty=1),
    Prompt(id="factor", question="Factor a^2 - 4.", answer="(a+2)(a-2)", difficulty=2),
    Prompt(id="chat", question=({"role": "user", "content": "What is 3 × 3?"},), answer="9"),
]


def test_single_step_episode_rewards_a_correct_answer() -> None:
    env = gym.make("k15/Math-v0", prompts=PROMPTS)
    obs, info = env.reset(seed=0, options={"prompt_id": "factor"})
    assert obs == "Factor a^2 - 4." and info["prompt"] is PROMPTS[1]
    obs, reward, terminated, truncated, info = env.step("a^2-4 = \\boxed{(a-2)(a+2)}")
    assert (reward, terminated, truncated) == (1.0, True, False)
    result = info["reward_result"]
    assert isinstance(result, RewardResult) and result.correct and result.status == "ok"
    with pytest.raises(RuntimeError, match="reset"):
        env.step("again")


def test_wrong_and_missing_answers_score_zero() -> None:
    env = MathEnv(prompts=PROMPTS)
    env.reset(options={"prompt_id": "half"})
    _, reward, terminated, _, info = env.step("\\boxed{0.25}")
    assert (reward, terminated, info["status"]) == (0.0, True, "ok")
    env.reset(options={"prompt_id": "half"})
    _, reward, _, _, info = env.step("")
    assert (reward, info["status"]) == (0.0, "wrong_format")


def test_chat_questions_become_text_observations() -> None:
    env = MathEnv(prompts=PROMPTS)
    obs, _ = env.reset(options={"prompt_index": 2})
    assert obs == "user: What is 3 × 3?"
    assert obs in env.observation_space  # "×" is in the charset built from the prompts


def test_score_and_prompts_for_the_training_loop() -> None:
    env = gym.make("k15/Math-v0", prompts=PROMPTS).unwrapped
    assert [p.id for p in env.prompts] == ["half", "factor", "chat"]
    assert env.score(env.prompt_by_id("half"), "\\boxed{\\frac{1}{2}}").score == 1.0
    assert env.score(env.prompt_by_id("chat"), "Answer: 8").score == 0.0


def test_score_many_keeps_the_order() -> None:
    env = MathEnv(prompts=PROMPTS)
    prompts = [PROMPTS[0], PROMPTS[1], PROMPTS[2], PROMPTS[0]]
    responses = ["\\boxed{0.5}", "\\boxed{a^2+4}", "Answer: 9", "\\boxed{1/2}"]
    scores = [r.score for r in env.score_many(prompts, responses, max_workers=3)]
    assert scores == [1.0, 0.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="one prompt per response"):
        env.score_many(prompts, responses[:2])


def test_multi_turn_gives_another_try() -> None:
    env = MathEnv(prompts=PROMPTS, max_turns=2)
    env.reset(options={"prompt_id": "half"})
    obs, reward, terminated, _, info = env.step("\\boxed{2}")
    assert (reward, terminated, info["turn"]) == (0.0, False, 1)
    assert "not correct" in obs and obs in env.observation_space
    _, reward, terminated, _, info = env.step("\\boxed{0.5}")
    assert (reward, terminated, info["turn"]) == (1.0, True, 2)


def test_default_prompts_come_from_k15ray_tasks_and_follow_the_seed() -> None:
    a = MathEnv(num_prompts=12, seed=3)
    b = MathEnv(num_prompts=12, seed=3)
    c = MathEnv(num_prompts=12, seed=4)
    assert len(a.prompts) == 12 and all(p.domain == "math" for p in a.prompts)
    assert [p.id for p in a.prompts] == [p.id for p in b.prompts]
    assert [p.id for p in a.prompts] != [p.id for p in c.prompts]
    first = a.prompts[0]
    assert a.score(first, f"so \\boxed{{{first.answer}}}").correct


def test_data_path_jsonl_and_parquet(tmp_path: Path) -> None:
    for name in ("set.jsonl", "set.parquet"):
        path = tmp_path / name
        write_prompts(path, PROMPTS[:2])
        env = gym.make("k15/Math-v0", data_path=str(path))
        assert [p.id for p in env.unwrapped.prompts] == ["half", "factor"]


def test_reward_fn_override_and_failures_become_results() -> None:
    def always_half(prompt: Prompt, response: str) -> RewardResult:
        return RewardResult(0.5, False, "ok")

    def broken(prompt: Prompt, response: str) -> RewardResult:
        raise ZeroDivisionError("oops")

    env = MathEnv(prompts=PROMPTS, reward_fn=always_half)
    env.reset(seed=1)
    assert env.step("anything")[1] == 0.5
    env = MathEnv(prompts=PROMPTS, reward_fn=broken)
    env.reset(seed=1)
    _, reward, terminated, _, info = env.step("anything")
    assert (reward, terminated, info["status"]) == (0.0, True, "error")
    assert "ZeroDivisionError" in info["reward_result"].details["error"]


def test_bad_arguments_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        MathEnv(prompts=PROMPTS, data_path=tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match="max_turns"):
        MathEnv(prompts=PROMPTS, max_turns=0)
    with pytest.raises(ValueError, match="appears twice"):
        MathEnv(prompts=[PROMPTS[0], PROMPTS[0]])
    with pytest.raises(ValueError, match="empty"):
        MathEnv(prompts=[])
    env = MathEnv(prompts=PROMPTS)
    with pytest.raises(ValueError, match="not a prompt id"):
        env.reset(options={"prompt_id": "nope"})
    with pytest.raises(ValueError, match="out of range"):
        env.reset(options={"prompt_index": 3})


def test_render_ansi() -> None:
    env = MathEnv(prompts=PROMPTS, render_mode="ansi")
    env.reset(options={"prompt_id": "half"})
    env.step("\\boxed{0.5}")
    text = env.render()
    assert text is not None and "[half]" in text and "reward=1.0" in text
