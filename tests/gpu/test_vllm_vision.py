"""GPU: vLLM loads the project's tiny-vl (LLaVA-style) and shows each request its image.

Run on the lent GPU machine: ``pytest -q tests/gpu/test_vllm_vision.py`` (skipped without CUDA)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU with vLLM")


def test_vllm_generates_with_images_like_the_hf_backend(tmp_path: Path) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from k15ray.models import create_model
    from k15ray.prompting import encode_vision_prompt
    from k15ray.rollout.hf import HFBackend
    from k15ray.rollout.vllm import VLLMBackend
    from k15ray.rollout.vllm_prompts import EnginePrompts
    from k15ray.types import GenerationRequest, SamplingParams

    vl_dir = create_model("tiny-vl", tmp_path / "tiny-vl", seed=0)
    processor = AutoProcessor.from_pretrained(str(vl_dir))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), np.zeros((64, 64, 3), np.uint8),
              np.full((64, 64, 3), 255, np.uint8)]
    requests = [GenerationRequest(f"r{i}", tuple(encode_vision_prompt(processor, "How many?", [im])), 16, images=(im,))
                for i, im in enumerate(images)]
    requests.append(GenerationRequest("text", tuple(encode_vision_prompt(processor, "How many?", [])), 16))
    params = SamplingParams(temperature=0.0, logprobs=True, detect_repeats=False, ignore_eos=True)
    vllm = VLLMBackend(vl_dir, gpu_memory_utilization=0.2, enforce_eager=True, dtype="float32", enable_sleep_mode=False)
    got = vllm.generate(requests, params)
    hf = HFBackend.from_pretrained(vl_dir, device="cuda").generate(requests, params)
    assert all(126 not in g.token_ids for g in got)  # the image placeholder is never sampled
    # vLLM expands each <image> of a token prompt itself: the engine's prompt is the learner's
    # (on the H100 on 2026-12-07 an expanded prompt became 83 tokens, 36 features + 35 plain <image>)
    engine_prompts = EnginePrompts.of(vllm.llm.llm_engine.model_config.hf_config)
    raw = vllm.llm.generate([engine_prompts.prompt(engine_prompts.head(requests[0]), requests[0])],
                           vllm.sampling_params(requests[0], params, 1))
    assert list(raw[0].prompt_token_ids) == list(requests[0].token_ids)
    # every request compared before failing: which of them differ tells where to look (the noise
    # image r0 alone: pixel preprocessing; all image requests: the tower or projector; all: the LM)
    differ = [(g.request_id, g.token_ids[:4], h.token_ids[:4], g.logprobs[:2], h.logprobs[:2])
              for g, h in zip(got, hf, strict=True)
              if g.token_ids[:4] != h.token_ids[:4] or not np.allclose(g.logprobs[:4], h.logprobs[:4], atol=2e-2)]
    assert not differ, differ
    assert len({g.token_ids for g in got[:3]}) > 1 or got[0].logprobs[0] != pytest.approx(got[1].logprobs[0], abs=1e-3)
    # The learner's weights, by transformers 5's in-memory names (model.vision_tower.embeddings...),
    # load into the engine: changed tower weights change what the engine says about the images.
    learner = AutoModelForImageTextToText.from_pretrained(str(vl_dir)).cuda()
    state = learner.state_dict()
    assert any(k.startswith("model.vision_tower.embeddings.") for k in state)
    vllm.update_weights(state, version=1)  # the same weights: the same answers
    again = vllm.generate(requests, params)
    assert [g.token_ids for g in again] == [g.token_ids for g in got]
    with torch.no_grad():
        state["model.vision_tower.embeddings.patch_embedding.weight"].mul_(-3.0)
    vllm.update_weights(state, version=2)
    # the same three images again: vLLM's encoder cache holds their features from version 1 unless
    # update_weights resets it (apply_model does not), so they must change here
    changed = vllm.generate(requests, params)
    assert [g.logprobs[:4] for g in changed[:3]] != [g.logprobs[:4] for g in got[:3]]
    assert changed[3].token_ids == got[3].token_ids  # the text-only request sees no tower
