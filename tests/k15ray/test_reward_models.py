"""Model reward models (paper 2.3.5): verdict parsing, the value head learning from verifier labels,
the CoT judge's typed failures and SFT data, and the labelled-data maker, on the tiny model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from k15ray.jsonl import read_jsonl
from k15ray.models import create_model
from k15ray.rewards.models import (
    CoTJudge,
    RMExample,
    ValueRM,
    answer_pairs,
    balance_classes,
    judge_sft_records,
    judge_trace,
    make_rm_examples,
    parse_verdict,
    read_rm_examples,
    rm_input_text,
    train_cot_judge,
    train_value_rm,
    value_input_text,
    write_rm_examples,
)
from k15ray.types import Prompt


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_model("tiny", tmp_path_factory.mktemp("rm") / "tiny", seed=0)


def synthetic_examples(n: int, seed: int) -> list[RMExample]:
    """One-digit sums a+b with a boxed answer: a+b for even i, another digit for odd i."""
    rng = random.Random(seed)
    examples = []
    for i in range(n):
        a, b = rng.randint(0, 4), rng.randint(0, 4)
        correct = i % 2 == 0
        answer = a + b if correct else rng.choice([x for x in range(10) if x != a + b])
        examples.append(RMExample(f"{a}+{b}=?", str(a + b), f"\\boxed{{{answer}}}", correct))
    return examples


def auc(scores: list[float], labels: list[bool]) -> float:
    """P(score of a random correct example > score of a random wrong one); 0.5 = chance."""
    pos = [s for s, c in zip(scores, labels, strict=True) if c]
    neg = [s for s, c in zip(scores, labels, strict=True) if not c]
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


# ------------------------------------------------------------------------------ verdict parsing


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ('Check: 4 = 4; they agree.\n{"correct": true}', True),
        ('{"correct": false}', False),
        ('{"correct": true} wait, recheck: 5 != 4 {"correct": false}', False),  # the LAST one counts
        ('{"correct": false}\n{"correct": true}  \n', True),
        ('{"correct": true, "confidence": 0.9}', True),
        ("no verdict at all", None),
        ("", None),
        ('{"correct": "true"}', None),  # a string, not a JSON boolean
        ('{"correct": 1}', None),
        ('{"verdict": true}', None),  # no `correct` key
        ('{"correct": tru}', None),  # malformed
        ('{"correct": true} then {"correct": fals', None),  # a broken last verdict never falls back
        ("[true]", None),
        ("{'correct': True}", None),  # Python, not JSON
    ],
)
def test_parse_verdict(text: str, verdict: bool | None) -> None:
    assert parse_verdict(text) is verdict


def test_judge_trace_ends_with_its_label_and_round_trips() -> None:
    for correct in (True, False):
        trace = judge_trace("so \\boxed{12}", "12" if correct else "13", correct)
        assert parse_verdict(trace) is correct
        assert trace.splitlines()[-1] == json.dumps({"correct": correct})
    assert judge_trace("\\boxed{12}", "13", False).splitlines()[:2] == ["Check: 11= 23x __= __= __= __=", "They differ."]
    # a label that the characters do not show: the relation line says so, the verdict is the label
    assert judge_trace("\\boxed{0.5}", "1/2", True).splitlines()[1] == "They differ in form but are the same answer."
    assert judge_trace("\\boxed{7}", "7", False).splitlines()[1] == "They look the same but the response is not right."
    long = judge_trace("\\boxed{1234567}", "1234567", True)  # wider than ANSWER_WIDTH: no cut
    assert long.splitlines()[0] == "Check: " + " ".join(f"{c}{c}=" for c in "1234567")


def test_value_input_text_sets_the_final_answer_beside_the_reference() -> None:
    text = value_input_text("2+3?", "15", "first \\boxed{4}. So the final answer is \\boxed{14}")
    assert text.startswith(rm_input_text("2+3?", "15", "first \\boxed{4}. So the final answer is \\boxed{14}").removesuffix("Verdict:"))
    assert text.splitlines()[-2:] == ["Answer vs reference: 11 45 __ __ __ __", "Verdict:"]
    assert answer_pairs("", "7") == [("_", "7")] + [("_", "_")] * 5


def test_rm_input_text_holds_question_reference_response() -> None:
    text = rm_input_text("2+2?", "4", "so 4")
    assert text == "Question: 2+2?\nReference answer: 4\nResponse: so 4\nVerdict:"


# -------------------------------------------------------------------------------- value head


@pytest.mark.slow
def test_value_head_learns_to_separate_correct_from_wrong(tiny_dir: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    train, held_out = synthetic_examples(64, seed=0), synthetic_examples(100, seed=1)
    prompts = [Prompt(f"p{i}", e.question, e.reference) for i, e in enumerate(held_out)]
    responses = [e.response for e in held_out]
    labels = [e.correct for e in held_out]
    untrained = ValueRM(tiny_dir)  # a fresh, random score head on the base model
    before = auc([r.score for r in untrained.score_batch(prompts, responses)], labels)
    out = train_value_rm(train, tiny_dir, tmp_path / "value_rm", steps=100, batch_size=16, lr=1e-3, max_length=64)
    rm = ValueRM(out, batch_size=16)
    results = rm.score_batch(prompts, responses)
    after = auc([r.score for r in results], labels)
    assert all(r.status == "ok" and 0.0 <= r.score <= 1.0 for r in results)
    assert results[0].details["p_correct"] == pytest.approx(1 / (1 + torch.exp(torch.tensor(-results[0].details["logit"])).item()))
    # learning: held-out AUC above chance (0.5) and above the untrained head's (measured on
    # 2 cores, 2026-12-07: 0.75 after 100 steps, about 13 s)
    assert after >= 0.65 and after > before + 0.1, (before, after)


def test_value_rm_directory_loads_with_auto_classes(tiny_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = train_value_rm(synthetic_examples(8, 0), tiny_dir, tmp_path / "v", steps=1, batch_size=4, max_length=64)
    model = AutoModelForSequenceClassification.from_pretrained(str(out))
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    assert model.config.num_labels == 1 and model.config.pad_token_id == tokenizer.pad_token_id
    batch = tokenizer(["Question: 1+1", "Q"], padding=True, return_tensors="pt", add_special_tokens=False)
    assert model(**batch).logits.shape == (2, 1)


def test_value_rm_needs_both_classes(tiny_dir: Path, tmp_path: Path) -> None:
    only_right = [e for e in synthetic_examples(8, 0) if e.correct]
    with pytest.raises(ValueError, match="needs both classes"):
        train_value_rm(only_right, tiny_dir, tmp_path / "v", steps=1)


# --------------------------------------------------------------------------------- CoT judge


def test_judge_returns_typed_failures_never_raises(tiny_dir: Path) -> None:
    judge = CoTJudge(tiny_dir, max_new_tokens=12)  # random weights: garbage output
    results = judge.score_batch([Prompt("a", "1+1?", "2"), Prompt("b", "2+2?", "4")], ["\\boxed{2}", "5"])
    assert len(results) == 2
    for r in results:
        assert (r.status, r.score, r.correct) == ("parse_error", 0.0, False)
        assert "output" in r.details and "error" in r.details
    assert judge.result('Check: fine.\n{"correct": true}').score == 1.0
    assert judge.result('{"correct": false}').status == "ok"
    garbage = judge.result('{"correct": maybe}')
    assert (garbage.status, garbage.score) == ("parse_error", 0.0)
    assert judge.score_batch([], []) == []


@pytest.mark.slow
def test_judge_learns_to_end_with_a_verdict(tmp_path: Path) -> None:
    held_out = synthetic_examples(20, seed=1)
    final = train_cot_judge(synthetic_examples(200, seed=0), "tiny", tmp_path / "judge", max_steps=60,
                            seq_len=256, batch_size=8, lr=2e-3, num_threads=1)
    assert (tmp_path / "judge" / "judge_sft.jsonl").is_file()
    judge = CoTJudge(final, max_new_tokens=128)
    results = judge.score_batch([Prompt("p", e.question, e.reference) for e in held_out],
                                [e.response for e in held_out])
    # learning: the random model never writes a verdict (test above); after 60 SFT steps (about
    # 20 s on 2 cores, 2026-12-07: 40 of 40 held-out outputs parsed) nearly every output ends with one
    assert sum(r.status == "ok" for r in results) >= 18
    assert all(str(r.details["output"]).startswith("Check: ") for r in results if r.status == "ok")


def test_judge_sft_records_use_the_sft_format() -> None:
    records = judge_sft_records(synthetic_examples(4, 0))
    assert set(records[0]) == {"prompt", "solution"}
    assert [parse_verdict(r["solution"]) for r in records] == [True, False, True, False]
    assert records[1]["prompt"].startswith("Question: ")


# ------------------------------------------------------------------------------ labelled data


def test_balance_classes_keeps_as_many_right_as_wrong() -> None:
    examples = synthetic_examples(10, 0) + [e for e in synthetic_examples(10, 1) if e.correct]
    balanced = balance_classes(examples, seed=3)
    assert sum(e.correct for e in balanced) == sum(not e.correct for e in balanced) == 5
    assert balance_classes(examples, seed=3) == balanced  # seeded


def test_rm_examples_round_trip(tmp_path: Path) -> None:
    examples = synthetic_examples(6, 0)
    write_rm_examples(tmp_path / "rm.jsonl", examples)
    assert read_rm_examples(tmp_path / "rm.jsonl") == examples
    (tmp_path / "bad.jsonl").write_text('{"question": "q", "reference": "1", "response": "1", "correct": "yes"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        read_rm_examples(tmp_path / "bad.jsonl")


def test_make_rm_examples_samples_and_labels_with_the_verifier(tiny_dir: Path, tmp_path: Path) -> None:
    prompts = [Prompt("p0", "1+1?", "2"), Prompt("p1", "2+3?", "5")]
    out = tmp_path / "rm.jsonl"
    examples = make_rm_examples(tiny_dir, prompts, k=2, temperatures=[0.0, 1.0], out_path=out,
                                max_new_tokens=6, balance=False)
    assert len(examples) == 2 * 2 * 2  # prompts x k x temperatures
    assert read_rm_examples(out) == examples
    assert {e.temperature for e in examples} == {0.0, 1.0}
    assert [r["prompt_id"] for _, r in read_jsonl(out)][:2] == ["p0", "p0"]
    # random weights never answer right: balancing must say so instead of writing one class
    with pytest.raises(ValueError, match="all 8 sampled responses are wrong"):
        make_rm_examples(tiny_dir, prompts, k=2, temperatures=[0.0, 1.0], out_path=tmp_path / "b.jsonl",
                         max_new_tokens=6)
    assert not (tmp_path / "b.jsonl").exists()
