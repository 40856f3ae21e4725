"""Model presets: parameter counts, Auto* loading, and the non-HF-directory error."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from k15ray.models import count_parameters, create_model, load_policy, preset_config


@pytest.mark.parametrize(("preset", "low", "high"), [("tiny", 1_000_000, 3_000_000), ("small", 10_000_000, 30_000_000)])
def test_preset_parameter_counts(preset: str, low: int, high: int) -> None:
    config = preset_config(preset, vocab_size=126, pad_token_id=0, eos_token_id=1)
    from transformers import LlamaForCausalLM

    n = count_parameters(LlamaForCausalLM(config))
    assert low <= n <= high, n


def test_tiny_parameter_count_by_hand() -> None:
    config = preset_config("tiny", vocab_size=126, pad_token_id=0, eos_token_id=1)
    from transformers import LlamaForCausalLM

    # per layer: q,k,v,o 4*128*128 = 65,536; MLP gate/up/down 3*128*512 = 196,608; 2 norms 256
    # 4 layers = 4 * 262,400 = 1,049,600; embeddings (tied) 126*128 = 16,128; final norm 128
    assert count_parameters(LlamaForCausalLM(config)) == 1_049_600 + 16_128 + 128


def test_create_model_loads_with_auto(tmp_path: Path) -> None:
    out = create_model("tiny", tmp_path / "tiny")
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    model = AutoModelForCausalLM.from_pretrained(str(out))
    tok = AutoTokenizer.from_pretrained(str(out))
    assert model.config.vocab_size == len(tok)
    policy, tokenizer = load_policy(out)
    assert count_parameters(policy) == count_parameters(model)
    assert not policy.training


def test_unknown_preset_and_non_hf_dir(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid presets are"):
        preset_config("huge", 126, 0, 1)
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ValueError, match="not a Hugging Face model directory"):
        load_policy(tmp_path)
    with pytest.raises(ValueError, match="no such directory"):
        load_policy(tmp_path / "missing")
