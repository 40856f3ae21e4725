"""The built-in policy: a character tokenizer and small Llama presets, saved in Hugging Face format.

``create_model(preset, out_dir)`` writes a randomly initialised model (safetensors) with its
tokenizer (and, for the vision-language preset ``tiny-vl``, its image processor:
``vision_language.py``); ``load_policy(model_dir)`` loads any causal-LM directory through
``Auto*`` classes, so the built-in tiny model and a real checkpoint take the same path
(DESIGN.md, "Models").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from k15ray.errors import UserError
from k15ray.models.loading import load_pretrained
from k15ray.models.presets import PRESETS, Preset, preset_config
from k15ray.models.tokenizer import build_tokenizer, save_tokenizer
from k15ray.models.vision_language import (
    IMAGE_TOKEN,
    VISION_PRESETS,
    VisionPreset,
    check_image_input,
    check_vision_model_dir,
    create_vision_model,
    is_vision_config,
    load_vision_policy,
)

__all__ = [
    "IMAGE_TOKEN",
    "PRESETS",
    "VISION_PRESETS",
    "Preset",
    "VisionPreset",
    "build_tokenizer",
    "check_image_input",
    "check_model_dir",
    "check_vision_model_dir",
    "count_parameters",
    "create_model",
    "create_vision_model",
    "is_model_dir",
    "is_vision_config",
    "load_policy",
    "load_vision_policy",
    "preset_config",
    "save_tokenizer",
]


def count_parameters(model: torch.nn.Module) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


def create_model(preset: str, out_dir: str | Path, seed: int = 0) -> Path:
    """Build preset ``preset`` ("tiny" | "small" | "tiny-vl") with random weights and save it to ``out_dir``.

    Writes ``config.json``, ``model.safetensors``, ``generation_config.json``, ``tokenizer.json``
    and ``tokenizer_config.json`` (with the chat template); a vision-language preset also writes
    its image processor (``create_vision_model``). Returns ``out_dir``.
    """
    if preset in VISION_PRESETS:
        return create_vision_model(out_dir, seed=seed, preset=preset)
    if preset not in PRESETS:
        valid = sorted([*PRESETS, *VISION_PRESETS])
        raise UserError(f"unknown model preset {preset!r}; valid presets are {valid}")
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


WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
"""Index files of sharded weights: their ``weight_map`` names the shard files."""
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt")
"""Any one of these makes ``AutoTokenizer.from_pretrained`` find a tokenizer in the directory."""
_HOW = "pass a directory written by save_pretrained (config.json, *.safetensors, tokenizer.json)"


def check_model_dir(path: str | Path, field: str = "") -> Path:
    """``path`` if it is a loadable Hugging Face causal-LM directory, else a ``UserError`` naming
    ``field`` (e.g. ``policy.model_dir``), the path and what is missing.

    Checked without loading any weights: the directory exists and is one; ``config.json`` is valid
    JSON that transformers can read; weight files are there (``*.safetensors`` / ``pytorch_model*.bin``,
    or every shard an index names); a tokenizer file is there (``load_policy`` reads it from the
    same directory)."""
    p = Path(path)
    where = f"{field}: {p}" if field else str(p)
    if not p.exists():
        raise UserError(f"{where}: no such directory; {_HOW}, or create one with k15ray.models.create_model")
    if not p.is_dir():
        raise UserError(f"{where} is a file, not a Hugging Face model directory; {_HOW}")
    config = p / "config.json"
    if not config.is_file():
        what = "an empty folder" if not any(p.iterdir()) else "a folder without config.json"
        raise UserError(f"{where} is not a Hugging Face model directory: it is {what}; {_HOW}")
    try:
        json.loads(config.read_text())
        AutoConfig.from_pretrained(str(p))
    except json.JSONDecodeError as err:
        raise UserError(
            f"{where}/config.json: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
            "restore the file (save_pretrained writes it)"
        ) from err
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"{where}/config.json: transformers cannot read it ({' '.join(str(err).split())})") from err
    _check_weights(p, where)
    if not any((p / name).is_file() for name in TOKENIZER_FILES):
        raise UserError(f"{where}: no tokenizer files ({', '.join(TOKENIZER_FILES)}); save the tokenizer there too")
    return p


def _check_weights(p: Path, where: str) -> None:
    for index in (p / name for name in WEIGHT_INDEXES):
        if index.is_file():
            try:
                shards = set(json.loads(index.read_text())["weight_map"].values())
            except (json.JSONDecodeError, KeyError, AttributeError) as err:
                raise UserError(f"{where}/{index.name}: not a weight index (no weight_map)") from err
            missing = sorted(s for s in shards if not (p / s).is_file())
            if missing:
                raise UserError(f"{where}: weight shard(s) {missing[:3]} named by {index.name} are missing")
            return
    if not any(f.suffix == ".safetensors" or (f.name.startswith("pytorch_model") and f.suffix == ".bin")
               for f in p.iterdir()):
        raise UserError(
            f"{where}: no weights (*.safetensors or pytorch_model*.bin) next to config.json; {_HOW}"
        )


def load_policy(
    model_dir: str | Path,
    dtype: torch.dtype | str = torch.float32,
    device: str | torch.device = "cpu",
) -> tuple[PreTrainedModel, Any]:
    """Load ``(model, tokenizer)`` from a Hugging Face causal-LM directory through ``Auto*``.

    Raises ``UserError`` (a ``ValueError``) when ``model_dir`` is not such a directory, saying
    what is missing (``check_model_dir``).
    """
    return load_pretrained(
        check_model_dir(model_dir), AutoModelForCausalLM, AutoTokenizer, dtype, device
    )
