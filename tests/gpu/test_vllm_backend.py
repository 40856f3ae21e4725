"""The vLLM rollout backend on a GPU: the Protocol's promises, checked against transformers.

Skipped where no CUDA GPU (or no vLLM) is present. The model is a small random Qwen2 whose weights are
drawn wide (initializer_range 0.2) so greedy choices have clear margins in bf16.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu

VOCAB = 512  # the vocabulary of the model_dir fixture (tests/gpu/conftest.py)


@pytest.fixture(scope="module")
def backend(model_dir: Path):  # type: ignore[no-untyped-def]
    pytest.importorskip("vllm")
    from k15ray.config.repeat import RepeatConfig
    from k15ray.rollout.vllm import VLLMBackend

    return VLLMBackend(
        model_dir,
        gpu_memory_utilization=0.3,
        skip_tokenizer_init=True,
        enforce_eager=True,
        sleep_level=1,
        repeat_config=RepeatConfig(max_period=64, min_repeats=3, min_tokens=8),
        repeat_check_tokens=64,  # several chunks per generation: the cut must still be exact
    )


def _greedy(backend, ids: list[int], n: int, rid: str = "r"):  # type: ignore[no-untyped-def]
    from k15ray.types import GenerationRequest, SamplingParams

    (res,) = backend.generate(
        [GenerationRequest(rid, tuple(ids), n)],
        SamplingParams(temperature=0.0, detect_repeats=False),
    )
    return res


def test_greedy_continuation_equals_uninterrupted(backend) -> None:  # type: ignore[no-untyped-def]
    prompt = [5, 17, 42, 99, 123, 7, 300, 12]
    whole = _greedy(backend, prompt, 64)
    assert len(whole.token_ids) == 64 or whole.finish_reason == "stop"
    cut = 24
    first = _greedy(backend, prompt, cut, "a")
    assert first.token_ids == whole.token_ids[:cut]
    rest = _greedy(backend, prompt + list(first.token_ids), 64 - cut, "b")
    assert first.token_ids + rest.token_ids == whole.token_ids


def test_logprobs_match_transformers(backend, model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    import torch
    from transformers import AutoModelForCausalLM

    from k15ray.logprobs import token_logprobs

    prompt = [3, 14, 15, 92, 65, 35]
    res = _greedy(backend, prompt, 32)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).cuda()
    ids = torch.tensor([prompt + list(res.token_ids)], device="cuda")
    with torch.no_grad():
        logits = model(ids).logits[:, :-1]  # (1, T-1, V): position t predicts token t+1
    ref = token_logprobs(logits.float(), ids[:, 1:])[0, len(prompt) - 1 :]
    gap = (ref.cpu() - torch.tensor(res.logprobs)).abs()
    assert gap.mean().item() < 0.05, gap  # bf16 engine vs fp32 reference


def test_update_weights_versions_and_sleep(backend, model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    import torch
    from transformers import AutoModelForCausalLM

    prompt = [1, 2, 3, 4, 5, 6]
    before = _greedy(backend, prompt, 16).token_ids
    other = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).cuda()
    with torch.no_grad():
        other.lm_head.weight.copy_(
            other.lm_head.weight.roll(1, dims=0)
        )  # token i's row moves to i+1
    backend.sleep()
    backend.update_weights(other.state_dict(), version=1)
    res = _greedy(backend, prompt, 16)
    assert res.policy_version == 1
    assert res.token_ids != before
    with pytest.raises(ValueError, match="weight version must increase"):
        backend.update_weights(other.state_dict(), version=1)


def test_repeat_detection_stops_a_loop(backend, model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    import torch
    from transformers import AutoModelForCausalLM

    from k15ray.rollout.repeat import first_loop_end
    from k15ray.types import GenerationRequest, SamplingParams

    # With attention and MLP outputs zeroed the residual stream is the current token's embedding,
    # so greedy decoding iterates a fixed map token -> token, which must enter a cycle.
    looping = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).cuda()
    with torch.no_grad():
        for layer in looping.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
    backend.update_weights(looping.state_dict(), version=backend.policy_version + 1)
    prompts = [(i, (i * 7) % VOCAB, (i * 13) % VOCAB) for i in range(1, 33)]
    free = backend.generate(
        [GenerationRequest(f"f{i}", p, 400) for i, p in enumerate(prompts)],
        SamplingParams(temperature=0.0, detect_repeats=False),
    )
    ends = [first_loop_end(r.token_ids, backend.repeat_config) for r in free]
    assert sum(e is not None for e in ends) >= len(prompts) // 2, ends  # most fall into a cycle
    caught = backend.generate(
        [GenerationRequest(f"c{i}", p, 400) for i, p in enumerate(prompts)],
        SamplingParams(temperature=0.0, detect_repeats=True),
    )
    for f, c, end in zip(free, caught, ends, strict=True):
        if end is None:
            assert c.token_ids == f.token_ids and c.finish_reason != "repeat"
        else:  # stopped exactly where the streaming detector stops, as "repeat"
            assert c.finish_reason == "repeat" and c.token_ids == f.token_ids[:end]


def test_rollouts_without_logprobs(backend) -> None:  # type: ignore[no-untyped-def]
    """``SamplingParams(logprobs=False)`` (the K15 default): no ``logprobs=`` reaches vLLM, results
    carry none, and the seeded samples are the same tokens as with log-probs."""
    from k15ray.types import GenerationRequest, SamplingParams

    requests = [GenerationRequest(f"s{i}", (i + 1, 2 * i + 3, 77), 48) for i in range(16)]
    on = SamplingParams(temperature=1.0, seed=5, detect_repeats=False)
    off = SamplingParams(temperature=1.0, seed=5, detect_repeats=False, logprobs=False)
    assert backend.sampling_params(requests[0], off, 48).logprobs is None
    assert backend.sampling_params(requests[0], on, 48).logprobs == 0
    with_lp, without = backend.generate(requests, on), backend.generate(requests, off)
    assert all(len(r.logprobs) == len(r.token_ids) > 0 for r in with_lp)
    assert all(r.logprobs == () for r in without)
    assert [r.token_ids for r in without] == [r.token_ids for r in with_lp]
