"""One visual reasoning problem, and turning it into a ``Prompt`` and an observation.

Paper section 2.3.5, "Vision Data": the vision RL prompt set comes from three sources (real-world
records, synthetic visual reasoning, text-rendered data). Every source yields a ``VisualProblem``:
a question, a reference answer checked with ``verify_math``, and one image. The environment shows
the image at one fixed size (``fit_image``: scale to fit, then pad), and writes it to a cache dir
(content-addressed PNG files) so that a ``Prompt`` can carry its path.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageFont, ImageOps

from k15ray.types import Prompt

SourceName = Literal["synthetic", "rendered", "records"]
SOURCES: tuple[SourceName, ...] = ("synthetic", "rendered", "records")
DIFFICULTY_LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)
"""Difficulty labels of generated problems, 1 = easiest (the curriculum's labels, paper 2.3.4)."""

BACKGROUND = (255, 255, 255)

BOXED_INSTRUCTION = "Give the final answer in \\boxed{}."

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True, eq=False)
class VisualProblem:
    """A question about an image, with the reference answer that ``verify_math`` checks.

    ``text_form`` is set for text-rendered problems: the same question entirely as text, so a
    model can be asked it in either modality (paper 2.3.5, "Text-rendered data").
    """

    question: str
    answer: str
    image: Image.Image
    source: SourceName
    kind: str
    difficulty: int = 1
    tags: tuple[str, ...] = ()
    text_form: str | None = None
    id: str = ""

    def with_id(self) -> VisualProblem:
        """This problem with ``id`` set to a content hash when it has none."""
        if self.id:
            return self
        return replace(self, id=f"vision-{self.kind}-{content_hash(self)}")


def content_hash(problem: VisualProblem) -> str:
    """A short hex digest of question, answer and image pixels: equal problems, equal hashes."""
    h = hashlib.sha1()
    h.update(problem.question.encode())
    h.update(b"\0" + problem.answer.encode() + b"\0")
    h.update(image_digest(problem.image).encode())
    return h.hexdigest()[:16]


def image_digest(image: Image.Image) -> str:
    """The SHA-1 of an image's mode, size and pixels (not of an encoded file)."""
    h = hashlib.sha1(f"{image.mode}{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def fit_image(image: Image.Image, height: int, width: int) -> Image.Image:
    """Scale ``image`` to fit ``height`` x ``width`` keeping its aspect ratio, then pad with white.

    The result is RGB and exactly ``(width, height)`` in PIL's (W, H) order.
    """
    rgb = image.convert("RGB")
    if rgb.size == (width, height):
        return rgb
    return ImageOps.pad(rgb, (width, height), method=Image.Resampling.LANCZOS, color=BACKGROUND)


def image_array(image: Image.Image, height: int, width: int) -> np.ndarray:
    """The observation's image: a ``(height, width, 3)`` uint8 array."""
    arr = np.asarray(fit_image(image, height, width), dtype=np.uint8)  # (H, W, 3)
    assert arr.shape == (height, width, 3), arr.shape
    return arr


def default_cache_dir() -> Path:
    """Where generated images go unless told otherwise: under the system temp dir, never home."""
    return Path(tempfile.gettempdir()) / f"k15ray-vision-{os.getuid()}"


def save_image(image: Image.Image, cache_dir: str | Path) -> Path:
    """Write ``image`` as ``<digest>.png`` in ``cache_dir`` (atomically); returns the path.

    Names are content addresses, so writing the same image twice is a no-op and several
    environments may share one cache dir.
    """
    directory = Path(cache_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{image_digest(image)[:24]}.png"
    if not path.exists():
        tmp = directory / f".{path.name}.{os.getpid()}.tmp"
        image.save(tmp, format="PNG")
        tmp.replace(path)
    return path


def to_prompt(problem: VisualProblem, image_paths: tuple[str, ...] = ()) -> Prompt:
    """The ``Prompt`` (domain "vision") of a problem; ``image_paths`` are its saved image files."""
    problem = problem.with_id()
    tags = problem.tags
    for tag in (problem.source, problem.kind):
        if tag not in tags:
            tags = (*tags, tag)
    return Prompt(
        id=problem.id,
        question=problem.question,
        answer=problem.answer,
        domain="vision",
        difficulty=problem.difficulty,
        tags=tags,
        images=image_paths,
    )


@functools.lru_cache(maxsize=16)
def font_of(size: int) -> Font:
    """Pillow's built-in font at ``size`` pixels (a bitmap font if FreeType is missing); cached,
    because parsing the embedded font costs about as much as drawing a problem."""
    return ImageFont.load_default(size=size)


def check_difficulty(difficulty: int) -> int:
    """Validate a difficulty level of a generator."""
    if difficulty not in DIFFICULTY_LEVELS:
        raise ValueError(
            f"difficulty={difficulty!r} is not a level; use one of {list(DIFFICULTY_LEVELS)}"
        )
    return difficulty
