"""``k15/Code-v0``: write a program that passes the prompt's stdin/stdout tests."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from k15ray.envs.base import DEFAULT_MAX_RESPONSE_CHARS, RewardCallable, TextEnv
from k15ray.rewards.code import code_reward
from k15ray.sandbox.runner import COMPARES
from k15ray.types import Prompt, RewardResult

BUILTIN_PROBLEMS = Path(__file__).resolve().parent / "data" / "code_problems.jsonl"
"""Twelve small stdin/stdout problems (sum, reverse, factorial, FizzBuzz, primes, ...), each
with a reference ``solution`` field that passes its tests."""
GENERATED_PROBLEMS = Path(__file__).resolve().parent / "data" / "code_generated.jsonl"
"""221 generated problems of difficulty 1-5 whose tests `k15ray gen-tests` made and validated
(CYaRon inputs, 7-of-10 agreement per case, 9-of-10 per problem; docs/curation.md), each with a
reference ``solution`` field; ``problem_set="generated"``."""
PROBLEM_SETS: dict[str, Path] = {"builtin": BUILTIN_PROBLEMS, "generated": GENERATED_PROBLEMS}


class CodeEnv(TextEnv):
    """Write a program for a problem with stdin/stdout tests.

    ## Description
    The coding task of the Kimi k1.5 report (sections 2.1 and 2.3.5): each episode shows one
    problem x; the policy reasons and answers with a program, which runs on the problem's test
    cases in ``k15ray.sandbox`` (bubblewrap, CPU/memory/process limits, a reused worker pool).

    ## Action Space
    ``Text(0, max_response_chars, charset=PRINTABLE_CHARSET)``: the response; the program is its
    last ```` ```python ```` block (``k15ray.rewards.code.extract_code``).

    ## Observation Space
    ``Text`` whose charset is ``PRINTABLE_CHARSET`` plus every character of the prompts, and whose
    ``max_length`` is the longest prompt (at least 4096): the problem statement, or, in a
    multi-turn episode, the feedback on the failing test.

    ## Rewards
    1.0 when the program passes every test (the paper's rule), else 0.0; with
    ``partial_credit=True`` the fraction of tests passed. ``info["reward_result"].status`` is
    ``ok``, ``wrong_format`` (no code block), ``timeout``, ``runtime_error`` or ``sandbox_error``.

    ## Starting State
    ``reset`` draws a problem uniformly with the env's seeded ``np_random``, or takes
    ``options={"prompt_id": id}`` / ``options={"prompt_index": i}``.

    ## Episode End
    Single-step by default (``terminated=True`` after the first program). With ``max_turns > 1``
    a failing program is answered with the first failing test (input, expected and actual output)
    and the policy tries again, until all tests pass or the turns are used up. Never truncated.

    ## Arguments
    ``gymnasium.make("k15/Code-v0", prompts=None, data_path=None, reward_fn=None, max_turns=1,
    max_response_chars=16384, partial_credit=False, compare="whitespace", timeout_s=5.0,
    memory_mb=512, language="python", problem_set="builtin")``. Without ``prompts`` or ``data_path``
    the problems of ``problem_set`` are used: ``builtin`` (12, ``BUILTIN_PROBLEMS``) or
    ``generated`` (221, ``GENERATED_PROBLEMS``). ``compare`` is ``exact``, ``whitespace`` or
    ``float``; ``timeout_s`` and ``memory_mb`` limit each test run.

    ## Version History
    * v0: initial version.
    """

    def __init__(
        self,
        prompts: Sequence[Prompt] | None = None,
        data_path: str | Path | None = None,
        reward_fn: RewardCallable | None = None,
        *,
        max_turns: int = 1,
        max_response_chars: int = DEFAULT_MAX_RESPONSE_CHARS,
        partial_credit: bool = False,
        compare: str = "whitespace",
        timeout_s: float = 5.0,
        memory_mb: int = 512,
        language: str = "python",
        render_mode: str | None = None,
        system_prompt: str | None = None,
        instruction: str | None = None,
        problem_set: str = "builtin",
    ) -> None:
        if problem_set not in PROBLEM_SETS:
            raise ValueError(f"problem_set={problem_set!r}: use one of {sorted(PROBLEM_SETS)}")
        self.problem_set = problem_set
        if compare not in COMPARES:
            raise ValueError(f"compare={compare!r}: use 'exact', 'whitespace' or 'float'")
        if timeout_s <= 0 or memory_mb <= 0:
            raise ValueError(f"timeout_s={timeout_s}, memory_mb={memory_mb}: both must be > 0")
        self.partial_credit = partial_credit
        self.compare = compare
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.language = language
        super().__init__(
            prompts,
            data_path,
            reward_fn,
            max_turns=max_turns,
            max_response_chars=max_response_chars,
            render_mode=render_mode,
            system_prompt=system_prompt,
            instruction=instruction,
        )
        untested = [p.id for p in self.prompts if not p.tests]
        if untested and reward_fn is None:
            raise ValueError(
                f"prompts {untested[:5]} have no tests; every k15/Code-v0 prompt needs "
                "tests: [{stdin, expected_stdout}, ...]"
            )

    def default_prompts(self) -> list[Prompt]:
        """The problems of ``problem_set``: ``envs/data/code_problems.jsonl`` or ``code_generated.jsonl``."""
        from k15ray.envs.dataset import load_prompts

        return load_prompts(PROBLEM_SETS[self.problem_set])

    def default_reward_fn(self) -> RewardCallable:
        return functools.partial(
            code_reward,
            partial_credit=self.partial_credit,
            compare=self.compare,
            timeout_s=self.timeout_s,
            memory_mb=self.memory_mb,
            language=self.language,
        )

    def feedback(self, prompt: Prompt, response: str, result: RewardResult) -> str:
        """The first failing test (or the format problem), as the next user turn."""
        failure = result.details.get("first_failure")
        if result.status == "wrong_format" or failure is None:
            problem = result.details.get("problem") or result.details.get("error") or "no result"
            return f"Your answer could not be tested: {problem}. Try again."
        lines = [
            f"Your program failed test {failure['index'] + 1} of {result.details['total']} "
            f"({failure['status']}).",
            f"Input:\n{failure['stdin']}",
            f"Expected output:\n{failure['expected']}",
            f"Your output:\n{failure['got']}",
        ]
        if failure["stderr"].strip():
            lines.append(f"Errors:\n{failure['stderr']}")
        lines.append("Fix the program and answer again.")
        return "\n".join(lines)
