"""Text-rendered problems: the same question as text and as an image (paper 2.3.5).

"Text-rendered data is created by converting textual content into visual format, enabling the
model to maintain consistency when handling text-based queries across different modalities.
Transforming text documents, code snippets, and structured data into images, we ensure the model
provides consistent responses regardless of whether the input is pure text or text rendered as
images." Three generators, each ``(rng, difficulty, size) -> VisualProblem`` with ``text_form``
set to the whole question as text:

* ``text``: an arithmetic word problem drawn as a paragraph;
* ``code``: a short Python program drawn as a snippet; "what does it print?";
* ``table``: a table of items, quantities and prices; a lookup or an aggregate over it.

Images are drawn with Pillow's built-in font (``ImageFont.load_default(size)``), nothing fetched.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from PIL import Image, ImageDraw

from k15ray.vision.problem import (
    BACKGROUND,
    BOXED_INSTRUCTION,
    Font,
    VisualProblem,
    check_difficulty,
    font_of,
)

INK = (20, 20, 20)
CODE_BACKGROUND = (246, 246, 240)
GRID = (120, 120, 120)


def _line_height(font: Font) -> int:
    bbox = font.getbbox("Ag|")
    return int((bbox[3] - bbox[1]) * 1.45) + 1


def wrap_text(text: str, font: Font, max_width_px: int) -> list[str]:
    """Greedy word wrap of each paragraph of ``text`` to lines at most ``max_width_px`` wide."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if line and font.getlength(candidate) > max_width_px:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def render_lines(
    lines: Sequence[str],
    font_size: int = 16,
    padding: int = 12,
    background: tuple[int, int, int] = BACKGROUND,
) -> Image.Image:
    """Draw ``lines`` top to bottom, as they are (spaces kept), on a canvas sized to fit them."""
    font = font_of(font_size)
    height = _line_height(font)
    width = max([int(font.getlength(line)) for line in lines] + [1])
    image = Image.new("RGB", (width + 2 * padding, height * len(lines) + 2 * padding), background)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((padding, padding + i * height), line, fill=INK, font=font)
    return image


def render_text(text: str, font_size: int = 16, max_width_px: int = 360) -> Image.Image:
    """A paragraph of text as an image, word-wrapped to ``max_width_px``."""
    return render_lines(wrap_text(text, font_of(font_size), max_width_px), font_size)


def render_code(code: str, font_size: int = 15) -> Image.Image:
    """A code snippet as an image: lines and indentation kept, on a light background."""
    return render_lines(code.rstrip("\n").split("\n"), font_size, background=CODE_BACKGROUND)


def render_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], font_size: int = 15
) -> Image.Image:
    """A table with a bold-ruled header and grid lines; every column as wide as its widest cell."""
    font = font_of(font_size)
    height, pad = _line_height(font), 8
    cells = [list(header), *[list(r) for r in rows]]
    widths = [
        max(int(font.getlength(row[c])) for row in cells) + 2 * pad for c in range(len(header))
    ]
    image = Image.new("RGB", (sum(widths) + 1, height * len(cells) + 1), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for r, row in enumerate(cells):
        x = 0
        for c, value in enumerate(row):
            draw.rectangle((x, r * height, x + widths[c], (r + 1) * height), outline=GRID)
            draw.text((x + pad, r * height + height // 6), value, fill=INK, font=font)
            x += widths[c]
    draw.line((0, height, sum(widths), height), fill=INK, width=2)
    return image


def _word_problem(rng: random.Random, d: int) -> tuple[str, int]:
    """An arithmetic word problem of level d and its integer answer."""
    if d == 1:
        a, b = rng.randint(2, 20), rng.randint(2, 20)
        return f"Tom has {a} apples and buys {b} more. How many apples does he have now?", a + b
    if d == 2:
        a, b = rng.randint(3, 12), rng.randint(3, 12)
        return f"A box holds {a} pens. How many pens are in {b} boxes?", a * b
    if d == 3:
        price, n = rng.randint(2, 9), rng.randint(2, 6)
        note = 50 if price * n < 50 else 100
        return (
            f"A shop sells notebooks at {price} dollars each. Mia buys {n} notebooks and pays "
            f"with a {note} dollar note. How many dollars of change does she get?"
        ), note - price * n
    if d == 4:
        v, h, w, k = rng.randint(40, 90), rng.randint(2, 4), rng.randint(40, 90), rng.randint(1, 3)
        return (
            f"A train travels at {v} km per hour for {h} hours, then at {w} km per hour for "
            f"{k} hours. How many kilometres does it travel in total?"
        ), v * h + w * k
    larger, smaller = rng.randint(20, 60), rng.randint(2, 19)
    return (
        f"The sum of two numbers is {larger + smaller} and their difference is "
        f"{larger - smaller}. What is the larger number?"
    ), larger


def text(rng: random.Random, difficulty: int, size: int = 256) -> VisualProblem:
    """A word problem rendered as a paragraph; ``text_form`` asks the same question in text."""
    d = check_difficulty(difficulty)
    problem, answer = _word_problem(rng, d)
    return VisualProblem(
        question=f"Solve the math problem shown in the image. {BOXED_INSTRUCTION}",
        answer=str(answer),
        image=render_text(problem, max_width_px=max(size, 240)),
        source="rendered",
        kind="text",
        difficulty=d,
        tags=("text", "word-problem"),
        text_form=f"{problem} {BOXED_INSTRUCTION}",
    )


def _collatz_steps(n: int) -> int:
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def _program(rng: random.Random, d: int) -> tuple[str, int]:
    """A Python program of level d and what it prints (computed here, not by running it)."""
    if d == 1:
        a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 20)
        return f"x = {a}\ny = {b}\nprint(x * y + {c})\n", a * b + c
    if d == 2:
        n = rng.randint(4, 12)  # 0 + 1 + ... + (n - 1) = n (n - 1) / 2
        return f"total = 0\nfor i in range({n}):\n    total += i\nprint(total)\n", n * (n - 1) // 2
    if d == 3:
        n, m = rng.randint(10, 30), rng.randint(2, 5)
        q = n // m  # multiples of m up to n: m + 2m + ... + qm = m q (q + 1) / 2
        src = (
            f"total = 0\nfor i in range(1, {n} + 1):\n    if i % {m} == 0:\n"
            "        total += i\nprint(total)\n"
        )
        return src, m * q * (q + 1) // 2
    if d == 4:
        values = [rng.randint(-20, 40) for _ in range(5)]
        src = (
            f"values = {values}\nbest = values[0]\nfor v in values:\n    if v > best:\n"
            "        best = v\nprint(best - min(values))\n"
        )
        return src, max(values) - min(values)
    n = rng.randint(6, 30)
    src = (
        f"n = {n}\nsteps = 0\nwhile n != 1:\n    if n % 2 == 0:\n        n = n // 2\n"
        "    else:\n        n = 3 * n + 1\n    steps += 1\nprint(steps)\n"
    )
    return src, _collatz_steps(n)


def code(rng: random.Random, difficulty: int, size: int = 256) -> VisualProblem:
    """A Python snippet rendered as an image: what does it print?"""
    d = check_difficulty(difficulty)
    program, answer = _program(rng, d)
    return VisualProblem(
        question=f"What does the Python program in the image print? {BOXED_INSTRUCTION}",
        answer=str(answer),
        image=render_code(program),
        source="rendered",
        kind="code",
        difficulty=d,
        tags=("code", "python"),
        text_form=f"What does this Python program print?\n\n{program}\n{BOXED_INSTRUCTION}",
    )


ITEMS = ("apples", "bread", "cheese", "eggs", "milk", "rice", "tea", "pasta", "beans", "honey")


def _table_question(
    rng: random.Random, d: int, rows: list[tuple[str, int, int]]
) -> tuple[str, int]:
    """A question about rows of (item, quantity, unit price) at level d, and its answer."""
    item, qty, price = rng.choice(rows)
    if d == 1:
        return f"What is the quantity of {item}?", qty
    if d == 2:
        return "What is the total quantity of all items?", sum(q for _, q, _ in rows)
    if d == 3:
        return f"How many dollars do the {item} cost in total (quantity times price)?", qty * price
    costs = [q * p for _, q, p in rows]
    if d == 4:
        return "What is the total cost in dollars of all items (quantity times price)?", sum(costs)
    return (
        "What is the difference in dollars between the largest and the smallest total cost "
        "(quantity times price) of an item?"
    ), max(costs) - min(costs)


def table(rng: random.Random, difficulty: int, size: int = 256) -> VisualProblem:
    """A shopping table rendered as an image, with a lookup (d = 1) or aggregate question."""
    d = check_difficulty(difficulty)
    rows = [(item, rng.randint(1, 12), rng.randint(1, 9)) for item in rng.sample(ITEMS, 2 + d)]
    question, answer = _table_question(rng, d, rows)
    header = ("Item", "Quantity", "Price (dollars)")
    cells = [(item, str(q), str(p)) for item, q, p in rows]
    markdown = "\n".join(
        [f"| {' | '.join(header)} |", "| --- | --- | --- |"]
        + [f"| {' | '.join(c)} |" for c in cells]
    )
    return VisualProblem(
        question=f"Use the table in the image. {question} {BOXED_INSTRUCTION}",
        answer=str(answer),
        image=render_table(header, cells),
        source="rendered",
        kind="table",
        difficulty=d,
        tags=("table", f"rows:{len(rows)}"),
        text_form=f"Use this table.\n\n{markdown}\n\n{question} {BOXED_INSTRUCTION}",
    )


RENDERED: dict[str, Callable[[random.Random, int, int], VisualProblem]] = {
    "text": text,
    "code": code,
    "table": table,
}
"""The text-rendered generators by name."""
