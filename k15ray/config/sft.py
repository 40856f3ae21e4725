"""Configuration of the long-CoT SFT warm-up (paper section 2.2, ``k15ray.sft``)."""

from __future__ import annotations

from dataclasses import dataclass

from k15ray.config import doc, section
from k15ray.config.model import ModelConfig

BATCHINGS = ("padded", "packed")
"""How ``k15ray.packing.StepBatches`` forms micro-batches (see that module)."""


@section("sft")
@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning on long-CoT responses: padded (or packed) micro-batches, response-only
    loss, warm-up + cosine decay, gradient accumulation, Hugging Face checkpoints, resume. Training stops at the first of
    ``max_steps``, ``max_minutes`` and ``max_epochs`` that is set (> 0), or, with ``eval_data`` and
    ``stop_at_accuracy``, as soon as the greedy accuracy on ``eval_data`` reaches that value (an SFT
    warm-up stopped early on purpose, leaving the RL phase something to learn)."""

    data: str = doc("SFT JSONL: question|prompt|messages plus solution|response per line", "")
    out_dir: str = doc("where checkpoints, the final model and metrics.jsonl are written", "")
    model: ModelConfig = doc(
        "starting model; a preset is built into out_dir/init", default_factory=ModelConfig
    )
    seq_len: int = doc("length of one training row, in tokens (longer examples are cut)", 512)
    batch_size: int = doc("packed rows of seq_len tokens per micro-batch (padded: their examples)", 16)
    batching: str = doc(
        "the layout of a micro-batch's examples (the same examples either way): padded, one example "
        "per row, causal attention (fastest on short examples); packed, rows of seq_len with a "
        "block-diagonal mask",
        "padded",
    )
    grad_accum: int = doc("micro-batches accumulated per optimizer step", 1)
    lr: float = doc("peak learning rate (AdamW)", 1e-3)
    min_lr_ratio: float = doc("learning rate at the end of the decay, as a fraction of lr", 0.1)
    warmup_steps: int = doc("optimizer steps of linear warm-up from 0 to lr", 20)
    weight_decay: float = doc("AdamW decoupled weight decay", 0.0)
    max_grad_norm: float = doc("clip the gradient norm to this (0 = no clipping)", 1.0)
    max_steps: int = doc("stop after this many optimizer steps (0 = no limit)", 0)
    max_minutes: float = doc("stop after this many minutes of training, resumes included (0 = no limit)", 0.0)
    max_epochs: float = doc("stop after this many passes over the data (0 = no limit)", 0.0)
    save_every_steps: int = doc("save a checkpoint every this many steps (0 = only at the end)", 200)
    save_every_minutes: float = doc("also save a checkpoint every this many minutes (0 = off)", 0.0)
    keep_checkpoints: int = doc("keep only the newest this many checkpoints (0 = keep all)", 2)
    log_every_steps: int = doc("append a line to metrics.jsonl every this many steps", 10)
    seed: int = doc("seed of the data order and of a preset's initial weights", 0)
    eval_data: str = doc(
        "prompt JSONL/Parquet (question + answer) for the greedy-accuracy check; empty = no check", ""
    )
    eval_every_steps: int = doc("check the greedy accuracy on eval_data every this many steps (0 = off)", 0)
    eval_num_prompts: int = doc("prompts of eval_data used by the check (the first N)", 100)
    eval_max_new_tokens: int = doc("token budget of one greedy answer in the check", 512)
    stop_at_accuracy: float = doc(
        "stop once the checked greedy accuracy is >= this (0 = never; e.g. 0.5 to leave RL room)", 0.0
    )
    num_threads: int = doc("torch CPU threads (0 = torch's default)", 0)

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("data: empty; give the path of an SFT JSONL file (k15ray gen-data writes one)")
        if not self.out_dir:
            raise ValueError("out_dir: empty; give a directory for checkpoints")
        for name in ("seq_len", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.batching not in BATCHINGS:
            raise ValueError(f"batching: {self.batching!r} is not one of {list(BATCHINGS)}")
        if self.lr <= 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio: must be in [0, 1], got {self.min_lr_ratio}")
        for name in ("warmup_steps", "max_steps", "save_every_steps", "keep_checkpoints", "num_threads", "eval_every_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        for name in ("max_minutes", "max_epochs", "save_every_minutes", "weight_decay", "max_grad_norm"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        for name in ("log_every_steps", "eval_num_prompts", "eval_max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.stop_at_accuracy <= 1.0:
            raise ValueError(f"stop_at_accuracy: must be in [0, 1] (a fraction), got {self.stop_at_accuracy}")
        if self.eval_every_steps and not self.eval_data:
            raise ValueError("eval_every_steps is set but eval_data is empty; give a prompt file with answers")
        if self.stop_at_accuracy and not self.eval_every_steps:
            raise ValueError("stop_at_accuracy needs eval_every_steps > 0 (how often to check), e.g. 50")
        if not (self.max_steps or self.max_minutes or self.max_epochs):
            raise ValueError("set at least one of max_steps, max_minutes, max_epochs so training stops")
