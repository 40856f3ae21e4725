"""k15/Code-v0 and code_reward: programs run in the real sandbox on stdin/stdout tests."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

import k15ray.envs  # noqa: F401  (registers the ids)
from k15ray.envs.code_env import BUILTIN_PROBLEMS, CodeEnv
from k15ray.rewards import code_reward, extract_code
from k15ray.types import CodeTest, Prompt

ADD = Prompt(
    id="add",
    question="Print a + b.",
    answer="",
    domain="code",
    tests=(
        CodeTest("1 2\n", "3\n"),
        CodeTest("0 0\n", "0\n"),
        CodeTest("5 -7\n", "-2\n"),
        CodeTest("10 10\n", "20\n"),
    ),
)
RIGHT = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
# a * b instead of a + b passes only where they agree: (1,2): 2 != 3 fail; (0,0): 0 == 0 pass;
# (5,-7): -35 != -2 fail; (10,10): 100 != 20 fail -> 1 of 4 tests
TIMES = "```python\na, b = map(int, input().split())\nprint(a * b)\n```"


def test_the_builtin_problems_are_solved_by_their_reference_solutions() -> None:
    env = gym.make("k15/Code-v0").unwrapped
    records = [json.loads(line) for line in BUILTIN_PROBLEMS.read_text().splitlines()]
    assert len(env.prompts) == len(records) >= 10
    for record in records:
        result = env.score(env.prompt_by_id(record["id"]), f"```python\n{record['solution']}```")
        assert (result.score, result.status) == (1.0, "ok"), record["id"]


def test_all_tests_must_pass_unless_partial_credit() -> None:
    assert code_reward(ADD, RIGHT).score == 1.0
    strict = code_reward(ADD, TIMES)
    assert (strict.score, strict.correct, strict.status) == (0.0, False, "ok")
    assert strict.details["passed"] == 1 and strict.details["total"] == 4
    partial = code_reward(ADD, TIMES, partial_credit=True)
    assert partial.score == pytest.approx(1 / 4)  # 1 of 4 tests passed
    failure = strict.details["first_failure"]
    assert (failure["index"], failure["stdin"], failure["expected"], failure["got"]) == (
        0, "1 2\n", "3\n", "2\n"
    )


def test_statuses_of_broken_programs() -> None:
    assert code_reward(ADD, "no code here").status == "wrong_format"
    assert code_reward(ADD, "```python\nprint(1)").status == "wrong_format"  # unterminated
    crash = code_reward(ADD, "```python\nraise SystemExit(3)\n```")
    assert (crash.score, crash.status) == (0.0, "runtime_error")
    slow = code_reward(ADD, "```python\nwhile True: pass\n```", timeout_s=0.5)
    assert (slow.score, slow.status) == (0.0, "timeout")
    empty = Prompt(id="e", question="?", answer="", domain="code")
    assert code_reward(empty, RIGHT).status == "error"


def test_extract_code_prefers_the_last_block_in_the_language() -> None:
    response = "```text\nnotes\n```\n```python\nprint(1)\n```\n```\nprint(2)\n```"
    assert extract_code(response) == "print(1)\n"
    assert extract_code("```\nprint(2)\n```") == "print(2)\n"
    assert extract_code("```cpp\nint main(){}\n```", "cpp") == "int main(){}\n"
    assert extract_code("```python\n\n```") is None


def test_multi_turn_feedback_shows_the_failing_test() -> None:
    env = CodeEnv(prompts=[ADD], max_turns=2)
    env.reset(seed=0)
    obs, reward, terminated, _, info = env.step(TIMES)
    assert (reward, terminated) == (0.0, False)
    assert "failed test 1 of 4" in obs and "Expected output:\n3" in obs and "Your output:\n2" in obs
    assert obs in env.observation_space
    _, reward, terminated, _, _ = env.step(RIGHT)
    assert (reward, terminated) == (1.0, True)


def test_feedback_outside_the_charset_still_fits_the_observation_space() -> None:
    env = CodeEnv(prompts=[ADD], max_turns=2)
    env.reset(seed=0)
    obs, _, terminated, _, _ = env.step("```python\nprint('\u4e2d')\n```")  # prints a CJK char
    assert not terminated and "Your output:\n?" in obs and obs in env.observation_space


def test_prompts_without_tests_are_rejected() -> None:
    with pytest.raises(ValueError, match="no tests"):
        CodeEnv(prompts=[Prompt(id="x", question="?", answer="", domain="code")])
