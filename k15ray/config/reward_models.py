"""Configuration of ``k15ray train-rm``: the data and training of the model reward models (2.3.5)."""

from __future__ import annotations

from dataclasses import dataclass

from k15ray.config import doc, section


@section("data")
@dataclass(frozen=True)
class RMDataConfig:
    """Verifier-labelled samples of the project's own policies, split by prompt."""

    prompts: str = doc("prompt set sampled (JSONL/Parquet, project schema: question + answer)", "")
    policies: tuple[str, ...] = doc(
        "policy directories sampled, e.g. [runs/quickstart/sft/final, runs/quickstart/rl/policy]", ()
    )
    num_prompts: int = doc("prompts used, the first N of the set (0 = all)", 400)
    heldout_fraction: float = doc("fraction of the prompts kept out of training (a seeded draw)", 0.2)
    samples_per_prompt: int = doc("k: responses per prompt, policy and temperature", 4)
    temperatures: tuple[float, ...] = doc("sampling temperatures (several: right and wrong answers)", (0.6, 1.0))
    max_new_tokens: int = doc("token budget of one response", 384)
    chunk_prompts: int = doc("prompts per saved chunk (the unit of resume)", 50)
    num_workers: int = doc("Ray rollout actors sampling in parallel", 2)
    balance: bool = doc("keep as many correct as wrong responses (seeded), per split", True)
    near_misses: float = doc(
        "per correct training response, this many near-miss copies on average: one digit of its final "
        "answer changed, labelled by the verifier (wrong answers after sound-looking work)", 0.0
    )

    def __post_init__(self) -> None:
        if not self.prompts:
            raise ValueError("prompts: empty; give a prompt set (k15ray gen-data writes train.jsonl)")
        if not self.policies:
            raise ValueError("policies: empty; give one or more policy directories to sample")
        if self.num_prompts < 0:
            raise ValueError(f"num_prompts: must be >= 0 (0 = all), got {self.num_prompts}")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise ValueError(f"heldout_fraction: must be in (0, 1), got {self.heldout_fraction}")
        for name in ("samples_per_prompt", "max_new_tokens", "chunk_prompts", "num_workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.near_misses < 0:
            raise ValueError(f"near_misses: must be >= 0, got {self.near_misses}")
        if not self.temperatures or any(t < 0 for t in self.temperatures):
            raise ValueError(f"temperatures: must be a non-empty list of values >= 0, got {list(self.temperatures)}")


@section("value_rm")
@dataclass(frozen=True)
class ValueRMTrainConfig:
    """The value-head RM: BCE on the labels (``k15ray.rewards.models.train_value_rm``)."""

    enabled: bool = doc("train it", True)
    base: str = doc(
        "base model directory (empty = the first policy; 'cot_rm' = the judge trained in the same run, "
        "which already compares answers character by character)", "")
    steps: int = doc("optimizer steps of class-balanced mini-batches", 300)
    batch_size: int = doc("texts per step (half correct, half wrong)", 16)
    lr: float = doc("AdamW learning rate (constant)", 3e-4)
    max_length: int = doc("longest input in tokens (cut from the left)", 768)
    num_threads: int = doc("torch CPU threads (0 = torch's default)", 0)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2:
            raise ValueError(f"steps must be >= 1 and batch_size >= 2, got {self.steps}, {self.batch_size}")
        if self.lr <= 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}; try 3e-4")
        if self.max_length < 8:
            raise ValueError(f"max_length: must be >= 8, got {self.max_length}")


@section("cot_rm")
@dataclass(frozen=True)
class CoTRMTrainConfig:
    """The chain-of-thought judge: SFT on verdict traces (``k15ray.rewards.models.train_cot_judge``)."""

    enabled: bool = doc("train it", True)
    base: str = doc("base causal LM directory or preset (empty = the first policy)", "")
    max_steps: int = doc("SFT optimizer steps", 800)
    batch_size: int = doc("packed sequences per step", 8)
    seq_len: int = doc("tokens per packed sequence", 512)
    lr: float = doc("peak SFT learning rate", 5e-4)
    warmup_steps: int = doc("SFT warm-up steps", 20)
    num_threads: int = doc("torch CPU threads (0 = torch's default)", 0)
    max_new_tokens: int = doc("the judge's token budget per verdict when it is evaluated and served", 128)

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "seq_len", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}; try 5e-4")


@section("")
@dataclass(frozen=True)
class RMTrainConfig:
    """``k15ray train-rm CONFIG``: sample and label (``data``), then train ``value_rm`` and ``cot_rm``.

    Writes ``output_dir/data/{train,heldout}.jsonl`` (labelled, balanced), ``output_dir/value_rm``,
    ``output_dir/cot_rm/final`` and ``output_dir/report.json`` (each RM's held-out accuracy against
    the verifier). Every stage whose output exists is skipped: a stopped run resumes."""

    data: RMDataConfig = doc("labelled samples (required: prompts and policies)")
    output_dir: str = doc("where data, models and the report go", "runs/rm")
    seed: int = doc("seed of the held-out draw, the class balance and the sampling", 0)
    value_rm: ValueRMTrainConfig = doc("value-head RM training", default_factory=ValueRMTrainConfig)
    cot_rm: CoTRMTrainConfig = doc("CoT judge training", default_factory=CoTRMTrainConfig)

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise ValueError("output_dir: empty; give a directory for the data and the models")
        if self.value_rm.enabled and self.value_rm.base == "cot_rm" and not self.cot_rm.enabled:
            raise ValueError("value_rm.base: 'cot_rm' starts the value head from the judge; enable cot_rm too "
                             "(cot_rm.enabled: true) or give value_rm.base a model directory")
