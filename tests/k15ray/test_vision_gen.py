"""Vision problem generators (paper 2.3.5): answers agree with what the images and programs show."""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from k15ray.vision.geometry import FILL, INK
from k15ray.vision.mixture import (
    KIND_SOURCE,
    VisionDataConfig,
    build_prompt_set,
    generate,
    split_counts,
)
from k15ray.vision.montage import contact_sheet
from k15ray.vision.problem import (
    DIFFICULTY_LEVELS,
    default_cache_dir,
    fit_image,
    image_array,
    save_image,
    to_prompt,
)
from k15ray.vision.records import load_image, load_records
from k15ray.vision.render import _table_question
from k15ray.vision.synthetic import COLORS, Placed, count_between, count_related


def regions(mask: np.ndarray) -> list[np.ndarray]:
    """The 4-connected components of a boolean mask, each as an (N, 2) array of (y, x) pixels."""
    seen = np.zeros_like(mask)
    out = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        stack, pixels = [(y0, x0)], []
        seen[y0, x0] = True
        while stack:
            y, x = stack.pop()
            pixels.append((y, x))
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                inside = 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1]
                if inside and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        out.append(np.array(pixels))
    return out


def components(mask: np.ndarray) -> list[tuple[float, float]]:
    """Centroids (x, y) of the 4-connected components of a boolean mask."""
    return [(float(r[:, 1].mean()), float(r[:, 0].mean())) for r in regions(mask)]


def color_mask(image: Image.Image, names: list[str]) -> np.ndarray:
    arr = np.asarray(image.convert("RGB"))  # (H, W, 3)
    mask = np.zeros(arr.shape[:2], bool)
    for name in names:
        mask |= np.all(arr == np.array(COLORS[name], np.uint8), axis=-1)
    return mask


# ---- determinism -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(KIND_SOURCE))
def test_same_seed_same_problem_and_pixels(kind: str) -> None:
    a, b = generate(kind, 3, seed=11), generate(kind, 3, seed=11)
    assert (a.question, a.answer, a.id) == (b.question, b.answer, b.id)
    assert a.image.tobytes() == b.image.tobytes()
    others = {generate(kind, 3, seed=s).id for s in range(8)}
    assert len(others) >= 4, f"{kind}: 8 seeds gave only {len(others)} distinct problems"


@pytest.mark.parametrize("kind", sorted(KIND_SOURCE))
def test_every_level_yields_an_integer_answer_with_tags(kind: str) -> None:
    for level in DIFFICULTY_LEVELS:
        p = generate(kind, level, seed=level)
        assert re.fullmatch(r"-?\d+", p.answer), (kind, level, p.answer)
        assert p.difficulty == level and kind in p.tags and p.source == KIND_SOURCE[kind]
        assert "\\boxed{}" in p.question
        prompt = to_prompt(p)
        assert prompt.domain == "vision" and p.source in prompt.tags and kind in prompt.tags
    with pytest.raises(ValueError, match="difficulty=6"):
        generate(kind, 6, seed=0)


# ---- synthetic: answers read back from the pixels ---------------------------------------------


def test_counting_answers_match_the_drawn_shapes() -> None:
    for seed in range(12):
        # level 1 counts every shape; shapes never touch, so each one is one colour component
        p = generate("counting", 1, seed=seed)
        assert len(components(color_mask(p.image, list(COLORS)))) == int(p.answer), seed
    checked = 0
    for seed in range(40):
        p = generate("counting", 2, seed=seed)
        m = re.match(r"How many (\w+) shapes are", p.question)
        if m:  # "How many <colour> shapes": count the components of exactly that colour
            assert len(components(color_mask(p.image, [m.group(1)]))) == int(p.answer), seed
            checked += 1
    assert checked >= 10


def test_spatial_relations_hand_computed() -> None:
    # a 3 x 3 grid:   A . B      row 0
    #                 . X .      row 1
    #                 C . D      row 2
    a, b = Placed("circle", "red", 0, 0, 0, 0), Placed("star", "blue", 0, 2, 0, 0)
    x = Placed("square", "green", 1, 1, 0, 0)
    c, d = Placed("triangle", "yellow", 2, 0, 0, 0), Placed("circle", "blue", 2, 2, 0, 0)
    placed = [a, b, x, c, d]
    assert count_related(placed, x, ("to the left of",)) == 2  # A and C have column 0 < 1
    assert count_related(placed, x, ("above", "to the right of")) == 1  # only B: row 0, column 2
    assert count_related(placed, a, ("below",)) == 3  # X, C, D have rows 1, 2, 2 > 0
    assert count_related(placed, a, ("to the left of",)) == 0
    assert count_between(placed, a, d) == 1  # columns strictly between 0 and 2: only X (column 1)
    assert count_between(placed, a, c) == 0  # same column: nothing between


def test_spatial_scene_has_one_component_per_shape() -> None:
    for level in DIFFICULTY_LEVELS:
        p = generate("spatial", level, seed=level)
        assert len(components(color_mask(p.image, list(COLORS)))) == level + 2


def _panel_counts(image: Image.Image, color: str) -> dict[int, int]:
    """Dots per panel of a 3-column, 2-row sequence layout (panel index -> count)."""
    size = image.width
    cell, top = size / 3, (size - 2 * size / 3) / 2
    counts: dict[int, int] = {}
    for cx, cy in components(color_mask(image, [color])):
        index = int((cy - top) // cell) * 3 + int(cx // cell)
        counts[index] = counts.get(index, 0) + 1
    return counts


def test_pattern_answers_continue_the_drawn_sequence() -> None:
    for seed in range(10):
        for level in (1, 2):  # arithmetic: answer = last shown + (last shown - the one before)
            p = generate("pattern", level, seed=seed)
            arr = np.asarray(p.image)
            color = next(n for n, rgb in COLORS.items() if np.all(arr == rgb, axis=-1).any())
            shown = _panel_counts(p.image, color)
            values = [shown[i] for i in sorted(shown)]
            assert len(values) >= 3 and sorted(shown) == list(range(len(values)))
            step = values[1] - values[0]
            assert all(b - a == step for a, b in zip(values, values[1:], strict=False))
            assert int(p.answer) == values[-1] + step, (seed, level, values, p.answer)


def test_geometry_answers_match_the_labels_and_the_figure_is_to_scale() -> None:
    for seed in range(3):
        for level in DIFFICULTY_LEVELS:
            p = generate("geometry", level, seed=seed)
            sides = [int(v) for v in p.tags[2].removeprefix("sides:").split("x")]
            a, b = sides[:2]
            expected = {
                1: a * b,  # rectangle area
                2: 2 * (a + b),  # rectangle perimeter
                3: a * b // 2,  # right-triangle area
                4: round((a * a + b * b) ** 0.5),  # hypotenuse
                5: a * b - sides[2] * sides[3] if len(sides) == 4 else -1,  # W H - w h
            }[level]
            assert int(p.answer) == expected, (seed, level, sides)
            if level == 4:
                assert int(p.answer) ** 2 == a * a + b * b
            # drawn to scale: the figure (fill + outline, the largest region; the labels are apart
            # from it) spans a x b units at 0.68 * 256 / max(a, b) pixels each
            arr = np.asarray(p.image)
            fill = np.all(arr == np.array(FILL, np.uint8), axis=-1)
            figure = max(regions(fill | np.all(arr == np.array(INK, np.uint8), axis=-1)), key=len)
            ys, xs = figure[:, 0], figure[:, 1]
            scale = 0.68 * 256 / max(a, b)
            assert abs((xs.max() - xs.min() + 1) - a * scale) <= 4, (seed, level)
            assert abs((ys.max() - ys.min() + 1) - b * scale) <= 4, (seed, level)
            if level == 5:  # the notch is cut out: filled fraction (W H - w h) / (W H)
                fraction = len(figure) / ((xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1))
                assert abs(fraction - expected / (a * b)) < 0.04, (seed, fraction)


# ---- text-rendered: the same question as text, answers checked by running the code -----------


def test_code_answers_are_what_the_program_prints() -> None:
    for level in DIFFICULTY_LEVELS:
        for seed in range(6):
            p = generate("code", level, seed=seed)
            assert p.text_form is not None
            program = p.text_form.split("\n\n")[1]  # question, blank line, program, blank line
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(program, {})  # our own generated snippet
            assert out.getvalue().strip() == p.answer, (level, seed, program)


def test_table_questions_hand_computed() -> None:
    rows = [("tea", 2, 3), ("rice", 4, 5)]  # costs: 2 * 3 = 6 and 4 * 5 = 20
    assert _table_question(random.Random(0), 2, rows)[1] == 6  # quantities 2 + 4
    assert _table_question(random.Random(0), 4, rows)[1] == 26  # costs 6 + 20
    assert _table_question(random.Random(0), 5, rows)[1] == 14  # costs 20 - 6
    question, answer = _table_question(random.Random(0), 1, rows)
    item = re.search(r"quantity of (\w+)", question).group(1)  # type: ignore[union-attr]
    assert answer == {"tea": 2, "rice": 4}[item]


def test_word_problem_text_and_answer_agree() -> None:
    for seed in range(10):
        p = generate("text", 5, seed=seed)  # sum s and difference t: larger = (s + t) / 2
        s, t = (int(n) for n in re.findall(r"\d+", p.text_form or "")[:2])
        assert int(p.answer) == (s + t) // 2 and (s + t) % 2 == 0
        p1 = generate("text", 1, seed=seed)  # has a and buys b more: a + b
        a, b = (int(n) for n in re.findall(r"\d+", p1.text_form or "")[:2])
        assert int(p1.answer) == a + b


def test_rendered_problems_exist_as_text_and_image() -> None:
    for kind in ("text", "code", "table"):
        p = generate(kind, 2, seed=1)
        assert p.text_form and "\\boxed{}" in p.text_form
        assert np.asarray(p.image).min() < 100  # dark text was drawn


# ---- images, prompts, the mixture ------------------------------------------------------------


def test_fit_image_scales_keeping_aspect_and_pads_white() -> None:
    image = Image.new("RGB", (100, 50), (255, 0, 0))  # 2:1, fitted into 64 x 64 -> 64 x 32
    arr = image_array(image, 64, 64)
    assert arr.shape == (64, 64, 3) and arr.dtype == np.uint8
    assert tuple(arr[0, 32]) == (255, 255, 255)  # (64 - 32) / 2 = 16 white rows on top
    assert tuple(arr[15, 32]) == (255, 255, 255) and tuple(arr[16, 32]) == (255, 0, 0)
    assert tuple(arr[47, 32]) == (255, 0, 0) and tuple(arr[48, 32]) == (255, 255, 255)
    assert fit_image(image, 48, 96).size == (96, 48)  # same aspect: resized, no padding


def test_save_image_is_content_addressed(tmp_path: Path) -> None:
    p = generate("counting", 2, seed=0)
    first, second = save_image(p.image, tmp_path), save_image(p.image, tmp_path)
    assert first == second and len(list(tmp_path.iterdir())) == 1
    assert Image.open(first).tobytes() == p.image.tobytes()


def test_default_cache_dir_is_under_the_temp_dir_not_home() -> None:
    assert default_cache_dir().parent == Path(tempfile.gettempdir())


def test_split_counts_largest_remainder() -> None:
    assert split_counts(10, {"a": 2.0, "b": 1.0}) == {"a": 7, "b": 3}  # 6.67 -> 7, 3.33 -> 3
    assert split_counts(5, {"a": 1.0, "b": 1.0, "c": 0.0}) == {"a": 3, "b": 2, "c": 0}  # 2.5, 2.5


def test_prompt_set_is_balanced_deterministic_and_distinct(tmp_path: Path) -> None:
    config = VisionDataConfig(
        sources=("synthetic", "rendered"),
        weights=(3.0, 1.0),
        num_prompts=12,
        cache_dir=str(tmp_path),
    )
    first, second = build_prompt_set(config), build_prompt_set(config)
    assert [p.id for p in first.prompts] == [p.id for p in second.prompts]
    by_source = [first.source_of[p.id] for p in first.prompts]
    assert by_source.count("synthetic") == 9 and by_source.count("rendered") == 3  # 12 * 3/4, 1/4
    assert len({p.id for p in first.prompts}) == 12
    assert {p.difficulty for p in first.prompts if first.source_of[p.id] == "synthetic"} == {
        1,
        2,
        3,
    }
    for p in first.prompts:  # each image written once, under the cache dir
        assert len(p.images) == 1 and Path(p.images[0]).parent == tmp_path


def test_contact_sheet_layout_and_cli(tmp_path: Path) -> None:
    problems = [generate("counting", 1, seed=s, size=64) for s in range(3)]
    sheet = contact_sheet(problems, cols=2, tile=64)
    # 2 columns: 2 * (64 + 6) + 6 = 146 wide; 2 rows: 2 * (64 + 22 + 6) + 6 = 190 high
    assert sheet.size == (146, 190)
    from typer.testing import CliRunner

    from k15ray.cli import app

    result = CliRunner().invoke(app, ["vision-examples", str(tmp_path / "ex.png")])
    assert result.exit_code == 0, result.output
    # 7 kinds x 5 levels of 256-pixel tiles: 5 * 262 + 6 = 1316 wide, 7 * 284 + 6 = 1994 high
    assert Image.open(tmp_path / "ex.png").size == (1316, 1994)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sources": ("photos",)}, "use one or more of"),
        ({"sources": ("synthetic",), "data_path": "charts.jsonl"}, "add 'records' to the sources"),
        ({"weights": (1.0,)}, "one non-negative weight per source"),
        ({"kinds": ("clocks",)}, "valid kinds are"),
        ({"sources": ("rendered",), "kinds": ("counting",)}, "no kind of source 'rendered'"),
        ({"difficulties": (0,)}, "difficulty=0"),
        ({"image_height": 8}, "at least 32x32"),
    ],
)
def test_config_errors_say_what_to_fix(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VisionDataConfig(**kwargs)


# ---- real-world records ----------------------------------------------------------------------


def _write_records(tmp_path: Path, images: list[list[str]]) -> Path:
    path = tmp_path / "records.jsonl"
    lines = [
        json.dumps(
            {"id": f"r{i}", "question": "How many bars are above 5?", "answer": "3", "images": imgs}
        )
        for i, imgs in enumerate(images)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_records_resolve_relative_images_and_default_to_vision(tmp_path: Path) -> None:
    Image.new("RGB", (20, 10), (0, 0, 255)).save(tmp_path / "a.png")
    Image.new("RGB", (30, 10), (0, 255, 0)).save(tmp_path / "b.png")
    prompts = load_records(_write_records(tmp_path, [["a.png"], ["a.png", "b.png"]]))
    assert [p.domain for p in prompts] == ["vision", "vision"]
    assert prompts[0].images == (str(tmp_path / "a.png"),)
    side_by_side = load_image(prompts[1].images, prompts[1].id)
    assert side_by_side.size == (20 + 8 + 30, 10)  # widths plus one 8-pixel gap


def test_parquet_records_name_the_row(tmp_path: Path) -> None:
    from k15ray.envs.dataset import write_prompts
    from k15ray.types import Prompt

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    good = Prompt(id="g", question="q", answer="1", domain="vision", images=("a.png",))
    bad = Prompt(id="b", question="q", answer="2", domain="vision", images=("missing.png",))
    write_prompts(tmp_path / "ok.parquet", [good])
    assert [p.images for p in load_records(tmp_path / "ok.parquet")] == [(str(tmp_path / "a.png"),)]
    write_prompts(tmp_path / "bad.parquet", [good, bad])
    with pytest.raises(ValueError, match=r"bad.parquet: row 2: field 'images'\[0\]: .*missing.png"):
        load_records(tmp_path / "bad.parquet")


def test_record_with_missing_image_names_file_line_and_field(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    path = _write_records(tmp_path, [["a.png"], ["a.png", "gone.png"]])
    with pytest.raises(ValueError) as err:
        load_records(path)
    text = str(err.value)
    assert f"{path}:2" in text and "'images'[1]" in text and str(tmp_path / "gone.png") in text


def test_record_with_unreadable_image_names_file_line_and_field(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    path = _write_records(tmp_path, [["broken.png"]])
    with pytest.raises(
        ValueError, match=r"records.jsonl:1: field 'images'\[0\]: .*broken.png cannot be read"
    ):
        load_records(path)


def test_record_without_images_is_rejected(tmp_path: Path) -> None:
    path = _write_records(tmp_path, [[]])
    with pytest.raises(ValueError, match=r"records.jsonl:1: field 'images': a vision record needs"):
        load_records(path)
