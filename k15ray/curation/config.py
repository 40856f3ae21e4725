"""Settings of ``k15ray curate`` (paper section 2.1): one frozen dataclass, loaded from YAML."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from k15ray.config import doc
from k15ray.config.rollout import RolloutConfig
from k15ray.curation.formats import FORMAT_KINDS

OUTPUT_FORMATS: tuple[str, ...] = ("jsonl", "parquet")


def _rollout_default() -> RolloutConfig:
    return RolloutConfig(samples_per_prompt=10, temperature=1.0)


@dataclass(frozen=True)
class CurationConfig:
    """Where the prompts come from, which model rates them, and what is kept.

    The pass-rate samples are ``rollout.samples_per_prompt`` (k = 10 in the paper) answers at
    ``rollout.temperature`` (a high one: 1.0); ``rollout`` also sizes the Ray rollout actors."""

    input: str = doc("prompt set to curate (JSONL or Parquet in the schema of k15ray/envs/dataset.py)")
    out_dir: str = doc("folder for the curated set, report.json, report.md, coverage.png and the resumable caches")
    model_dir: str | None = doc(
        "the SFT model (Hugging Face directory) that rates prompts; null = format exclusion and coverage only",
        None,
    )
    output_format: str = doc("curated set as jsonl or parquet", "jsonl")
    rollout: RolloutConfig = doc(
        "rollout actors and pass-rate sampling (samples_per_prompt = k, temperature)", default_factory=_rollout_default
    )
    max_new_tokens: int = doc("longest answer (tokens) of a pass-rate sample", 384)
    hack_tries: int = doc("N: no-chain-of-thought tries; one correct answer drops the prompt (0 = no filter)", 8)
    hack_max_new_tokens: int = doc("longest no-chain-of-thought answer (tokens)", 32)
    hack_template: str = doc(
        "the question asked for an answer without reasoning; {question} is replaced by the prompt's text",
        "{question}\n\nGive only the final answer, with no reasoning or working.",
    )
    bucket_edges: tuple[float, ...] = doc(
        "descending pass-rate edges of the difficulty buckets: difficulty = 1 + #{edges above the pass rate}",
        (0.7, 0.3),
    )
    min_pass_rate: float = doc("drop prompts whose pass rate is below this (0 = keep the unsolved)", 0.0)
    max_pass_rate: float = doc("drop prompts whose pass rate is above this (1 = keep the always-solved)", 1.0)
    exclude_formats: tuple[str, ...] = doc(
        "question kinds to exclude: multiple_choice, true_false, proof (paper 2.1)", FORMAT_KINDS
    )
    chunk_prompts: int = doc("prompts rated per saved chunk: an interrupted run loses at most one chunk", 32)
    limit: int = doc("rate only the first N prompts of the input (0 = all)", 0)
    seed: int = doc("seed of the sampled answers (each answer has its own stream: resuming repeats them)", 0)
    num_cpus: int = doc("logical CPUs of the Ray runtime this command starts (0 = the machine's cores)", 0)

    def __post_init__(self) -> None:
        if not self.input:
            raise ValueError("input: give the prompt set to curate, e.g. input: runs/data/train.jsonl")
        if not self.out_dir:
            raise ValueError("out_dir: give a folder for the results, e.g. out_dir: runs/curated")
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output_format: {self.output_format!r} is not one of {list(OUTPUT_FORMATS)}")
        for name in ("max_new_tokens", "hack_max_new_tokens", "chunk_prompts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.hack_tries < 0 or self.limit < 0 or self.num_cpus < 0:
            raise ValueError("hack_tries, limit and num_cpus must be >= 0 (0 = off / all / the machine's cores)")
        if "{question}" not in self.hack_template:
            raise ValueError("hack_template: must contain {question}, where the prompt's text goes")
        edges = list(self.bucket_edges)
        if not edges or edges != sorted(edges, reverse=True) or len(set(edges)) != len(edges) or not all(
            0 < e <= 1 for e in edges
        ):
            raise ValueError(
                f"bucket_edges: {edges} must be distinct pass rates in (0, 1], highest first, e.g. [0.7, 0.3]"
            )
        if not 0 <= self.min_pass_rate <= self.max_pass_rate <= 1:
            raise ValueError(
                f"min_pass_rate {self.min_pass_rate} / max_pass_rate {self.max_pass_rate}: need 0 <= min <= max <= 1"
            )
        unknown = sorted(set(self.exclude_formats) - set(FORMAT_KINDS))
        if unknown:
            raise ValueError(f"exclude_formats: {unknown[0]!r} is not one of {list(FORMAT_KINDS)}")

    @property
    def output_path(self) -> Path:
        """The curated set: ``out_dir/curated.jsonl`` or ``.parquet``."""
        return Path(self.out_dir) / f"curated.{self.output_format}"

