"""A request's prompt as a vLLM engine takes it: shared by the rollout engine
(``k15ray.rollout.vllm``) and the policy application's async engine (``k15ray.serve.vllm_async``).

Requests hold the expanded prompt of a vision-language policy: each image as its run of
``image_seq_length`` placeholders, what the HF backend and the learner feed the model. vLLM's
processor treats every token prompt as not yet expanded and replaces each ``<image>`` with a run
again, so an expanded prompt would reach the engine with 36 x 36 placeholders and the image
features on only the first 36 (met on an H100 on 2026-12-08, docs/vision.md). The engine is sent
one ``<image>`` per image instead, which it expands back into exactly the request's ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k15ray.models.vision_language import check_request_images, is_vision_model_dir
from k15ray.types import GenerationRequest


def collapse_image_runs(token_ids: Sequence[int], image_token: int, tokens_per_image: int) -> list[int]:
    """``token_ids`` with each image's run of ``tokens_per_image`` placeholders cut to one.

    A prompt whose placeholders do not come in whole runs is a ``ValueError`` (that their number
    matches the images is ``check_request_images``'s check, made first).
    """
    out: list[int] = []
    run = 0
    for token in [*token_ids, -1]:
        if token == image_token:
            run += 1
            continue
        if run:
            if run % tokens_per_image:
                raise ValueError(
                    f"a run of {run} image placeholders is not a whole number of images of "
                    f"{tokens_per_image} tokens: encode the prompt with encode_vision_prompt"
                )
            out.extend([image_token] * (run // tokens_per_image))
            run = 0
        if token != -1:
            out.append(token)
    return out


@dataclass(frozen=True)
class EnginePrompts:
    """How one model's requests go to a vLLM engine; ``EnginePrompts.of(hf_config)``.

    ``image_token`` is None for a text-only policy; ``tokens_per_image`` is the placeholders per
    image of a vision-language one.
    """

    hf_config: Any
    image_token: int | None
    tokens_per_image: int

    @classmethod
    def of(cls, hf_config: Any) -> EnginePrompts:
        image_token = getattr(hf_config, "image_token_id", None)
        return cls(
            hf_config,
            None if image_token is None else int(image_token),
            int(getattr(hf_config, "image_seq_length", None) or 0),
        )

    @property
    def sees_images(self) -> bool:
        return self.image_token is not None and self.tokens_per_image > 0

    @property
    def logit_bias(self) -> dict[int, float] | None:
        """A response never holds an image placeholder (as in the HF backend): a bias of -100."""
        return None if self.image_token is None else {self.image_token: -100.0}

    def head(self, request: GenerationRequest) -> list[int]:
        """The request's prompt ids as the engine takes them, after ``check_request_images`` (the
        HF backend's check: a ``UserError`` for placeholders that do not match the images, or
        images for a text-only policy)."""
        check_request_images(self.hf_config, request)
        if not request.images:
            return list(request.token_ids)
        assert self.image_token is not None  # check_request_images refuses images otherwise
        # a config without image_seq_length: check_request_images took the placeholders per image
        per_image = self.tokens_per_image or request.token_ids.count(self.image_token) // len(request.images)
        return collapse_image_runs(request.token_ids, self.image_token, per_image)

    @staticmethod
    def check_engine_ids(request: GenerationRequest, engine_ids: Sequence[int] | None, fix: str) -> None:
        """A ``RuntimeError`` unless the ids the engine ran for ``request`` (its output's
        ``prompt_token_ids``) are the request's own, what the learner scores; ``fix`` ends the
        message (which backend to use instead)."""
        got = list(engine_ids or ())
        if got != list(request.token_ids):
            raise RuntimeError(
                f"the vLLM engine turned request {request.request_id!r}'s prompt of {len(request.token_ids)} "
                f"tokens with {len(request.images)} image(s) into {len(got)}: its image placeholders no "
                f"longer match the learner's; {fix} and report the vLLM version"
            )

    @staticmethod
    def prompt(head: Sequence[int], request: GenerationRequest, earlier: Sequence[int] = ()) -> Any:
        """vLLM's ``TokensPrompt`` of ``head`` (``head(request)``) + earlier tokens (a partial
        rollout's); the request's images go along as ``multi_modal_data``."""
        from vllm.inputs import TokensPrompt

        prompt = TokensPrompt(prompt_token_ids=[*head, *earlier])
        if request.images:
            prompt["multi_modal_data"] = {"image": list(request.images)}
        return prompt


def processor_cache_kwargs(model_dir: str | Path) -> dict[str, Any]:
    """Engine arguments a vision-language policy's processor needs: ``{"mm_processor_cache_gb": 0}``
    when its processor refuses a text with an image placeholder and no image, else none.

    When vLLM 0.26 starts an engine with its multi-modal processor cache on, it profiles with the
    dummy text ``<image>`` sent to the Hugging Face processor without the image (the image goes
    through the cache apart). transformers 5.23 and later refuse that ("Found 1 <image> tokens in
    the text but no images were passed"), so the engine fails to start (seen with vLLM 0.26's
    processor and transformers 5.25 on the CPU). Without the cache, vLLM sends text and images
    together. The probe asks the processor itself, so an older transformers keeps the cache.
    """
    if not is_vision_model_dir(model_dir):
        return {}
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(model_dir))
    try:
        processor(text=getattr(processor, "image_token", "<image>"))
    except ValueError:
        return {"mm_processor_cache_gb": 0}
    return {}
