"""The image probe: a backend that shows the model its images passes, one that drops them is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from k15ray.models import create_model
from k15ray.rollout.hf import HFBackend
from k15ray.rollout.image_probe import check_images_reach_model, images_reach_model
from k15ray.types import GenerationRequest, GenerationResult

IMAGE_TOKEN, PATCHES = 126, 36  # tiny-vl


def greedy_without_image_features(model: Any, token_ids: list[int], n: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """A loaded LLaVA-style model's greedy tokens (and their log-probs) with every <image>
    placeholder left as its plain token embedding."""
    ids = torch.tensor([token_ids])
    tokens: list[int] = []
    logps: list[float] = []
    with torch.no_grad():
        for _ in range(n):
            hidden = model.model.language_model(inputs_embeds=model.get_input_embeddings()(ids)).last_hidden_state
            logp = torch.log_softmax(model.lm_head(hidden)[0, -1], -1)
            tokens.append(int(logp.argmax()))
            logps.append(float(logp[tokens[-1]]))
            ids = torch.cat([ids, torch.tensor([[tokens[-1]]])], dim=1)
    return tuple(tokens), tuple(logps)


class DroppingImages:
    """Generates greedily as an engine that never merges the image features would: the language
    model reads the placeholders as ordinary token embeddings."""

    def __init__(self, backend: HFBackend) -> None:
        self.backend = backend

    def generate(self, requests: list[GenerationRequest], params: Any) -> list[GenerationResult]:
        model = self.backend.model
        return [GenerationResult(r.request_id, *greedy_without_image_features(model, list(r.token_ids), r.max_new_tokens),
                                 "length", 0)
                for r in requests]


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> HFBackend:
    vl_dir: Path = create_model("tiny-vl", tmp_path_factory.mktemp("vl") / "tiny-vl", seed=0)
    return HFBackend.from_pretrained(vl_dir)


def test_a_backend_that_shows_the_images_passes(backend: HFBackend) -> None:
    assert images_reach_model(backend, IMAGE_TOKEN, PATCHES) is True
    check_images_reach_model(backend, IMAGE_TOKEN, PATCHES, "the HF backend")  # no error


def test_a_backend_that_drops_the_images_is_named(backend: HFBackend) -> None:
    dropping = DroppingImages(backend)
    assert images_reach_model(dropping, IMAGE_TOKEN, PATCHES) is False
    with pytest.raises(RuntimeError, match="same tokens and log-probs for a black and a white image"):
        check_images_reach_model(dropping, IMAGE_TOKEN, PATCHES, "the vLLM engine")
