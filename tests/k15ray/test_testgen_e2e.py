"""``k15ray gen-tests`` end to end: CYaRon inputs, the real sandbox on Ray actors, the paper's rules.

Also: the shipped generated set is what this code produces; problems from a file, with a generator
that raises and solutions that crash or disagree everywhere, are reported and dropped, not fatal;
resuming after an interruption; bad settings in one line."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
import yaml
from typer.testing import CliRunner

import k15ray.envs  # noqa: F401  (registers k15/Code-v0)
from k15ray.cli import app
from k15ray.envs.code_env import GENERATED_PROBLEMS
from k15ray.jsonl import write_jsonl

pytestmark = pytest.mark.slow


def _gen(tmp_path: Path, *extra: str, **cfg: Any) -> tuple[int, str, dict[str, Any]]:
    config = tmp_path / "gen.yaml"
    base = {"out_dir": str(tmp_path / "out"), "num_actors": 2, "inputs_per_problem": 20, "max_tests": 12}
    config.write_text(yaml.safe_dump({**base, **cfg}))
    result = CliRunner().invoke(app, ["gen-tests", str(config), "--no-progress", *extra])
    report_path = tmp_path / "out" / "report.json"
    report = json.loads(report_path.read_text()) if result.exit_code == 0 else {}
    return result.exit_code, result.output, report


def test_builtin_family_kept_dropped_wrong_caught_and_resumed(ray_session: None, tmp_path: Path) -> None:
    code, output, report = _gen(tmp_path, families=["sum_mod"], limit=6)
    assert code == 0, output
    # gen-sum_mod-01 and -05 hide one wrong program (kept, 9 of 10), -04 hides two (dropped, 8 of 10)
    assert report["problems"] == 6 and report["problems_kept"] == 5
    assert report["dropped_ids"] == {"gen-sum_mod-04": "8 of 10 solutions pass all valid cases"}
    assert report["planted_wrong_solutions"] == 4 and report["planted_wrong_caught"] == 4
    assert report["correct_solutions_failing"] == 0
    assert report["cases_generated"] == 6 * 20 and report["cases_valid"] == 120
    assert report["sandbox"]["process_launches"] == 60 and report["sandbox"]["solution_runs"] == 60 * 20
    records = [json.loads(line) for line in (tmp_path / "out" / "problems.jsonl").read_text().splitlines()]
    # the shipped set (envs/data/code_generated.jsonl, 50 inputs per problem) holds the same problems
    shipped = {r["id"]: r for r in map(json.loads, GENERATED_PROBLEMS.read_text().splitlines())}
    assert [r["id"] for r in records] == [f"gen-sum_mod-0{i}" for i in (0, 1, 2, 3, 5)]
    for r in records:
        assert r == shipped[r["id"]]
    # interrupted after 2 problems, the last line cut mid-write: only the other 4 run again
    runs = tmp_path / "out" / "runs.jsonl"
    lines = runs.read_text().splitlines()
    runs.write_text("\n".join(lines[:2]) + "\n" + lines[2][:50])
    code, output, again = _gen(tmp_path, families=["sum_mod"], limit=6)
    assert code == 0 and again["sandbox"]["problems_run_now"] == 4
    assert (tmp_path / "out" / "problems.jsonl").read_text().splitlines() == [json.dumps(r) for r in records]
    code, _, again = _gen(tmp_path, families=["sum_mod"], limit=6, min_problem_pass=0.8)  # rejudged, not rerun
    assert code == 0 and again["sandbox"]["problems_run_now"] == 0 and again["problems_kept"] == 6


def test_ctrl_c_keeps_the_finished_problems_and_prints_the_resume_command(
    ray_session: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from k15ray.testgen.runner import RunStore

    add, calls = RunStore.add, list[int]()

    def add_then_interrupt(self: RunStore, *args: Any) -> None:
        add(self, *args)  # the problem's runs are on disk before Ctrl-C lands
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunStore, "add", add_then_interrupt)
    code, output, _ = _gen(tmp_path, "--set", "limit=4", families=["sum_mod"], inputs_per_problem=10)
    assert code == 130, output
    config = tmp_path / "gen.yaml"
    assert f"runs.jsonl are kept\nresume with: k15ray gen-tests {config} --set limit=4" in output
    assert len((tmp_path / "out" / "runs.jsonl").read_text().splitlines()) == 2
    monkeypatch.setattr(RunStore, "add", add)
    code, output, report = _gen(tmp_path, "--set", "limit=4", families=["sum_mod"], inputs_per_problem=10)
    assert code == 0, output
    assert report["sandbox"]["problems_run_now"] == 2 and report["problems"] == 4


GENERATORS = textwrap.dedent(
    """
    import cyaron

    def pair(problem_id, case):
        return f"{cyaron.randint(-50, 50)} {cyaron.randint(-50, 50)}\\n"

    def broken(problem_id, case):
        if case == 3:
            raise RuntimeError("bad range")
        return "1 2\\n"
    """
)
GOOD = ["a, b = map(int, input().split())\nprint(a + b)", "print(sum(map(int, input().split())))",
        "import sys\nx, y = sys.stdin.read().split()\nprint(int(x) + int(y))"]


def test_problems_from_a_file_bad_ones_reported_not_fatal(ray_session: None, tmp_path: Path) -> None:
    (tmp_path / "user_gens.py").write_text(GENERATORS)
    sys.path.insert(0, str(tmp_path))
    try:
        q = "Read a and b, print a + b."
        write_jsonl(tmp_path / "problems.jsonl", [
            {"id": "sum", "question": q, "domain": "code", "generator": "user_gens:pair",
             "solutions": GOOD * 3 + ["a, b = map(int, input().split())\nprint(a - b)"]},  # 9 + 1 wrong
            {"id": "crash", "question": q, "domain": "code", "generator": "user_gens:pair",
             "solutions": ["raise SystemExit(1)", "while True: pass", "import os\nos._exit(3)"]},
            {"id": "chaos", "question": q, "domain": "code", "generator": "user_gens:pair",
             "solutions": ["import random\nprint(random.random())"] * 4},
            {"id": "gen-raises", "question": q, "domain": "code", "generator": "user_gens:broken",
             "solutions": GOOD},
        ])
        code, output, report = _gen(tmp_path, problems=str(tmp_path / "problems.jsonl"), inputs_per_problem=8,
                                    timeout_s=0.5)
    finally:
        sys.path.remove(str(tmp_path))
    assert code == 0, output
    assert report["problems_kept"] == 1 and report["generator_errors"] == {
        "gen-raises": "case 3: RuntimeError: bad range"
    }
    assert set(report["dropped_ids"]) == {"crash", "chaos"}
    assert all("valid cases" in r for r in report["dropped_ids"].values())
    kept = json.loads((tmp_path / "out" / "problems.jsonl").read_text())
    assert kept["id"] == "sum" and len(kept["tests"]) == 8 and "a + b" in kept["solution"]
    env = gym.make("k15/Code-v0", data_path=str(tmp_path / "out" / "problems.jsonl"))
    env.reset(seed=0)
    _, reward, *_ = env.step(f"```python\n{kept['solution']}\n```")
    assert reward == 1.0


def test_bad_settings_and_problem_files_are_one_line_errors(tmp_path: Path) -> None:
    code, output, _ = _gen(tmp_path, min_case_agreement=7)
    assert code == 2 and "min_case_agreement" in output and "0.7 = 7 of 10" in output
    write_jsonl(tmp_path / "p.jsonl", [{"id": "x", "question": "q", "domain": "code", "solutions": ["print(1)"],
                                         "generator": "no_such_module:gen"}])
    code, output, _ = _gen(tmp_path, problems=str(tmp_path / "p.jsonl"))
    assert code == 2 and "p.jsonl:1: field 'generator'" in output and len(output.strip().splitlines()) == 1
    code, output, _ = _gen(tmp_path, families=["sorting"])
    assert code == 2 and "families" in output


def test_code_env_serves_the_generated_set() -> None:
    env = gym.make("k15/Code-v0", problem_set="generated")
    prompts = env.unwrapped.prompts  # type: ignore[attr-defined]
    assert len(prompts) >= 200 and {p.difficulty for p in prompts} == {1, 2, 3, 4, 5}
    solutions = {r["id"]: r["solution"] for r in map(json.loads, GENERATED_PROBLEMS.read_text().splitlines())}
    for index in range(0, len(prompts), 40):  # a spread of families and sizes through the real sandbox
        env.reset(options={"prompt_index": index})
        _, reward, *_ = env.step(f"```python\n{solutions[prompts[index].id]}\n```")
        assert reward == 1.0, prompts[index].id
    assert len(gym.make("k15/Code-v0").unwrapped.prompts) == 12  # type: ignore[attr-defined]  # the default is unchanged
    with pytest.raises(ValueError, match="problem_set"):
        gym.make("k15/Code-v0", problem_set="hard")
