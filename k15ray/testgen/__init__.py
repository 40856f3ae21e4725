"""Test-case generation for code problems (paper section 2.3.5): ``k15ray gen-tests``.

* ``family`` / ``families_basic`` / ``families_algo``: the built-in generated problems, each with a
  CYaRon input generator and 12 differently written correct solutions (plus known-wrong ones);
* ``problems``: the built-in set and problems read from a file (schema + solutions + generator);
* ``harness``: one sandboxed process runs one solution over many inputs;
* ``agreement``: the paper's rules (a case is valid when 7 of 10 solutions agree; a problem is kept
  when 9 of 10 pass every valid case);
* ``runner``: the Ray adapter over the sandbox actors, resumable; ``pipeline.gen_tests``: the command.
"""

from k15ray.testgen.agreement import CaseVerdict, ProblemVerdict, judge_case, judge_problem
from k15ray.testgen.config import TestGenConfig

__all__ = ["CaseVerdict", "ProblemVerdict", "TestGenConfig", "judge_case", "judge_problem"]
