"""Test-case generation rules (paper 2.3.5): agreement thresholds by hand, the harness in the real
sandbox, and the built-in generated code set (size, difficulty spread, distinct solutions)."""

from __future__ import annotations

from collections import Counter

import pytest

from k15ray.testgen.agreement import judge_case, judge_problem, needed
from k15ray.testgen.harness import harness_program, harness_stdin, parse_harness_output
from k15ray.testgen.problems import FAMILIES, builtin_problems

OK3, OK4 = ("ok", "3\n"), ("ok", "4\n")
CRASH = ("runtime_error", "")


def test_case_needs_seven_of_ten_agreeing() -> None:
    # 7 say "3", 3 say "4": 7 >= ceil(0.7 * 10) = 7 -> valid, expected "3"
    v = judge_case([OK3] * 7 + [OK4] * 3, 0.7)
    assert (v.agreeing, v.valid, v.expected) == (7, True, "3\n")
    # 6 agree, 4 crash: 6 < 7 -> not valid (a crash votes for nothing)
    assert not judge_case([OK3] * 6 + [CRASH] * 4, 0.7).valid
    # whitespace does not split the vote: "3\n" and " 3 " are the same output
    assert judge_case([OK3] * 5 + [("ok", " 3 ")] * 2 + [OK4] * 3, 0.7).agreeing == 7
    # configurable: at 0.5, 6 of 10 is enough; with 11 solutions 0.7 needs ceil(7.7) = 8
    assert judge_case([OK3] * 6 + [CRASH] * 4, 0.5).valid
    assert needed(0.7, 11) == 8 and not judge_case([OK3] * 7 + [OK4] * 4, 0.7).valid


def test_problem_needs_nine_of_ten_passing_every_valid_case() -> None:
    good = [OK3, OK4, OK3]
    one_wrong = [OK3, OK4, OK4]  # fails case 3 only
    # 9 good + 1 wrong: case 3 has 9 of 10 agreeing (valid), 9 of 10 pass -> kept, the wrong one caught
    v = judge_problem([good] * 9 + [one_wrong], 0.7, 0.9)
    assert v.kept and v.valid_indices == [0, 1, 2] and v.passing == (True,) * 9 + (False,)
    # 8 good + 2 wrong: 8 < ceil(0.9 * 10) = 9 -> dropped, and the reason says so
    v = judge_problem([good] * 8 + [one_wrong] * 2, 0.7, 0.9)
    assert not v.kept and v.reason == "8 of 10 solutions pass all valid cases"
    # at min_problem_pass 0.8 the same set is kept
    assert judge_problem([good] * 8 + [one_wrong] * 2, 0.7, 0.8).kept
    # solutions that crash or disagree everywhere: no valid case -> dropped, never an exception
    chaos = [[("ok", str(s))] * 3 for s in range(10)]
    v = judge_problem(chaos, 0.7, 0.9)
    assert not v.kept and v.valid_indices == [] and "valid cases" in v.reason
    assert not judge_problem([[CRASH] * 3] * 10, 0.7, 0.9).kept
    # too few valid cases
    assert not judge_problem([good] * 10, 0.7, 0.9, min_valid_cases=4).kept


def test_harness_runs_each_reading_style_and_isolates_failures() -> None:
    from k15ray.sandbox import Sandbox

    inputs = ["1 2\n", "30 4\n", "-5 5\n"]
    programs = {
        "input": "a, b = map(int, input().split())\nprint(a + b)",
        "stdin_read": "import sys\nprint(sum(map(int, sys.stdin.read().split())))",
        "open0": "print(sum(map(int, open(0).read().split())))",  # closes fd 0 when done
        "buffer": "import sys\nd = sys.stdin.buffer.read().split()\nsys.stdout.write(str(int(d[0]) + int(d[1])) + '\\n')",
        "os_write": "import os\nos.write(1, b'x\\n')",
    }
    with Sandbox() as sb:
        for name, code in programs.items():
            r = sb.run(harness_program(code, 1.0), harness_stdin(inputs), timeout_s=20)
            outs = parse_harness_output(r.status, r.stdout, len(inputs))
            want = [("ok", "x\n")] * 3 if name == "os_write" else [("ok", "3\n"), ("ok", "34\n"), ("ok", "0\n")]
            assert outs == want, (name, outs, r.stderr[-300:])
        # one input loops, one crashes, one exits with status 3: each fails alone
        code = "x = int(input())\nif x == 1:\n    while True: pass\nif x == 2:\n    raise ValueError\nif x == 3:\n    exit(3)\nprint(x)"
        r = sb.run(harness_program(code, 0.3), harness_stdin(["1", "2", "3", "4"]), timeout_s=20)
        assert parse_harness_output(r.status, r.stdout, 4) == [
            ("timeout", ""), ("runtime_error", ""), ("runtime_error", ""), ("ok", "4\n")
        ]
        # a program that kills its own process loses the whole call, as failures, not an exception
        r = sb.run(harness_program("import os\nos._exit(0)", 1.0), harness_stdin(["1", "2"]), timeout_s=20)
        assert parse_harness_output(r.status, r.stdout, 2) == [("runtime_error", "")] * 2


def test_builtin_set_has_200_graded_problems_with_ten_distinct_solutions() -> None:
    problems = builtin_problems()
    assert len(problems) >= 200
    assert {p.prompt.difficulty for p in problems} == {1, 2, 3, 4, 5}
    for family in FAMILIES.values():
        assert len(set(family.correct_programs({}))) >= 10  # written differently: no two alike
        assert len(family.bodies) >= 4 and len(family.wrong) >= 1
    for p in problems:
        assert len(p.solutions) == 10 and len(set(p.solutions)) == 10
        assert p.prompt.domain == "code" and "```python" in str(p.prompt.question)
    planted = Counter(len(p.planted_wrong) for p in problems)
    assert planted[1] >= 40 and planted[2] == len(FAMILIES)
    # inputs are reproducible per (problem, case) and differ between cases
    first = problems[0]
    assert first.make_input(first.prompt.id, 7) == first.make_input(first.prompt.id, 7)
    assert len({first.make_input(first.prompt.id, c) for c in range(10)}) > 5
    with pytest.raises(ValueError, match="families"):
        builtin_problems(families=["sorting"])



