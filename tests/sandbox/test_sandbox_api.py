"""Sandbox.run / run_many / run_tests: statuses, argument checks, comparison modes, C++."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from k15ray.config.sandbox import SandboxConfig
from k15ray.sandbox import (
    RunRequest,
    Sandbox,
    SandboxUnavailableError,
    compare_output,
    run_tests,
)
from k15ray.types import CodeTest

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox(SandboxConfig(workers=2))
    yield sb
    sb.close()


def test_run_echoes_stdin_and_reports_ok(sandbox: Sandbox) -> None:
    r = sandbox.run("a, b = map(int, input().split())\nprint(a * b)", stdin="6 7\n")
    assert (r.status, r.stdout, r.stderr, r.exit_code, r.stage) == (
        "ok",
        "42\n",
        "",
        0,
        "run",
    )  # 6*7
    assert 0 < r.wall_s < 5


def test_statuses_for_failing_programs(sandbox: Sandbox) -> None:
    err = sandbox.run("raise SystemExit(3)")
    assert (err.status, err.exit_code) == ("runtime_error", 3)
    exc = sandbox.run("1 / 0")
    assert exc.status == "runtime_error" and "ZeroDivisionError" in exc.stderr
    killed = sandbox.run("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    assert (killed.status, killed.exit_code) == ("killed", -9)
    segv = sandbox.run("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)")
    assert (segv.status, segv.exit_code) == ("runtime_error", -11)


@pytest.mark.parametrize(
    ("kwargs", "fix"),
    [
        ({"code": b"print(1)"}, "as a str"),
        ({"code": "print(1)", "timeout_s": -1.0}, "positive number of seconds"),
        ({"code": "print(1)", "timeout_s": float("nan")}, "positive number of seconds"),
        ({"code": "print(1)", "memory_mb": 8}, ">= 32"),
        ({"code": "print(1)", "memory_mb": 256.5}, "integer number of MiB"),
        ({"code": "print(1)", "language": "rust"}, "python, cpp"),
        ({"code": "print(1)", "stdin": None}, "stdin must be a str"),
        (
            {"code": "print(1)", "stdin": "x" * (33 << 20)},
            "at most 32 MiB fits",
        ),  # 64 MiB tmpfs / 2
        ({"code": "#" * (33 << 20)}, "code is 33 MiB"),
    ],
)
def test_bad_arguments_raise_value_error_saying_what_to_fix(
    sandbox: Sandbox, kwargs: dict, fix: str
) -> None:
    with pytest.raises(ValueError, match=fix):
        sandbox.run(**kwargs)


def test_missing_bwrap_names_the_debian_package() -> None:
    with pytest.raises(SandboxUnavailableError, match="package `bubblewrap`"):
        Sandbox(SandboxConfig(bwrap_path="/nonexistent/bwrap"))


def test_a_container_that_cannot_start_is_a_clear_error() -> None:
    sb = Sandbox(SandboxConfig(bwrap_path="/bin/false", workers=1))  # exits at once
    with pytest.raises(SandboxUnavailableError, match="failed to start"):
        sb.run("print(1)")
    sb.close()


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="sandbox.workers"):
        SandboxConfig(workers=0)
    with pytest.raises(ValueError, match="only /usr is visible"):
        SandboxConfig(python_path="/root/.pyenv/bin/python3")


def test_run_many_keeps_the_batch_order(sandbox: Sandbox) -> None:
    batch = [RunRequest(f"print({i} * {i})") for i in range(6)]
    batch.append({"code": "print(input()[::-1])", "stdin": "abc"})  # type: ignore[arg-type]
    results = sandbox.run_many(batch)
    assert [r.stdout for r in results] == ["0\n", "1\n", "4\n", "9\n", "16\n", "25\n", "cba\n"]
    with pytest.raises(ValueError, match=r"batch\[1\]"):
        sandbox.run_many([RunRequest("print(1)"), {"code": "x", "timeout": 1}])


def test_compare_modes_by_hand() -> None:
    assert compare_output("3\n", "3\n", "exact")
    assert not compare_output("3\n", "3", "exact")  # the trailing newline differs
    assert compare_output(" 1\t2\n3 \n", "1 2 3", "whitespace")
    assert not compare_output("1 2", "12", "whitespace")
    # |0.3333334 - 1/3| = 6.7e-8 <= 1e-6 * max(1, 0.333) = 1e-6
    assert compare_output("0.3333334", "0.3333333333", "float")
    # |1000001 - 1000000| = 1 <= 1e-6 * 1e6 = 1 (relative for large values)
    assert compare_output("1000001", "1000000", "float")
    # |0.001 - 0.0| = 1e-3 > 1e-6 * max(1, 0) = 1e-6
    assert not compare_output("0.001", "0", "float")
    assert compare_output("YES 2.0", "YES 2", "float") and not compare_output(
        "NO 2", "YES 2", "float"
    )
    assert compare_output("nan", "nan", "float")  # equal tokens match before any parsing
    assert not compare_output("nan", "0", "float") and not compare_output("1 2", "1", "float")


def test_run_tests_counts_passes_and_first_failing_status(sandbox: Sandbox) -> None:
    tests = [CodeTest("1 2\n", "3\n"), CodeTest("10 20\n", "30"), CodeTest("2 2\n", "5\n")]
    solution = "a, b = map(int, input().split())\nprint(a + b)"
    report = run_tests(solution, tests, sandbox=sandbox)
    # 1+2=3 and 10+20=30 pass (whitespace compare ignores the missing newline); 2+2=4 != 5
    assert (report.passed, report.total, report.status, report.all_passed) == (2, 3, "ok", False)
    assert [o.passed for o in report.results] == [True, True, False]
    crashing = run_tests(
        "x = int(input())\nprint(x // (x - 2))", tests[2:] + tests[:1], sandbox=sandbox
    )
    # input "2 2" -> int() fails: runtime_error first; "1 2" also fails to parse
    assert (crashing.passed, crashing.status) == (0, "runtime_error")
    slow = run_tests("while True: pass", tests[:1], timeout_s=0.3, sandbox=sandbox)
    assert (slow.passed, slow.status) == (0, "timeout")
    assert run_tests(
        "print(1/3)", [CodeTest("", "0.333333")], compare="float", sandbox=sandbox
    ).all_passed
    with pytest.raises(ValueError, match="non-empty list of CodeTest"):
        run_tests(solution, [], sandbox=sandbox)
    with pytest.raises(ValueError, match="use one of exact, whitespace, float"):
        run_tests(solution, tests, compare="fuzzy", sandbox=sandbox)  # type: ignore[arg-type]


@needs_gxx
def test_cpp_compiles_once_and_runs_every_test(sandbox: Sandbox) -> None:
    code = "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b<<'\\n';}"
    tests = [CodeTest("1 2", "3"), CodeTest("4000000000 1", "4000000001")]  # long: no overflow
    report = run_tests(code, tests, language="cpp", sandbox=sandbox)
    assert (report.passed, report.status) == (2, "ok")
    broken = sandbox.run("int main() { return }", language="cpp")
    assert (broken.status, broken.stage) == ("runtime_error", "compile")
    assert "error" in broken.stderr
    bomb = sandbox.run(
        "#include <vector>\nint main(){std::vector<char> v(1L<<34); return v[5];}", language="cpp"
    )
    assert bomb.status == "memory" and "bad_alloc" in bomb.stderr
