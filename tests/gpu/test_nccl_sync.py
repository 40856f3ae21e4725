"""NCCL weight sync from the learner's GPU into a vLLM rollout actor on a GPU of its own (docs/gpu.md).

Needs 2 CUDA GPUs and vLLM. One ``RolloutPool`` of one vLLM actor (``num_gpus=1``); the learner
(this process) holds perturbed weights on the other GPU and broadcasts them with
``RolloutPool.update_weights_nccl``. Checks: the versions; the engine's parameter checksum equals
the learner's; greedy output changes, and equals the output after loading the same weights
through the object-store path. Prints the time of one sync (run with ``-s`` to see it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.gpu

VOCAB = 512  # a multiple of 64: vLLM pads no embedding rows, so the checksums compare 1:1


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from k15ray.models import build_tokenizer, save_tokenizer

    tok = build_tokenizer()  # vLLM loads a tokenizer from the model dir (ids < VOCAB)
    out = tmp_path_factory.mktemp("qwen2-nccl")
    config = Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        initializer_range=0.2,  # wide weights: clear greedy margins in bf16
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).save_pretrained(out)
    save_tokenizer(tok, out)
    return out


def _learner_device(actor_gpu_ids: list[str]) -> str:
    """A CUDA device of this process that is not the actor's GPU (NCCL refuses one GPU twice)."""
    import torch

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    physical = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
    free = [i for i, p in enumerate(physical) if p.strip() not in actor_gpu_ids]
    assert free, f"no GPU left for the learner: visible {physical}, actor holds {actor_gpu_ids}"
    return f"cuda:{free[0]}"


def _checksum(state: dict[str, Any]) -> tuple[float, float, int]:
    total, squares, count = 0.0, 0.0, 0
    for t in state.values():
        x = t.detach().double()
        total += float(x.sum())
        squares += float((x * x).sum())
        count += x.numel()
    return total, squares, count


def _perturbed(model_dir: Path, device: str, seed: int) -> dict[str, Any]:
    """The weights on disk plus noise, with the lm_head rows rolled (greedy tokens must change)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen, device=device, dtype=p.dtype))
        model.lm_head.weight.copy_(model.lm_head.weight.roll(seed, dims=0))
    return dict(model.state_dict())


def test_nccl_sync_into_a_vllm_actor(model_dir: Path, ray_session: None) -> None:
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip("needs 2 CUDA GPUs: the learner's and the rollout actor's")
    pytest.importorskip("vllm")
    import ray

    from k15ray.config.rollout import RolloutConfig
    from k15ray.rollout.actor import RolloutPool
    from k15ray.types import GenerationRequest, SamplingParams

    config = RolloutConfig(
        backend="vllm",
        num_workers=1,
        num_cpus_per_worker=1,
        num_gpus_per_worker=1,
        dtype="bfloat16",
        gpu_memory_utilization=0.3,
    )
    pool = RolloutPool(config, model_dir=model_dir)
    try:
        actor = pool.workers[0]
        actor_gpus = ray.get(actor.gpu_ids.remote())
        device = _learner_device(actor_gpus)
        print(f"\nactor GPU(s) {actor_gpus}; learner on {device}")
        requests = [GenerationRequest(f"r{i}", (5 + i, 17, 42, 99, 123, 7), 24) for i in range(4)]
        greedy = SamplingParams(temperature=0.0, detect_repeats=False, ignore_eos=True)

        def outputs() -> list[tuple[int, ...]]:
            return [r.token_ids for r in pool.generate(requests, greedy)]

        before = outputs()
        state = _perturbed(model_dir, device, seed=1)
        t0 = time.perf_counter()
        sender = pool.init_nccl(device)
        t_init = time.perf_counter() - t0

        t0 = time.perf_counter()
        pool.update_weights_nccl(sender, state, version=1)
        t_first = time.perf_counter() - t0
        assert pool.policy_versions() == [1]
        engine = ray.get(actor.param_checksum.remote())
        learner = _checksum(state)
        assert engine[2] == learner[2], f"element counts: engine {engine}, learner {learner}"
        assert engine[0] == pytest.approx(learner[0], rel=1e-9, abs=1e-6), (engine, learner)
        assert engine[1] == pytest.approx(learner[1], rel=1e-9), (engine, learner)
        after = outputs()
        assert after != before, "greedy outputs did not change: the weights did not arrive"

        # The same weights through the object store (the path tested on CPU) give the same tokens.
        pool.update_weights(state, version=2)
        reference = outputs()
        assert after == reference, f"NCCL {after} != object store {reference}"

        # A second sync (warm), with other weights.
        state = _perturbed(model_dir, device, seed=2)
        t0 = time.perf_counter()
        pool.update_weights_nccl(sender, state, version=3)
        t_second = time.perf_counter() - t0
        assert pool.policy_versions() == [3]
        engine = ray.get(actor.param_checksum.remote())
        assert engine[0] == pytest.approx(_checksum(state)[0], rel=1e-9, abs=1e-6)
        assert outputs() != after
        with pytest.raises(ValueError, match="must increase"):  # refused before any broadcast
            pool.update_weights_nccl(sender, state, version=3)

        # A new group (as after an actor was replaced), with small buckets: one receive and one
        # load_weights per 256 KiB bucket instead of one per dtype.
        small = pool.init_nccl(device, max_bucket_bytes=1 << 18)
        state = _perturbed(model_dir, device, seed=3)
        assert len(small.layout(state).buckets) > 2, small.layout(state).buckets
        pool.update_weights_nccl(small, state, version=4)
        assert pool.policy_versions() == [4]
        engine = ray.get(actor.param_checksum.remote())
        assert engine[0] == pytest.approx(_checksum(state)[0], rel=1e-9, abs=1e-6)
        pool.update_weights(state, version=5)  # the same weights through the object store
        assert ray.get(actor.param_checksum.remote()) == engine

        num_bytes = sender.layout(state).num_bytes
        print(
            f"nccl weight sync of {len(state)} tensors, {num_bytes / 1e6:.1f} MB: init "
            f"{t_init:.3f} s, first sync {t_first * 1e3:.1f} ms, second {t_second * 1e3:.1f} ms"
        )
    finally:
        pool.shutdown()
