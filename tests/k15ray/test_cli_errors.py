"""User mistakes found by ``k15ray train`` / ``k15ray sft`` before any expensive work: one or two
lines on stderr naming the file or field and the fix, exit status 2, no traceback (``--debug`` or
``K15RAY_DEBUG=1`` shows it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from k15ray.cli import app

GOOD = [
    {"id": "a", "question": "What is 1+1?", "answer": "2"},
    {"id": "b", "question": "What is 2+2?", "answer": "4"},
]

CONFIG = """
seed: 0
output_dir: {out}
data: {{generate: false}}
policy: {{model_dir: {model}}}
env: {{id: k15/Math-v0, config: {{data_path: {train}}}}}
rollout: {{num_workers: 1, samples_per_prompt: 2, max_batch_size: 8}}
partial_rollout: {{budget_tokens: 16, max_response_tokens: 32}}
sampling: {{prompts_per_iteration: 2}}
learner: {{num_minibatches: 1}}
eval: {{num_prompts: 2, final_num_prompts: 2, max_new_tokens: 8, env_config: {{data_path: {heldout}}}}}
run: {{iterations: 1}}
"""


def _jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _records(records: list[dict[str, object]]) -> list[str]:
    return [json.dumps(r) for r in records]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from k15ray.models import create_model

    return create_model("tiny", tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def config(tmp_path: Path, model_dir: Path) -> Path:
    """A valid experiment that would train (no SFT: policy.model_dir is set)."""
    train = _jsonl(tmp_path / "train.jsonl", _records(GOOD))
    heldout = _jsonl(tmp_path / "heldout.jsonl", _records(GOOD))
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG.format(out=tmp_path / "out", model=model_dir, train=train, heldout=heldout))
    return path


def _message_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def _assert_user_error(result: object, *expected: str) -> None:
    exit_code: int = getattr(result, "exit_code", None) or getattr(result, "returncode", 0)
    stdout: str = result.stdout  # type: ignore[attr-defined]
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert exit_code == 2, f"exit {exit_code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    assert "Traceback" not in stdout + stderr
    lines = _message_lines(stderr)
    assert 1 <= len(lines) <= 2, stderr
    for text in expected:
        assert text in stderr, f"{text!r} not in {stderr!r}"
    assert "held-out pass@1 before" not in stdout  # found before the "before" evaluation


def _train(config: Path, *args: str, env: dict[str, str] | None = None) -> object:
    return CliRunner().invoke(app, ["train", str(config), *args], env=env)


# ---------------------------------------------------------------------- data files
def _bad_json(tmp: Path) -> Path:
    return _jsonl(tmp / "bad.jsonl", [json.dumps(GOOD[0]), '{"id": "b", "question": '])


def _duplicate_id(tmp: Path) -> Path:
    return _jsonl(tmp / "dup.jsonl", _records([GOOD[0], {**GOOD[1], "id": "a"}]))


def _bad_field(tmp: Path) -> Path:
    return _jsonl(tmp / "field.jsonl", _records([GOOD[0], {**GOOD[1], "difficulty": "hard"}]))


def _missing(tmp: Path) -> Path:
    return tmp / "nowhere.jsonl"


@pytest.mark.parametrize(
    "make, expected",
    [
        (_missing, ["nowhere.jsonl", "no such file"]),
        (_bad_json, ["bad.jsonl:2", "not valid JSON"]),
        (_duplicate_id, ["dup.jsonl:2", "field 'id'", "already used at"]),
        (_bad_field, ["field.jsonl:2", "field 'difficulty'"]),
    ],
    ids=["missing", "bad-json-line", "duplicate-id", "bad-field"],
)
@pytest.mark.parametrize("key", ["env.config.data_path", "eval.env_config.data_path"])
def test_bad_data_file(
    config: Path, tmp_path: Path, key: str, make: Callable[[Path], Path], expected: list[str]
) -> None:
    result = _train(config, "--set", f"{key}={make(tmp_path)}")
    _assert_user_error(result, key, *expected)


def test_train_file_error_comes_before_eval_and_ray(config: Path, tmp_path: Path) -> None:
    """The real console command: the bad training file is reported before the held-out "before"
    evaluation and before Ray starts (no Ray session directory appears)."""
    ray_tmp = tmp_path / "ray"
    ray_tmp.mkdir()
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp)}
    bad = _bad_json(tmp_path)
    cmd = [sys.executable, "-m", "k15ray.cli", "train", str(config), "--set", f"env.config.data_path={bad}"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    _assert_user_error(result, "env.config.data_path", "bad.jsonl:2")
    assert not list(ray_tmp.iterdir()), "Ray was started"
    assert not (tmp_path / "out" / "before.json").exists()


# ---------------------------------------------------------------------- model directories
def _empty_dir(tmp: Path, model: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def _a_file(tmp: Path, model: Path) -> Path:
    return _jsonl(tmp / "weights.bin", ["not a model"])


def _broken_config(tmp: Path, model: Path) -> Path:
    import shutil

    shutil.copytree(model, tmp / "broken")
    (tmp / "broken" / "config.json").write_text('{"model_type": "llama", ')
    return tmp / "broken"


def _no_weights(tmp: Path, model: Path) -> Path:
    import shutil

    shutil.copytree(model, tmp / "noweights")
    for weights in (tmp / "noweights").glob("*.safetensors"):
        weights.unlink()
    return tmp / "noweights"


@pytest.mark.parametrize(
    "make, expected",
    [
        (_empty_dir, ["empty", "config.json"]),
        (_a_file, ["weights.bin", "is a file"]),
        (_broken_config, ["broken/config.json", "not valid JSON"]),
        (_no_weights, ["noweights", "weights"]),
    ],
    ids=["empty-folder", "a-file", "broken-config", "no-weights"],
)
def test_bad_model_dir(
    config: Path, tmp_path: Path, model_dir: Path, make: Callable[[Path, Path], Path], expected: list[str]
) -> None:
    result = _train(config, "--set", f"policy.model_dir={make(tmp_path, model_dir)}")
    _assert_user_error(result, "policy.model_dir", *expected)


# ---------------------------------------------------------------------- env id, output dir, SFT
def test_unknown_env_id(config: Path) -> None:
    result = _train(config, "--set", "env.id=k15/Nope-v0")
    _assert_user_error(result, "env.id", "k15/Nope-v0", "k15/Math-v0")


def test_output_dir_holds_a_run(config: Path, tmp_path: Path) -> None:
    history = tmp_path / "out" / "rl" / "history.jsonl"
    history.parent.mkdir(parents=True)
    history.write_text('{"iteration": 1.0}\n')
    result = _train(config)
    _assert_user_error(result, "already holds a run", "--resume")
    assert history.read_text() == '{"iteration": 1.0}\n'  # nothing done is lost


def test_train_sft_warmup_data_missing(config: Path, tmp_path: Path) -> None:
    """Without policy.model_dir the job would run the SFT warm-up: its data file is checked first."""
    result = _train(
        config, "--set", "policy.model_dir=null", "--set", f"sft.data={tmp_path / 'sft.jsonl'}",
        "--set", "sft.model.path=tiny", "--set", "sft.max_steps=1",
    )
    _assert_user_error(result, "sft.data", "sft.jsonl", "no such file")
    assert not (tmp_path / "out" / "sft").exists()


def test_sft_command_data_missing(tmp_path: Path) -> None:
    config = tmp_path / "sft.yaml"
    config.write_text(
        f"data: {tmp_path / 'sft.jsonl'}\nout_dir: {tmp_path / 'sft'}\nmodel: {{path: tiny}}\nmax_steps: 1\n"
    )
    result = CliRunner().invoke(app, ["sft", str(config)])
    _assert_user_error(result, "data", "sft.jsonl", "no such file")
    assert not (tmp_path / "sft").exists()  # no model built before the data was checked


@pytest.mark.parametrize(("item", "expected"), [("max_steps", "expected key=value"), ("lr=-1", "lr must be > 0")])
def test_sft_command_bad_override(tmp_path: Path, item: str, expected: str) -> None:
    config = tmp_path / "sft.yaml"
    config.write_text(f"data: {tmp_path / 'sft.jsonl'}\nout_dir: {tmp_path / 'sft'}\nmodel: {{path: tiny}}\n")
    result = CliRunner().invoke(app, ["sft", str(config), "--set", item])
    _assert_user_error(result, expected)


def test_bad_config_value_is_one_line(config: Path) -> None:
    result = _train(config, "--set", "learner.lr=-1")
    _assert_user_error(result, "learner.lr must be > 0")


@pytest.mark.parametrize("how", ["option", "env"])
def test_debug_shows_the_traceback(config: Path, how: str) -> None:
    args = ["--debug"] if how == "option" else []
    env = {"K15RAY_DEBUG": "1"} if how == "env" else None
    result = CliRunner().invoke(app, [*args, "train", str(config), "--set", "env.id=k15/Nope-v0"], env=env)
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "k15/Nope-v0" in result.stderr


# ---------------------------------------------------------------------- k15ray serve
@pytest.mark.parametrize("flag", ["--policy", "--reward-model"])
def test_serve_on_a_non_model_is_one_line_before_ray(tmp_path: Path, flag: str) -> None:
    """``k15ray serve --policy DIR`` (or ``--reward-model cot_rm=DIR``) on a folder that holds no
    model: one line naming the flag and the fix, exit 2, and no Ray started (no replica tracebacks)."""
    not_a_model = tmp_path / "notes"
    not_a_model.mkdir()
    (not_a_model / "readme.txt").write_text("not a model\n")
    value = str(not_a_model) if flag == "--policy" else f"cot_rm={not_a_model}"
    env = {**os.environ, "RAY_TMPDIR": str(tmp_path / "ray")}
    result = subprocess.run(
        [sys.executable, "-m", "k15ray.cli", "serve", flag, value, "--rewards", "math", "--no-sandbox"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    _assert_user_error(result, flag, "notes", "not a Hugging Face model directory")
    assert not (tmp_path / "ray").exists()  # found before Ray started
