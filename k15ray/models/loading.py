"""Loading a checked Hugging Face directory through ``Auto*`` classes, in eval mode on a device:
the one path of ``load_policy`` (causal LM + tokenizer) and ``load_vision_policy`` (image-text
model + processor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel


def load_pretrained(
    path: Path,
    model_class: Any,
    companion_class: Any,
    dtype: torch.dtype | str,
    device: str | torch.device,
) -> tuple[PreTrainedModel, Any]:
    """``(model_class.from_pretrained(path), companion_class.from_pretrained(path))``, the model
    in ``dtype`` (a torch dtype or its name), moved to ``device`` and put in eval mode."""
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    companion = companion_class.from_pretrained(str(path))
    model = model_class.from_pretrained(str(path), dtype=dtype)
    model.to(torch.device(device))  # nn.Module.to, in place
    model.eval()
    return model, companion
