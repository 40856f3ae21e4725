"""Tests of the transformers rollout backend ``k15ray.rollout.hf.HFBackend`` on a tiny random Llama."""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from transformers import LlamaForCausalLM

from k15ray.config.repeat import RepeatConfig
from k15ray.models import build_tokenizer, create_model
from k15ray.rollout.hf import HFBackend, cache_kwarg
from k15ray.rollout.sampling import sample_tokens, sampled_logprobs
from k15ray.types import GenerationRequest, RolloutBackend, SamplingParams

TinyLlama = Callable[..., LlamaForCausalLM]
"""The ``tiny_llama`` fixture of tests/conftest.py: ``tiny_llama(seed=0, vocab_size=None)``."""

GREEDY = SamplingParams(temperature=0.0, stop_token_ids=(-1,), detect_repeats=False)
"""Greedy decoding that never stops early: no token has id -1."""


@pytest.fixture(scope="module")
def backend(tiny_llama: TinyLlama) -> HFBackend:
    return HFBackend(tiny_llama(), build_tokenizer(), max_batch_size=8)


def req(rid: str, token_ids: list[int] | tuple[int, ...], budget: int) -> GenerationRequest:
    return GenerationRequest(rid, tuple(token_ids), budget)


PROMPTS = [[5, 9, 14, 30], [7, 7, 21], [40, 41, 42, 43, 44, 45, 46], [12], [60, 3, 18, 18, 25]]


def test_is_a_rollout_backend(backend: HFBackend) -> None:
    assert isinstance(backend, RolloutBackend)


def test_greedy_continuation_equals_uninterrupted_generation(backend: HFBackend) -> None:
    """Partial rollouts (paper 2.6.2): prompt + first N tokens continues exactly."""
    full = backend.generate([req(str(i), p, 24) for i, p in enumerate(PROMPTS)], GREEDY)
    first_n = 10
    cont = backend.generate(
        [
            req(str(i), p + list(full[i].token_ids[:first_n]), 24 - first_n)
            for i, p in enumerate(PROMPTS)
        ],
        GREEDY,
    )
    for whole, rest in zip(full, cont, strict=True):
        assert len(whole.token_ids) == 24
        assert rest.token_ids == whole.token_ids[first_n:]
        assert rest.logprobs == pytest.approx(whole.logprobs[first_n:], abs=1e-5)


def _teacher_forced(backend: HFBackend, prompt: list[int], tokens: tuple[int, ...], temperature: float) -> list[float]:
    """log softmax(logits / T)[token] of each new token, from one plain forward (no cache, no pad)."""
    ids = torch.tensor([prompt + list(tokens)])  # (1, T)
    with torch.no_grad():
        logits = backend.model(input_ids=ids).logits[0]  # (T, V)
    logp = torch.log_softmax(logits.double() / temperature, dim=-1)
    # the token at position t is predicted by the logits at position t - 1
    return [logp[len(prompt) - 1 + t, tok].item() for t, tok in enumerate(tokens)]


@pytest.mark.parametrize("temperature", [0.7, 1.0])
def test_logprobs_equal_teacher_forced_forward_at_the_sampling_temperature(
    backend: HFBackend, temperature: float
) -> None:
    """Reported log-probs are log softmax(logits / T)[token]: the policy sampled from at the
    sampling temperature T (top-p 0.9 does not change them), in a left-padded batch of mixed
    lengths; the learner recomputes the same quantity as its reference log-probs."""
    params = SamplingParams(temperature=temperature, top_p=0.9, seed=3, stop_token_ids=(-1,))
    results = backend.generate([req(str(i), p, 12) for i, p in enumerate(PROMPTS)], params)
    for prompt, res in zip(PROMPTS, results, strict=True):
        expected = _teacher_forced(backend, prompt, res.token_ids, temperature)
        # float32 rounding of the cached, padded batch vs one plain forward (~1e-5 at T = 1 on
        # some CPUs) is scaled by 1/T: 1.03e-5 was seen at T = 0.7
        assert list(res.logprobs) == pytest.approx(expected, abs=3e-5)
        assert res.policy_version == 0
    if temperature != 1.0:  # T really enters: the T = 1 log-probs differ
        raw = _teacher_forced(backend, PROMPTS[0], results[0].token_ids, 1.0)
        assert list(results[0].logprobs) != pytest.approx(raw, abs=1e-3)


def test_greedy_reports_temperature_one_logprobs(backend: HFBackend) -> None:
    (res,) = backend.generate([req("g", PROMPTS[1], 8)], GREEDY)
    assert list(res.logprobs) == pytest.approx(_teacher_forced(backend, PROMPTS[1], res.token_ids, 1.0), abs=1e-5)


def test_sampled_logprobs_hand_computed_and_needs_positive_temperature() -> None:
    # logits [0, 2 ln 3] at T = 2 -> softmax([0, ln 3]) = [1/4, 3/4]: token 1 -> ln 3/4, token 0 -> ln 1/4
    logits = torch.tensor([[0.0, 2 * math.log(3.0)]] * 2)
    out = sampled_logprobs(logits, torch.tensor([1, 0]), temperature=2.0)
    assert out.tolist() == pytest.approx([math.log(0.75), math.log(0.25)], abs=1e-6)
    with pytest.raises(ValueError, match="policy_temperature"):
        sampled_logprobs(logits, torch.tensor([1, 0]), temperature=0.0)


def test_generation_emits_no_past_key_values_future_warning(backend: HFBackend) -> None:
    """transformers renamed forward's ``past_key_values`` to ``cache`` and drops the old name in
    5.40: the backend must use the name the installed release takes, so nothing warns."""
    params = SamplingParams(temperature=1.0, seed=0, stop_token_ids=(-1,), detect_repeats=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backend.generate([req(str(i), p, 4) for i, p in enumerate(PROMPTS[:3])], params)
    future = [w for w in caught if issubclass(w.category, FutureWarning) and "past_key_values" in str(w.message)]
    assert not future, [str(w.message) for w in future]
    assert cache_kwarg(backend.model) in ("cache", "past_key_values")


def test_batched_equals_one_by_one_and_micro_batches(backend: HFBackend) -> None:
    requests = [req(str(i), p, 9 + i) for i, p in enumerate(PROMPTS)]
    together = backend.generate(requests, GREEDY)
    alone = [backend.generate([r], GREEDY)[0] for r in requests]
    micro = HFBackend(backend.model, backend.tokenizer, max_batch_size=2).generate(requests, GREEDY)
    for a, b, c in zip(together, alone, micro, strict=True):
        assert a.token_ids == b.token_ids == c.token_ids
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)


def test_per_request_budgets_are_respected(backend: HFBackend) -> None:
    budgets = [0, 1, 5, 17, 3]
    results = backend.generate([req(f"r{b}", PROMPTS[i], b) for i, b in enumerate(budgets)], GREEDY)
    assert [r.request_id for r in results] == [f"r{b}" for b in budgets]  # request order kept
    assert [len(r.token_ids) for r in results] == budgets
    assert [len(r.logprobs) for r in results] == budgets
    assert {r.finish_reason for r in results} == {"length"}


def test_stop_token_ends_a_sample_and_is_kept(backend: HFBackend) -> None:
    free = backend.generate([req("a", PROMPTS[2], 20)], GREEDY)[0].token_ids
    stop = free[4]
    first = free.index(stop)  # the first time greedy decoding emits the stop token (<= 4)
    params = SamplingParams(temperature=0.0, stop_token_ids=(stop,), detect_repeats=False)
    res = backend.generate([req("a", PROMPTS[2], 20)], params)[0]
    assert res.finish_reason == "stop"
    assert res.token_ids == free[: first + 1]  # the stop token is part of the sample


def test_default_stop_token_is_the_tokenizers_eos(tiny_llama: TinyLlama) -> None:
    tok = build_tokenizer()
    model = tiny_llama()
    free = HFBackend(model, tok).generate([req("a", PROMPTS[0], 20)], GREEDY)[0].token_ids
    first = free.index(free[6])

    class EosIsToken:  # the real tokenizer's ids, with eos moved onto a token greedy emits
        eos_token_id = free[6]
        pad_token_id = tok.pad_token_id

    params = SamplingParams(temperature=0.0, detect_repeats=False)  # no stop ids: eos
    res = HFBackend(model, EosIsToken()).generate([req("a", PROMPTS[0], 20)], params)[0]
    assert (res.finish_reason, len(res.token_ids)) == ("stop", first + 1)


def test_seeded_sampling_is_deterministic_and_independent_of_batching(backend: HFBackend) -> None:
    params = SamplingParams(temperature=1.0, seed=11, stop_token_ids=(-1,), detect_repeats=False)
    k_samples = [req(f"p0/{j}", PROMPTS[0], 16) for j in range(4)]
    first = backend.generate(k_samples, params)
    again = backend.generate(k_samples, params)
    alone = [backend.generate([r], params)[0] for r in reversed(k_samples)][::-1]
    assert (
        [r.token_ids for r in first] == [r.token_ids for r in again] == [r.token_ids for r in alone]
    )
    # the k samples of one prompt use different random streams, so they differ
    assert len({r.token_ids for r in first}) == 4
    other = backend.generate(
        k_samples, SamplingParams(temperature=1.0, seed=12, stop_token_ids=(-1,))
    )
    assert [r.token_ids for r in other] != [r.token_ids for r in first]


def test_sample_tokens_greedy_and_nucleus() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert sample_tokens(logits, 0.0, 1.0).tolist() == [0]
    # top_p = 0.6: mass before token 0 is 0, before token 1 is 0.5 < 0.6, before token 2 is 0.8
    # >= 0.6, so only tokens {0, 1} can be drawn
    gens = [random.Random(s) for s in range(200)]
    drawn = sample_tokens(logits.expand(200, 4), 1.0, 0.6, gens).tolist()
    assert set(drawn) == {0, 1}
    with pytest.raises(ValueError, match="top_p"):
        sample_tokens(logits, 1.0, 0.0)


def test_repeat_detection_stops_a_loop(tiny_llama: TinyLlama) -> None:
    """A model that always predicts its input token loops with period 1 from the first new token.
    RepeatConfig(max_period=8, min_repeats=4, min_tokens=12): a period-1 tail of n tokens has
    L = n, caught once L >= max(1 * 4, 12) = 12, i.e. at the 12th new token."""
    vocab = 32
    model = tiny_llama(vocab_size=vocab)
    with torch.no_grad():
        q, _ = torch.linalg.qr(torch.randn(64, vocab))  # (64, 32) orthonormal columns
        model.model.embed_tokens.weight.copy_(4.0 * q.T)  # logits = c * e_t . E^T peak at t
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
    config = RepeatConfig(max_period=8, min_repeats=4, min_tokens=12)
    backend = HFBackend(model, build_tokenizer(), repeat_config=config)
    looped = backend.generate(
        [req("x", [3, 9, 17], 40)], SamplingParams(temperature=0.0, stop_token_ids=(-1,))
    )[0]
    assert (looped.finish_reason, looped.token_ids) == ("repeat", (17,) * 12)
    free = backend.generate([req("x", [3, 9, 17], 40)], GREEDY)[0]  # detection off
    assert (free.finish_reason, len(free.token_ids)) == ("length", 40)


def test_update_weights_is_versioned_and_changes_outputs(tiny_llama: TinyLlama) -> None:
    model_a, model_b = tiny_llama(seed=0), tiny_llama(seed=1)
    backend = HFBackend(model_a, build_tokenizer())
    before = backend.generate([req("a", PROMPTS[0], 12)], GREEDY)[0]
    with pytest.raises(ValueError, match="must increase"):
        backend.update_weights(model_b.state_dict(), version=0)
    state = {k: v for k, v in model_b.state_dict().items() if k != "lm_head.weight"}  # tied
    backend.update_weights(state, version=3)
    after = backend.generate([req("a", PROMPTS[0], 12)], GREEDY)[0]
    expected = HFBackend(tiny_llama(seed=1), build_tokenizer()).generate(
        [req("a", PROMPTS[0], 12)], GREEDY
    )[0]
    assert (before.policy_version, after.policy_version, backend.policy_version) == (0, 3, 3)
    assert after.token_ids == expected.token_ids != before.token_ids
    with pytest.raises(ValueError, match="must increase"):
        backend.update_weights(model_b.state_dict(), version=3)
    with pytest.raises(ValueError, match="lacks"):
        backend.update_weights({"model.norm.weight": torch.ones(64)}, version=4)
    assert backend.policy_version == 3


def test_from_pretrained_loads_the_tiny_preset(tmp_path: Path) -> None:
    model_dir = create_model("tiny", tmp_path / "tiny")
    backend = HFBackend.from_pretrained(model_dir, max_batch_size=4)
    results = backend.generate([req(str(i), p, 5) for i, p in enumerate(PROMPTS)], GREEDY)
    assert [len(r.token_ids) for r in results] == [5] * 5
    with pytest.raises(ValueError, match="config.json"):
        HFBackend.from_pretrained(tmp_path)


def test_bad_requests_say_what_to_fix(backend: HFBackend) -> None:
    with pytest.raises(ValueError, match="no token ids"):
        backend.generate([req("e", [], 4)], GREEDY)
    with pytest.raises(ValueError, match="max_batch_size"):
        HFBackend(backend.model, backend.tokenizer, max_batch_size=0)


def test_generate_leaves_the_models_mode_alone(tiny_llama: TinyLlama) -> None:
    """Evaluation during training hands the training model in: it must stay in training mode."""
    model = tiny_llama().train()
    HFBackend(model, build_tokenizer()).generate([req("a", PROMPTS[0], 3)], GREEDY)
    assert model.training


def test_ignore_eos_generates_exactly_max_new_tokens(tiny_llama) -> None:  # type: ignore[no-untyped-def]
    from k15ray.models import build_tokenizer
    from k15ray.rollout.hf import HFBackend
    from k15ray.types import GenerationRequest, SamplingParams

    model, tokenizer = tiny_llama(), build_tokenizer()
    backend = HFBackend(model, tokenizer)
    request = GenerationRequest("r", (3, 4, 5), 40)
    eos = int(tokenizer.eos_token_id)
    # Every token counts as a stop token, so without ignore_eos generation ends after one token.
    stop_all = tuple(range(model.config.vocab_size))
    (stopped,) = backend.generate([request], SamplingParams(stop_token_ids=stop_all, seed=0, detect_repeats=False))
    assert len(stopped.token_ids) == 1 and stopped.finish_reason == "stop"
    (forced,) = backend.generate(
        [request], SamplingParams(stop_token_ids=stop_all, seed=0, detect_repeats=False, ignore_eos=True)
    )
    assert len(forced.token_ids) == 40 and forced.finish_reason == "length"
    assert eos in stop_all
