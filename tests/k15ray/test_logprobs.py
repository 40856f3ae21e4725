"""Token log-probs without a full log-softmax: values, gradients, HF alignment."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from k15ray.logprobs import (
    hidden_token_logprobs,
    naive_token_logprobs,
    policy_token_logprobs,
    sequence_logprobs,
    token_logprobs,
)


def test_hand_computed_value() -> None:
    # logits [0, ln 3] -> softmax [1/4, 3/4]; token 1 -> ln(3/4) = -0.2876821, token 0 -> ln(1/4)
    logits = torch.tensor([[[0.0, math.log(3.0)], [0.0, math.log(3.0)]]], dtype=torch.float64)
    out = token_logprobs(logits, torch.tensor([[1, 0]]))
    assert torch.allclose(out, torch.tensor([[math.log(0.75), math.log(0.25)]], dtype=torch.float64))


@pytest.mark.parametrize("chunk", [1, 3, 1024])
def test_matches_naive_values_and_gradients(chunk: int) -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 11, dtype=torch.float64, generator=g, requires_grad=True)
    ids = torch.randint(0, 11, (3, 5), generator=g)
    w = torch.randn(3, 5, dtype=torch.float64, generator=g)
    ours, ref = token_logprobs(logits, ids, chunk_rows=chunk), naive_token_logprobs(logits, ids)
    assert torch.allclose(ours, ref, atol=1e-12)
    (g_ours,) = torch.autograd.grad((ours * w).sum(), logits)
    (g_ref,) = torch.autograd.grad((ref * w).sum(), logits)
    assert torch.allclose(g_ours, g_ref, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x: token_logprobs(x, ids, chunk), (logits,))


@pytest.mark.parametrize("with_bias", [False, True])
def test_hidden_path_matches_naive_through_lm_head(with_bias: bool) -> None:
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(2, 7, 4, dtype=torch.float64, generator=g, requires_grad=True)
    weight = torch.randn(9, 4, dtype=torch.float64, generator=g, requires_grad=True)
    bias = torch.randn(9, dtype=torch.float64, generator=g, requires_grad=True) if with_bias else None
    ids = torch.randint(0, 9, (2, 7), generator=g)
    w = torch.randn(2, 7, dtype=torch.float64, generator=g)
    ours = hidden_token_logprobs(hidden, weight, ids, bias, chunk_tokens=3)
    ref = naive_token_logprobs(torch.nn.functional.linear(hidden, weight, bias), ids)
    assert torch.allclose(ours, ref, atol=1e-12)
    inputs = [x for x in (hidden, weight, bias) if x is not None]
    grads = torch.autograd.grad((ours * w).sum(), inputs)
    grads_ref = torch.autograd.grad((ref * w).sum(), inputs)
    for a, b in zip(grads, grads_ref, strict=True):
        assert torch.allclose(a, b, atol=1e-12)
    assert torch.autograd.gradcheck(lambda h, wt: hidden_token_logprobs(h, wt, ids, bias, 5), (hidden, weight))


def test_sequence_logprobs_is_the_masked_sum() -> None:
    # row 0: -1 + -2 (mask 1 1 0) = -3; row 1: -5 (mask 0 0 1)
    lp = torch.tensor([[-1.0, -2.0, -4.0], [-1.0, -1.0, -5.0]])
    mask = torch.tensor([[1, 1, 0], [0, 0, 1]])
    assert sequence_logprobs(lp, mask).tolist() == [-3.0, -5.0]
    with pytest.raises(ValueError, match="loss_mask"):
        sequence_logprobs(lp, mask[:, :2])


def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=13, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32,
    )
    return LlamaForCausalLM(cfg).double().eval()


def test_policy_token_logprobs_aligns_with_next_token_and_ignores_left_padding() -> None:
    model = tiny_llama()
    ids = torch.tensor([[3, 5, 7, 2, 9]])
    out = policy_token_logprobs(model, ids)
    logits = model(ids).logits  # (1, 5, V): position t predicts token t+1
    expected = torch.log_softmax(logits[0, :-1], -1).gather(-1, ids[0, 1:, None]).squeeze(-1)
    assert out[0, 0].item() == 0.0
    assert torch.allclose(out[0, 1:], expected, atol=1e-10)
    # the same sequence left-padded by 2 gives the same log-probs at the real positions
    padded = torch.tensor([[0, 0, 3, 5, 7, 2, 9]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1]])
    out_pad = policy_token_logprobs(model, padded, mask)
    assert torch.allclose(out_pad[0, 3:], out[0, 1:], atol=1e-10)


class _LogitsOnly(torch.nn.Module):
    """A causal LM without a plain nn.Linear head: policy_token_logprobs must use its logits."""

    def __init__(self, inner: LlamaForCausalLM) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, **kwargs: torch.Tensor) -> object:
        return self.inner(**kwargs)


def test_policy_token_logprobs_fallback_through_logits_matches_hidden_path() -> None:
    model = tiny_llama()
    ids = torch.tensor([[3, 5, 7, 2, 9], [1, 1, 4, 4, 8]])
    assert torch.allclose(policy_token_logprobs(_LogitsOnly(model), ids), policy_token_logprobs(model, ids), atol=1e-10)


def test_left_padding_with_absolute_positions() -> None:
    # GPT-2 adds absolute position embeddings (RoPE models are shift-invariant and would not notice):
    # positions must come from the attention mask, so the real tokens start at position 0
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=13, n_embd=16, n_layer=2, n_head=2, n_positions=32)
    model = GPT2LMHeadModel(cfg).double().eval()
    out = policy_token_logprobs(model, torch.tensor([[3, 5, 7, 2]]))
    out_pad = policy_token_logprobs(model, torch.tensor([[0, 0, 3, 5, 7, 2]]), torch.tensor([[0, 0, 1, 1, 1, 1]]))
    assert torch.allclose(out_pad[0, 3:], out[0, 1:], atol=1e-10)
