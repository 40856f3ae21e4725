"""Model presets: small Llama architectures built from config, never downloaded (DESIGN.md, "Models").

``tiny`` (about 1 M parameters) matches the prototype of DESIGN.md's "Calibration" section: it
learns column arithmetic with a long chain of thought in a few CPU-minutes. ``small`` (about 14 M)
is for longer runs. Both tie the input and output embeddings, as the vocabulary is tiny.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import LlamaConfig


@dataclass(frozen=True)
class Preset:
    """Architecture hyper-parameters of one preset."""

    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position_embeddings: int


PRESETS: dict[str, Preset] = {
    # 4 x (attention 4*128*128 + MLP 3*128*512) + 126*128 embeddings ~= 1.07 M parameters.
    "tiny": Preset(hidden_size=128, num_layers=4, num_heads=4, intermediate_size=512,
                   max_position_embeddings=2048),
    # 8 x (4*384*384 + 3*384*1024) + 126*384 ~= 14.2 M parameters.
    "small": Preset(hidden_size=384, num_layers=8, num_heads=6, intermediate_size=1024,
                    max_position_embeddings=4096),
}


def preset_config(name: str, vocab_size: int, pad_token_id: int, eos_token_id: int) -> LlamaConfig:
    """The ``LlamaConfig`` of preset ``name`` for a vocabulary of ``vocab_size`` tokens."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; valid presets are {sorted(PRESETS)}")
    p = PRESETS[name]
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=p.hidden_size,
        intermediate_size=p.intermediate_size,
        num_hidden_layers=p.num_layers,
        num_attention_heads=p.num_heads,
        num_key_value_heads=p.num_heads,
        max_position_embeddings=p.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=pad_token_id,
        bos_token_id=eos_token_id,
        eos_token_id=eos_token_id,
        rms_norm_eps=1e-5,
        attention_bias=False,
        mlp_bias=False,
    )
