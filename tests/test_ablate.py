"""``k15ray ablate``: a 2-arm x 2-seed sweep of one iteration on the tiny model writes its table,
JSON and figure; ``--resume`` keeps finished trials; bad configs fail in one line before Ray starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from k15ray.cli import app

SWEEP = """
name: objective
start: {start}
seeds: 2
sample_efficiency: true
experiment:
  rollout: {{colocate: true, samples_per_prompt: 2, max_batch_size: 8}}
  partial_rollout: {{budget_tokens: 16, max_response_tokens: 16}}
  sampling: {{prompts_per_iteration: 2}}
  learner: {{num_minibatches: 1, num_threads: 1}}
  eval: {{every_iterations: 1, num_prompts: 2, final_num_prompts: 2, samples_per_prompt: 1, max_new_tokens: 16}}
  run: {{iterations: 1, checkpoint_every: 1}}
arms:
  mirror_descent: {{mirror_descent.objective: mirror_descent}}
  rest: {{mirror_descent.objective: rest}}
expect:
  - {{arm: mirror_descent, than: rest, metric: gain_points, sign: higher}}
"""


@pytest.fixture(scope="module")
def start(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SFT start folder: the tiny preset (random weights) and a few level-1 prompts."""
    from k15ray.models import create_model
    from k15ray.tasks import write_splits

    folder = tmp_path_factory.mktemp("start")
    create_model("tiny", folder / "model")
    write_splits(folder / "data", 12, 4, seed=0, levels=[1])
    return folder


@pytest.mark.slow
def test_sweep_writes_table_and_figure_then_resumes(
    ray_session: None, tmp_path: Path, start: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tune 2.60 refuses to run while the deprecated TUNE_RESULT_DIR / RAY_AIR_LOCAL_CACHE_DIR are
    # set (conftest sets them for the rest of the suite); the sweep's storage is under tmp_path.
    monkeypatch.delenv("TUNE_RESULT_DIR", raising=False)
    monkeypatch.delenv("RAY_AIR_LOCAL_CACHE_DIR", raising=False)
    config = tmp_path / "objective.yaml"
    config.write_text(SWEEP.format(start=start))
    out = tmp_path / "sweep"
    runner = CliRunner()

    first = runner.invoke(app, ["ablate", str(config), "--out", str(out), "--max-concurrent", "2"])
    assert first.exit_code == 0, first.output
    report = json.loads((out / "objective.json").read_text())
    assert list(report["arms"]) == ["mirror_descent", "rest"]
    for arm, row in report["arms"].items():
        assert row["seeds_done"] == [0, 1], arm
        gains = row["stats"]["gain_points"]["values"]
        assert len(gains) == 2 and all(-100.0 <= g <= 100.0 for g in gains)
        assert row["stats"]["rollout_tokens"]["mean"] > 0  # the trial's history was read
        for seed in (0, 1):  # each trial is a k15ray train run folder of its own
            summary = json.loads(
                (out / "trials" / "objective" / arm / f"seed{seed}" / "summary.json").read_text()
            )
            assert summary["iterations"] == 1
    assert report["expectations"][0]["claim"] == "mirror_descent higher gain_points than rest"
    table = (out / "objective.md").read_text()
    assert "| mirror_descent | 2 |" in table and "| rest | 2 |" in table
    assert (out / "objective.png").stat().st_size > 10_000  # three panels drawn
    assert "[4/4]" in first.output  # one line per finished trial

    again = runner.invoke(app, ["ablate", str(config), "--out", str(out)])
    assert again.exit_code == 2 and "--resume" in again.stderr

    summary = out / "trials" / "objective" / "rest" / "seed1" / "summary.json"
    written = summary.stat().st_mtime_ns
    resumed = runner.invoke(app, ["ablate", str(config), "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert summary.stat().st_mtime_ns == written  # finished trials are not run again


@pytest.mark.parametrize(
    "edit, expected",
    [
        ("mirror_descent.objectiv: rest", "arms.rest: mirror_descent.objectiv: unknown key"),
        ("learner.lr: -1.0", "arms.rest: learner.lr must be > 0"),
    ],
)
def test_bad_arm_field_is_one_line(tmp_path: Path, start: Path, edit: str, expected: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        SWEEP.format(start=start).replace(
            "rest: {mirror_descent.objective: rest}", f"rest: {{{edit}}}"
        )
    )
    result = CliRunner().invoke(app, ["ablate", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # found before any work


@pytest.mark.parametrize(
    "override, expected",
    [
        ("seeds=0", "seeds: must be >= 1"),
        ("expect=[{arm: mirror, than: rest}]", "expect[0]: arm 'mirror' is not one of the arms"),
        ("start=/nonexistent/start", "policy.model_dir"),
    ],
)
def test_bad_sweep_value_is_one_line(
    tmp_path: Path, start: Path, override: str, expected: str
) -> None:
    config = tmp_path / "objective.yaml"
    config.write_text(SWEEP.format(start=start))
    result = CliRunner().invoke(
        app, ["ablate", str(config), "--out", str(tmp_path / "out"), "--set", override]
    )
    assert result.exit_code == 2, result.output
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
