"""Vision-language warm-up and evaluation (k15ray.vision_training) and ``k15ray eval`` on a
vision-language policy: the images reach the model in SFT and in evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from k15ray.cli import app
from k15ray.jsonl import write_jsonl
from k15ray.models import create_model
from k15ray.types import Prompt
from k15ray.vision_training import (
    evaluate_vision,
    train_vision_sft,
    vision_accuracy_fn,
    vision_solution,
)

QUESTION = "How many shapes are in the image? Give the final answer in \\boxed{}."


def test_vision_solution_counts_up_to_the_answer() -> None:
    counting = Prompt("a", QUESTION, "4", tags=("counting", "objects:4"))
    assert vision_solution(counting) == "Count: 1 2 3 4. \\boxed{4}"
    assert vision_solution(Prompt("b", "Which?", "7", tags=("pattern",))) == "\\boxed{7}"


@pytest.mark.slow
def test_sft_teaches_an_answer_that_only_the_image_tells(tmp_path: Path) -> None:
    """Two prompts with the same text: a dark image means 2, a light one 5. Only a policy that
    sees the pixels can answer both; the blank-image control then gives one answer to both."""
    dark, light = np.full((48, 48, 3), 20, np.uint8), np.full((48, 48, 3), 235, np.uint8)
    prompts = [Prompt("dark", QUESTION, "2", tags=("counting",)), Prompt("light", QUESTION, "5", tags=("counting",))]
    images = {"dark": (dark,), "light": (light,)}
    start = create_model("tiny-vl", tmp_path / "start", seed=0)
    result = train_vision_sft(start, tmp_path / "sft", prompts, lambda p: images[p.id], steps=60, batch_size=8, lr=3e-3)
    report = evaluate_vision(result.model_dir, prompts, lambda p: images[p.id])
    assert report["all"]["accuracy"] == 1.0, report
    assert report["kind/counting"]["n"] == 2 and report["level/1"]["accuracy"] == 1.0
    blank = evaluate_vision(result.model_dir, prompts, lambda p: images[p.id], blank=True)
    assert blank["all"]["accuracy"] == 0.5, blank  # same image, same answer: right on one of the two


@pytest.mark.slow
def test_sft_stops_once_the_checked_accuracy_is_reached(tmp_path: Path) -> None:
    dark, light = np.full((48, 48, 3), 20, np.uint8), np.full((48, 48, 3), 235, np.uint8)
    prompts = [Prompt("dark", QUESTION, "2", tags=("counting",)), Prompt("light", QUESTION, "5", tags=("counting",))]
    images = {"dark": (dark,), "light": (light,)}
    start = create_model("tiny-vl", tmp_path / "start", seed=0)
    scripted = iter([0.2, 0.7, 0.9])
    result = train_vision_sft(start, tmp_path / "a", prompts, lambda p: images[p.id], steps=50, batch_size=4,
                              check=lambda model, processor: next(scripted), check_every=2, stop_at_accuracy=0.5)
    assert (result.steps, result.checks) == (4, [(2, 0.2), (4, 0.7)])
    # the real check sees the model being trained: it stops as soon as both are answered right
    check = vision_accuracy_fn(prompts, lambda p: images[p.id])
    result = train_vision_sft(start, tmp_path / "b", prompts, lambda p: images[p.id], steps=300, batch_size=8,
                              lr=3e-3, check=check, check_every=10, stop_at_accuracy=1.0)
    assert result.steps < 300 and result.checks[-1] == (result.steps, 1.0), result.checks
    assert all(acc < 1.0 for _, acc in result.checks[:-1])
    assert evaluate_vision(result.model_dir, prompts, lambda p: images[p.id])["all"]["accuracy"] == 1.0
    sampled = evaluate_vision(result.model_dir, prompts, lambda p: images[p.id], samples=3, temperature=1.0)
    assert sampled["all"]["n"] == 6  # pass@1 over 3 seeded samples a prompt: the same figures again
    assert sampled == evaluate_vision(result.model_dir, prompts, lambda p: images[p.id], samples=3, temperature=1.0)
    with pytest.raises(ValueError, match="stop_at_accuracy needs a check"):
        train_vision_sft(start, tmp_path / "c", prompts, lambda p: images[p.id], stop_at_accuracy=0.5)


def test_eval_cli_reports_a_vision_policy_per_kind_and_level(tmp_path: Path) -> None:
    model = create_model("tiny-vl", tmp_path / "vl", seed=0)
    records = []
    for i, (kind, level) in enumerate([("counting", 1), ("counting", 2), ("pattern", 1)]):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(path)
        records.append({"id": f"p{i}", "question": QUESTION, "answer": "3", "difficulty": level, "tags": [kind],
                        "images": [str(path)], "domain": "vision"})
    data = tmp_path / "vision.jsonl"
    write_jsonl(data, records)
    out = CliRunner().invoke(app, ["eval", str(model), str(data), "--json", "--max-new-tokens", "8"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)["greedy_accuracy"]
    assert {k: v["n"] for k, v in report.items()} == {
        "all": 3, "kind/counting": 2, "kind/pattern": 1, "level/1": 2, "level/2": 1}
    table = CliRunner().invoke(app, ["eval", str(model), str(data), "--max-new-tokens", "8"])
    assert table.exit_code == 0 and "kind/pattern" in table.output
