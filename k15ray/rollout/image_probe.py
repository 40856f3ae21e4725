"""Does a rollout backend show the model its images? A probe run once when an engine starts.

A vision-language engine that drops the image features still generates: the placeholders then
act as ordinary tokens, and K15 would train on image-blind rollouts without an error. (On the
H100 on 2026-12-07 vLLM 0.26 generated for ``tiny-vl`` with its images misplaced instead, a
prompt's expanded placeholders expanded again, and nothing failed: the vLLM backend's
engine-prompt check guards that; docs/vision.md, "On the GPU".) The probe asks for the same few
greedy tokens after a black and after a white image: a model that sees them answers differently
somewhere its next token is uncertain; an engine that drops them answers identically, to the
last digit of every log-prob.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from k15ray.types import GenerationRequest, SamplingParams

PROBE_TOKENS = 4
UNCERTAIN_LOGP = -1e-3  # a token this unlikely or less leaves room for the image to change it


def images_reach_model(backend: Any, image_token_id: int, tokens_per_image: int, size: int = 48) -> bool | None:
    """True when ``backend`` answers a black and a white image differently, False when it gives
    identical tokens and log-probs although some token was uncertain (the images were dropped),
    None when every token was certain either way (nothing to conclude)."""
    prompt = (image_token_id,) * tokens_per_image
    images = (np.zeros((size, size, 3), np.uint8), np.full((size, size, 3), 255, np.uint8))
    requests = [GenerationRequest(f"image-probe-{i}", prompt, PROBE_TOKENS, images=(image,))
                for i, image in enumerate(images)]
    params = SamplingParams(temperature=0.0, logprobs=True, detect_repeats=False, ignore_eos=True)
    black, white = backend.generate(requests, params)
    if black.token_ids != white.token_ids or not np.allclose(black.logprobs, white.logprobs, rtol=0, atol=1e-6):
        return True
    return False if min(black.logprobs) < UNCERTAIN_LOGP else None


def check_images_reach_model(backend: Any, image_token_id: int, tokens_per_image: int, engine: str) -> None:
    """A ``RuntimeError`` naming the problem when ``images_reach_model`` says the images were dropped."""
    if images_reach_model(backend, image_token_id, tokens_per_image) is False:
        raise RuntimeError(
            f"{engine} gives the same tokens and log-probs for a black and a white image: it is not showing the "
            "model its images, so rollouts would be image-blind; see docs/vision.md, 'On the GPU', or use "
            "rollout backend 'hf'"
        )
