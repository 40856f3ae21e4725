"""The vLLM backend's token prompt of a vision request: one <image> per image, as vLLM expands it."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import LlavaConfig

from k15ray.errors import UserError
from k15ray.models.vision_language import check_request_images
from k15ray.rollout.vllm import collapse_image_runs
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
