"""Token log-probs without a full log-softmax: values, gradients, HF alignment."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from transformers import (
    CohereConfig,
    CohereForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    GraniteConfig,
    GraniteForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
)

from k15ray.logprobs import (
    LOGIT_TRANSFORM_ATTRS,
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


# ------------------------------------------------------------------ temperature


def test_temperature_hand_computed_value() -> None:
    # logits [0, 2 ln 3] at T = 2 -> z / T = [0, ln 3] -> softmax [1/4, 3/4]: token 1 -> ln(3/4)
    logits = torch.tensor([[[0.0, 2 * math.log(3.0)]]], dtype=torch.float64)
    out = token_logprobs(logits, torch.tensor([[1]]), temperature=2.0)
    assert out.item() == pytest.approx(math.log(0.75), abs=1e-12)


@pytest.mark.parametrize("temperature", [0.6, 1.0])
@pytest.mark.parametrize("chunk", [2, 1024])
def test_temperature_matches_naive_values_and_gradients(temperature: float, chunk: int) -> None:
    """token_logprobs(z, T) = log_softmax(z / T)[y], and so are its gradients (autograd of naive)."""
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 5, 11, dtype=torch.float64, generator=g, requires_grad=True)
    ids = torch.randint(0, 11, (2, 5), generator=g)
    w = torch.randn(2, 5, dtype=torch.float64, generator=g)
    ours = token_logprobs(logits, ids, chunk_rows=chunk, temperature=temperature)
    ref = naive_token_logprobs(logits / temperature, ids)
    assert torch.allclose(ours, ref, atol=1e-12)
    (g_ours,) = torch.autograd.grad((ours * w).sum(), logits)
    (g_ref,) = torch.autograd.grad((ref * w).sum(), logits)
    assert torch.allclose(g_ours, g_ref, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x: token_logprobs(x, ids, chunk, temperature), (logits,))


def test_temperature_low_precision_logits_match_float32() -> None:
    # bf16 logits take the cast-to-float32 branch of backward: same values/grads as float32 input
    g = torch.Generator().manual_seed(5)
    base = torch.randn(3, 4, 9, generator=g)
    ids = torch.randint(0, 9, (3, 4), generator=g)
    low = base.bfloat16().requires_grad_()
    full = low.detach().float().requires_grad_()
    out_low = token_logprobs(low, ids, chunk_rows=5, temperature=0.6)
    out_full = token_logprobs(full, ids, chunk_rows=5, temperature=0.6)
    assert out_low.dtype == torch.float32 and torch.allclose(out_low, out_full, atol=1e-6)
    (g_low,) = torch.autograd.grad(out_low.sum(), low)
    (g_full,) = torch.autograd.grad(out_full.sum(), full)
    assert torch.allclose(g_low.float(), g_full, atol=1e-2)  # bf16 gradient: ~3 significant digits


@pytest.mark.parametrize("temperature", [0.6, 1.0])
def test_hidden_path_temperature_matches_naive(temperature: float) -> None:
    g = torch.Generator().manual_seed(3)
    hidden = torch.randn(2, 6, 4, dtype=torch.float64, generator=g, requires_grad=True)
    weight = torch.randn(9, 4, dtype=torch.float64, generator=g, requires_grad=True)
    bias = torch.randn(9, dtype=torch.float64, generator=g, requires_grad=True)
    ids = torch.randint(0, 9, (2, 6), generator=g)
    w = torch.randn(2, 6, dtype=torch.float64, generator=g)
    ours = hidden_token_logprobs(hidden, weight, ids, bias, chunk_tokens=5, temperature=temperature)
    ref = naive_token_logprobs(torch.nn.functional.linear(hidden, weight, bias) / temperature, ids)
    assert torch.allclose(ours, ref, atol=1e-12)
    grads = torch.autograd.grad((ours * w).sum(), (hidden, weight, bias))
    grads_ref = torch.autograd.grad((ref * w).sum(), (hidden, weight, bias))
    for a, b in zip(grads, grads_ref, strict=True):
        assert torch.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("temperature", [0.6, 1.0])
@pytest.mark.parametrize("wrap", [False, True])
def test_policy_token_logprobs_at_temperature(temperature: float, wrap: bool) -> None:
    """Both paths (hidden states + lm_head, and the wrapper's full logits) give log_softmax(z / T)."""
    model = tiny_llama()
    ids = torch.tensor([[3, 5, 7, 2, 9], [1, 1, 4, 4, 8]])
    policy = _LogitsOnly(model) if wrap else model
    params = [p for p in model.parameters() if p.requires_grad]
    out = policy_token_logprobs(policy, ids, temperature=temperature)
    ref = naive_token_logprobs(model(ids).logits[:, :-1] / temperature, ids[:, 1:])  # (2, 4)
    assert torch.allclose(out[:, 1:], ref, atol=1e-10) and (out[:, 0] == 0).all()
    grads = torch.autograd.grad(out.sum(), params)
    grads_ref = torch.autograd.grad(ref.sum(), params)
    for a, b in zip(grads, grads_ref, strict=True):
        assert torch.allclose(a, b, atol=1e-9)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("inf"), float("nan")])
def test_temperature_must_be_positive(temperature: float) -> None:
    ids = torch.tensor([[1, 2]])
    with pytest.raises(ValueError, match="temperature=1.0"):
        token_logprobs(torch.zeros(1, 2, 3), ids, temperature=temperature)
    with pytest.raises(ValueError, match="temperature"):
        hidden_token_logprobs(torch.zeros(1, 2, 4), torch.zeros(3, 4), ids, temperature=temperature)
    with pytest.raises(ValueError, match="temperature"):
        policy_token_logprobs(tiny_llama(), ids, temperature=temperature)


# ------------------------------------------------------------------ logits scaled after lm_head


def _scaled_head_model(kind: str) -> Any:
    """A 2-layer random model whose forward rescales lm_head's output: Cohere multiplies the
    logits by ``logit_scale``, Granite divides them by ``logits_scaling``."""
    torch.manual_seed(0)
    common: dict[str, Any] = dict(
        vocab_size=13, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32,
    )
    if kind == "cohere":
        model: Any = CohereForCausalLM(CohereConfig(logit_scale=3.0, **common))
    else:
        model = GraniteForCausalLM(GraniteConfig(logits_scaling=0.25, **common))
    return model.double().eval()


@pytest.mark.parametrize("temperature", [0.6, 1.0])
@pytest.mark.parametrize("kind", ["cohere", "granite"])
def test_models_scaling_logits_after_lm_head(kind: str, temperature: float) -> None:
    model = _scaled_head_model(kind)
    # the scale is real: lm_head(base_model(...)) is not the model's logits
    ids = torch.tensor([[3, 5, 7, 2, 9], [1, 1, 4, 4, 8]])
    with torch.no_grad():
        logits = model(ids).logits  # (2, 5, V), scaled
        unscaled = model.lm_head(model.base_model(ids).last_hidden_state)
    assert not torch.allclose(logits, unscaled)
    out = policy_token_logprobs(model, ids, temperature=temperature)
    ref = naive_token_logprobs(logits[:, :-1] / temperature, ids[:, 1:])
    assert torch.allclose(out[:, 1:], ref, atol=1e-10)


def test_logit_transform_attrs_cover_the_config_names() -> None:
    assert {"final_logit_softcapping", "logit_scale", "logits_scaling"} <= set(LOGIT_TRANSFORM_ATTRS)


def test_dropout_makes_train_mode_forwards_differ() -> None:
    """Why the learner's module must switch dropout off: policy_token_logprobs does not, and with
    dropout on, two forwards of the same weights differ, so the first step's log pi != log pi_ref."""
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=13, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32, attention_dropout=0.5,
    )
    model = LlamaForCausalLM(cfg).double().train()
    ids = torch.tensor([[3, 5, 7, 2, 9]])
    assert not torch.equal(policy_token_logprobs(model, ids), policy_token_logprobs(model, ids))
    model.eval()
    assert torch.equal(policy_token_logprobs(model, ids), policy_token_logprobs(model, ids))
