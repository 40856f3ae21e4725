"""``k15ray curate`` end to end: a real checkpoint on Ray rollout actors, the real math verifier.

The model (``curation_model.write_answer_model``) answers every prompt ``\\boxed{4}`` with
probability 0.8 and ``\\boxed{5}`` otherwise, so prompts with answer 4 are mostly solved, 5 rarely,
7 never; excluded formats never reach the model. Also: resuming after an interruption, settings
that changed under a resumed folder, and bad input reported in one line before Ray starts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from curation_model import write_answer_model
from typer.testing import CliRunner

from k15ray.cli import app
from k15ray.curation.difficulty import difficulty_bucket, stored_pass_rate
from k15ray.envs.dataset import load_prompts
from k15ray.jsonl import write_jsonl

pytestmark = pytest.mark.slow

EXCLUDED = [
    {"id": "mc", "question": "What is 2 + 2?\nA) 3\nB) 4\nC) 5", "answer": "B", "tags": ["arith"]},
    {"id": "tf", "question": "True or false: 4 is even.", "answer": "true", "tags": ["arith"]},
    {"id": "proof", "question": "Prove that 4 is not prime.", "answer": "proof", "tags": ["proofs"]},
]
RATED = [
    {"id": f"a{answer}-{i}", "question": f"What is {answer - i} + {i}?", "answer": str(answer),
     "tags": ["arith", f"ans{answer}"]}
    for answer in (4, 5, 7) for i in range(3)
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_answer_model(tmp_path_factory.mktemp("answer_model"), p_four=0.8)


def _config(tmp_path: Path, model_dir: Path | None, **overrides: Any) -> Path:
    data = tmp_path / "pool.jsonl"
    write_jsonl(data, EXCLUDED + RATED)
    cfg = {
        "input": str(data), "out_dir": str(tmp_path / "out"), "model_dir": str(model_dir) if model_dir else None,
        "rollout": {"num_workers": 1, "samples_per_prompt": 10, "temperature": 1.0},
        "max_new_tokens": 24, "hack_tries": 0, "hack_max_new_tokens": 24, "chunk_prompts": 2,
        "output_format": "parquet", **overrides,
    }
    path = tmp_path / "curate.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _curate(config: Path, *extra: str) -> tuple[int, str, dict[str, Any]]:
    result = CliRunner().invoke(app, ["curate", str(config), "--no-progress", *extra])
    cfg = yaml.safe_load(config.read_text())
    report_path = Path(cfg["out_dir"]) / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() and result.exit_code == 0 else {}
    return result.exit_code, result.output, report


def test_curate_rates_buckets_and_writes_the_report(ray_session: None, model_dir: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, model_dir)
    code, output, report = _curate(config)
    assert code == 0, output
    assert report["prompts_in"] == 12 and report["prompts_kept"] == 9
    assert report["dropped_by_reason"] == {
        "format:multiple_choice:option_labels": 1, "format:true_false:true_or_false": 1, "format:proof:prove_that": 1
    }
    assert report["answers"] == 9 * 10  # only the 9 rated prompts reached the model, k = 10 each
    curated = {p.id: p for p in load_prompts(tmp_path / "out" / "curated.parquet")}
    rates = {pid: stored_pass_rate(p) for pid, p in curated.items()}
    assert all(rates[f"a7-{i}"] == 0.0 for i in range(3))  # never answered 7
    four = [rates[f"a4-{i}"] or 0.0 for i in range(3)]
    five = [rates[f"a5-{i}"] or 0.0 for i in range(3)]
    assert sum(four) / 3 > 0.6 and sum(five) / 3 < 0.4  # expected 0.8 and 0.2
    for pid, p in curated.items():
        assert rates[pid] == report["pass_rates"][pid]
        assert p.difficulty == difficulty_bucket(rates[pid] or 0.0, (0.7, 0.3))
    assert report["coverage"]["input"]["tag"]["arith"] == 11 and report["coverage"]["curated"]["tag"]["arith"] == 9
    assert (tmp_path / "out" / "coverage.png").read_bytes()[:4] == b"\x89PNG"
    assert "answered correctly without a chain of thought" not in (tmp_path / "out" / "report.md").read_text()


def test_curate_resumes_after_an_interruption(ray_session: None, model_dir: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, model_dir)
    assert _curate(config)[0] == 0
    curated = (tmp_path / "out" / "curated.parquet").read_bytes()
    scores = tmp_path / "out" / "scores.jsonl"
    lines = scores.read_text().splitlines()
    assert len(lines) == 9
    scores.write_text("\n".join(lines[:4]) + "\n" + lines[4][:20])  # killed after two chunks, mid-line
    code, output, report = _curate(config)
    assert code == 0, output
    assert report["resumed"] == {"pass_rate": 4} and report["answers"] == 5 * 10  # only the rest
    assert (tmp_path / "out" / "curated.parquet").read_bytes() == curated  # the same draws
    code, _, report = _curate(config)
    assert code == 0 and report["resumed"] == {"pass_rate": 9} and report.get("answers", 0) == 0
    code, output, _ = _curate(config, "--set", "rollout.samples_per_prompt=6")
    assert code == 2 and "holds scores made with other settings (samples_per_prompt)" in output


def test_ctrl_c_keeps_the_rated_chunks_and_prints_the_resume_command(
    ray_session: None, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from k15ray.curation.probe import ProbeStore

    config = _config(tmp_path, model_dir)
    add, calls = ProbeStore.add, list[int]()

    def add_then_interrupt(self: ProbeStore, *args: Any) -> None:
        add(self, *args)  # the chunk is on disk before Ctrl-C lands
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(ProbeStore, "add", add_then_interrupt)
    code, output, _ = _curate(config, "--set", "seed=0")
    assert code == 130, output
    assert f"scores.jsonl are kept\nresume with: k15ray curate {config} --set seed=0" in output
    assert len((tmp_path / "out" / "scores.jsonl").read_text().splitlines()) == 4  # 2 chunks of 2 prompts
    monkeypatch.setattr(ProbeStore, "add", add)
    code, output, report = _curate(config, "--set", "seed=0")  # the printed command
    assert code == 0, output
    assert report["resumed"] == {"pass_rate": 4} and report["answers"] == 5 * 10


def test_easy_to_hack_prompts_are_dropped(ray_session: None, model_dir: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, model_dir, hack_tries=8, output_format="jsonl")
    code, output, report = _curate(config)
    assert code == 0, output
    hack = {}
    for line in (tmp_path / "out" / "scores.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["stage"] == "hack":
            hack[rec["id"]] = rec["correct"]
    assert len(hack) == 9 and all(len(v) == 8 for v in hack.values())
    for pid, correct in hack.items():  # the rule, applied to what the model really answered
        assert (report["dropped_ids"].get(pid) == "easy_to_hack") == any(correct)
    assert all(report["dropped_ids"][f"a4-{i}"] == "easy_to_hack" for i in range(3))  # P(miss) = 0.2^8
    assert not any(f"a7-{i}" in report["dropped_ids"] for i in range(3))
    # pass-rate samples are drawn only for the prompts that survived the filter
    assert report["answers"] == 9 * 8 + report["prompts_kept"] * 10


def test_format_only_run_and_bad_input_are_one_line_errors(ray_session: None, tmp_path: Path) -> None:
    code, output, report = _curate(_config(tmp_path, None))
    assert code == 0, output
    assert report["prompts_kept"] == 9 and report["dropped"] == {"format": 3}
    code, output, _ = _curate(_config(tmp_path, tmp_path / "nowhere"))
    assert code == 2 and "model_dir" in output and len(output.strip().splitlines()) == 1
    bad = _config(tmp_path, None)
    (tmp_path / "pool.jsonl").write_text('{"id": "x", "question": "q", "answer": "1", "difficulty": 0}\n')
    code, output, _ = _curate(bad)
    assert code == 2 and "pool.jsonl:1: field 'difficulty'" in output
    code, output, _ = _curate(bad, "--set", "bucket_edges=[0.2, 0.8]")
    assert code == 2 and "bucket_edges" in output and "highest first" in output
