"""vLLM general plugin (entry point ``vllm.general_plugins``: ``k15ray``): a compatibility alias.

vLLM 0.26's ``model_executor/models/pixtral.py`` imports ``PixtralRotaryEmbedding`` from
``transformers.models.pixtral.modeling_pixtral``, a class transformers 5.x renamed
``PixtralVisionRotaryEmbedding`` (fixed upstream by vLLM PR 56496, "Rename PixtralRotaryEmbedding
to PixtralVisionRotaryEmbedding"). vLLM's Llava module imports that Pixtral module, so without
the old name every LLaVA-style checkpoint, ``tiny-vl`` included, fails vLLM's architecture check
("failed to be inspected"). vLLM loads general plugins in every process it starts (the engine, its
workers and the subprocess that inspects model classes), so the alias is set there, before any
model module is imported. It gives the old name to the same class and changes nothing else; on a
transformers or vLLM that needs no alias it does nothing.
"""

from __future__ import annotations


def register() -> None:
    """Alias ``PixtralRotaryEmbedding`` to ``PixtralVisionRotaryEmbedding`` where only the new name exists."""
    try:
        from transformers.models.pixtral import modeling_pixtral
    except ImportError:  # pragma: no cover - a transformers without Pixtral has nothing to alias
        return
    if not hasattr(modeling_pixtral, "PixtralRotaryEmbedding") and hasattr(
        modeling_pixtral, "PixtralVisionRotaryEmbedding"
    ):
        modeling_pixtral.PixtralRotaryEmbedding = modeling_pixtral.PixtralVisionRotaryEmbedding  # type: ignore[attr-defined]
