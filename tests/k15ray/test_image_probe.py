"""The image probe: a backend that shows the model its images passes, one that drops them is named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from k15ray.models import create_model
from k15ray.rollout.hf import HFBackend
from k15ray.rollout.image_probe import check_images_reach_model, images_reach_model
from k15ray.types import GenerationRequest, GenerationResult

IMAGE_TOKEN, PATCHES = 126, 36  # tiny-vl


class DroppingImages:
    """Generates greedily as an engine that never merges the image features does (what vLLM 0.26
    did on the H100): the language model reads the placeholders as ordinary token embeddings."""

    def __init__(self, backend: HFBackend, greedy_without_image_features: Callable[..., Any]) -> None:
        self.backend, self.greedy = backend, greedy_without_image_features

    def generate(self, requests: list[GenerationRequest], params: Any) -> list[GenerationResult]:
        return [GenerationResult(r.request_id, *self.greedy(self.backend.model, list(r.token_ids), r.max_new_tokens),
                                 "length", 0)
                for r in requests]


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> HFBackend:
    vl_dir: Path = create_model("tiny-vl", tmp_path_factory.mktemp("vl") / "tiny-vl", seed=0)
    return HFBackend.from_pretrained(vl_dir)


def test_a_backend_that_shows_the_images_passes(backend: HFBackend) -> None:
    assert images_reach_model(backend, IMAGE_TOKEN, PATCHES) is True
    check_images_reach_model(backend, IMAGE_TOKEN, PATCHES, "the HF backend")  # no error


def test_a_backend_that_drops_the_images_is_named(
    backend: HFBackend, greedy_without_image_features: Callable[..., Any]
) -> None:
    dropping = DroppingImages(backend, greedy_without_image_features)
    assert images_reach_model(dropping, IMAGE_TOKEN, PATCHES) is False
    with pytest.raises(RuntimeError, match="same tokens and log-probs for a black and a white image"):
        check_images_reach_model(dropping, IMAGE_TOKEN, PATCHES, "the vLLM engine")
