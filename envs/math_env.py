"""``k15/Math-v0``: answer a math question; reward 1 when the final answer matches the reference."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from k15ray.envs.base import DEFAULT_MAX_RESPONSE_CHARS, RewardCallable, TextEnv
from k15ray.rewards.math import DEFAULT_TIMEOUT_S, math_reward
from k15ray.types import Prompt


class MathEnv(TextEnv):
    """Answer a math question with a chain of thought and a final answer.

    ## Description
    The verifiable-math task of the Kimi k1.5 report (section 2.1): each episode shows one problem
    x of the prompt set D; the policy writes its reasoning z and final answer y in one response.

    ## Action Space
    ``Text(0, max_response_chars, charset=PRINTABLE_CHARSET)``: the response. The final answer is
    read from ``\\boxed{...}``, else from the text after "Answer:"/"the answer is", else from the
    last expression of the last line (``k15ray.rewards.answer``).

    ## Observation Space
    ``Text`` whose charset is ``PRINTABLE_CHARSET`` plus every character of the prompts, and whose
    ``max_length`` is the longest prompt (at least 4096): the question text (chat messages are
    rendered as ``role: content`` blocks; the ``Prompt`` itself is in ``info["prompt"]``).

    ## Rewards
    r(x, y, y*) = 1.0 when ``verify_math(y, y*)`` (math-verify equivalence: ``\\frac{1}{2}`` =
    ``0.5``, ``(a+2)(a-2)`` = ``a^2-4``, intervals, sets, tuples, units, percentages), else 0.0.
    ``info["reward_result"]`` says why (``status``: ``ok``, ``wrong_format``, ``parse_error``,
    ``timeout``). A ``reward_fn`` argument replaces this reward.

    ## Starting State
    ``reset`` draws a prompt uniformly with the env's seeded ``np_random``, or takes
    ``options={"prompt_id": id}`` / ``options={"prompt_index": i}``.

    ## Episode End
    Single-step by default: ``terminated=True`` after the first response. With ``max_turns > 1``
    a wrong answer is followed by a "try again" turn until the answer is right or the turns are
    used up. Never truncated.

    ## Arguments
    ``gymnasium.make("k15/Math-v0", prompts=None, data_path=None, reward_fn=None, max_turns=1,
    max_response_chars=16384, num_prompts=256, levels=None, seed=0, timeout_s=5.0,
    system_prompt=None, instruction=None)``; for a chat model trained elsewhere, e.g.
    ``instruction=k15ray.prompting.BOXED_ANSWER`` (``TextEnv``).
    With neither ``prompts`` nor ``data_path``, ``num_prompts`` arithmetic problems are generated
    by ``k15ray.tasks.generate_prompt_set(num_prompts, levels, seed)``.
    ``timeout_s`` bounds one answer check.

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
        num_prompts: int = 256,
        levels: Sequence[int] | None = None,
        seed: int = 0,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        render_mode: str | None = None,
        system_prompt: str | None = None,
        instruction: str | None = None,
    ) -> None:
        if num_prompts < 1:
            raise ValueError(f"num_prompts={num_prompts}: must be >= 1")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s={timeout_s}: must be > 0 seconds")
        self.num_prompts = num_prompts
        self.levels = tuple(levels) if levels is not None else None
        self.seed = seed
        self.timeout_s = timeout_s
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

    def default_prompts(self) -> list[Prompt]:
        """``num_prompts`` generated arithmetic problems (``k15ray.tasks``), the same for a seed."""
        from k15ray.envs.dataset import prompt_from_record
        from k15ray.tasks import LEVELS, generate_prompt_set

        levels = self.levels if self.levels is not None else LEVELS
        records = generate_prompt_set(self.num_prompts, levels=levels, seed=self.seed)
        return [prompt_from_record(r, f"k15ray.tasks record {i}") for i, r in enumerate(records)]

    def default_reward_fn(self) -> RewardCallable:
        return functools.partial(math_reward, timeout_s=self.timeout_s)
