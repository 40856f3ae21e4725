"""A contact sheet of generated vision problems, to look at what the generators draw."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from k15ray.vision.mixture import KIND_SOURCE, generate
from k15ray.vision.problem import DIFFICULTY_LEVELS, VisualProblem, fit_image, font_of

CAPTION_PX = 22


def contact_sheet(problems: Sequence[VisualProblem], cols: int = 5, tile: int = 256) -> Image.Image:
    """Tiles of ``tile`` x ``tile`` pixels, ``cols`` per row, each captioned
    ``kind d=<difficulty> answer=<answer>``."""
    if not problems or cols < 1:
        raise ValueError("give at least one problem and cols >= 1")
    rows = -(-len(problems) // cols)  # ceil(len / cols)
    gap = 6
    sheet = Image.new(
        "RGB",
        (cols * (tile + gap) + gap, rows * (tile + CAPTION_PX + gap) + gap),
        (200, 200, 200),
    )
    draw = ImageDraw.Draw(sheet)
    font = font_of(14)
    for i, p in enumerate(problems):
        r, c = divmod(i, cols)
        x, y = gap + c * (tile + gap), gap + r * (tile + CAPTION_PX + gap)
        sheet.paste(fit_image(p.image, tile, tile), (x, y))
        caption = f"{p.kind} d={p.difficulty} answer={p.answer}"
        draw.rectangle((x, y + tile, x + tile - 1, y + tile + CAPTION_PX), fill=(255, 255, 255))
        draw.text((x + 4, y + tile + 3), caption, fill=(0, 0, 0), font=font)
    return sheet


def write_examples(path: str | Path, seed: int = 0, tile: int = 256) -> Path:
    """Write a sheet with every kind (rows) at every difficulty level (columns) to ``path``."""
    problems = [
        generate(kind, level, seed=f"{seed}:{level}", size=tile)
        for kind in KIND_SOURCE
        for level in DIFFICULTY_LEVELS
    ]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(problems, cols=len(DIFFICULTY_LEVELS), tile=tile).save(out)
    return out
