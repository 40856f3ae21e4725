"""LLaVA weight names on disk and on the way to vLLM (k15ray/models/llava_names.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForImageTextToText, LlavaForConditionalGeneration

from k15ray.errors import UserError
from k15ray.models import create_model
from k15ray.models.llava_names import (
    check_llava_names,
    flat_tower_names,
    llava_weight_name,
    llava_weights,
    write_llava_names,
)
from k15ray.vision_training import train_vision_sft


def _names(model_dir: Path) -> list[str]:
    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        return list(f.keys())  # noqa: SIM118 (not a dict)


@pytest.fixture(scope="module")
def vl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_model("tiny-vl", tmp_path_factory.mktemp("vl") / "tiny-vl", seed=0)


def test_names_of_a_clip_tower_get_their_vision_model_level() -> None:
    clip = "clip_vision_model"
    assert llava_weight_name("model.vision_tower.embeddings.patch_embedding.weight", clip) == (
        "model.vision_tower.vision_model.embeddings.patch_embedding.weight")  # the learner's memory
    assert llava_weight_name("vision_tower.encoder.layers.0.mlp.fc1.bias", clip) == (
        "vision_tower.vision_model.encoder.layers.0.mlp.fc1.bias")  # a checkpoint built from a config
    for unchanged in ("vision_tower.vision_model.pre_layrnorm.weight", "model.language_model.layers.0.mlp.up_proj.weight",
                      "lm_head.weight", "model.multi_modal_projector.linear_1.bias"):
        assert llava_weight_name(unchanged, clip) == unchanged
    assert llava_weight_name("model.vision_tower.embeddings.x", "siglip_vision_model") == "model.vision_tower.embeddings.x"
    assert llava_weight_name("model.vision_tower.embeddings.x", None) == "model.vision_tower.embeddings.x"  # text model
    assert dict(llava_weights([("model.vision_tower.post_layernorm.bias", 1)], clip)) == {
        "model.vision_tower.vision_model.post_layernorm.bias": 1}


def test_tiny_vl_and_the_models_trained_from_it_are_saved_with_llava_names(vl_dir: Path, tmp_path: Path) -> None:
    names = _names(vl_dir)
    assert "vision_tower.vision_model.embeddings.patch_embedding.weight" in names
    assert flat_tower_names(vl_dir) == [] and sum("vision_tower." in n for n in names) > 20
    check_llava_names(vl_dir)  # no error
    from k15ray.envs.vision import VisionEnv

    env = VisionEnv(source="synthetic", kinds=("counting",), difficulty=1, num_prompts=4, image_store="memory")
    sft = train_vision_sft(vl_dir, tmp_path / "sft", env.prompts, env.prompt_images, steps=1, batch_size=2)
    assert flat_tower_names(sft.model_dir) == []  # a model loaded from LLaVA names saves them back


def test_a_flat_checkpoint_is_refused_for_vllm_and_rewritten_in_place(vl_dir: Path, tmp_path: Path) -> None:
    reference = AutoModelForImageTextToText.from_pretrained(str(vl_dir))
    flat_dir = tmp_path / "flat"
    fresh = LlavaForConditionalGeneration(reference.config)  # built from a config: it saves the flat names
    fresh.load_state_dict(reference.state_dict())
    fresh.save_pretrained(str(flat_dir))
    flat = flat_tower_names(flat_dir)
    assert flat and flat[0].startswith("vision_tower.") and "vision_model" not in flat[0]
    with pytest.raises(UserError, match=r"names \d+ vision-tower weights the flat way.*write_llava_names"):
        check_llava_names(flat_dir)
    from k15ray.rollout.vllm import VLLMBackend

    with pytest.raises(UserError, match="flat way"):  # before vLLM is even imported
        VLLMBackend(flat_dir)
    assert write_llava_names(flat_dir) == len(flat)
    assert flat_tower_names(flat_dir) == [] and write_llava_names(flat_dir) == 0
    reloaded = AutoModelForImageTextToText.from_pretrained(str(flat_dir))
    for (name, a), b in zip(reference.state_dict().items(), reloaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
