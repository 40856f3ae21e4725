"""Ctrl-C during ``k15ray train`` (the real command, in a subprocess): exit 130, the kept checkpoint
and the exact resume command on stderr, no summary.json / curves.png; ``--resume`` then counts every
iteration once, directly and under Ray Tune."""

from __future__ import annotations

import csv
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

TINY_RUN = """
seed: 0
output_dir: {out}
data: {{n_train: 40, n_heldout: 6, levels: [1]}}
policy: {{model_dir: {model}}}
rollout: {{num_workers: 1, samples_per_prompt: 2, max_batch_size: 8}}
partial_rollout: {{budget_tokens: 16, max_response_tokens: 16}}
sampling: {{prompts_per_iteration: 2}}
learner: {{num_minibatches: 1}}
eval: {{final_num_prompts: 2, max_new_tokens: 8}}
run: {{iterations: {iterations}, checkpoint_every: {every}, use_tune: {tune}}}
"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from k15ray.models import create_model

    return create_model("tiny", tmp_path_factory.mktemp("tiny"))


def _command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "k15ray.cli", "train", str(config), *args]


def _env() -> dict[str, str]:
    # Ray Tune refuses to start while these (set by conftest for in-process runs) are set.
    unset = ("TUNE_RESULT_DIR", "RAY_AIR_LOCAL_CACHE_DIR")
    return {**{k: v for k, v in os.environ.items() if k not in unset}, "PYTHONUNBUFFERED": "1"}


def _interrupt_after(config: Path, line: str, timeout_s: float = 240) -> tuple[int, str]:
    """Run ``k15ray train config``; send SIGINT once a line matching ``line`` is printed; return
    (exit status, everything printed)."""
    proc = subprocess.Popen(
        _command(config), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env()
    )
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for text in proc.stdout:
            lines.put(text)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    out: list[str] = []
    deadline = time.monotonic() + timeout_s
    sent = False
    try:
        while True:
            text = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            if text is None:
                break
            out.append(text)
            if not sent and re.match(line, text):
                proc.send_signal(signal.SIGINT)
                sent = True
        assert sent, "".join(out)
        return proc.wait(timeout=60), "".join(out)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _config(tmp_path: Path, model_dir: Path, *, tune: bool, iterations: int, every: int) -> Path:
    config = tmp_path / "tiny.yaml"
    config.write_text(
        TINY_RUN.format(
            out=tmp_path / "run", model=model_dir, iterations=iterations, every=every,
            tune=str(tune).lower(),
        )
    )
    return config


def _assert_interrupted(status: int, output: str, out: Path, config: Path) -> None:
    assert status == 130, output
    assert f"resume with: k15ray train {config} --resume" in output, output
    assert "Traceback" not in output, output
    assert "held-out pass@1: before" not in output  # no before -> after summary
    assert not (out / "summary.json").exists() and not (out / "curves.png").exists()


def test_ctrl_c_direct_mode_saves_the_iteration_then_resumes(tmp_path: Path, model_dir: Path) -> None:
    # checkpoint_every=0: only the end of the run would save; Ctrl-C must save too.
    config = _config(tmp_path, model_dir, tune=False, iterations=4, every=0)
    out = tmp_path / "run"
    status, output = _interrupt_after(config, r"iter\s+1/4")
    _assert_interrupted(status, output, out, config)
    match = re.search(r"interrupted: stopped after iteration (\d) of 4; its checkpoint is kept in (\S+)", output)
    assert match, output
    kept = int(match.group(1))
    assert Path(match.group(2)) == out / "rl" / "checkpoint"
    assert (out / "rl" / "checkpoint" / "policy" / "config.json").is_file()
    history = [json.loads(line) for line in (out / "rl" / "history.jsonl").read_text().splitlines()]
    assert [h["iteration"] for h in history] == list(range(1, kept + 1))

    resumed = subprocess.run(_command(config, "--resume"), capture_output=True, text=True, env=_env(), timeout=240)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    history = [json.loads(line) for line in (out / "rl" / "history.jsonl").read_text().splitlines()]
    assert [h["iteration"] for h in history] == [1.0, 2.0, 3.0, 4.0]
    assert json.loads((out / "summary.json").read_text())["iterations"] == 4


def test_ctrl_c_under_tune_then_resume_counts_each_iteration_once(tmp_path: Path, model_dir: Path) -> None:
    # A checkpoint every 2 iterations, Ctrl-C once iteration 3 is reported: iteration 3 runs again
    # after --resume (from the checkpoint of iteration 2) and must still count once.
    config = _config(tmp_path, model_dir, tune=True, iterations=6, every=2)
    out = tmp_path / "run"
    status, output = _interrupt_after(config, r"iter\s+3/6")
    _assert_interrupted(status, output, out, config)
    assert re.search(r"interrupted: Tune stopped the trial; its checkpoint of iteration [2-6] is kept in \S+", output), output

    resumed = subprocess.run(_command(config, "--resume"), capture_output=True, text=True, env=_env(), timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert json.loads((out / "summary.json").read_text())["iterations"] == 6  # rows of the history

    (progress,) = (out / "rl" / "tune").glob("*/progress.csv")
    with progress.open() as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert all(len(row) == len(header) for row in body)
    column = header.index("training_iteration")
    iterations = [int(row[column]) for row in body]  # the same column before and after the restore
    assert sorted(set(iterations)) == [1, 2, 3, 4, 5, 6]
