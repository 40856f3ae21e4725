"""The text-environment base class: one prompt x per episode, the policy's response y as action.

A reasoning task is a contextual bandit in the paper's framing (section 2.3.1): the environment
shows a prompt x from the prompt set D, the policy answers with (z, y), and a reward model scores
r(x, y, y*) against the reference answer y*. ``TextEnv`` is that, as a Gymnasium env:

* ``reset(seed=..., options={"prompt_id": ...})`` picks x (uniformly with ``self.np_random``, or the
  prompt named in ``options``) and returns its text as observation;
* ``step(response)`` scores the response with a ``RewardFn`` and ends the episode
  (``terminated=True``); ``info["reward_result"]`` carries the full ``RewardResult``.

Multi-turn episodes are opt-in (``max_turns > 1``): after a wrong answer the next observation is
the env's feedback (e.g. the code env's failing test) and the policy answers again.

The training loop does not need episodes at all: ``env.unwrapped.prompts`` is the prompt set D
(for the sampler) and ``env.unwrapped.score(prompt, response)`` rewards a finished trajectory.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
from gymnasium import spaces

from k15ray.rewards.safe import safe_score
from k15ray.types import Prompt, RewardResult

RewardCallable = Callable[[Prompt, str], RewardResult]
"""A reward r(x, y, y*): any ``k15ray.types.RewardFn`` or plain function of (prompt, response)."""

# Unicode blocks that reasoning text uses besides ASCII: Latin-1 and Latin Extended-A letters,
# Greek, general punctuation, super/subscripts, currency, letterlike symbols, number forms, arrows,
# mathematical operators and symbols, technical symbols, box drawing and geometric shapes.
_UNICODE_BLOCKS = (
    (0x00A0, 0x017F),
    (0x0370, 0x03FF),
    (0x2010, 0x205E),
    (0x2070, 0x20C0),
    (0x2100, 0x23FF),
    (0x2500, 0x25FF),
    (0x27C0, 0x27EF),
    (0x2980, 0x2AFF),
)


def _printable_charset() -> frozenset[str]:
    chars = {"\n", "\t", "\r"} | {chr(c) for c in range(0x20, 0x7F)}
    for lo, hi in _UNICODE_BLOCKS:
        for code in range(lo, hi + 1):
            ch = chr(code)
            # skip unassigned code points and control/format characters
            if ch.isprintable() and unicodedata.category(ch)[0] not in {"C"}:
                chars.add(ch)
    return frozenset(chars)


PRINTABLE_CHARSET: frozenset[str] = _printable_charset()
"""Characters of reasoning text: ASCII printable plus newline/tab/CR and the mathematical Unicode
blocks. Gymnasium's default ``Text`` charset is alphanumeric only, so "What is 2+2?" is outside it."""

DEFAULT_MAX_RESPONSE_CHARS = 16384
"""Default ``max_length`` of the action space (the response). Longer responses are still scored:
the space documents the expected size, ``step`` does not reject a longer string."""


def prompt_text(prompt: Prompt) -> str:
    """The prompt's question as plain text; chat messages become ``role: content`` blocks."""
    if isinstance(prompt.question, str):
        return prompt.question
    return "\n\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in prompt.question)


def text_space(texts: Iterable[str], *, min_max_length: int = 1) -> spaces.Text:
    """A ``Text`` space holding every string of ``texts``: ``PRINTABLE_CHARSET`` plus whatever other
    characters they use, and ``max_length`` the longest of them (at least ``min_max_length``)."""
    extra: set[str] = set()
    longest = min_max_length
    for text in texts:
        extra.update(text)
        longest = max(longest, len(text))
    return spaces.Text(min_length=0, max_length=longest, charset=PRINTABLE_CHARSET | extra)


class TextEnv(gym.Env[Any, str]):
    """Base of the k15 reasoning environments (see the module docstring).

    Subclasses set ``default_reward_fn`` (and may override ``default_prompts``, ``load_data``,
    ``observe``, ``feedback`` and ``make_observation_space``). Arguments common to all of them:

    * ``prompts``: the prompt set D as ``Prompt`` objects, or
    * ``data_path``: a JSONL or Parquet prompt set (``k15ray.envs.dataset`` schema);
      with neither, the env's built-in prompts (``default_prompts``);
    * ``reward_fn``: overrides the env's reward r(x, y, y*), any ``RewardFn``;
    * ``max_turns``: answers allowed per episode (1 = the paper's single-step setting);
    * ``max_response_chars``: ``max_length`` of the ``Text`` action space;
    * ``system_prompt``, ``instruction``: a system message and an answer-format instruction put
      around every question (``k15ray.prompting.with_prompt_format``), for chat models trained
      elsewhere; unset, the questions stay as they are (the built-in tiny model's format);
    * ``render_mode``: ``None`` or ``"ansi"`` (a text summary of the episode).
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        prompts: Sequence[Prompt] | None = None,
        data_path: str | Path | None = None,
        reward_fn: RewardCallable | None = None,
        *,
        max_turns: int = 1,
        max_response_chars: int = DEFAULT_MAX_RESPONSE_CHARS,
        render_mode: str | None = None,
        system_prompt: str | None = None,
        instruction: str | None = None,
    ) -> None:
        if prompts is not None and data_path is not None:
            raise ValueError("pass either prompts= or data_path=, not both")
        if max_turns < 1:
            raise ValueError(f"max_turns={max_turns}: must be >= 1 (1 = single-step episodes)")
        if max_response_chars < 1:
            raise ValueError(f"max_response_chars={max_response_chars}: must be >= 1")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r}: valid modes are None and {self.metadata['render_modes']}"
            )
        if prompts is not None:
            loaded = list(prompts)
        elif data_path is not None:
            loaded = self.load_data(data_path)
        else:
            loaded = self.default_prompts()
        if not loaded:
            raise ValueError(f"{type(self).__name__}: the prompt set is empty; pass prompts or data_path")
        if system_prompt or instruction:
            from k15ray.prompting import with_prompt_format

            loaded = [with_prompt_format(p, system_prompt, instruction) if isinstance(p, Prompt) else p for p in loaded]
        self.prompts: list[Prompt] = loaded
        self._index_by_id: dict[str, int] = {}
        for i, p in enumerate(loaded):
            if not isinstance(p, Prompt):
                raise TypeError(f"prompts[{i}] is a {type(p).__name__}; pass k15ray.types.Prompt objects")
            if p.id in self._index_by_id:
                raise ValueError(f"prompt id {p.id!r} appears twice; prompt ids must be unique")
            self._index_by_id[p.id] = i
        self.reward_fn: RewardCallable = reward_fn if reward_fn is not None else self.default_reward_fn()
        self.max_turns = max_turns
        self.render_mode = render_mode
        self.action_space = spaces.Text(
            min_length=0, max_length=max_response_chars, charset=PRINTABLE_CHARSET
        )
        self.observation_space = self.make_observation_space()
        self._prompt: Prompt | None = None
        self._turn = 0
        self._done = True
        self._last_response = ""
        self._last_result: RewardResult | None = None

    # ---- hooks for subclasses -------------------------------------------------------------
    def default_prompts(self) -> list[Prompt]:
        """The built-in prompt set used when neither ``prompts`` nor ``data_path`` is given."""
        raise ValueError(f"{type(self).__name__} has no built-in prompts; pass prompts= or data_path=")

    def default_reward_fn(self) -> RewardCallable:
        """The env's reward r(x, y, y*) when no ``reward_fn`` is given."""
        raise ValueError(f"{type(self).__name__} has no default reward; pass reward_fn=")

    def load_data(self, data_path: str | Path) -> list[Prompt]:
        """Load the prompt set from ``data_path`` (JSONL or Parquet)."""
        from k15ray.envs.dataset import load_prompts

        return load_prompts(data_path)

    def make_observation_space(self) -> gym.Space[Any]:
        """A ``Text`` space holding every prompt's text (and feedback up to the same length)."""
        return text_space((prompt_text(p) for p in self.prompts), min_max_length=4096)

    def observe(self, prompt: Prompt, feedback: str = "") -> Any:
        """The observation for ``prompt``: its text, or ``feedback`` (the next user turn) when set."""
        if not feedback:
            return prompt_text(prompt)  # in the space by construction (make_observation_space)
        space = self.observation_space
        if isinstance(space, spaces.Text):  # feedback may quote program output: fit it in
            chars = space.character_set
            return "".join(c if c in chars else "?" for c in feedback[: space.max_length])
        return feedback

    def prompt_images(self, prompt: Prompt) -> tuple[Any, ...]:
        """The images a vision-language policy sees with ``prompt`` (``(H, W, 3)`` uint8 arrays);
        none for a text environment. ``k15/Vision-v0`` shows each prompt's image."""
        return ()

    def feedback(self, prompt: Prompt, response: str, result: RewardResult) -> str:
        """The text shown before another turn of a multi-turn episode (``max_turns > 1``)."""
        return "That answer is not correct. Try again."

    # ---- the training loop's interface ----------------------------------------------------
    def score(self, prompt: Prompt, response: str) -> RewardResult:
        """r(x, y, y*) for a finished trajectory; never raises (failures are a status, score 0)."""
        return safe_score(self.reward_fn, prompt, response)

    def score_many(
        self, prompts: Sequence[Prompt], responses: Sequence[str], *, max_workers: int = 4
    ) -> list[RewardResult]:
        """``score`` for many finished trajectories, ``max_workers`` at a time (threads: the math
        workers and the code sandbox are pools of processes), results in input order."""
        if len(prompts) != len(responses):
            raise ValueError(
                f"score_many: {len(prompts)} prompts but {len(responses)} responses; pass one "
                "prompt per response"
            )
        if max_workers <= 1 or len(prompts) <= 1:
            return [self.score(p, r) for p, r in zip(prompts, responses, strict=True)]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(max_workers, len(prompts))) as pool:
            return list(pool.map(self.score, prompts, responses))

    def prompt_by_id(self, prompt_id: str) -> Prompt:
        """The prompt with id ``prompt_id``; ``KeyError`` naming it when absent."""
        try:
            return self.prompts[self._index_by_id[prompt_id]]
        except KeyError:
            raise KeyError(f"no prompt with id {prompt_id!r} in {type(self).__name__}") from None

    # ---- Gymnasium API --------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start an episode on a random prompt, or on ``options["prompt_id"]`` /
        ``options["prompt_index"]`` when given."""
        super().reset(seed=seed)
        options = dict(options or {})
        if "prompt_id" in options:
            prompt_id = str(options["prompt_id"])
            if prompt_id not in self._index_by_id:
                raise ValueError(f"options['prompt_id']={prompt_id!r} is not a prompt id of this env")
            index = self._index_by_id[prompt_id]
        elif "prompt_index" in options:
            index = int(options["prompt_index"])
            if not 0 <= index < len(self.prompts):
                raise ValueError(
                    f"options['prompt_index']={index} is out of range; valid: 0..{len(self.prompts) - 1}"
                )
        else:
            index = int(self.np_random.integers(len(self.prompts)))
        self._prompt = self.prompts[index]
        self._turn = 0
        self._done = False
        self._last_response = ""
        self._last_result = None
        return self.observe(self._prompt), self._info(self._prompt)

    def step(self, action: str) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Score the response; the episode ends when it is correct or the turns are used up."""
        if self._prompt is None or self._done:
            raise RuntimeError("call reset() before step(): the episode is over or not started")
        if not isinstance(action, str):
            raise TypeError(f"the action is the response text (str), got {type(action).__name__}")
        prompt = self._prompt
        self._turn += 1
        result = self.score(prompt, action)
        self._last_response, self._last_result = action, result
        terminated = result.correct or self._turn >= self.max_turns
        self._done = terminated
        if terminated:
            observation = self.observe(prompt)
        else:
            observation = self.observe(prompt, self.feedback(prompt, action, result))
        info = self._info(prompt)
        info.update(reward_result=result, correct=result.correct, status=result.status)
        return observation, float(result.score), terminated, False, info

    def render(self) -> str | None:  # type: ignore[override]
        """``"ansi"``: the prompt, the last response and its reward as text."""
        if self.render_mode != "ansi":
            return None
        if self._prompt is None:
            return ""
        lines = [f"[{self._prompt.id}] {prompt_text(self._prompt)}"]
        if self._last_result is not None:
            lines.append(f"> {self._last_response}")
            lines.append(f"reward={self._last_result.score} status={self._last_result.status}")
        return "\n".join(lines)

    def _info(self, prompt: Prompt) -> dict[str, Any]:
        return {
            "prompt_id": prompt.id,
            "prompt": prompt,
            "domain": prompt.domain,
            "difficulty": prompt.difficulty,
            "turn": self._turn,
        }
