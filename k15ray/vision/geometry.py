"""Synthetic geometry diagrams: labelled figures whose measures must be read off (paper 2.3.5).

One more synthetic visual reasoning generator (``kind="geometry"``), in the spirit of the
"geometry diagrams" the paper lists among its visual data: a figure drawn to scale with its side
lengths written next to the sides; the question asks for a derived measure. Levels:

1. rectangle, area = a b;           2. rectangle, perimeter = 2 (a + b);
3. right triangle, area = a b / 2;  4. right triangle, hypotenuse c of a Pythagorean triple;
5. L-shape (a W x H rectangle missing a w x h corner), area = W H - w h.
"""

from __future__ import annotations

import random

from PIL import Image, ImageDraw

from k15ray.vision.problem import (
    BACKGROUND,
    BOXED_INSTRUCTION,
    VisualProblem,
    check_difficulty,
    font_of,
)

INK = (20, 20, 20)
FILL = (200, 225, 250)
Figure = tuple[Image.Image, str, int, tuple[int, ...]]
"""(image, question, answer, side lengths in units as labelled)."""
TRIPLES = ((3, 4, 5), (5, 12, 13), (6, 8, 10), (8, 15, 17), (9, 12, 15), (7, 24, 25))


def _label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, size: int) -> None:
    draw.text(xy, text, fill=INK, font=font_of(max(12, size // 14)), anchor="mm")


def _frame(size: int, width: int, height: int) -> tuple[float, float, float]:
    """(scale in px per unit, left x, bottom y) fitting a width x height figure with margins."""
    scale = 0.68 * size / max(width, height)
    left = (size - width * scale) / 2
    bottom = (size + height * scale) / 2
    return scale, left, bottom


def _polygon(
    size: int, units: list[tuple[int, int]], width: int, height: int
) -> tuple[Image.Image, ImageDraw.ImageDraw, list[tuple[float, float]]]:
    """Draw a filled polygon given in units (y up); returns the image, its drawer and pixel
    vertices."""
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    scale, left, bottom = _frame(size, width, height)
    points = [(left + x * scale, bottom - y * scale) for x, y in units]
    draw.polygon(points, fill=FILL, outline=INK, width=2)
    return image, draw, points


def _rectangle(rng: random.Random, d: int, size: int) -> Figure:
    a, b = rng.randint(2, 12), rng.randint(2, 12)
    image, draw, pts = _polygon(size, [(0, 0), (a, 0), (a, b), (0, b)], a, b)
    (x0, y0), (x1, _), (_, y1) = pts[0], pts[1], pts[2]
    off = size / 16
    _label(draw, ((x0 + x1) / 2, y0 + off), str(a), size)  # below the bottom side
    _label(draw, (x1 + off, (y0 + y1) / 2), str(b), size)  # right of the right side
    if d == 1:
        return image, "What is the area of the rectangle?", a * b, (a, b)
    return image, "What is the perimeter of the rectangle?", 2 * (a + b), (a, b)


def _right_triangle(rng: random.Random, d: int, size: int) -> Figure:
    if d == 3:
        a, b = rng.randint(2, 12), rng.randint(1, 6) * 2  # b even: a b / 2 is an integer
    else:
        a, b, _ = rng.choice(TRIPLES)
        a, b = (a, b) if rng.random() < 0.5 else (b, a)
    image, draw, pts = _polygon(size, [(0, 0), (a, 0), (0, b)], a, b)
    (x0, y0), (x1, _), (_, y2) = pts
    off, m = size / 16, size / 28
    draw.line([(x0 + m, y0), (x0 + m, y0 - m), (x0, y0 - m)], fill=INK, width=1)  # right angle
    _label(draw, ((x0 + x1) / 2, y0 + off), str(a), size)
    _label(draw, (x0 - off, (y0 + y2) / 2), str(b), size)
    if d == 3:
        return image, "What is the area of the right triangle?", a * b // 2, (a, b)
    hypotenuse = int((a * a + b * b) ** 0.5)  # exact: (a, b, c) is a Pythagorean triple
    return image, "How long is the hypotenuse of the right triangle?", hypotenuse, (a, b)


def _l_shape(rng: random.Random, size: int) -> Figure:
    big_w, big_h = rng.randint(6, 14), rng.randint(6, 14)
    w, h = rng.randint(2, big_w - 2), rng.randint(2, big_h - 2)
    units = [
        (0, 0),
        (big_w, 0),
        (big_w, big_h - h),
        (big_w - w, big_h - h),
        (big_w - w, big_h),
        (0, big_h),
    ]
    image, draw, pts = _polygon(size, units, big_w, big_h)
    off = size / 16
    (x0, y0), (x1, _), (_, y2), (x3, _), (_, y4) = pts[:5]
    _label(draw, ((x0 + x1) / 2, y0 + off), str(big_w), size)  # bottom: W
    _label(draw, (x0 - off, (y0 + y4) / 2), str(big_h), size)  # left: H
    _label(draw, ((x3 + x1) / 2, y2 - off), str(w), size)  # the notch's floor: w
    _label(draw, (x3 + off, (y2 + y4) / 2), str(h), size)  # the notch's wall: h
    area = big_w * big_h - w * h
    return image, "What is the area of the L-shaped figure?", area, (big_w, big_h, w, h)


def geometry(rng: random.Random, difficulty: int, size: int = 256) -> VisualProblem:
    """A labelled figure drawn to scale; compute an area, a perimeter or a length.

    The tag ``sides:AxB`` (``sides:WxHxwxh`` for the L-shape) records the labelled lengths.
    """
    d = check_difficulty(difficulty)
    if d <= 2:
        figure, (image, question, answer, sides) = "rectangle", _rectangle(rng, d, size)
    elif d <= 4:
        figure, (image, question, answer, sides) = "right-triangle", _right_triangle(rng, d, size)
    else:
        figure, (image, question, answer, sides) = "l-shape", _l_shape(rng, size)
    return VisualProblem(
        question=f"{question} The side lengths are written next to the sides. {BOXED_INSTRUCTION}",
        answer=str(answer),
        image=image,
        source="synthetic",
        kind="geometry",
        difficulty=d,
        tags=("geometry", figure, "sides:" + "x".join(map(str, sides))),
    )
