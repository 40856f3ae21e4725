"""LLaVA weight names as checkpoints and vLLM spell them, whatever transformers holds in memory.

transformers 5 keeps a CLIP vision tower's weights one level flatter than LLaVA checkpoints name
them: ``model.vision_tower.embeddings.*`` in memory, where a LLaVA checkpoint (every one on the
Hub, and what vLLM's Llava loader expects) says ``vision_tower.vision_model.embeddings.*``. Loading
either form works in transformers 5, and a model loaded from a checkpoint saves back the names it
was loaded with; but a model built from a config saves the flat names, which vLLM 0.26 rejects
("There is no module or parameter named 'vision_tower.embeddings'"). So ``create_vision_model``
rewrites its fresh checkpoint to the LLaVA names (every later save of a model loaded from it keeps
them), the vLLM backend refuses a directory with the flat names before it starts an engine, and
weights sent to vLLM from the learner's memory (colocated or NCCL) are renamed on the way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from k15ray.errors import UserError

TOWERS_NAMED_VISION_MODEL = ("clip_vision_model",)
"""Vision-tower types whose LLaVA checkpoint names hold a ``vision_model.`` level."""

_PREFIXES = ("", "model.")  # a checkpoint's top level; the in-memory model's


def tower_type(config: Any) -> str | None:
    """The ``model_type`` of ``config``'s vision tower (a config object or a config.json dict); None without one."""
    vision = config.get("vision_config") if isinstance(config, dict) else getattr(config, "vision_config", None)
    if vision is None:
        return None
    kind = vision.get("model_type") if isinstance(vision, dict) else getattr(vision, "model_type", None)
    return str(kind) if kind else None


def llava_weight_name(name: str, tower: str | None) -> str:
    """``name`` with ``vision_model.`` put back after ``vision_tower.`` for a tower of type ``tower``
    that LLaVA checkpoints name so (a CLIP tower); any other name is returned unchanged."""
    if tower not in TOWERS_NAMED_VISION_MODEL:
        return name
    head, sep, rest = name.partition("vision_tower.")
    if not sep or head not in _PREFIXES or rest.startswith("vision_model."):
        return name
    return f"{head}vision_tower.vision_model.{rest}"


def llava_weights(items: Iterable[tuple[str, Any]], tower: str | None) -> Iterator[tuple[str, Any]]:
    """(name, tensor) pairs with each name as ``llava_weight_name`` gives it."""
    return ((llava_weight_name(name, tower), value) for name, value in items)


def _tower_of_dir(model_dir: Path) -> str | None:
    config_path = model_dir / "config.json"
    return tower_type(json.loads(config_path.read_text())) if config_path.is_file() else None


def flat_tower_names(model_dir: str | Path) -> list[str]:
    """The weights of ``model_dir``'s safetensors files named the flat way (empty when all are LLaVA names)."""
    from safetensors import safe_open

    path = Path(model_dir)
    tower = _tower_of_dir(path)
    if tower not in TOWERS_NAMED_VISION_MODEL:  # a text model, or a tower named alike either way
        return []
    flat = []
    for file in sorted(path.glob("*.safetensors")):
        with safe_open(str(file), "pt") as f:
            flat += [k for k in f.keys() if llava_weight_name(k, tower) != k]  # noqa: SIM118 (not a dict)
    return flat


def write_llava_names(model_dir: str | Path) -> int:
    """Rewrite ``model_dir``'s safetensors files (and their index) in place with LLaVA names;
    returns the number of weights renamed (0: nothing to do, no file written)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = Path(model_dir)
    tower = _tower_of_dir(path)
    if tower not in TOWERS_NAMED_VISION_MODEL:
        return 0
    renamed = 0
    for file in sorted(path.glob("*.safetensors")):
        with safe_open(str(file), "pt") as f:
            new_names = {k: llava_weight_name(k, tower) for k in f.keys()}  # noqa: SIM118 (not a dict)
            renamed_here = sum(new != old for old, new in new_names.items())
            if renamed_here:  # only a file with names to change is read whole and written again
                tensors = {new: f.get_tensor(old) for old, new in new_names.items()}
                metadata = f.metadata()
        if renamed_here:
            save_file(tensors, str(file), metadata=metadata)
            renamed += renamed_here
    index = path / "model.safetensors.index.json"
    if renamed and index.is_file():
        data = json.loads(index.read_text())
        data["weight_map"] = {llava_weight_name(k, tower): v for k, v in data.get("weight_map", {}).items()}
        index.write_text(json.dumps(data, indent=2) + "\n")
    return renamed


def check_llava_names(model_dir: str | Path, field: str = "policy.model_dir") -> None:
    """A ``UserError`` when ``model_dir`` names its vision tower's weights the flat way vLLM cannot load."""
    flat = flat_tower_names(model_dir)
    if flat:
        raise UserError(
            f"{field}: {model_dir} names {len(flat)} vision-tower weights the flat way transformers 5 saves a "
            f"model built from a config ({flat[0]!r}), which vLLM cannot load; rewrite them to LLaVA's names "
            f"in place with: python -c \"from k15ray.models.llava_names import write_llava_names; "
            f"write_llava_names('{model_dir}')\""
        )
