"""Configuration of the policy model: a built-in preset or a Hugging Face directory."""

from __future__ import annotations

from dataclasses import dataclass

from k15ray.config import check_dtype, doc, section


@section("model")
@dataclass(frozen=True)
class ModelConfig:
    """Which causal LM to load, and how."""

    path: str = doc("a built-in preset name ('tiny' | 'small') or a Hugging Face model directory", "tiny")
    dtype: str = doc("parameter dtype: float32 | bfloat16 | float16", "float32")
    device: str = doc("torch device, e.g. 'cpu' or 'cuda'", "cpu")

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("model.path: empty; give a preset name ('tiny') or a model directory")
        check_dtype(self.dtype)
