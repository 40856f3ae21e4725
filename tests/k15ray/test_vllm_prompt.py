"""The vLLM backend's token prompt of a vision request: one <image> per image, as vLLM expands it."""

from __future__ import annotations

import pytest

from k15ray.rollout.vllm import collapse_image_runs

IMG = 126


def test_each_image_run_becomes_one_placeholder() -> None:
    expanded = [4, *[IMG] * 36, 52, 33, *[IMG] * 36, 5]
    assert collapse_image_runs(expanded, IMG, 36, 2) == [4, IMG, 52, 33, IMG, 5]
    adjacent = [4, *[IMG] * 72, 5]  # two images with no text between
    assert collapse_image_runs(adjacent, IMG, 36, 2) == [4, IMG, IMG, 5]
    assert collapse_image_runs([4, 52, 5], IMG, 36, 0) == [4, 52, 5]


def test_placeholders_that_do_not_match_the_images_are_named() -> None:
    with pytest.raises(ValueError, match="run of 35 image placeholders"):
        collapse_image_runs([4, *[IMG] * 35, 5], IMG, 36, 1)
    with pytest.raises(ValueError, match="1 image\\(s\\) of placeholders for 2 image"):
        collapse_image_runs([4, *[IMG] * 36, 5], IMG, 36, 2)
