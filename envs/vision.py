"""``k15/Vision-v0``: visual reasoning prompts (text + image), rewarded by ``verify_math``.

Paper section 2.3.5, "Vision Data": the vision RL prompts come from real-world data, synthetic
visual reasoning data and text-rendered data (``k15ray.vision``); the policy answers in text and
the answer is checked against the reference like a math answer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from k15ray.envs.base import DEFAULT_MAX_RESPONSE_CHARS, TextEnv, prompt_text, text_space
from k15ray.types import Prompt, RewardFn, RewardResult
from k15ray.vision.mixture import PromptSet, VisionDataConfig, build_prompt_set, parse_source
from k15ray.vision.problem import BACKGROUND, DIFFICULTY_LEVELS, image_array
from k15ray.vision.records import check_image, load_image, load_records

_IMAGE_CACHE_SIZE = 64  # observation arrays kept per env (256 x 256 x 3 bytes = 192 KiB each)


def vision_reward(prompt: Prompt, response: str) -> RewardResult:
    """r(x, y, y*) of ``k15/Vision-v0``: 1.0 when ``verify_math`` accepts the final answer."""
    from k15ray.rewards.math import math_reward  # the RewardFn form of verify_math, with a status

    return math_reward(prompt, response)


class VisionEnv(TextEnv):
    """Visual reasoning: answer a question about an image; the final answer is checked.

    ## Description

    Each episode shows one prompt of the vision prompt set D (paper section 2.3.5): a question and
    an image, from up to three sources mixed by weight. ``synthetic``: procedurally drawn scenes
    (counting shapes, spatial relations, geometric patterns, labelled geometry figures).
    ``rendered``: a word problem, a Python snippet or a table drawn as an image, so that the same
    question also exists as text (``rendered_as="text"`` shows that text form instead).
    ``records``: real-world questions about image files, read from JSONL or Parquet
    (``k15ray.envs.dataset`` schema, ``images`` required and checked). Generated problems carry
    ``domain="vision"``, a difficulty level 1..5 and tags (source, kind, details); D is
    deterministic given ``seed``.

    A text-only policy (such as the built-in tiny model) sees only ``obs["text"]``: it can
    solve rendered problems with ``rendered_as="text"``; the images need a vision-language
    policy.

    ## Action Space

    ``Text(max_length=max_response_chars, charset=PRINTABLE_CHARSET)``: the response (z, y).

    ## Observation Space

    ``Dict({"text": Text(charset=PRINTABLE_CHARSET + the prompts' characters),
    "image": Box(0, 255, (H, W, 3), uint8)})``. The image is scaled to fit H x W keeping its
    aspect ratio and padded with white; a prompt without an image shows a white image.

    ## Rewards

    1.0 when ``k15ray.rewards.verify_math(response, answer)`` holds (final answer from
    ``\\boxed{}``, "Answer:" or the last expression), else 0.0; ``info["reward_result"]`` has the
    ``RewardResult`` (status ``wrong_format`` when no answer is found).

    ## Starting State

    ``reset`` draws a source with probability proportional to its weight, then a prompt of that
    source uniformly; ``options={"prompt_id": ...}`` or ``{"prompt_index": ...}`` picks one.
    The same ``seed`` gives the same prompt and the same image bytes.

    ## Episode End

    The episode terminates after the answer (``max_turns=1``, the paper's setting); with
    ``max_turns > 1`` it continues after a wrong answer until correct or out of turns.
    There is no truncation.

    ## Arguments

    ```python
    gymnasium.make("k15/Vision-v0", source={"synthetic": 2, "rendered": 1}, num_prompts=60)
    gymnasium.make("k15/Vision-v0", source=["synthetic", "records"], data_path="charts.jsonl")
    ```

    * ``source``: ``"synthetic"``, ``"rendered"``, ``"records"``, a list of them, or a mapping
      name -> weight; default synthetic + rendered (+ records when ``data_path`` is given);
    * ``data_path``: JSONL/Parquet file of real-world records (source ``records``);
    * ``num_prompts``: generated problems in D, split among the generated sources by weight;
    * ``difficulty``: a level or levels of the generated problems (default all of 1..5);
    * ``kinds``: generators to use: counting, spatial, pattern, geometry, text, code, table
      (default all);
    * ``image_size``: ``(H, W)`` of the observation image (default ``(256, 256)``);
    * ``image_store``: ``"disk"`` writes generated images as PNG files to ``cache_dir``
      (default: a folder under the system temp dir) and ``Prompt.images`` names them;
      ``"memory"`` keeps them in the env;
    * ``rendered_as``: ``"image"`` or ``"text"`` for text-rendered problems;
    * ``seed``: seed of the generated prompt set;
    * ``prompts``: your own ``Prompt`` objects instead (images checked like records);
    * ``reward_fn``, ``max_turns``, ``max_response_chars``, ``render_mode`` (``"ansi"`` or
      ``"rgb_array"``): as in ``TextEnv``.

    ## Version History

    * v0: initial version (three sources, verify_math reward).
    """

    # render_fps only tells viewers how fast to show episodes; a text episode has one frame.
    metadata: dict[str, Any] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 1}

    def __init__(
        self,
        source: str | Sequence[str] | Mapping[str, float] | None = None,
        data_path: str | Path | None = None,
        *,
        num_prompts: int = 120,
        difficulty: int | Sequence[int] | None = None,
        kinds: Sequence[str] = (),
        image_size: tuple[int, int] = (256, 256),
        image_store: str = "disk",
        cache_dir: str | Path | None = None,
        rendered_as: str = "image",
        seed: int = 0,
        prompts: Sequence[Prompt] | None = None,
        reward_fn: RewardFn | Callable[[Prompt, str], RewardResult] | None = None,
        max_turns: int = 1,
        max_response_chars: int = DEFAULT_MAX_RESPONSE_CHARS,
        render_mode: str | None = None,
    ) -> None:
        if prompts is not None and data_path is not None:
            raise ValueError("pass either prompts= or data_path=, not both")
        if prompts is not None and source is None:
            source = "records"
        sources, weights = parse_source(source, data_path)
        if "records" in sources and data_path is None and prompts is None:
            raise ValueError("source 'records' needs data_path=<file.jsonl> (or prompts=[...])")
        if len(image_size) != 2:
            raise ValueError(f"image_size={image_size!r}: give (height, width) in pixels")
        levels = (
            DIFFICULTY_LEVELS
            if difficulty is None
            else ((difficulty,) if isinstance(difficulty, int) else tuple(difficulty))
        )
        self.config = VisionDataConfig(
            sources=sources,
            weights=weights,
            data_path=None if data_path is None else str(data_path),
            num_prompts=num_prompts,
            difficulties=levels,
            kinds=tuple(kinds),
            image_height=int(image_size[0]),
            image_width=int(image_size[1]),
            seed=seed,
            image_store=image_store,  # type: ignore[arg-type]  # validated by the config
            cache_dir=None if cache_dir is None else str(cache_dir),
            rendered_as=rendered_as,  # type: ignore[arg-type]
        )
        records = self._records(prompts, data_path)
        self.prompt_set: PromptSet = build_prompt_set(self.config, records)
        self._arrays: OrderedDict[str, np.ndarray] = OrderedDict()
        self._current: Prompt | None = None
        super().__init__(
            prompts=self.prompt_set.prompts,
            reward_fn=reward_fn,
            max_turns=max_turns,
            max_response_chars=max_response_chars,
            render_mode=render_mode,
        )
        self._by_source = self._indices_by_source()

    @staticmethod
    def _records(prompts: Sequence[Prompt] | None, data_path: str | Path | None) -> list[Prompt]:
        """Validated real-world prompts: from ``data_path``, or the user's ``prompts``."""
        if prompts is None:
            return load_records(data_path) if data_path is not None else []
        records = list(prompts)
        for i, p in enumerate(records):
            if not isinstance(p, Prompt):
                raise TypeError(
                    f"prompts[{i}] is a {type(p).__name__}; pass k15ray.types.Prompt objects"
                )
            for j, path in enumerate(p.images):
                check_image(path, f"prompts[{i}] (id {p.id!r})", f"'images'[{j}]")
        return records

    # ---- TextEnv hooks ----------------------------------------------------------------------
    def default_reward_fn(self) -> RewardFn:
        return vision_reward

    def make_observation_space(self) -> gym.Space[Any]:
        h, w = self.config.image_height, self.config.image_width
        return spaces.Dict(
            {
                "text": text_space((prompt_text(p) for p in self.prompts), min_max_length=4096),
                "image": spaces.Box(0, 255, (h, w, 3), np.uint8),
            }
        )

    def observe(self, prompt: Prompt, feedback: str = "") -> dict[str, Any]:
        """``{"text": the question (or feedback), "image": (H, W, 3) uint8}``."""
        text = feedback or prompt_text(prompt)
        space = self.observation_space
        assert isinstance(space, spaces.Dict)
        text_sub = space["text"]
        assert isinstance(text_sub, spaces.Text)
        text = "".join(
            c if c in text_sub.character_set else "?" for c in text[: text_sub.max_length]
        )
        return {"text": text, "image": self.image_of(prompt)}

    # ---- images ------------------------------------------------------------------------------
    def image_of(self, prompt: Prompt) -> np.ndarray:
        """The observation image of ``prompt``: ``(H, W, 3)`` uint8, a fresh copy."""
        cached = self._arrays.get(prompt.id)
        if cached is None:
            h, w = self.config.image_height, self.config.image_width
            if prompt.id in self.prompt_set.images:
                cached = image_array(self.prompt_set.images[prompt.id], h, w)
            elif prompt.images:
                cached = image_array(load_image(prompt.images, prompt.id), h, w)
            else:
                cached = np.empty((h, w, 3), np.uint8)
                cached[...] = BACKGROUND
            self._arrays[prompt.id] = cached
            if len(self._arrays) > _IMAGE_CACHE_SIZE:
                self._arrays.popitem(last=False)
        else:
            self._arrays.move_to_end(prompt.id)
        return cached.copy()

    def prompt_images(self, prompt: Prompt) -> tuple[np.ndarray, ...]:
        """``(image_of(prompt),)``: what a vision-language policy's rollouts and learner see."""
        return (self.image_of(prompt),)

    # ---- Gymnasium API -----------------------------------------------------------------------
    def _indices_by_source(self) -> dict[str, list[int]]:
        by_source: dict[str, list[int]] = {}
        for i, p in enumerate(self.prompts):
            by_source.setdefault(self.prompt_set.source_of.get(p.id, "records"), []).append(i)
        return by_source

    def reset(
        self, *, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """A source by weight, then a prompt of it uniformly (or the one named in ``options``)."""
        options = dict(options or {})
        if "prompt_id" not in options and "prompt_index" not in options:
            gym.Env.reset(self, seed=seed)  # seeds self.np_random before we draw from it
            seed = None
            probs = self.config.source_probs()
            present = [s for s in self._by_source if probs.get(s, 0.0) > 0]
            p = np.array([probs[s] for s in present])
            chosen = present[int(self.np_random.choice(len(present), p=p / p.sum()))]
            indices = self._by_source[chosen]
            options["prompt_index"] = indices[int(self.np_random.integers(len(indices)))]
        observation, info = super().reset(seed=seed, options=options)
        self._current = self.prompt_by_id(info["prompt_id"])
        info["source"] = self.prompt_set.source_of.get(self._current.id, "records")
        return observation, info

    def step(self, action: str) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = super().step(action)
        info["source"] = self.prompt_set.source_of.get(info["prompt_id"], "records")
        return observation, reward, terminated, truncated, info

    def render(self) -> Any:
        """``"rgb_array"``: the current image; ``"ansi"``: the prompt, response and reward."""
        if self.render_mode == "rgb_array":
            if self._current is None:
                return None
            return self.image_of(self._current)
        return super().render()
