"""The SFT trainer: padded and packed layouts, response-only targets, LR schedule, learning, checkpoints, resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config

from k15ray.config.model import ModelConfig
from k15ray.config.sft import SFTConfig
from k15ray.jsonl import write_jsonl
from k15ray.models import build_tokenizer, preset_config, save_tokenizer
from k15ray.packing import (
    IGNORE_INDEX,
    Example,
    StepBatches,
    batch_tensors,
    load_examples,
    pack,
    padded_tensors,
    row_tensors,
    split_by_length,
)
from k15ray.sft import _train_step, checkpoints, learning_rate, train_sft
from k15ray.tasks import generate_prompt_set


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sft") / "sft.jsonl"
    write_jsonl(path, generate_prompt_set(40, levels=[1], seed=0))
    return path


def _losses(out_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out_dir / "metrics.jsonl").read_text().splitlines()]


def test_row_targets_are_response_only() -> None:
    a = Example(prompt_ids=(5, 6), response_ids=(7, 8, 1))
    b = Example(prompt_ids=(9,), response_ids=(10, 1))
    ids, positions, targets, segments = row_tensors([a, b], seq_len=10, pad_id=0)
    assert ids == [5, 6, 7, 8, 1, 9, 10, 1, 0, 0]
    assert positions == [0, 1, 2, 3, 4, 0, 1, 2, 0, 1]  # restart per example: no cross attention
    # position 0 (prompt 5) predicts prompt 6: no loss; position 1 (6) predicts 7, ...; the last
    # token of each example predicts nothing; padding predicts nothing
    x = IGNORE_INDEX
    assert targets == [x, 7, 8, 1, x, 10, 1, x, x, x]
    assert segments == [0, 0, 0, 0, 0, 1, 1, 1, 2, 2]


def test_packed_examples_do_not_see_each_other(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(preset_config("tiny", 126, 0, 1)).eval()
    a = Example(prompt_ids=(5, 6, 7), response_ids=(8, 9, 1))
    b = Example(prompt_ids=(10, 11), response_ids=(12, 13, 14, 1))
    ids, positions, _, mask = batch_tensors([[a, b]], seq_len=16, pad_id=0)
    with torch.no_grad():
        packed = model(input_ids=ids, position_ids=positions, attention_mask=mask).logits[0]
        alone_b = model(input_ids=torch.tensor([[10, 11, 12, 13, 14, 1]])).logits[0]
    # b occupies positions 6..11 of the row (after a's 6 tokens): same logits as b alone
    assert torch.allclose(packed[6:12], alone_b, atol=1e-4)


def test_pack_fills_rows_and_keeps_every_example() -> None:
    examples = [Example((1,) * 3, (2,) * 3) for _ in range(10)]  # 6 tokens each
    rows = pack(examples, seq_len=20, seed=0)
    assert [len(r) for r in rows] == [3, 3, 3, 1]  # 3 * 6 = 18 <= 20 < 24
    assert pack(examples, 20, seed=0) == rows


def _examples(lengths: list[int]) -> list[Example]:
    return [Example(prompt_ids=(2, 3), response_ids=tuple(range(4, 4 + n - 3)) + (1,)) for n in lengths]


def test_split_by_length_keeps_every_example_in_runs_of_similar_length() -> None:
    examples = _examples([6 + (i * 37) % 90 for i in range(31)])
    parts = split_by_length(examples, 2)
    assert [len(p) for p in parts] == [16, 15] or [len(p) for p in parts] == [15, 16]
    assert sorted(map(id, parts[0] + parts[1])) == sorted(map(id, examples))
    assert max(map(len, parts[0])) <= min(map(len, parts[1]))  # the short half, then the long half
    assert split_by_length(examples[:1], 2) == [examples[:1]]


def test_padded_rows_equal_each_example_alone() -> None:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(preset_config("tiny", 126, 0, 1)).eval()
    a = Example(prompt_ids=(5, 6, 7), response_ids=(8, 9, 1))
    b = Example(prompt_ids=(10, 11), response_ids=(12, 13, 14, 15, 16, 1))
    ids, positions, targets, mask = padded_tensors([a, b], seq_len=16, pad_id=0)
    assert positions is None and mask is None and ids.shape == (2, 8)  # padded to the longest only
    x = IGNORE_INDEX
    assert ids[0].tolist() == [5, 6, 7, 8, 9, 1, 0, 0]
    assert targets[0].tolist() == [x, x, 8, 9, 1, x, x, x]  # response-only, no loss on padding
    with torch.no_grad():
        padded = model(input_ids=ids).logits
        alone_a = model(input_ids=torch.tensor([[5, 6, 7, 8, 9, 1]])).logits[0]
    assert torch.allclose(padded[0, :6], alone_a, atol=1e-5)


def test_step_batches_are_a_function_of_the_index() -> None:
    examples = _examples([6 + (i * 13) % 40 for i in range(50)])
    batches = StepBatches(examples, "padded", seq_len=48, batch_size=2, seed=3)
    again = StepBatches(examples, "padded", seq_len=48, batch_size=2, seed=3)
    n = batches.per_epoch
    seen = [ex for i in range(n) for row in batches.rows_of(i) for ex in row]
    # one epoch: every example (the last micro-batch may run into the next epoch's first row)
    assert set(map(id, examples)) <= set(map(id, seen)) and len(seen) < len(examples) + 2 * 48
    assert [batches.rows_of(n + i) for i in range(3)] != [batches.rows_of(i) for i in range(3)]
    for i in reversed(range(2 * n)):  # another instance, indices in another order: same batches
        assert again.rows_of(i) == batches.rows_of(i)
        assert again.tokens(i) == sum(min(sum(map(len, r)), 48) for r in batches.rows_of(i))
    with pytest.raises(ValueError, match="batching"):
        StepBatches(examples, "bucketed", 48, 2, 0)


def test_padded_and_packed_layouts_train_alike(sft_data: Path) -> None:
    # the same examples in either layout: the same loss and the same update, step after step
    tok = build_tokenizer()
    examples = load_examples(sft_data, tok)
    cfg = SFTConfig(data="x", out_dir="y", seq_len=256, batch_size=2, max_steps=3)
    models = {}
    for batching in ("padded", "packed"):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(preset_config("tiny", len(tok), 0, 1)).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        layout = StepBatches(examples, batching, 256, 2, seed=0)
        losses = [_train_step(model, optimizer, layout.tensors(i, 0), cfg, 1e-3)[0] for i in range(3)]
        models[batching] = (model, losses, [len(layout.tensors(i, 0)) for i in range(3)])
    (padded, padded_losses, padded_parts), (packed, packed_losses, packed_parts) = models.values()
    assert padded_parts == [2, 2, 2] and packed_parts == [1, 1, 1]
    assert padded_losses == pytest.approx(packed_losses, rel=1e-4)
    for a, b in zip(padded.parameters(), packed.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_learning_rate_schedule_by_hand() -> None:
    cfg = SFTConfig(data="x", out_dir="y", lr=1e-3, warmup_steps=10, min_lr_ratio=0.1, max_steps=100)
    assert learning_rate(cfg, 0, 0.0) == pytest.approx(1e-4)  # 1e-3 * 1/10
    assert learning_rate(cfg, 9, 0.09) == pytest.approx(1e-3)  # 1e-3 * 10/10
    assert learning_rate(cfg, 50, 0.5) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))  # cos(pi/2) = 0
    assert learning_rate(cfg, 100, 1.0) == pytest.approx(1e-4)  # cos(pi) = -1 -> min ratio
    assert math.isclose(learning_rate(cfg, 100, 7.0), 1e-4)


def test_config_errors() -> None:
    with pytest.raises(ValueError, match="max_steps, max_minutes, max_epochs"):
        SFTConfig(data="x", out_dir="y")
    with pytest.raises(ValueError, match=r"sft\.lr must be > 0"):
        SFTConfig(data="x", out_dir="y", max_steps=1, lr=0)
    with pytest.raises(ValueError, match="stop_at_accuracy needs eval_every_steps"):
        SFTConfig(data="x", out_dir="y", max_steps=1, eval_data="p.jsonl", stop_at_accuracy=0.5)
    with pytest.raises(ValueError, match="eval_data is empty"):
        SFTConfig(data="x", out_dir="y", max_steps=1, eval_every_steps=5)
    with pytest.raises(ValueError, match=r"sft\.batching.*padded"):
        SFTConfig(data="x", out_dir="y", max_steps=1, batching="bucketed")
    with pytest.raises(ValueError, match=r"sft\.stop_at_accuracy must be in \[0, 1\]"):
        SFTConfig(data="x", out_dir="y", max_steps=1, eval_data="p", eval_every_steps=5, stop_at_accuracy=50)


def _eval_lines(out_dir: Path) -> list[dict[str, float]]:
    lines = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if "eval_greedy_accuracy" in r]


def test_stop_at_accuracy_stops_early_and_stays_stopped(sft_data: Path, tmp_path: Path) -> None:
    scores = iter([0.1, 0.3, 0.6, 0.9])
    seen: list[int] = []

    def accuracy(model: torch.nn.Module, tokenizer: object) -> float:
        seen.append(1)
        return next(scores)

    cfg = SFTConfig(data=str(sft_data), out_dir=str(tmp_path), seq_len=256, batch_size=2, max_steps=20,
                    eval_data=str(sft_data), eval_every_steps=2, stop_at_accuracy=0.5, num_threads=1,
                    save_every_steps=0)
    final = train_sft(cfg, progress=False, accuracy_fn=accuracy)
    assert [(r["step"], r["eval_greedy_accuracy"]) for r in _eval_lines(tmp_path)] == [(2, 0.1), (4, 0.3), (6, 0.6)]
    assert json.loads((final / "trainer_state.json").read_text())["step"] == 6
    train_sft(cfg, progress=False, accuracy_fn=accuracy)  # a rerun resumes, already stopped: no step
    assert json.loads((tmp_path / "final" / "trainer_state.json").read_text())["step"] == 6
    assert len(seen) == 3


def test_default_accuracy_check_reads_eval_data(sft_data: Path, tmp_path: Path) -> None:
    # an untrained model answers nothing right: the check runs on eval_data, logs 0.0, never stops
    cfg = SFTConfig(data=str(sft_data), out_dir=str(tmp_path / "run"), seq_len=256, batch_size=2,
                    max_steps=2, eval_data=str(sft_data), eval_every_steps=1, eval_num_prompts=3,
                    eval_max_new_tokens=4, stop_at_accuracy=0.01, num_threads=1, save_every_steps=0)
    train_sft(cfg, progress=False)
    assert [(r["step"], r["eval_greedy_accuracy"]) for r in _eval_lines(tmp_path / "run")] == [(1, 0.0), (2, 0.0)]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="no prompts"):
        train_sft(SFTConfig(**{**cfg.__dict__, "eval_data": str(empty), "out_dir": str(tmp_path / "b")}), progress=False)


@pytest.mark.parametrize("batching", ["padded", "packed"])
def test_tiny_preset_learns_saves_and_resumes(sft_data: Path, tmp_path: Path, batching: str) -> None:
    cfg = dict(data=str(sft_data), out_dir=str(tmp_path), seq_len=256, batch_size=4, lr=3e-3, batching=batching,
               warmup_steps=2, save_every_steps=3, keep_checkpoints=2, log_every_steps=1, num_threads=1)
    final = train_sft(SFTConfig(**cfg, max_steps=6), progress=False)  # type: ignore[arg-type]
    losses = _losses(tmp_path)
    assert losses[-1] < losses[0] - 0.8, losses  # from ~ln(126) = 4.8 down
    assert [p.name for p in checkpoints(tmp_path)] == ["checkpoint-3", "checkpoint-6"]
    model = AutoModelForCausalLM.from_pretrained(str(final))
    assert AutoTokenizer.from_pretrained(str(final)).eos_token_id == model.config.eos_token_id
    # a second run with a larger step limit resumes at step 6, not 0
    train_sft(SFTConfig(**cfg, max_steps=7), progress=False)  # type: ignore[arg-type]
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 8))
    state = json.loads((tmp_path / "checkpoint-7" / "trainer_state.json").read_text())
    assert state["step"] == 7
    assert not (tmp_path / "checkpoint-3").exists()  # keep_checkpoints=2


def test_random_qwen2_directory(sft_data: Path, tmp_path: Path) -> None:
    tok = build_tokenizer()
    config = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=True,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model_dir = tmp_path / "qwen2"
    AutoModelForCausalLM.from_config(config).save_pretrained(str(model_dir))
    save_tokenizer(tok, model_dir)
    out = tmp_path / "run"
    final = train_sft(SFTConfig(data=str(sft_data), out_dir=str(out), model=ModelConfig(path=str(model_dir)),
                                seq_len=256, batch_size=4, lr=3e-3, warmup_steps=2, max_steps=6,
                                log_every_steps=1, num_threads=1), progress=False)
    losses = _losses(out)
    assert losses[-1] < losses[0] - 0.5, losses
    assert AutoModelForCausalLM.from_pretrained(str(final)).config.model_type == "qwen2"


def test_bad_sft_data(tmp_path: Path) -> None:
    tok = build_tokenizer()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "1+1?", "solution": "2"}\n{not json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
        load_examples(bad, tok)
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"question": "1+1?", "solution": "2"}\n{"id": "a"}\n')
    with pytest.raises(ValueError, match=r"missing.jsonl:2: missing field\(s\) \['question\|prompt\|messages', 'solution\|response'\]"):
        load_examples(missing, tok)
    cfg = SFTConfig(data=str(missing), out_dir=str(tmp_path / "o"), model=ModelConfig(path=str(tmp_path)), max_steps=1)
    with pytest.raises(ValueError, match="nor a Hugging Face model directory"):
        train_sft(cfg, progress=False)
