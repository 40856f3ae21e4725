"""``k15ray train-rm``: sampling through Ray rollout actors into resumable chunks labelled by the
verifier, the split by prompt, both RMs trained and reported, and the command's bad-input errors."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from k15ray.config import from_mapping
from k15ray.config.reward_models import RMTrainConfig
from k15ray.envs.dataset import write_prompts
from k15ray.models import create_model
from k15ray.rewards.math import verify_math
from k15ray.rewards.models import RMExample, read_rm_examples, write_rm_examples
from k15ray.rewards.models.pipeline import (
    _chunk_path,
    heldout_split,
    sample_and_label,
    split_examples,
    train_reward_models,
)
from k15ray.types import Prompt


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_model("tiny", tmp_path_factory.mktemp("rm") / "tiny", seed=0)


def _prompts(n: int) -> list[Prompt]:
    return [Prompt(f"p{i}", f"What is {i} + {i + 1}?", str(2 * i + 1)) for i in range(n)]


def _config(tmp_path: Path, tiny_dir: Path, value_base: str = "", judge: bool = True, **data: object) -> RMTrainConfig:
    write_prompts(tmp_path / "prompts.jsonl", _prompts(6))
    return from_mapping(RMTrainConfig, {
        "output_dir": str(tmp_path / "rm"),
        "data": {"prompts": str(tmp_path / "prompts.jsonl"), "policies": [str(tiny_dir)], "num_prompts": 0,
                 "samples_per_prompt": 2, "temperatures": [1.0], "max_new_tokens": 8, "chunk_prompts": 4,
                 "num_workers": 1, "heldout_fraction": 0.5, **data},
        "value_rm": {"steps": 4, "batch_size": 4, "max_length": 64, "base": value_base},
        "cot_rm": {"max_steps": 3, "batch_size": 2, "seq_len": 128, "max_new_tokens": 8, "enabled": judge},
    })


def test_samples_are_labelled_by_the_verifier_and_chunks_resume(ray_session: None, tmp_path: Path, tiny_dir: Path) -> None:
    config = _config(tmp_path, tiny_dir)
    examples = sample_and_label(config, _prompts(6), progress=False)
    assert len(examples) == 6 * 2  # prompts x k (one policy, one temperature)
    assert {e.prompt_id for e in examples} == {f"p{i}" for i in range(6)}
    assert all(e.correct == verify_math(e.response, e.reference) for e in examples)
    assert all(e.policy == str(tiny_dir) and e.temperature == 1.0 for e in examples)
    samples = Path(config.output_dir) / "data" / "samples"
    first, second = _chunk_path(samples, 0, 1.0, 0), _chunk_path(samples, 0, 1.0, 1)
    assert first.is_file() and second.is_file()

    # Resume: a chunk on disk is never sampled again; a missing one is.
    kept = [RMExample("q", "1", "kept", True, "p0", 1.0, "marker")] * 8
    write_rm_examples(first, kept)
    second.unlink()
    again = sample_and_label(config, _prompts(6), progress=False)
    assert [e.response for e in again[:8]] == ["kept"] * 8
    assert second.is_file() and len(again) == 8 + 4


def test_split_is_by_prompt_and_balanced(tmp_path: Path, tiny_dir: Path) -> None:
    config = _config(tmp_path, tiny_dir)
    examples = [RMExample("q", "1", f"r{i}", (i // 6) % 3 == 0, f"p{i % 6}") for i in range(60)]
    train, heldout = split_examples(examples, config)
    held = heldout_split([f"p{i}" for i in range(6)], 0.5, config.seed)
    assert len(held) == 3
    assert {e.prompt_id for e in heldout} == held and not {e.prompt_id for e in train} & held
    for split in (train, heldout):
        assert sum(e.correct for e in split) * 2 == len(split)  # balanced
    one_class = [RMExample("q", "1", "r", False, f"p{i}") for i in range(6)]
    with pytest.raises(ValueError, match="every train response is wrong"):
        split_examples(one_class, config)


def test_train_reward_models_trains_both_and_reports(ray_session: None, tmp_path: Path, tiny_dir: Path) -> None:
    """Labelled chunks already on disk (a resumed run): no sampling, both RMs trained, reported;
    the value head starts from the judge trained in the same run (``value_rm.base: cot_rm``)."""
    config = _config(tmp_path, tiny_dir, value_base="cot_rm", temperatures=[1.0])
    rng = random.Random(0)
    samples = Path(config.output_dir) / "data" / "samples"
    for chunk, ids in ((0, range(4)), (1, range(4, 6))):
        examples = []
        for i in ids:
            for j in range(2):
                answer = 2 * i + 1 if j == 0 else 2 * i + 1 + rng.randint(1, 3)
                response = f"\\boxed{{{answer}}}"
                examples.append(RMExample(f"What is {i} + {i + 1}?", str(2 * i + 1), response, j == 0, f"p{i}", 1.0))
        write_rm_examples(_chunk_path(samples, 0, 1.0, chunk), examples)
    report = train_reward_models(config, progress=False)
    out = Path(config.output_dir)
    assert (out / "value_rm" / "config.json").is_file() and (out / "cot_rm" / "final" / "config.json").is_file()
    assert json.loads((out / "report.json").read_text()) == report
    assert report["samples"] == 12 and report["train"] + report["heldout"] == 12
    for name in ("value_rm", "cot_rm"):
        figures = report["models"][name]
        assert figures["n"] == report["heldout"] and 0.0 <= figures["accuracy"] <= 1.0
    assert len(read_rm_examples(out / "data" / "heldout.jsonl")) == report["heldout"]
    assert report["models"]["value_rm"]["base"] == report["models"]["cot_rm"]["dir"] == str(out / "cot_rm" / "final")
    with pytest.raises(ValueError, match="enable cot_rm"):  # found when the config is read
        _config(tmp_path, tiny_dir, value_base="cot_rm", judge=False)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "k15ray.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_cli_bad_inputs_are_one_line_errors(tmp_path: Path, tiny_dir: Path) -> None:
    write_prompts(tmp_path / "prompts.jsonl", _prompts(3))
    good = {"output_dir": str(tmp_path / "rm"),
            "data": {"prompts": str(tmp_path / "prompts.jsonl"), "policies": [str(tiny_dir)]}}
    cases = {
        "missing policy": ({**good, "data": {**good["data"], "policies": [str(tmp_path / "nope")]}}, "data.policies[0]"),
        "bad value": ({**good, "value_rm": {"lr": -1}}, "value_rm.lr"),
        "no prompts file": ({**good, "data": {**good["data"], "prompts": str(tmp_path / "x.jsonl")}}, "x.jsonl"),
    }
    for name, (mapping, expected) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.yaml"
        path.write_text(yaml.safe_dump(mapping))
        result = _cli("train-rm", str(path), cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, (name, result.stderr)
        assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], (name, result.stderr)
    assert not (tmp_path / "rm").exists()  # nothing expensive started
