"""The policy application's vLLM backend on a GPU: ``AsyncVLLMBackend`` (vLLM's async engine).

Skipped where no CUDA GPU (or no vLLM) is present. One engine, one event loop: the engine's output
handler belongs to the loop that made it, so every check runs inside one ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu



def test_async_engine_serves_concurrent_requests(model_dir: Path) -> None:
    pytest.importorskip("vllm")
    from k15ray.serve.policy_model import AsyncBackend
    from k15ray.serve.vllm_async import AsyncVLLMBackend
    from k15ray.types import GenerationRequest, SamplingParams

    forced = SamplingParams(temperature=1.0, ignore_eos=True, detect_repeats=False)
    seeded = SamplingParams(temperature=1.0, seed=3, ignore_eos=True, detect_repeats=False)
    prompt = tuple(range(10, 30))

    async def main() -> None:
        backend = AsyncVLLMBackend(model_dir, gpu_memory_utilization=0.3, enforce_eager=True)
        try:
            assert isinstance(backend, AsyncBackend)
            # 16 concurrent requests of different lengths, each exactly its own length (no EOS)
            lengths = [1 + 3 * i for i in range(16)]
            requests = [GenerationRequest(f"r{i}", prompt, n) for i, n in enumerate(lengths)]
            results = await asyncio.gather(*(backend.agenerate(r, forced) for r in requests))
            assert [len(r.token_ids) for r in results] == lengths
            assert [r.request_id for r in results] == [f"r{i}" for i in range(16)]
            assert {r.finish_reason for r in results} == {"length"}
            # a seeded request repeats exactly, whatever runs beside it; the same id may come twice
            again = GenerationRequest("s", prompt, 12)
            first, second, _ = await asyncio.gather(
                backend.agenerate(again, seeded),
                backend.agenerate(again, seeded),
                backend.agenerate(GenerationRequest("other", prompt, 30), forced),
            )
            assert first.token_ids == second.token_ids and len(first.token_ids) == 12
            # a stop token ends the choice
            greedy = SamplingParams(temperature=0.0, ignore_eos=True, detect_repeats=False)
            head = (await backend.agenerate(GenerationRequest("g", prompt, 1), greedy)).token_ids[0]
            stop = SamplingParams(temperature=0.0, stop_token_ids=(head,), detect_repeats=False)
            stopped = await backend.agenerate(GenerationRequest("g2", prompt, 8), stop)
            assert stopped.finish_reason == "stop" and len(stopped.token_ids) <= 1
            empty = await backend.agenerate(GenerationRequest("e", prompt, 0), forced)
            assert (empty.token_ids, empty.finish_reason) == ((), "length")
        finally:
            backend.shutdown()

    asyncio.run(main())


def test_async_engine_answers_image_requests_like_the_hf_backend(tmp_path: Path) -> None:
    """The policy application's engine takes images (one <image> per image, its tokenizer on):
    greedy answers for two images and a text-only prompt match ``HFBackend``'s on the same weights."""
    pytest.importorskip("vllm")
    import numpy as np
    from transformers import AutoProcessor

    from k15ray.models import create_model
    from k15ray.prompting import encode_vision_prompt
    from k15ray.rollout.hf import HFBackend
    from k15ray.serve.vllm_async import AsyncVLLMBackend
    from k15ray.types import GenerationRequest, SamplingParams

    vl_dir = create_model("tiny-vl", tmp_path / "tiny-vl", seed=0)
    processor = AutoProcessor.from_pretrained(str(vl_dir))
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    white = np.full((64, 64, 3), 255, np.uint8)
    requests = [GenerationRequest(f"r{i}", tuple(encode_vision_prompt(processor, "How many?", [im])), 8, images=(im,))
                for i, im in enumerate((noise, white))]
    requests.append(GenerationRequest("text", tuple(encode_vision_prompt(processor, "How many?", [])), 8))
    greedy = SamplingParams(temperature=0.0, ignore_eos=True, detect_repeats=False)
    hf = HFBackend.from_pretrained(vl_dir, device="cuda").generate(requests, greedy)

    async def main() -> list[tuple[int, ...]]:
        backend = AsyncVLLMBackend(vl_dir, gpu_memory_utilization=0.2, enforce_eager=True, dtype="float32")
        try:
            results = await asyncio.gather(*(backend.agenerate(r, greedy) for r in requests))
            return [r.token_ids for r in results]
        finally:
            backend.shutdown()

    assert asyncio.run(main()) == [h.token_ids for h in hf]
