"""Model merging (paper section 2.4, "Model Merging").

"Model merging has been found to be useful in maintaining generalization ability. We also
discovered its effectiveness in improving token efficiency when merging a long-cot model and a
short-cot model. This approach combines a long-cot model with a shorter model to obtain a new one
without training. Specifically, we merge the two models by simply averaging their weights."

For two models A and B of one architecture and a weight w in [0, 1], every parameter tensor is

    theta_C = w * theta_A + (1 - w) * theta_B          (w = 0.5: the plain average)

computed in float32 and stored in A's dtype. The merged directory keeps A's ``config.json``,
generation config and tokenizer files. Refused, before anything is written: a different
architecture (``config.json`` fields other than names and versions), a different tokenizer
(``tokenizer.json``), a tensor missing from one side, or two shapes that differ.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from k15ray.errors import UserError
from k15ray.models import check_model_dir

CONFIG_KEYS_IGNORED = frozenset({
    "_name_or_path", "transformers_version", "architectures", "dtype", "torch_dtype",
    "use_cache", "output_attentions", "output_hidden_states", "return_dict", "_attn_implementation",
})
"""``config.json`` fields that may differ between the two models: names, versions, dtype and run-time
switches (an RL policy is saved with ``use_cache: false``, its SFT start with ``true``)."""
COPIED_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json", "chat_template.jinja", "tokenizer.model", "vocab.json", "merges.txt")
"""Files of model A copied into the merged directory when present."""


def load_safetensors_dir(model_dir: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a Hugging Face directory's ``*.safetensors`` files (one file or shards)."""
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise UserError(
            f"{model_dir}: no *.safetensors weights; merge reads safetensors only "
            "(re-save the model with save_pretrained(safe_serialization=True))"
        )
    tensors: dict[str, torch.Tensor] = {}
    for f in files:
        tensors.update(load_file(str(f)))
    return tensors


def _architecture(model_dir: Path) -> dict[str, Any]:
    config = json.loads((model_dir / "config.json").read_text())
    return {k: v for k, v in config.items() if k not in CONFIG_KEYS_IGNORED}


def _tokenizer_text(model_dir: Path) -> str | None:
    path = model_dir / "tokenizer.json"
    return json.dumps(json.loads(path.read_text()), sort_keys=True) if path.is_file() else None


def check_mergeable(a: Path, b: Path, tensors_a: dict[str, torch.Tensor], tensors_b: dict[str, torch.Tensor]) -> None:
    """Raise a one-line ``UserError`` unless A and B share architecture, tokenizer and every shape."""
    arch_a, arch_b = _architecture(a), _architecture(b)
    differing = sorted(k for k in set(arch_a) | set(arch_b) if arch_a.get(k) != arch_b.get(k))
    if differing:
        key = differing[0]
        raise UserError(
            f"merge: {a} and {b} differ in config.json {key!r} ({arch_a.get(key)!r} vs {arch_b.get(key)!r}); "
            "merge two models of one architecture (e.g. two fine-tunes of one base)"
        )
    if _tokenizer_text(a) != _tokenizer_text(b):
        raise UserError(f"merge: {a} and {b} have different tokenizers (tokenizer.json); merge models that share one")
    missing = sorted(set(tensors_a) ^ set(tensors_b))
    if missing:
        side = "B" if missing[0] in tensors_a else "A"
        raise UserError(f"merge: tensor {missing[0]!r} is missing from model {side}; both need the same parameters")
    for name, ta in tensors_a.items():
        tb = tensors_b[name]
        if ta.shape != tb.shape:
            raise UserError(
                f"merge: tensor {name!r} has shape {tuple(ta.shape)} in A and {tuple(tb.shape)} in B; "
                "merge two models of one architecture"
            )


def merge_models(a: str | Path, b: str | Path, out: str | Path, weight: float = 0.5) -> Path:
    """theta_out = weight * theta_A + (1 - weight) * theta_B for every tensor; A's config and
    tokenizer are kept. Returns ``out`` (a Hugging Face model directory)."""
    if not 0.0 <= weight <= 1.0:
        raise UserError(f"merge: --weight must be in [0, 1] (the share of model A), got {weight}")
    dir_a, dir_b = check_model_dir(a, "A"), check_model_dir(b, "B")
    out_dir = Path(out)
    if out_dir.resolve() in (dir_a.resolve(), dir_b.resolve()):
        raise UserError(f"merge: --out {out_dir} is one of the inputs; write the merge to a new directory")
    tensors_a, tensors_b = load_safetensors_dir(dir_a), load_safetensors_dir(dir_b)
    check_mergeable(dir_a, dir_b, tensors_a, tensors_b)
    merged = {
        # theta_C = w * theta_A + (1 - w) * theta_B, in float32, stored in A's dtype
        name: (weight * ta.float() + (1.0 - weight) * tensors_b[name].float()).to(ta.dtype).contiguous()
        for name, ta in tensors_a.items()
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(merged, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    for name in COPIED_FILES:
        if (dir_a / name).is_file():
            shutil.copyfile(dir_a / name, out_dir / name)
    (out_dir / "merge.json").write_text(
        json.dumps({"a": str(dir_a), "b": str(dir_b), "weight_a": weight}, indent=2) + "\n"
    )
    return out_dir
