"""Settings of ``k15ray gen-tests`` (paper section 2.3.5): one frozen dataclass, loaded from YAML."""

from __future__ import annotations

from dataclasses import dataclass

from k15ray.config import doc
from k15ray.config.sandbox import SandboxConfig


def _sandbox_default() -> SandboxConfig:
    return SandboxConfig(workers=1, output_limit_bytes=4 << 20)


@dataclass(frozen=True)
class TestGenConfig:
    """Which problems, how many inputs, the agreement thresholds and the sandbox on Ray."""

    __test__ = False  # not a pytest test class

    out_dir: str = doc("folder for problems.jsonl, report.json, report.md and the resumable runs.jsonl")
    problems: str = doc(
        "builtin (the generated families) or a JSONL/Parquet file of problems with solutions and generator",
        "builtin",
    )
    families: tuple[str, ...] = doc("builtin: only these families (empty = all)", ())
    variants_per_family: int = doc("builtin: problems per family, spread over the three input sizes", 18)
    inputs_per_problem: int = doc("generated inputs per problem (50 in the paper)", 50)
    min_case_agreement: float = doc("a case is valid when this fraction of the solutions agree (7 of 10)", 0.7)
    min_problem_pass: float = doc("a problem is kept when this fraction of solutions pass all valid cases (9 of 10)", 0.9)
    min_valid_cases: int = doc("a problem with fewer valid cases is dropped", 5)
    max_tests: int = doc("valid cases stored as tests per kept problem, the earliest first (0 = all)", 0)
    timeout_s: float = doc("time limit of one solution on one input, seconds", 2.0)
    memory_mb: int = doc("address-space limit of one solution's process, MiB", 512)
    num_actors: int = doc("sandbox actors on Ray (one CPU each); problems are spread over them", 2)
    sandbox: SandboxConfig = doc("each actor's sandbox (containers per actor: workers)", default_factory=_sandbox_default)
    limit: int = doc("only the first N problems (0 = all)", 0)

    def __post_init__(self) -> None:
        if not self.out_dir:
            raise ValueError("out_dir: give a folder for the results, e.g. out_dir: runs/gen_tests")
        for name in ("variants_per_family", "inputs_per_problem", "num_actors"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("min_case_agreement", "min_problem_pass"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name}: must be a fraction in (0, 1] (0.7 = 7 of 10), got {getattr(self, name)}")
        if self.min_valid_cases < 1 or self.max_tests < 0 or self.limit < 0:
            raise ValueError("min_valid_cases must be >= 1; max_tests and limit >= 0 (0 = all)")
        if not self.timeout_s > 0 or self.memory_mb < 32:
            raise ValueError(f"timeout_s must be > 0 and memory_mb >= 32, got {self.timeout_s}, {self.memory_mb}")
