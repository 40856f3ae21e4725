"""vLLM general plugin (entry point ``vllm.general_plugins``: ``k15ray``): a compatibility alias.

vLLM 0.26's ``model_executor/models/pixtral.py`` imports ``PixtralRotaryEmbedding`` from
``transformers.models.pixtral.modeling_pixtral``, a class transformers 5.x renamed
``PixtralVisionRotaryEmbedding`` (fixed upstream by vLLM PR 56496, "Rename PixtralRotaryEmbedding
to PixtralVisionRotaryEmbedding"), and ``position_ids_in_meshgrid``, a helper transformers 5.x
folded into ``PixtralVisionModel.forward``. vLLM's Llava module imports that Pixtral module, so
without the two names every LLaVA-style checkpoint, ``tiny-vl`` included, fails vLLM's
architecture check ("failed to be inspected"). vLLM loads general plugins in every process it
starts (the engine, its workers and the subprocess that inspects model classes), so the names are
set there, before any model module is imported: the old class name for the same class, and the
helper as transformers 4 defined it (only a Pixtral-HF vision tower calls it; a CLIP tower, as in
``tiny-vl``, never does). A name transformers still has is left alone, so on a transformers or vLLM
that needs neither this does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def position_ids_in_meshgrid(patch_embeds_list: Sequence[torch.Tensor], max_width: int) -> torch.Tensor:
    """transformers 4's helper: each image's patch at (row, col) gets id row * max_width + col,
    for patch grids shaped (..., height, width), all images' ids concatenated."""
    ids = []
    for patches in patch_embeds_list:
        height, width = patches.shape[-2:]
        rows = torch.arange(height).repeat_interleave(width)
        cols = torch.arange(width).repeat(height)
        ids.append(rows * max_width + cols)
    return torch.cat(ids)


def register() -> None:
    """Give transformers' Pixtral module the two transformers 4 names vLLM 0.26 imports, where missing."""
    try:
        from transformers.models.pixtral import modeling_pixtral
    except ImportError:  # pragma: no cover - a transformers without Pixtral has nothing to alias
        return
    if not hasattr(modeling_pixtral, "PixtralRotaryEmbedding") and hasattr(
        modeling_pixtral, "PixtralVisionRotaryEmbedding"
    ):
        modeling_pixtral.PixtralRotaryEmbedding = modeling_pixtral.PixtralVisionRotaryEmbedding  # type: ignore[attr-defined]
    if not hasattr(modeling_pixtral, "position_ids_in_meshgrid"):
        modeling_pixtral.position_ids_in_meshgrid = position_ids_in_meshgrid  # type: ignore[attr-defined]
