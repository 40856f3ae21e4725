"""Configuration of ``k15ray dpo CONFIG`` (paper section 2.4, DPO for long2short)."""

from __future__ import annotations

from dataclasses import dataclass

from k15ray.config import doc, section


@section("dpo")
@dataclass(frozen=True)
class DPOConfig:
    """Sample n responses per prompt from the long-CoT model, pair the shortest correct one with wrong
    or >= length_ratio x longer ones, then train the model with the DPO loss against itself frozen."""

    model_dir: str = doc("Hugging Face directory of the long-CoT model: the start and the frozen reference", "")
    data: str = doc("prompt set (JSONL/Parquet with answers) to sample the pairs on", "")
    out_dir: str = doc("where pairs.jsonl, metrics.jsonl and final/ (the trained model) are written", "")
    pairs: str = doc("an existing pairs.jsonl to train on instead of sampling (empty = sample)", "")
    num_prompts: int = doc("sample on the first N prompts of data (0 = all)", 0)
    samples_per_prompt: int = doc("n responses sampled per prompt (paper: 8)", 8)
    temperature: float = doc("sampling temperature of the n responses", 1.0)
    max_new_tokens: int = doc("longest sampled response (tokens)", 384)
    num_workers: int = doc("Ray rollout actors that sample (1 CPU each)", 2)
    length_ratio: float = doc("a correct response this many times longer than the chosen one is a negative", 1.5)
    max_pairs_per_prompt: int = doc("keep at most this many pairs per prompt (0 = all)", 2)
    beta: float = doc("DPO's beta: strength of the implicit KL term to the reference", 0.1)
    lr: float = doc("AdamW learning rate", 1e-5)
    batch_size: int = doc("pairs per optimizer step", 8)
    epochs: int = doc("passes over the pairs", 1)
    max_steps: int = doc("stop after this many optimizer steps (0 = no limit)", 0)
    grad_clip: float = doc("clip the gradient norm to this (0 = off)", 1.0)
    seed: int = doc("seed of sampling and of the pair order", 0)
    num_threads: int = doc("torch CPU threads of training (0 = torch's default)", 1)

    def __post_init__(self) -> None:
        for name in ("model_dir", "out_dir"):
            if not getattr(self, name):
                raise ValueError(f"{name}: empty; set it in the config or with --set {name}=PATH")
        if not self.data and not self.pairs:
            raise ValueError("data: empty; give a prompt set to sample on (or pairs: an existing pairs.jsonl)")
        for name in ("samples_per_prompt", "max_new_tokens", "num_workers", "batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("num_prompts", "max_pairs_per_prompt", "max_steps", "num_threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.samples_per_prompt < 2:
            raise ValueError(f"samples_per_prompt: must be >= 2 to form pairs, got {self.samples_per_prompt}; the paper uses 8")
        if self.temperature <= 0:
            raise ValueError(f"temperature: must be > 0 (pairs need different samples), got {self.temperature}")
        if self.length_ratio < 1:
            raise ValueError(f"length_ratio: must be >= 1, got {self.length_ratio}; the paper uses 1.5")
        if self.beta <= 0 or self.lr <= 0:
            raise ValueError(f"beta and lr: must be > 0, got {self.beta} and {self.lr}; try beta 0.1, lr 1e-5")
        if self.grad_clip < 0:
            raise ValueError(f"grad_clip: must be >= 0 (0 = off), got {self.grad_clip}")
