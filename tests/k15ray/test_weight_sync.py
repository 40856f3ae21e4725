"""Tests of versioned weight sync through the Ray object store (``k15ray.rollout.weight_sync``)."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from k15ray.models import build_tokenizer
from k15ray.rollout.hf import HFBackend
from k15ray.rollout.weight_sync import (
    WeightSync,
    check_versions,
    fetch,
    from_numpy_state,
    publish,
    to_numpy_state,
)
from k15ray.types import GenerationRequest, SamplingParams


def small_llama(seed: int) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=40,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        initializer_range=0.3,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def test_numpy_round_trip_keeps_values_and_dtypes() -> None:
    state = {
        "a": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "b": torch.tensor([1.5, -2.25, 3.0], dtype=torch.bfloat16),  # exact in bf16
        "c": torch.tensor([7, 8], dtype=torch.int64),
    }
    back = from_numpy_state(to_numpy_state(state))
    for name, tensor in state.items():
        assert back[name].dtype == tensor.dtype
        assert torch.equal(back[name], tensor)


def test_check_versions_names_the_stale_actors() -> None:
    check_versions([3, 3, 3], 3)
    with pytest.raises(RuntimeError, match=r"actors \[1\] report versions \[2\], expected 3"):
        check_versions([3, 2, 3], 3)


def test_publish_fetch_and_load_through_the_object_store(ray_session: None) -> None:
    source, target = small_llama(1), small_llama(2)
    ref = publish(source.state_dict(), version=5)
    # 1 layer: q,k,v,o (4 x 32*32) + MLP (3 x 32*64) + 2 norms (2 x 32) + final norm (32)
    # + embeddings (40*32) listed twice (tied lm_head) = 4096 + 6144 + 96 + 2560 = 12896 floats
    assert (ref.version, ref.num_bytes) == (5, 12896 * 4)
    backend = HFBackend(target, build_tokenizer())
    backend.update_weights(fetch(ref), ref.version)
    assert backend.policy_version == 5
    for name, tensor in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], tensor), name
    request = GenerationRequest("x", (1, 2, 3), 6)
    greedy = SamplingParams(temperature=0, stop_token_ids=(-1,))
    expected = HFBackend(small_llama(1), build_tokenizer()).generate([request], greedy)
    assert backend.generate([request], greedy)[0].token_ids == expected[0].token_ids


def test_weight_sync_versions_must_increase(ray_session: None) -> None:
    sync = WeightSync()
    assert sync.version is None
    with pytest.raises(ValueError, match="publish"):
        sync.push([])
    sync.publish(small_llama(0).state_dict(), 1)
    with pytest.raises(ValueError, match="must increase"):
        sync.publish(small_llama(0).state_dict(), 1)
    sync.publish(small_llama(0).state_dict(), 2)
    assert sync.version == 2
