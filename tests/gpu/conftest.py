"""Shared by the GPU tests: a small Qwen2 model with random bf16 weights (vLLM loads Qwen2)."""

from __future__ import annotations

from pathlib import Path

import pytest

VOCAB = 512


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 layers, hidden 256, vocabulary ``VOCAB`` (eos = VOCAB - 1), saved once per test module."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    out = tmp_path_factory.mktemp("qwen2-small")
    config = Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        initializer_range=0.2,
        eos_token_id=VOCAB - 1,
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).save_pretrained(out)
    return out
