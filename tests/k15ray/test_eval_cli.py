"""``k15ray eval MODEL DATA``: the table (overall and per level), settings taken from the run that made
the model unless a flag gives them, the quick-start's defaults otherwise, ``--json`` and ``--plot``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from k15ray.cli import app
from k15ray.eval_report import settings_for
from k15ray.evaluation import DEFAULT_K, DEFAULT_MAX_NEW_TOKENS, DEFAULT_TEMPERATURE
from k15ray.jsonl import write_jsonl
from k15ray.models import create_model
from k15ray.tasks import generate_prompt_set

ENV = {"COLUMNS": "160", "NO_COLOR": "1"}  # one line per table row, whatever the terminal


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``k15ray train`` output_dir as the eval command sees it: config.json with an ``eval``
    section (temperature 0.3, k 2, 8 tokens), the policy in rl/policy, 6 prompts of levels 1 and 2.
    The working directory is ``tmp_path``, so paths print short and relative."""
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    create_model("tiny", run / "rl" / "policy")
    config = {"output_dir": str(run), "eval": {"temperature": 0.3, "samples_per_prompt": 2, "max_new_tokens": 8}}
    (run / "config.json").write_text(json.dumps(config))
    write_jsonl(run / "data" / "heldout.jsonl", generate_prompt_set(6, levels=[1, 2], seed=0))
    return run


def _eval(*args: str) -> str:
    result = CliRunner().invoke(app, ["eval", *args], env=ENV)
    assert result.exit_code == 0, result.output
    return result.output


def _json(*args: str) -> dict[str, Any]:
    out = _eval(*args, "--json")
    return dict(json.loads(out[out.index("{"):]))


def test_table_header_and_rows_match_the_json(run_dir: Path) -> None:
    args = ("run/rl/policy", "run/data/heldout.jsonl", "--max-new-tokens", "6")
    out = _eval(*args)
    figures = _json(*args)
    # the header: what was evaluated, and where each setting came from
    header = [line.rstrip() for line in out.splitlines()[:6]]
    assert header == [
        "model        run/rl/policy",
        "data         run/data/heldout.jsonl  (6 prompts)",
        "run config   run/config.json",
        "temperature  0.3  (run config: eval.temperature)",
        "k            2  (run config: eval.samples_per_prompt)",
        "max tokens   6  (--max-new-tokens)",
    ]
    # the table: one row per level, then all prompts and the mean of the levels
    assert all(name in out for name in ("pass@1", "greedy", "mean tokens", "total tokens", "level mean"))
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in out.splitlines() if line.startswith("│")}
    for name, level in (("1", figures["by_difficulty"]["1"]), ("2", figures["by_difficulty"]["2"]),
                        ("all", figures["overall"])):
        assert rows[name] == [
            str(level["n_prompts"]),
            f"{100 * level['pass_at_1']:.1f}%",
            f"{100 * level['greedy_accuracy']:.1f}%",
            f"{level['mean_response_tokens']:.1f}",
            f"{level['total_response_tokens']:,}",
        ]
    # 6 prompts x k=2 samples of at most 6 tokens each
    assert 0 < figures["overall"]["total_response_tokens"] <= 6 * 2 * 6
    assert figures["overall"]["n_prompts"] == 6


def test_settings_come_from_the_run_config(run_dir: Path) -> None:
    figures = _json("run/rl/policy", "run/data/heldout.jsonl")
    assert (figures["temperature"], figures["k"], figures["max_new_tokens"]) == (0.3, 2, 8)
    assert figures["run_config"] == "run/config.json"
    assert figures["sources"] == {
        "k": "run config: eval.samples_per_prompt",
        "temperature": "run config: eval.temperature",
        "max_new_tokens": "run config: eval.max_new_tokens",
    }
    # an RLlib checkpoint's policy, deeper in the same run, finds the same config
    assert settings_for(run_dir / "rl" / "checkpoint" / "policy").temperature == 0.3


def test_flags_override_the_run_config(run_dir: Path) -> None:
    figures = _json("run/rl/policy", "run/data/heldout.jsonl",
                    "--temperature", "0.9", "--k", "1", "--max-new-tokens", "4")
    assert (figures["temperature"], figures["k"], figures["max_new_tokens"]) == (0.9, 1, 4)
    assert figures["sources"] == {"k": "--k", "temperature": "--temperature", "max_new_tokens": "--max-new-tokens"}


def test_defaults_are_the_quick_starts_without_a_run(tmp_path: Path) -> None:
    model = create_model("tiny", tmp_path / "model")  # its own config.json has no `eval` section
    settings = settings_for(model)
    assert (settings.temperature, settings.k, settings.max_new_tokens) == (0.6, 4, 384)
    assert (DEFAULT_TEMPERATURE, DEFAULT_K, DEFAULT_MAX_NEW_TOKENS) == (0.6, 4, 384)  # configs/quickstart.yaml
    assert set(settings.sources.values()) == {"default"} and settings.run_config is None
    help_text = CliRunner().invoke(app, ["eval", "--help"], env=ENV).output
    assert "else 4)" in help_text and "else 0.6)" in help_text and "else 384)" in help_text


def test_a_greedy_run_is_evaluated_greedily(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"eval": {"temperature": 0.0, "samples_per_prompt": 4}}))
    settings = settings_for(tmp_path / "sft" / "final")
    assert (settings.temperature, settings.k) == (0.0, 0)
    assert settings.sources["k"] == "run config: eval.temperature = 0"
    assert settings_for(tmp_path / "sft" / "final", temperature=0.5).k == 4  # sampling asked for


def test_a_bad_run_config_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"eval": {"temperature": -1.0}}))
    with pytest.raises(ValueError, match=r"config.json: eval.*temperature"):
        settings_for(tmp_path / "rl" / "policy")


def test_plot_writes_a_png(run_dir: Path) -> None:
    out = _eval("run/rl/policy", "run/data/heldout.jsonl", "--max-new-tokens", "4", "--plot", "plots/eval.png")
    assert "plot: plots/eval.png" in out
    assert (run_dir.parent / "plots" / "eval.png").read_bytes().startswith(b"\x89PNG")
