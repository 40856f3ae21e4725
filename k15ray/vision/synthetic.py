"""Synthetic visual reasoning: procedurally drawn scenes with exact answers (paper 2.3.5).

"Synthetic visual reasoning data is artificially generated, including procedurally created images
and scenes aimed at improving specific visual reasoning skills, such as understanding spatial
relationships, geometric patterns, and object interactions." Three generators, each
``(rng, difficulty, size) -> VisualProblem`` and deterministic given the state of ``rng``:

* ``counting``: shapes of several kinds and colours; count those matching a description;
* ``spatial``: distinct shapes on a grid; count shapes in a relation (left of, above, between);
* ``pattern``: panels of dots or polygons following a rule; find the missing panel's number.

plus ``geometry`` (``k15ray.vision.geometry``): labelled figures; compute an area or a length.

Answers are integers, so ``verify_math`` checks them. Difficulty 1..5 raises the number of
objects, attributes and the complexity of the relation or rule.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw

from k15ray.vision.geometry import geometry
from k15ray.vision.problem import (
    BACKGROUND,
    BOXED_INSTRUCTION,
    Font,
    VisualProblem,
    check_difficulty,
    font_of,
)

Generator = Callable[[random.Random, int, int], VisualProblem]

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "blue": (40, 90, 220),
    "green": (30, 160, 60),
    "yellow": (235, 200, 20),
    "purple": (140, 60, 180),
    "orange": (245, 130, 30),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars"}
OUTLINE = (30, 30, 30)


@dataclass(frozen=True)
class Placed:
    """One drawn object: its shape, colour, grid cell and centre in pixels."""

    shape: str
    color: str
    row: int
    col: int
    cx: float
    cy: float

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"


def draw_shape(
    draw: ImageDraw.ImageDraw,
    shape: str,
    cx: float,
    cy: float,
    r: float,
    fill: tuple[int, int, int],
) -> None:
    """Draw one filled, outlined shape of radius ``r`` centred on ``(cx, cy)``."""
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=OUTLINE, width=2)
    elif shape == "square":
        h = r * 0.85  # a square of half-side 0.85 r looks as large as a circle of radius r
        draw.rectangle((cx - h, cy - h, cx + h, cy + h), fill=fill, outline=OUTLINE, width=2)
    elif shape == "triangle":
        draw.regular_polygon((cx, cy + r * 0.15, r * 1.1), 3, fill=fill, outline=OUTLINE, width=2)
    elif shape == "star":
        points = [
            (
                cx + (r if k % 2 == 0 else r * 0.45) * math.sin(k * math.pi / 5),
                cy - (r if k % 2 == 0 else r * 0.45) * math.cos(k * math.pi / 5),
            )
            for k in range(10)
        ]
        draw.polygon(points, fill=fill, outline=OUTLINE, width=2)
    else:
        raise ValueError(f"unknown shape {shape!r}; use one of {list(SHAPES)}")


def _grid_side(n: int) -> int:
    """A square grid with room to spare: at least n + 1 cells and 3 x 3."""
    return max(3, math.isqrt(n) + 1)


def place_on_grid(
    rng: random.Random, objects: list[tuple[str, str]], size: int, jitter: bool
) -> list[Placed]:
    """Put each (shape, colour) in its own random cell of a square grid; never overlapping."""
    g = _grid_side(len(objects))
    cell = size / g
    cells = rng.sample(range(g * g), len(objects))
    placed = []
    for (shape, color), idx in zip(objects, cells, strict=True):
        row, col = divmod(idx, g)
        cx, cy = (col + 0.5) * cell, (row + 0.5) * cell
        if jitter:  # stay inside the cell: radius is 0.32 cell, so +-0.12 cell keeps a gap
            cx += rng.uniform(-0.12, 0.12) * cell
            cy += rng.uniform(-0.12, 0.12) * cell
        placed.append(Placed(shape, color, row, col, cx, cy))
    return placed


def draw_scene(placed: list[Placed], size: int) -> Image.Image:
    """A white ``size`` x ``size`` canvas with every placed object drawn."""
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    r = 0.32 * size / _grid_side(len(placed))
    for p in placed:
        draw_shape(draw, p.shape, p.cx, p.cy, r, COLORS[p.color])
    return image


def counting(rng: random.Random, difficulty: int, size: int = 256) -> VisualProblem:
    """Count the shapes that match a description ("How many red circles are there?").

    Difficulty d: 2d..3d+2 objects of min(d, 4) shapes and min(d + 1, 6) colours; d = 1 counts
    all shapes, d = 2 one attribute, d >= 3 colour and shape, d >= 4 may ask for "not <colour>".
    """
    d = check_difficulty(difficulty)
    n = rng.randint(2 * d, 3 * d + 2)
    shapes = rng.sample(SHAPES, min(d, len(SHAPES)))
    colors = rng.sample(sorted(COLORS), min(d + 1, len(COLORS)))
    objects = [(rng.choice(shapes), rng.choice(colors)) for _ in range(n)]
    placed = place_on_grid(rng, objects, size, jitter=True)
    target_shape, target_color = rng.choice(objects)  # the target is present: answer >= 1
    if d == 1:
        what, match = "shapes", lambda s, c: True
    elif d == 2 and rng.random() < 0.5:
        what, match = PLURAL[target_shape], lambda s, c: s == target_shape
    elif d == 2:
        what, match = f"{target_color} shapes", lambda s, c: c == target_color
    elif d >= 4 and rng.random() < 0.3:
        what, match = f"shapes that are not {target_color}", lambda s, c: c != target_color
    else:
        what = f"{target_color} {PLURAL[target_shape]}"
        match = lambda s, c: s == target_shape and c == target_color  # noqa: E731
    answer = sum(match(s, c) for s, c in objects)
    question = f"How many {what} are in the image? {BOXED_INSTRUCTION}"
    return VisualProblem(
        question=question,
        answer=str(answer),
        image=draw_scene(placed, size),
        source="synthetic",
        kind="counting",
        difficulty=d,
        tags=("counting", f"objects:{n}"),
    )


RELATIONS: dict[str, Callable[[Placed, Placed], bool]] = {
    "to the left of": lambda p, x: p.col < x.col,
    "to the right of": lambda p, x: p.col > x.col,
    "above": lambda p, x: p.row < x.row,
    "below": lambda p, x: p.row > x.row,
}
"""``RELATIONS[word](p, x)``: is shape p <word> shape x (grid cells; the same column is neither)."""


def count_related(placed: list[Placed], x: Placed, words: tuple[str, ...]) -> int:
    """How many shapes other than ``x`` stand in every relation of ``words`` to ``x``."""
    return sum(all(RELATIONS[w](p, x) for w in words) for p in placed if p is not x)


def count_between(placed: list[Placed], x: Placed, y: Placed) -> int:
    """How many shapes have a column strictly between the columns of ``x`` and ``y``."""
    lo, hi = sorted((x.col, y.col))
    return sum(lo < p.col < hi for p in placed)


def _relation(rng: random.Random, d: int, placed: list[Placed]) -> tuple[str, int]:
    """A spatial question about ``placed`` and its answer; harder relations at higher d."""
    x, y = rng.sample(placed, 2)
    if d == 1:
        word = rng.choice(["to the left of", "to the right of"])
    elif d == 2 or rng.random() < 0.3:
        word = rng.choice(sorted(RELATIONS))
    elif d == 3 or rng.random() < 0.5:
        words = (rng.choice(["above", "below"]), rng.choice(["to the left of", "to the right of"]))
        question = f"How many shapes are both {words[0]} and {words[1]} the {x.name}?"
        return question, count_related(placed, x, words)
    else:
        question = (
            f"How many shapes are strictly between the {x.name} and the {y.name} "
            "from left to right?"
        )
        return question, count_between(placed, x, y)
    return f"How many shapes are {word} the {x.name}?", count_related(placed, x, (word,))


def spatial(rng: random.Random, difficulty: int, size: int = 256) -> VisualProblem:
    """Spatial relations between distinct shapes on an (invisible) grid.

    Difficulty d: d + 2 shapes, each a distinct colour-shape pair so that names are unique;
    d = 1 asks left/right, d = 2 any direction, d = 3 two directions at once, d >= 4 adds
    "between two shapes". Shapes sit at cell centres, so "left of" means a smaller column.
    """
    d = check_difficulty(difficulty)
    n = d + 2
    pairs = [(s, c) for s in SHAPES for c in sorted(COLORS)]
    objects = rng.sample(pairs, n)
    placed = place_on_grid(rng, objects, size, jitter=False)
    for _ in range(4):  # prefer a non-zero count, so that answering "0" is not a free guess
        question, answer = _relation(rng, d, placed)
        if answer:
            break
    return VisualProblem(
        question=f"{question} {BOXED_INSTRUCTION}",
        answer=str(answer),
        image=draw_scene(placed, size),
        source="synthetic",
        kind="spatial",
        difficulty=d,
        tags=("spatial", f"objects:{n}"),
    )


def _sequence_rule(rng: random.Random, d: int) -> tuple[str, list[int]]:
    """(what the panels show, the sequence of numbers) for a row of panels at difficulty d."""
    n = rng.randint(4, 6)  # panels, the last one hidden
    if d == 1:
        a = rng.randint(1, 3)
        return "dots", [a + i for i in range(n)]
    if d == 2:
        step = rng.choice([2, 3, -1])
        a = rng.randint(1, 3) if step > 0 else rng.randint(7, 9)
        return "dots", [a + step * i for i in range(n)]
    if d == 3:
        a = rng.randint(3, 4)
        return "sides", [a + i for i in range(n)]
    rule = rng.choice(["squares", "doubling", "fibonacci"])
    if rule == "squares":
        return "dots", [i * i for i in range(1, n + 1)]
    if rule == "doubling":
        return "dots", [2**i for i in range(n)]
    fib = [1, 2]
    while len(fib) < n:
        fib.append(fib[-1] + fib[-2])  # 1, 2, 3, 5, 8, 13
    return "dots", fib


def _draw_panel(
    draw: ImageDraw.ImageDraw,
    box: tuple[float, float, float, float],
    what: str,
    value: int | None,
    font: Font,
    color: tuple[int, int, int],
) -> None:
    """One framed panel showing ``value`` dots, a polygon of ``value`` sides, or "?" if None."""
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline=OUTLINE, width=2)
    cx, cy, w = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0
    if value is None:
        draw.text((cx, cy), "?", fill=OUTLINE, font=font, anchor="mm")
    elif what == "sides":
        draw.regular_polygon((cx, cy, 0.36 * w), value, fill=color, outline=OUTLINE)
    else:
        k = math.ceil(math.sqrt(value))  # dots on a k x k grid, row by row
        pitch = 0.8 * w / k
        r = min(0.32 * pitch, 0.08 * w)
        for i in range(value):
            row, col = divmod(i, k)
            dx = x0 + 0.1 * w + (col + 0.5) * pitch
            dy = y0 + 0.1 * w + (row + 0.5) * pitch
            draw.ellipse((dx - r, dy - r, dx + r, dy + r), fill=color)


def pattern(rng: random.Random, difficulty: int, size: int = 256) -> VisualProblem:
    """Geometric patterns: panels follow a rule; what number belongs in the "?" panel?

    Difficulty d: 4 to 6 panels with d = 1 dots +1 per panel, d = 2 dots +2, +3 or -1, d = 3
    polygon sides +1, d = 4 squares, doubling or Fibonacci; d = 5 a 3 x 3 grid whose rows each
    add the same step.
    """
    d = check_difficulty(difficulty)
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = font_of(max(12, size // 8))
    color = COLORS[rng.choice(sorted(COLORS))]
    if d == 5:
        step, starts = rng.randint(1, 2), rng.sample(range(1, 4), 3)
        values: list[int] = [s + step * c for s in starts for c in range(3)]  # rows of the grid
        what, cols = "dots", 3
        question = (
            "The 3 x 3 panels follow a rule: every row changes by the same amount from "
            "left to right. How many dots belong in the panel with the question mark?"
        )
    else:
        what, values = _sequence_rule(rng, d)
        cols = 3
        noun = "dots are" if what == "dots" else "sides does the shape have"
        question = (
            "The panels, read left to right and top to bottom, follow a pattern. "
            f"How many {noun} in the panel with the question mark?"
        )
    rows = math.ceil(len(values) / cols)
    cell = size / cols
    top = (size - rows * cell) / 2
    for i, v in enumerate(values):
        r, c = divmod(i, cols)
        box = (c * cell + 4, top + r * cell + 4, (c + 1) * cell - 4, top + (r + 1) * cell - 4)
        _draw_panel(draw, box, what, None if i == len(values) - 1 else v, font, color)
    return VisualProblem(
        question=f"{question} {BOXED_INSTRUCTION}",
        answer=str(values[-1]),
        image=image,
        source="synthetic",
        kind="pattern",
        difficulty=d,
        tags=("pattern", what),
    )


SYNTHETIC: dict[str, Generator] = {
    "counting": counting,
    "spatial": spatial,
    "pattern": pattern,
    "geometry": geometry,
}
"""The synthetic generators by name."""
