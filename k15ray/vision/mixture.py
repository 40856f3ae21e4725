"""The vision prompt set D: a weighted mixture of the paper's three sources (section 2.3.5).

``VisionDataConfig`` says which sources make up D (``synthetic``, ``rendered``, ``records``), with
what weights, how many problems to generate, at which difficulty levels and image size.
``build_prompt_set`` makes D deterministically from the config's ``seed``: the generated share
is split among the generated sources in proportion to their weights (largest remainder), each
source cycles through its kinds and difficulty levels so that D is balanced, and problems whose
content repeats are dropped (so a generator with few distinct problems may yield fewer).
The weights also give the probability that an episode draws from each source (``source_probs``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from k15ray.config import doc
from k15ray.types import Prompt
from k15ray.vision.problem import (
    DIFFICULTY_LEVELS,
    SOURCES,
    VisualProblem,
    check_difficulty,
    content_hash,
    default_cache_dir,
    save_image,
    to_prompt,
)
from k15ray.vision.render import RENDERED
from k15ray.vision.synthetic import SYNTHETIC, Generator

GENERATORS: dict[str, dict[str, Generator]] = {"synthetic": SYNTHETIC, "rendered": RENDERED}
"""Generated sources and their generators by kind."""
KIND_SOURCE: dict[str, str] = {k: s for s, gens in GENERATORS.items() for k in gens}


@dataclass(frozen=True)
class VisionDataConfig:
    """What the vision prompt set D is made of (see the module docstring)."""

    sources: tuple[str, ...] = doc(
        "sources of D: any of synthetic, rendered, records", ("synthetic", "rendered")
    )
    weights: tuple[float, ...] = doc(
        "one weight per source (share of D and of episodes); empty = equal", ()
    )
    data_path: str | None = doc(
        "JSONL or Parquet file of real-world records (source 'records'); the env loads it", None
    )
    num_prompts: int = doc("problems to generate, split among the generated sources by weight", 120)
    difficulties: tuple[int, ...] = doc(
        "difficulty levels of generated problems (1 = easiest)", DIFFICULTY_LEVELS
    )
    kinds: tuple[str, ...] = doc("generator kinds to use (e.g. counting, table); empty = all", ())
    image_height: int = doc("height H of the observation image in pixels", 256)
    image_width: int = doc("width W of the observation image in pixels", 256)
    seed: int = doc("seed of the generated prompt set (not of the episodes)", 0)
    image_store: Literal["disk", "memory"] = doc(
        "keep generated images as PNG files or in memory", "disk"
    )
    cache_dir: str | None = doc(
        "folder for generated PNG files; None = a folder under the system temp dir", None
    )
    rendered_as: Literal["image", "text"] = doc(
        "rendered problems shown as image, or as the same question in text", "image"
    )

    def __post_init__(self) -> None:
        bad = [s for s in self.sources if s not in SOURCES]
        if not self.sources or bad:
            raise ValueError(f"sources={list(self.sources)}: use one or more of {list(SOURCES)}")
        if len(set(self.sources)) != len(self.sources):
            raise ValueError(f"sources={list(self.sources)}: name each source once")
        if self.weights and (
            len(self.weights) != len(self.sources)
            or min(self.weights) < 0
            or sum(self.weights) <= 0
        ):
            raise ValueError(
                f"weights={list(self.weights)}: give one non-negative weight per source "
                f"({list(self.sources)}), not all zero"
            )
        if self.data_path is not None and "records" not in self.sources:
            raise ValueError(
                f"data_path={self.data_path!r} holds records, but sources={list(self.sources)} "
                "leaves them out; add 'records' to the sources"
            )
        for level in self.difficulties:
            check_difficulty(level)
        if not self.difficulties:
            raise ValueError(f"difficulties=(): give at least one of {list(DIFFICULTY_LEVELS)}")
        unknown = [k for k in self.kinds if k not in KIND_SOURCE]
        if unknown:
            raise ValueError(
                f"kinds={list(self.kinds)}: {unknown[0]!r} is unknown; "
                f"valid kinds are {sorted(KIND_SOURCE)}"
            )
        for source in self.generated_sources:
            if not self.kinds_of(source):
                raise ValueError(
                    f"kinds={list(self.kinds)} has no kind of source {source!r} "
                    f"({sorted(GENERATORS[source])}); add one or drop the source"
                )
        if self.generated_sources and self.num_prompts < 1:
            raise ValueError(f"num_prompts={self.num_prompts}: must be >= 1 to generate problems")
        if min(self.image_height, self.image_width) < 32:
            raise ValueError(
                f"image size {self.image_height}x{self.image_width}: use at least 32x32 pixels"
            )
        if self.image_store not in ("disk", "memory"):
            raise ValueError(f"image_store={self.image_store!r}: use 'disk' or 'memory'")
        if self.rendered_as not in ("image", "text"):
            raise ValueError(f"rendered_as={self.rendered_as!r}: use 'image' or 'text'")

    @property
    def generated_sources(self) -> tuple[str, ...]:
        return tuple(s for s in self.sources if s in GENERATORS)

    def kinds_of(self, source: str) -> tuple[str, ...]:
        """The kinds used for a generated source, in a fixed order."""
        return tuple(k for k in GENERATORS[source] if not self.kinds or k in self.kinds)

    def source_probs(self) -> dict[str, float]:
        """P(source) for an episode: the normalised weights (equal when none are given)."""
        weights = self.weights or (1.0,) * len(self.sources)
        total = sum(weights)
        return {s: w / total for s, w in zip(self.sources, weights, strict=True)}


def parse_source(
    source: str | Sequence[str] | Mapping[str, float] | None, data_path: Any = None
) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """(sources, weights) from the env's ``source`` argument: a name, names, or name -> weight.

    ``None`` means synthetic and rendered, plus records when a ``data_path`` is given.
    """
    if source is None:
        names: tuple[str, ...] = ("synthetic", "rendered") + (("records",) if data_path else ())
        return names, ()
    if isinstance(source, str):
        return (source,), ()
    if isinstance(source, Mapping):
        return tuple(source), tuple(float(w) for w in source.values())
    return tuple(source), ()


def split_counts(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` in proportion to ``weights`` by largest remainder (sums to ``total``).

    >>> split_counts(10, {"a": 2.0, "b": 1.0})  # 6.67 -> 6 + 1 (remainder .67 > .33), 3.33 -> 3
    {'a': 7, 'b': 3}
    """
    norm = sum(weights.values())
    exact = {k: total * w / norm for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    by_remainder = sorted(exact, key=lambda k: (counts[k] - exact[k], list(exact).index(k)))
    for k in by_remainder[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


def generate(kind: str, difficulty: int, seed: int | str, size: int = 256) -> VisualProblem:
    """One problem of generator ``kind``; the same arguments always give the same problem."""
    if kind not in KIND_SOURCE:
        raise ValueError(f"kind={kind!r} is unknown; valid kinds are {sorted(KIND_SOURCE)}")
    rng = random.Random(f"{kind}:{difficulty}:{seed}")  # str seeds hash stably across runs
    return GENERATORS[KIND_SOURCE[kind]][kind](rng, difficulty, size).with_id()


def generate_problems(config: VisionDataConfig, source: str, count: int) -> list[VisualProblem]:
    """``count`` distinct problems of a generated source, cycling kinds x difficulty levels."""
    kinds, levels = config.kinds_of(source), config.difficulties
    size = min(config.image_height, config.image_width)
    problems: list[VisualProblem] = []
    seen: set[str] = set()
    for i in range(4 * count):  # give up on duplicates after 4x the attempts
        if len(problems) == count:
            break
        kind, level = kinds[i % len(kinds)], levels[(i // len(kinds)) % len(levels)]
        problem = generate(kind, level, f"{config.seed}:{i}", size)
        digest = content_hash(problem)
        if digest not in seen:
            seen.add(digest)
            problems.append(problem)
    return problems


@dataclass
class PromptSet:
    """D for the vision env: prompts, the source of each, and in-memory images by prompt id."""

    prompts: list[Prompt]
    source_of: dict[str, str]
    images: dict[str, Image.Image]


def build_prompt_set(config: VisionDataConfig, records: Sequence[Prompt] = ()) -> PromptSet:
    """Generate D from ``config``, appending the already validated ``records``."""
    out = PromptSet([], {}, {})
    probs = config.source_probs()
    generated = {s: probs[s] for s in config.generated_sources}
    counts = (
        split_counts(config.num_prompts, generated)
        if generated and sum(generated.values()) > 0
        else {}
    )
    cache = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
    for source, count in counts.items():
        for problem in generate_problems(config, source, count):
            if problem.text_form is not None and config.rendered_as == "text":
                prompt = replace(to_prompt(problem), question=problem.text_form)
            elif config.image_store == "disk":
                prompt = to_prompt(problem, (str(save_image(problem.image, cache)),))
            else:
                prompt = to_prompt(problem)
                out.images[prompt.id] = problem.image
            out.prompts.append(prompt)
            out.source_of[prompt.id] = source
    for prompt in records:
        out.prompts.append(prompt)
        out.source_of[prompt.id] = "records"
    return out
