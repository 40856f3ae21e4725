"""The tiny vision-language policy: Auto* loading, <image> expansion, images reaching the LM, errors."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import (
    AutoConfig,
    AutoModelForImageTextToText,
    AutoProcessor,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)

from k15ray.models import (
    IMAGE_TOKEN,
    VISION_PRESETS,
    build_tokenizer,
    check_image_input,
    check_vision_model_dir,
    count_parameters,
    create_model,
    load_vision_policy,
)

PROMPT = "<|user|><image>How many circles?<|end|><|assistant|>"
PATCHES = 36  # (48 / 8)^2 patches of the tiny-vl tower


@pytest.fixture(scope="module")
def vl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_model("tiny-vl", tmp_path_factory.mktemp("vl") / "tiny-vl", seed=0)


@pytest.fixture(scope="module")
def loaded(vl_dir: Path) -> tuple[Any, Any]:
    model = AutoModelForImageTextToText.from_pretrained(str(vl_dir))
    model.eval()
    return model, AutoProcessor.from_pretrained(str(vl_dir))


def _image(seed: int, size: int = 256) -> Image.Image:
    return Image.fromarray((np.random.RandomState(seed).rand(size, size, 3) * 255).astype(np.uint8))


def test_saved_dir_loads_with_auto(vl_dir: Path, loaded: tuple[Any, Any]) -> None:
    for name in ("config.json", "model.safetensors", "processor_config.json", "preprocessor_config.json",
                 "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (vl_dir / name).is_file(), name
    model, processor = loaded
    assert isinstance(model, LlavaForConditionalGeneration) and isinstance(processor, LlavaProcessor)
    image_id = processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    # the character vocabulary plus <image> as its last id; the embeddings cover it
    assert image_id == len(build_tokenizer()) == model.config.image_token_id
    assert model.config.get_text_config().vocab_size == len(processor.tokenizer)
    assert processor.tokenizer.encode(f"a{IMAGE_TOKEN}b", add_special_tokens=False)[1] == image_id
    assert model.config.image_seq_length == VISION_PRESETS["tiny-vl"].num_image_tokens == PATCHES
    assert "chat_template" in (vl_dir / "tokenizer_config.json").read_text()  # where vLLM reads it


def test_tiny_vl_parameter_count_by_hand(loaded: tuple[Any, Any]) -> None:
    model, _ = loaded
    # tower: patch conv 3*8*8*64 = 12,288 (no bias) + CLS 64 + positions 37*64 = 2,368 + pre-LN 128;
    # per layer: q,k,v,o 4*(64*64+64) = 16,640; 2 LNs 256; fc1 64*256+256 = 16,640; fc2 256*64+64 = 16,448
    # = 49,984, times 2 = 99,968; post-LN 128 -> 12,288+64+2,368+128+99,968+128 = 114,944
    assert count_parameters(model.model.vision_tower) == 114_944
    # projector: 64*128+128 = 8,320 and 128*128+128 = 16,512 -> 24,832
    assert count_parameters(model.model.multi_modal_projector) == 24_832
    # language model: the tiny Llama's 1,049,600 + 128 (test_presets.py) + tied embeddings 127*128 = 16,256
    assert count_parameters(model.model.language_model) == 1_049_600 + 128 + 16_256
    assert count_parameters(model) == 114_944 + 24_832 + 1_065_984  # 1,205,760; lm_head tied


def test_processor_expands_image_token_to_patch_count(loaded: tuple[Any, Any]) -> None:
    model, processor = loaded
    batch = processor(images=[_image(0)], text=[PROMPT], return_tensors="pt")
    image_id = model.config.image_token_id
    assert int((batch["input_ids"] == image_id).sum()) == PATCHES
    # the text around the placeholder is unchanged: len(PROMPT) characters, 3 + 1 specials as one token each
    text_tokens = len(processor.tokenizer.encode(PROMPT, add_special_tokens=False)) - 1
    assert batch["input_ids"].shape == (1, text_tokens + PATCHES)
    assert batch["pixel_values"].shape == (1, 3, 48, 48)  # 256 x 256 resized to the tower's size


def _logits(model: Any, processor: Any, image: Image.Image) -> torch.Tensor:
    batch = processor(images=[image], text=[PROMPT], return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits[0]  # (T, V)


def test_forward_logits_shape_and_the_image_reaches_the_lm(loaded: tuple[Any, Any]) -> None:
    model, processor = loaded
    first = _logits(model, processor, _image(0))
    # (T, V): <|user|> 1 + image 36 + "How many circles?" 17 + <|end|><|assistant|> 2 = 56 tokens; 127 ids
    assert first.shape == (56, 127)
    assert torch.equal(first, _logits(model, processor, _image(0)))
    other = _logits(model, processor, _image(1))
    before, after = slice(0, 1), slice(1 + PATCHES, None)  # <|user|> | 36 image tokens | the question
    assert torch.equal(first[before], other[before])  # causal: nothing before the image sees it
    assert (first[after] - other[after]).abs().max() > 1e-3  # every later token does


def test_generate_with_an_image(loaded: tuple[Any, Any]) -> None:
    model, processor = loaded
    batch = processor(images=[_image(2)], text=[PROMPT], return_tensors="pt")
    prompt_len = batch["input_ids"].shape[1]
    out = model.generate(**batch, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert out.shape == (1, prompt_len + 4)
    assert torch.equal(out[:, :prompt_len], batch["input_ids"])


def test_chat_template_renders_image_parts(loaded: tuple[Any, Any]) -> None:
    model, processor = loaded
    image_part = {"type": "image", "image": _image(3)}
    messages = [{"role": "user", "content": [image_part, {"type": "text", "text": "How many circles?"}]}]
    assert processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) == PROMPT
    openai_part = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    openai = [{"role": "user", "content": [openai_part, {"type": "text", "text": "How many circles?"}]}]
    rendered = processor.tokenizer.apply_chat_template(openai, add_generation_prompt=True, tokenize=False)
    assert rendered == PROMPT
    # a string content renders exactly as the text policy's template renders it
    text_only = [{"role": "system", "content": "Think."}, {"role": "user", "content": "2+3?"}]
    assert processor.apply_chat_template(text_only, add_generation_prompt=True, tokenize=False) == (
        build_tokenizer().apply_chat_template(text_only, add_generation_prompt=True, tokenize=False)
    )
    batch = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    assert int((batch["input_ids"] == model.config.image_token_id).sum()) == PATCHES
    assert batch["pixel_values"].shape == (1, 3, 48, 48)


def test_bad_model_directories_say_what_to_do(vl_dir: Path, tmp_path: Path) -> None:
    model, processor = load_vision_policy(vl_dir)
    assert isinstance(model, LlavaForConditionalGeneration) and not model.training
    text_dir = create_model("tiny", tmp_path / "tiny")
    text_only = r"text-only model \(model_type 'llama'.*create_model\('tiny-vl'"
    with pytest.raises(ValueError, match=text_only) as err:
        check_vision_model_dir(text_dir, "policy.model_dir")
    assert "\n" not in str(err.value) and str(err.value).startswith("policy.model_dir: ")
    no_processor = tmp_path / "no-processor"
    shutil.copytree(vl_dir, no_processor)
    for name in ("processor_config.json", "preprocessor_config.json"):
        (no_processor / name).unlink()
    with pytest.raises(ValueError, match="no image processor .*processor.save_pretrained"):
        check_vision_model_dir(no_processor)
    with pytest.raises(ValueError, match="no such directory"):
        load_vision_policy(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"valid presets are \['small', 'tiny', 'tiny-vl'\]"):
        create_model("huge", tmp_path / "huge")


def test_an_image_for_a_text_only_policy(vl_dir: Path) -> None:
    text_config = AutoConfig.for_model("llama")
    expected = r"^prompt p1: 1 image\(s\) given to a text-only policy .*'tiny-vl'"
    with pytest.raises(ValueError, match=expected) as err:
        check_image_input(text_config, 1, "prompt p1")
    assert "\n" not in str(err.value)
    check_image_input(text_config, 0, "prompt p1")  # text prompts are fine
    check_image_input(AutoConfig.from_pretrained(str(vl_dir)), 2)


# ------------------------------------------------------------------ images through the HF backend


def _vl_requests(vl_dir: Path) -> tuple[Any, list[Any]]:
    from transformers import AutoProcessor

    from k15ray.prompting import encode_vision_prompt
    from k15ray.rollout.hf import HFBackend
    from k15ray.types import GenerationRequest

    backend = HFBackend.from_pretrained(vl_dir)
    processor = AutoProcessor.from_pretrained(str(vl_dir))
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    blank = np.zeros((64, 64, 3), np.uint8)
    requests = [
        GenerationRequest("noise", tuple(encode_vision_prompt(processor, "How many?", [noise])), 10, images=(noise,)),
        GenerationRequest("blank", tuple(encode_vision_prompt(processor, "How many?", [blank])), 10, images=(blank,)),
        GenerationRequest("text", tuple(encode_vision_prompt(processor, "How many?", [])), 10),
    ]
    return backend, requests


def test_hf_backend_shows_each_request_its_own_image(vl_dir: Path) -> None:
    from k15ray.types import SamplingParams

    backend, requests = _vl_requests(vl_dir)
    assert requests[0].token_ids.count(126) == 36 and 126 not in requests[2].token_ids
    params = SamplingParams(temperature=0.0, logprobs=True, detect_repeats=False)
    mixed = backend.generate(requests, params)  # two images and a text-only prompt in one batch
    alone = [backend.generate([r], params)[0] for r in requests]
    for m, a in zip(mixed, alone, strict=True):
        assert m.token_ids == a.token_ids
        assert np.allclose(m.logprobs, a.logprobs, atol=1e-4)
    assert mixed[0].logprobs[0] != pytest.approx(mixed[1].logprobs[0], abs=1e-4)  # the image matters
    assert all(126 not in m.token_ids for m in mixed)  # the placeholder is never sampled
    # a continuation (partial rollouts) with the image again equals the uninterrupted decode
    from dataclasses import replace

    first = backend.generate([replace(requests[0], max_new_tokens=4)], params)[0]
    rest = backend.generate([replace(requests[0], token_ids=requests[0].token_ids + first.token_ids, max_new_tokens=6)], params)[0]
    assert first.token_ids + rest.token_ids == mixed[0].token_ids


def test_hf_backend_rejects_images_it_cannot_show(vl_dir: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from k15ray.errors import UserError
    from k15ray.rollout.hf import HFBackend
    from k15ray.types import SamplingParams

    backend, requests = _vl_requests(vl_dir)
    params = SamplingParams(temperature=0.0)
    with pytest.raises(UserError, match="image tokens but no images"):
        backend.generate([replace(requests[0], images=())], params)
    with pytest.raises(UserError, match="2 image\\(s\\) but 36 image tokens"):
        backend.generate([replace(requests[0], images=requests[0].images * 2)], params)
    text_only = HFBackend.from_pretrained(create_model("tiny", tmp_path / "tiny"))
    with pytest.raises(UserError, match="text-only policy"):
        text_only.generate([replace(requests[2], images=requests[0].images)], params)
