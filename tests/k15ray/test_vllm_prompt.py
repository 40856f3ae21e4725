"""The vLLM backend's token prompt of a vision request: one <image> per image, as vLLM expands it."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import LlavaConfig, Qwen2Config

from k15ray.errors import UserError
from k15ray.models.vision_language import check_request_images
from k15ray.rollout.vllm_prompts import EnginePrompts, collapse_image_runs, processor_cache_kwargs
from k15ray.types import GenerationRequest

IMG = 126
BLACK = np.zeros((48, 48, 3), np.uint8)


def test_each_image_run_becomes_one_placeholder() -> None:
    expanded = [4, *[IMG] * 36, 52, 33, *[IMG] * 36, 5]
    assert collapse_image_runs(expanded, IMG, 36) == [4, IMG, 52, 33, IMG, 5]
    adjacent = [4, *[IMG] * 72, 5]  # two images with no text between
    assert collapse_image_runs(adjacent, IMG, 36) == [4, IMG, IMG, 5]
    assert collapse_image_runs([4, 52, 5], IMG, 36) == [4, 52, 5]


def test_placeholders_that_do_not_match_the_images_are_named() -> None:
    with pytest.raises(ValueError, match="run of 35 image placeholders"):
        collapse_image_runs([4, *[IMG] * 35, 5], IMG, 36)
    # the count against the images: check_request_images, which the vLLM backend runs on every
    # request before it collapses any (as the HF backend does)
    config = LlavaConfig(image_token_index=IMG, image_seq_length=36)
    one_image_of_placeholders = GenerationRequest("r", (4, *[IMG] * 36, 5), 1, images=(BLACK, BLACK))
    with pytest.raises(UserError, match="2 image\\(s\\) but 36 image tokens"):
        check_request_images(config, one_image_of_placeholders)


def test_engine_prompts_check_each_request_before_collapsing_it() -> None:
    prompts = EnginePrompts.of(LlavaConfig(image_token_index=IMG, image_seq_length=36))
    assert prompts.sees_images and prompts.logit_bias == {IMG: -100.0}
    assert prompts.head(GenerationRequest("r", (4, *[IMG] * 36, 5), 1, images=(BLACK,))) == [4, IMG, 5]
    assert prompts.head(GenerationRequest("t", (4, 5), 1)) == [4, 5]
    with pytest.raises(UserError, match="2 image\\(s\\) but 36 image tokens"):
        prompts.head(GenerationRequest("r", (4, *[IMG] * 36, 5), 1, images=(BLACK, BLACK)))
    text_only = EnginePrompts.of(Qwen2Config(vocab_size=200))
    assert (text_only.sees_images, text_only.logit_bias) == (False, None)
    with pytest.raises(UserError, match="text-only policy"):
        text_only.head(GenerationRequest("r", (4, 5), 1, images=(BLACK,)))


def test_the_engine_ids_of_a_request_must_be_its_own() -> None:
    request = GenerationRequest("r", (4, *[IMG] * 36, 5), 1, images=(BLACK,))
    EnginePrompts.check_engine_ids(request, [4, *[IMG] * 36, 5], "use rollout backend 'hf'")
    with pytest.raises(RuntimeError, match="prompt of 38 tokens with 1 image\\(s\\) into 73.*use rollout backend 'hf'"):
        EnginePrompts.check_engine_ids(request, [4, *[IMG] * 71, 5], "use rollout backend 'hf'")


@pytest.fixture
def vllm_tiny_vl(tmp_path):
    """tiny-vl's directory where vLLM imports with a platform (the GPU machine, a CPU build of
    vLLM), with k15ray's vLLM plugin registered; the test is skipped elsewhere (CI)."""
    vllm = pytest.importorskip("vllm")
    from vllm.platforms import current_platform

    if not current_platform.device_type:
        pytest.skip(f"vLLM {vllm.__version__} here has no platform (no GPU, no CPU build)")
    from k15ray.models import create_model
    from k15ray.rollout.vllm_plugin import register

    register()
    return str(create_model("tiny-vl", tmp_path / "tiny-vl", seed=0))


def test_vllm_expands_the_backends_prompt_into_the_requests_ids(vllm_tiny_vl: str) -> None:
    """vLLM's own input processor (no engine, no GPU) on the backend's prompts: the collapsed prompt,
    alone and with a partial rollout's earlier tokens, comes back as exactly the request's ids, for
    one and two images; the expanded one does not (the bug met on the H100 on 2026-12-08). Runs
    wherever vLLM imports with a platform (the GPU machine, a CPU build); skipped in CI."""
    from transformers import AutoProcessor
    from vllm.engine.arg_utils import EngineArgs
    from vllm.inputs.preprocess import InputPreprocessor

    from k15ray.prompting import encode_vision_prompt

    vl_dir = vllm_tiny_vl
    processor = AutoProcessor.from_pretrained(vl_dir)
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    # with vLLM's processor cache (its default) and without (what processor_cache_kwargs may ask)
    for cache in ({}, {"mm_processor_cache_gb": 0}):
        engine_config = EngineArgs(model=vl_dir, enforce_eager=True, **cache).create_engine_config()
        prompts = EnginePrompts.of(engine_config.model_config.hf_config)  # as both vLLM backends make it
        preprocess = InputPreprocessor(engine_config).preprocess
        for images in ((noise,), (noise, BLACK)):
            ids = list(encode_vision_prompt(processor, "How many dots?", list(images)))
            request = GenerationRequest("r", tuple(ids), 4, images=images)
            for earlier in ([], [5, 6, 7]):
                got = preprocess(prompts.prompt(prompts.head(request), request, earlier))["prompt_token_ids"]
                assert list(got) == ids + earlier, (cache, len(images), len(earlier), len(got))
            expanded = preprocess(prompts.prompt(ids, request))["prompt_token_ids"]
            assert len(expanded) == len(ids) + 35 * len(images)  # what the engine saw before the fix


def test_the_processor_cache_is_off_where_the_processor_refuses_a_placeholder_without_image(tmp_path) -> None:
    """vLLM 0.26 profiles with the text ``<image>`` and no image when its processor cache is on;
    transformers 5.23 and later refuse that (bisected over the wheels: 5.22.2 accepts it)."""
    import transformers
    from packaging.version import Version

    from k15ray.models import create_model

    vl_dir = create_model("tiny-vl", tmp_path / "tiny-vl", seed=0)
    refuses = Version(transformers.__version__) >= Version("5.23")
    assert processor_cache_kwargs(vl_dir) == ({"mm_processor_cache_gb": 0} if refuses else {})
    assert processor_cache_kwargs(create_model("tiny", tmp_path / "tiny", seed=0)) == {}


def test_vllm_input_processor_starts_for_tiny_vl_with_those_arguments(vllm_tiny_vl: str) -> None:
    """vLLM's own ``InputProcessor`` (the engine's first multi-modal step: it profiles the
    processor with dummy inputs) starts for tiny-vl with ``processor_cache_kwargs``; where they turn
    the cache off, it fails without them. Skipped where vLLM has no platform, as above."""
    from vllm.engine.arg_utils import EngineArgs
    from vllm.v1.engine.input_processor import InputProcessor

    vl_dir = vllm_tiny_vl
    kwargs = processor_cache_kwargs(vl_dir)
    InputProcessor(EngineArgs(model=vl_dir, enforce_eager=True, **kwargs).create_engine_config())
    if kwargs:
        with pytest.raises(ValueError, match="LlavaProcessor"):
            InputProcessor(EngineArgs(model=vl_dir, enforce_eager=True).create_engine_config())
