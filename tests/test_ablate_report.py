"""``k15ray.ablation.report``: mean ± std over seeds and the paper-direction check, hand-computed."""

from __future__ import annotations

import json
import math
from pathlib import Path

from k15ray import metrics as M
from k15ray.ablation import load_ablation, trial_dir, write_report

CONFIG = """
name: toy
start: {start}
seeds: 2
arms:
  a: {{mirror_descent.objective: mirror_descent}}
  b: {{mirror_descent.objective: rest}}
expect:
  - {{arm: a, than: b, metric: gain_points, sign: higher}}
  - {{arm: b, metric: gain_points, sign: higher}}
  - {{arm: a, than: b, metric: gain_points, sign: lower}}
"""


def _trial(folder: Path, before: float, after: float, tokens: list[float]) -> None:
    """A finished k15ray train folder: summary.json and rl/history.jsonl."""
    (folder / "rl").mkdir(parents=True)
    summary = {
        "before": {"pass_at_1": before},
        "after": {"pass_at_1": after, "response_tokens": 100.0},
        "rl_seconds": 60.0,
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    rows = [
        {"iteration": float(i + 1), M.ROLLOUT_TOKENS: t, M.ROLLOUT_RESPONSE_LEN_MEAN: 100.0}
        for i, t in enumerate(tokens)
    ]
    rows[0][M.EVAL_PASS_AT_1] = (before + after) / 2
    (folder / "rl" / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_table_means_stds_and_expectations(tmp_path: Path) -> None:
    config = tmp_path / "toy.yaml"
    config.write_text(CONFIG.format(start=tmp_path / "start"))
    cfg = load_ablation(config)
    out = tmp_path / "sweep"
    # arm a gains 20 and 30 points, arm b 10 and 10 (arm b seed 1 missing: not finished yet)
    _trial(trial_dir(out, "toy", "a", 0), 0.4, 0.6, [1000.0, 2000.0])
    _trial(trial_dir(out, "toy", "a", 1), 0.4, 0.7, [1000.0, 3000.0])
    _trial(trial_dir(out, "toy", "b", 0), 0.4, 0.5, [500.0, 500.0])
    report = write_report(cfg, out)

    a, b = report["arms"]["a"], report["arms"]["b"]
    assert a["seeds_done"] == [0, 1] and b["seeds_done"] == [0]
    assert math.isclose(a["stats"]["gain_points"]["mean"], 25.0)  # (20 + 30) / 2
    assert math.isclose(
        a["stats"]["gain_points"]["std"], math.sqrt(50.0)
    )  # ((-5)^2 + 5^2) / (2 - 1)
    assert math.isclose(a["stats"]["rollout_tokens"]["mean"], 3.5)  # (3000 + 4000) / 2 tokens, in k
    assert (
        math.isclose(b["stats"]["gain_points"]["mean"], 10.0)
        and b["stats"]["gain_points"]["std"] == 0.0
    )
    a_vs_b, b_vs_0, a_below_b = report["expectations"]
    assert a_vs_b["reproduced"] and math.isclose(a_vs_b["difference"], 15.0)
    assert math.isclose(a_vs_b["t"], 15.0 / math.sqrt(50.0 / 2))  # diff / sqrt(sd_a^2/n_a + 0)
    assert b_vs_0["reproduced"] and b_vs_0["claim"] == "b higher gain_points than 0"
    assert not a_below_b["reproduced"]  # the same +15 points, read against "lower"
    table = (out / "toy.md").read_text()
    assert "| a | 2 | 25.0 ± 7.1 |" in table and "| b | 1 | 10.0 ± 0.0 |" in table
    assert (out / "toy.png").stat().st_size > 0
    assert json.loads((out / "toy.json").read_text())["arms"]["a"]["stats"]["final_pass_at_1"][
        "values"
    ] == [60.0, 70.0]


def test_a_reversed_direction_does_not_reproduce(tmp_path: Path) -> None:
    config = tmp_path / "toy.yaml"
    config.write_text(CONFIG.format(start=tmp_path / "start"))
    cfg = load_ablation(config)
    out = tmp_path / "sweep"
    _trial(trial_dir(out, "toy", "a", 0), 0.4, 0.45, [1000.0])
    _trial(trial_dir(out, "toy", "b", 0), 0.4, 0.6, [1000.0])
    report = write_report(cfg, out)
    assert not report["expectations"][0]["reproduced"]
    assert report["expectations"][2]["reproduced"]  # a lower than b: -15 points
    assert "| mirror" not in (out / "toy.md").read_text()
    assert "| a higher gain_points than b | -15.00 |" in (out / "toy.md").read_text()


def test_verdict_weighs_the_difference_against_the_seed_spread() -> None:
    """'yes' needs the paper's sign and |t| >= 2; seeds that all agree leave no spread, so no t
    and no 'yes' (the sweep once printed t = 8.5e15 for a one-sample difference)."""
    from k15ray.ablation.config import Expectation
    from k15ray.ablation.report import check_expectation

    def arm(*values: float) -> dict[str, object]:
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        return {"stats": {"gain_points": {"mean": mean, "std": std, "values": list(values)}}}

    arms = {
        "clear": arm(10.0, 11.0, 12.0),
        "noisy": arm(0.0, 6.0, 12.0),
        "flat": arm(0.1 + 0.2, 0.3, 0.3),  # equal up to float error, as seeds that agree
    }
    clear = check_expectation(Expectation(arm="clear", than="noisy"), arms)
    assert clear["reproduced"] and not clear["beyond_seed_spread"]  # +5 points, t = 1.4
    vs_zero = check_expectation(Expectation(arm="clear"), arms)
    assert vs_zero["reproduced"] and vs_zero["beyond_seed_spread"]  # +11, t = 19
    flat = check_expectation(Expectation(arm="flat"), arms)
    assert flat["t"] is None and flat["reproduced"] and not flat["beyond_seed_spread"]
    wrong = check_expectation(Expectation(arm="noisy", than="clear"), arms)
    assert not wrong["reproduced"] and not wrong["beyond_seed_spread"]
