"""Real-world vision records: questions about image files, validated before training (paper 2.3.5).

"Real-world data encompass a range of science questions across various grade levels that require
graphical comprehension and reasoning, location guessing tasks ..., and data analysis that involves
understanding complex charts." They come as a prompt set in the schema of
``k15ray.envs.dataset`` (JSONL, or Parquet) whose ``images`` field lists image files, relative to
the data file's folder or absolute. Besides the schema's checks, each record here must:

* have at least one image, and every image file must exist and be readable by Pillow
  (``Image.verify``: header and, for PNG, checksums); errors name file, line and field, e.g.
  ``charts.jsonl:7: field 'images'[0]: image file /data/c7.png does not exist``;
* default to ``domain = "vision"`` when the record has no domain.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from k15ray.types import Prompt


def check_image(path: str | Path, where: str, field: str) -> None:
    """Raise ``ValueError`` naming ``where`` and ``field`` if ``path`` is no readable image."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(
            f"{where}: field {field}: image file {p} does not exist; fix the path "
            "(relative paths are resolved against the data file's folder)"
        )
    try:
        with Image.open(p) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(
            f"{where}: field {field}: image file {p} cannot be read as an image "
            f"({type(err).__name__}: {err}); replace it with a PNG or JPEG file"
        ) from err


def record_to_prompt(record: Mapping[str, Any], where: str, base_dir: str | Path) -> Prompt:
    """Validate one vision record (schema of ``k15ray.envs.dataset`` plus readable images)."""
    from k15ray.envs.dataset import prompt_from_record

    if isinstance(record, Mapping) and record.get("domain") is None:
        record = {**record, "domain": "vision"}
    prompt = prompt_from_record(record, where, base_dir=base_dir)
    if not prompt.images:
        raise ValueError(
            f"{where}: field 'images': a vision record needs at least one image file; "
            'add "images": ["path/to/image.png"]'
        )
    for i, path in enumerate(prompt.images):
        check_image(path, where, f"'images'[{i}]")
    return prompt


def _located_prompts(path: str | Path) -> Iterator[tuple[str, Prompt]]:
    from k15ray.envs.dataset import located_records

    p = Path(path)
    for where, record in located_records(p):
        yield where, record_to_prompt(record, where, p.parent)


def iter_records(path: str | Path) -> Iterator[Prompt]:
    """Stream the validated vision prompts of a JSONL or Parquet (``.parquet``/``.pq``) file."""
    for _, prompt in _located_prompts(path):
        yield prompt


def load_records(path: str | Path) -> list[Prompt]:
    """All validated vision prompts of ``path``; duplicate ids are an error naming both places."""
    from k15ray.envs.dataset import unique_prompts

    prompts = unique_prompts(_located_prompts(path))
    if not prompts:
        raise ValueError(f"{path}: holds no records; add one JSON object per line")
    return prompts


def load_image(paths: tuple[str, ...], prompt_id: str) -> Image.Image:
    """The images of a record as one RGB image: several are placed side by side, top-aligned."""
    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
        except (OSError, SyntaxError, ValueError) as err:
            raise ValueError(
                f"prompt {prompt_id!r}: image file {path} cannot be read ({err}); fix or replace it"
            ) from err
    if len(images) == 1:
        return images[0]
    gap = 8
    width = sum(im.width for im in images) + gap * (len(images) - 1)
    canvas = Image.new("RGB", (width, max(im.height for im in images)), (255, 255, 255))
    x = 0
    for im in images:
        canvas.paste(im, (x, 0))
        x += im.width + gap
    return canvas
