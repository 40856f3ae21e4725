"""Long2short (paper 2.4): merging, shortest rejection sampling, DPO pairs and loss, the RL config."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from k15ray.cli import app
from k15ray.config import load_config
from k15ray.config.dpo import DPOConfig
from k15ray.config.experiment import load_experiment
from k15ray.errors import UserError
from k15ray.long2short.dpo import dpo_loss
from k15ray.long2short.merge import merge_models
from k15ray.long2short.rejection import sft_records
from k15ray.long2short.selection import Sample, preference_pairs, shortest_correct
from k15ray.models import build_tokenizer, load_policy, save_tokenizer
from k15ray.types import Prompt

ROOT = Path(__file__).resolve().parents[2]


def _model_dir(tiny_llama: Callable[..., Any], out: Path, seed: int) -> Path:
    tiny_llama(seed).save_pretrained(str(out))
    save_tokenizer(build_tokenizer(), out)
    return out


# ---------------------------------------------------------------------- model merging
def test_merge_is_the_weighted_average(tmp_path: Path, tiny_llama: Callable[..., Any]) -> None:
    a = _model_dir(tiny_llama, tmp_path / "a", seed=0)
    b = _model_dir(tiny_llama, tmp_path / "b", seed=1)
    config = json.loads((b / "config.json").read_text())  # a run-time switch may differ (RL saves False)
    (b / "config.json").write_text(json.dumps({**config, "use_cache": not config.get("use_cache", True)}))
    ta, tb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    for weight in (0.5, 0.25):
        out = merge_models(a, b, tmp_path / f"c{weight}", weight=weight)
        tc = load_file(str(out / "model.safetensors"))
        assert set(tc) == set(ta)
        for name, t in tc.items():  # theta_C = w * theta_A + (1 - w) * theta_B
            torch.testing.assert_close(t, weight * ta[name] + (1 - weight) * tb[name])
        assert not torch.equal(tc["model.embed_tokens.weight"], ta["model.embed_tokens.weight"])
    model, tokenizer = load_policy(tmp_path / "c0.5")  # config and tokenizer kept: it loads
    assert model.config.hidden_size == 64 and tokenizer.decode(tokenizer.encode("12+3")) == "12+3"


def test_merge_refuses_mismatches_in_one_line(tmp_path: Path, tiny_llama: Callable[..., Any]) -> None:
    a = _model_dir(tiny_llama, tmp_path / "a", seed=0)
    b = _model_dir(tiny_llama, tmp_path / "b", seed=1)
    weights = load_file(str(b / "model.safetensors"))
    name = "model.layers.0.mlp.up_proj.weight"
    weights[name] = weights[name][:64]  # (128, 64) -> (64, 64), config unchanged
    save_file(weights, str(b / "model.safetensors"))
    with pytest.raises(UserError, match=r"up_proj.weight' has shape \(128, 64\) in A and \(64, 64\) in B"):
        merge_models(a, b, tmp_path / "c")
    assert not (tmp_path / "c").exists()  # refused before anything is written
    # another architecture, through the command: one line, exit 2
    config = json.loads((b / "config.json").read_text())
    (b / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    result = CliRunner().invoke(app, ["merge", str(a), str(b), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "num_hidden_layers" in lines[0] and lines[0].startswith("error: merge:")
    result = CliRunner().invoke(app, ["merge", str(a), str(a), "--out", str(tmp_path / "d"), "--weight", "2"])
    assert result.exit_code == 2 and "--weight must be in [0, 1]" in result.output


# ---------------------------------------------------------------------- choosing samples
SAMPLES = [
    Sample("long right", 90, True),
    Sample("wrong", 30, False),
    Sample("short right", 40, True),
    Sample("medium right", 59, True),  # 59 < 1.5 * 40 = 60: not a negative
    Sample("other short right", 40, True),  # ties go to the first sampled
    Sample("longer right", 60, True),  # 60 >= 60: a negative
]


def test_shortest_correct_is_picked() -> None:
    assert shortest_correct(SAMPLES) is SAMPLES[2]  # 30 tokens is shorter, but wrong
    assert shortest_correct([Sample("x", 5, False)]) is None
    prompts = [Prompt(id="p1", question="q1", answer="1"), Prompt(id="p2", question="q2", answer="2")]
    records = sft_records(prompts, [SAMPLES, [Sample("x", 5, False)]])  # p2: nothing correct
    assert records == [{
        "id": "p1", "question": "q1", "answer": "1", "difficulty": 1, "solution": "short right",
        "response_tokens": 40,
    }]


def test_dpo_pairs_take_wrong_and_1_5x_longer_correct_ones() -> None:
    pairs = preference_pairs(SAMPLES)
    assert all(chosen is SAMPLES[2] for chosen, _ in pairs)
    assert [r.text for _, r in pairs] == ["long right", "wrong", "longer right"]
    assert len(preference_pairs(SAMPLES, max_pairs=2)) == 2
    assert preference_pairs([Sample("a", 10, False), Sample("b", 12, False)]) == []
    with pytest.raises(ValueError, match="length_ratio must be >= 1"):
        preference_pairs(SAMPLES, length_ratio=0.5)


# ---------------------------------------------------------------------- the DPO loss
def test_dpo_loss_by_hand_and_with_the_pair_swapped() -> None:
    # beta = 0.5; log-ratios: chosen -10 - (-11) = 1, rejected -12 - (-11) = -1
    # h = 0.5 * (1 - (-1)) = 1;  loss = -log sigma(1) = log(1 + e^-1) = 0.313262
    pc, pr = torch.tensor([-10.0], requires_grad=True), torch.tensor([-12.0], requires_grad=True)
    rc, rr = torch.tensor([-11.0]), torch.tensor([-11.0])
    loss, r_w, r_l = dpo_loss(pc, pr, rc, rr, beta=0.5)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    assert (r_w.item(), r_l.item()) == (pytest.approx(0.5), pytest.approx(-0.5))  # 0.5 * 1, 0.5 * -1
    # dL/d logpi(y_w) = -beta * sigma(-h) = -0.5 * 0.268941 = -0.134471; dL/d logpi(y_l) = +0.134471
    loss.sum().backward()
    assert pc.grad is not None and pr.grad is not None
    assert pc.grad.item() == pytest.approx(-0.5 * (1 / (1 + math.e)), abs=1e-6)
    assert pr.grad.item() == pytest.approx(0.5 * (1 / (1 + math.e)), abs=1e-6)
    # swapped pair: h = -1, loss = log(1 + e) = 1.313262 = the loss above + h (softplus identity)
    swapped, _, _ = dpo_loss(pr.detach(), pc.detach(), rr, rc, beta=0.5)
    assert swapped.item() == pytest.approx(math.log(1 + math.e), abs=1e-6)
    # a policy equal to its reference: h = 0, loss = log 2, whatever beta
    zero, _, _ = dpo_loss(rc, rr, rc, rr, beta=3.0)
    assert zero.item() == pytest.approx(math.log(2), abs=1e-6)
    with pytest.raises(ValueError, match="beta must be > 0"):
        dpo_loss(pc, pr, rc, rr, beta=0.0)


def test_dpo_training_lowers_the_loss_and_moves_every_weight(tmp_path: Path, tiny_llama: Callable[..., Any]) -> None:
    from k15ray.jsonl import write_jsonl
    from k15ray.long2short.dpo_trainer import train_dpo

    start = _model_dir(tiny_llama, tmp_path / "start", seed=0)
    pairs = [{"question": f"What is {i} + 1?", "chosen": f"<think>{i}+1</think>\\boxed{{{i + 1}}}",
              "rejected": f"<think>{i}+1, check, redo, again</think>\\boxed{{{i}}}"} for i in range(8)]
    write_jsonl(tmp_path / "pairs.jsonl", pairs)
    config = DPOConfig(model_dir=str(start), pairs=str(tmp_path / "pairs.jsonl"), out_dir=str(tmp_path / "out"),
                       lr=3e-3, batch_size=8, epochs=6, beta=0.5)
    result = train_dpo(config, progress=False)
    assert result.steps == 6 and result.num_pairs == 8
    assert result.first_loss == pytest.approx(math.log(2), abs=1e-4)  # policy == reference at step 1
    assert result.last_loss < 0.5 * result.first_loss
    before, after = load_file(str(start / "model.safetensors")), load_file(str(tmp_path / "out/final/model.safetensors"))
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, unchanged
    metrics = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["reward_accuracy"] == 1.0 and metrics[-1]["reward_margin"] > 0


def test_dpo_command_checks_inputs_first(tmp_path: Path) -> None:
    cfg = tmp_path / "dpo.yaml"
    cfg.write_text(f"model_dir: {tmp_path / 'nope'}\ndata: {tmp_path / 'x.jsonl'}\nout_dir: {tmp_path / 'o'}\n")
    result = CliRunner().invoke(app, ["dpo", str(cfg)])
    assert result.exit_code == 2 and "model_dir:" in result.output and "no such directory" in result.output
    result = CliRunner().invoke(app, ["dpo", str(cfg), "--set", "beta=0"])
    assert result.exit_code == 2 and "dpo.beta and lr: must be > 0" in result.output


# ---------------------------------------------------------------------- configs and commands
def test_long2short_configs_validate() -> None:
    quick = load_experiment(ROOT / "configs" / "quickstart.yaml")
    cfg = load_experiment(ROOT / "configs" / "long2short.yaml")  # the path `k15ray train` takes
    assert cfg.length_penalty.weight > 0 and cfg.length_penalty.warmup_iterations == 0  # from iteration 0
    assert cfg.partial_rollout.max_response_tokens < quick.partial_rollout.max_response_tokens
    assert cfg.policy.model_dir  # starts from the chosen RL model, no SFT
    assert cfg.data.style == "long"
    dpo = load_config(DPOConfig, ROOT / "configs" / "long2short_dpo.yaml")
    assert dpo.samples_per_prompt == 8 and dpo.length_ratio == 1.5


@pytest.mark.parametrize("command", ["merge", "rejection-sample", "dpo"])
def test_commands_have_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "2.4" in result.output


def test_rejection_sample_through_the_rollout_actors(
    tmp_path: Path, tiny_llama: Callable[..., Any], ray_session: None
) -> None:
    from k15ray.long2short.sampling import sample_responses
    from k15ray.rewards import verify_math
    from k15ray.tasks import generate_prompt_set

    model = _model_dir(tiny_llama, tmp_path / "m", seed=0)
    prompts = [Prompt(id="p", question="What is 2 + 2?", answer="4"), Prompt(id="q", question="1+1?", answer="2")]
    groups = sample_responses(model, prompts, 3, max_new_tokens=12, num_workers=2, seed=1)
    assert [len(g) for g in groups] == [3, 3]
    for prompt, group in zip(prompts, groups, strict=True):
        assert len({s.text for s in group}) > 1  # the n samples differ
        for s in group:
            assert 1 <= s.num_tokens <= 12 and s.correct == verify_math(s.text, prompt.answer)
    from k15ray.jsonl import write_jsonl

    write_jsonl(tmp_path / "data.jsonl", generate_prompt_set(3, levels=[1], seed=0))
    result = CliRunner().invoke(app, [
        "rejection-sample", str(model), str(tmp_path / "data.jsonl"), "--n", "2", "--max-new-tokens", "8",
        "--out", str(tmp_path / "rs.jsonl"),
    ])
    assert result.exit_code == 0, result.output
    assert "SFT examples from 3 prompts" in result.output and (tmp_path / "rs.jsonl").is_file()


def test_style_reaches_the_train_jobs_data_and_gen_data(tmp_path: Path) -> None:
    from k15ray.job import prepare_data

    cfg = load_experiment(ROOT / "configs" / "long2short_long.yaml",
                          {"output_dir": str(tmp_path / "run"), "data.n_train": 40, "data.n_heldout": 5})
    sft = prepare_data(cfg).sft["data"]
    solutions = [json.loads(line)["solution"] for line in Path(sft).read_text().splitlines()]
    assert all(s.startswith("<think>Plan: ") for s in solutions) and any("Also: " in s for s in solutions)
    firsts = {}
    for style in ("minimal", "short"):
        result = CliRunner().invoke(app, ["gen-data", str(tmp_path / style), "--n-train", "5",
                                          "--n-heldout", "2", "--levels", "1", "--style", style])
        assert result.exit_code == 0, result.output
        firsts[style] = json.loads((tmp_path / style / "sft.jsonl").read_text().splitlines()[0])["solution"]
    assert "Plan" not in firsts["minimal"] and firsts["minimal"].startswith("<think>") and "+0=" in firsts["minimal"]
    assert re.fullmatch(r"<think>\d+\+\d+=\d+</think>\\boxed\{\d+\}", firsts["short"]), firsts["short"]
    result = CliRunner().invoke(app, ["gen-data", str(tmp_path / "e"), "--style", "verbose"])
    assert result.exit_code == 2 and "choose one of" in result.output
