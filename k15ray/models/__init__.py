"""The built-in policy: a character tokenizer and small Llama presets, saved in Hugging Face format.

``create_model(preset, out_dir)`` writes a randomly initialised model (safetensors) with its
tokenizer; ``load_policy(model_dir)`` loads any causal-LM directory through ``Auto*`` classes, so
the built-in tiny model and a real checkpoint take the same path (DESIGN.md, "Models").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from k15ray.models.presets import PRESETS, Preset, preset_config
from k15ray.models.tokenizer import build_tokenizer, save_tokenizer

__all__ = [
    "PRESETS",
    "Preset",
    "build_tokenizer",
    "count_parameters",
    "create_model",
    "is_model_dir",
    "load_policy",
    "preset_config",
    "save_tokenizer",
]


def count_parameters(model: torch.nn.Module) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


def create_model(preset: str, out_dir: str | Path, seed: int = 0) -> Path:
    """Build preset ``preset`` ("tiny" | "small") with random weights and save it to ``out_dir``.

    Writes ``config.json``, ``model.safetensors``, ``generation_config.json``, ``tokenizer.json``
    and ``tokenizer_config.json`` (with the chat template). Returns ``out_dir``.
    """
    tokenizer = build_tokenizer()
    config = preset_config(preset, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    save_tokenizer(tokenizer, out)
    return out


def is_model_dir(path: str | Path) -> bool:
    """Whether ``path`` looks like a Hugging Face model directory (has a ``config.json``)."""
    return (Path(path) / "config.json").is_file()


def load_policy(
    model_dir: str | Path,
    dtype: torch.dtype | str = torch.float32,
    device: str | torch.device = "cpu",
) -> tuple[PreTrainedModel, Any]:
    """Load ``(model, tokenizer)`` from a Hugging Face causal-LM directory through ``Auto*``.

    Raises ``ValueError`` when ``model_dir`` is not such a directory, saying what is missing.
    """
    path = Path(model_dir)
    if not path.is_dir():
        raise ValueError(
            f"{path}: no such directory; pass a Hugging Face model directory "
            f"(config.json + weights + tokenizer) or create one with k15ray.models.create_model"
        )
    if not is_model_dir(path):
        raise ValueError(
            f"{path} is not a Hugging Face model directory: it has no config.json; pass a directory "
            "written by save_pretrained (config.json, *.safetensors, tokenizer.json)"
        )
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    model.to(torch.device(device))  # type: ignore[arg-type]  # nn.Module.to, in place
    model.eval()
    return model, tokenizer
