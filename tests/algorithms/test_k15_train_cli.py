"""``k15ray train``: the real entry point for a few steps (SFT warm-up, before/after eval, RL,
curves), then ``--resume`` continuing the same run from its checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from k15ray.cli import app

TINY_RUN = """
seed: 0
output_dir: {out}
data: {{n_train: 40, n_heldout: 6, levels: [1]}}
sft: {{model: {{path: tiny}}, max_steps: 2, batch_size: 2, seq_len: 256, save_every_steps: 0}}
rollout: {{num_workers: 1, samples_per_prompt: 2, max_batch_size: 8}}
partial_rollout: {{budget_tokens: 16, max_response_tokens: 32}}
sampling: {{prompts_per_iteration: 2}}
learner: {{num_minibatches: 1}}
eval: {{every_iterations: 1, num_prompts: 2, final_num_prompts: 3, max_new_tokens: 16}}
run: {{iterations: 1, checkpoint_every: 1}}
"""


def test_train_command_then_resume(
    ray_session: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A relative output_dir, as in configs/quickstart.yaml (checkpoints need it made absolute).
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_RUN.format(out="run"))
    runner = CliRunner()

    first = runner.invoke(app, ["train", str(config)])
    assert first.exit_code == 0, first.output
    assert "held-out pass@1: before" in first.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["iterations"] == 1
    assert 0.0 <= summary["before"]["pass_at_1"] <= 1.0
    assert (out / "curves.png").stat().st_size > 0
    assert (out / "rl" / "policy" / "config.json").is_file()  # the trained policy, loadable by Auto*
    assert list((out / "rl" / "tb").glob("events.out.tfevents*"))

    again = runner.invoke(app, ["train", str(config)])  # a second run must not clobber the first
    assert again.exit_code == 2 and "--resume" in again.stderr  # a UserError: one line, exit 2

    resumed = runner.invoke(app, ["train", str(config), "--resume", "--set", "run.iterations=2"])
    assert resumed.exit_code == 0, resumed.output
    history = [json.loads(line) for line in (out / "rl" / "history.jsonl").read_text().splitlines()]
    assert [h["iteration"] for h in history] == [1.0, 2.0]  # iteration 1 kept, iteration 2 added
    assert "eval/pass_at_1" in history[-1]


def test_train_command_reports_bad_value(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("learner: {lr: -1}\n")
    result = CliRunner().invoke(app, ["train", str(config)])
    assert result.exit_code != 0
    assert "learner.lr must be > 0" in result.output


@pytest.mark.parametrize("item, expected", [("mirror_descent.tau=0.5", ("mirror_descent.tau", 0.5)), ("run.use_tune=true", ("run.use_tune", True))])
def test_set_values_parse_as_yaml(item: str, expected: tuple[str, object]) -> None:
    from k15ray.config.experiment import parse_override

    assert parse_override(item) == expected
