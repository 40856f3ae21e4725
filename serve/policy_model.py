"""What the policy application serves: a rollout backend, its tokenizer, and prompt encoding.

``load_served_policy(config)`` picks the backend by name (``BACKEND_LOADERS``: ``hf`` =
``k15ray.rollout.hf.HFBackend``, batched by the deployment; ``vllm`` =
``k15ray.serve.vllm_async.AsyncVLLMBackend``, vLLM's async engine with its own continuous batching,
only where vLLM is installed) and loads the tokenizer of the same directory through
``AutoTokenizer``, so the built-in tiny model and a real checkpoint take the same path.

A vision-language directory (a config with a vision tower: ``is_vision_config``, e.g.
``create_model("tiny-vl", DIR)``) loads its processor through ``AutoProcessor`` instead; the
tokenizer is the processor's. Chat messages with images then go through the processor: its chat
template renders one ``<image>`` per image part, and the processor expands each into the image
tokens its vision tower fills (36 for ``tiny-vl``), as ``k15ray.prompting.encode_vision_prompt``
does for rollouts.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from k15ray.config.serve import PolicyServeConfig
from k15ray.types import GenerationRequest, GenerationResult, RolloutBackend, SamplingParams


@runtime_checkable
class AsyncBackend(Protocol):
    """A backend that batches by itself (continuous batching): the deployment hands it every
    request as it comes, without ``@serve.batch``."""

    async def agenerate(self, request: GenerationRequest, params: SamplingParams) -> GenerationResult:
        """Continue one request's token ids (awaited concurrently with many others)."""
        ...


@dataclass
class ServedPolicy:
    """A loaded policy: ``backend`` generates token ids, ``tokenizer`` turns text into them."""

    name: str
    backend: RolloutBackend | AsyncBackend
    tokenizer: Any
    stop_token_ids: tuple[int, ...]
    max_model_len: int | None = None
    """Context length (prompt + new tokens), from the model config; None = unknown."""
    processor: Any = None
    """A vision-language policy's processor (chat template, image placeholders); None = text-only."""

    @property
    def sees_images(self) -> bool:
        return self.processor is not None

    def encode_text(self, text: str) -> list[int]:
        """A raw completion prompt (``/v1/completions``)."""
        return list(self.tokenizer.encode(text))

    def encode_chat(self, messages: Sequence[dict[str, Any]], images: Sequence[Any] = ()) -> list[int]:
        """A conversation as the rollouts see it (``k15ray.prompting.encode_prompt``): the
        tokenizer's chat template with the assistant's generation prompt.

        With ``images`` (a vision-language policy; ``messages`` hold one ``{"type": "image"}``
        part per image, in the same order): the processor's chat template, then the processor,
        which expands each placeholder into the tower's image tokens. A count mismatch is a
        ``ValueError``."""
        if not images:
            from k15ray.prompting import encode_prompt

            return encode_prompt(self.tokenizer, list(messages))
        if self.processor is None:
            raise ValueError(f"{len(images)} image(s) given to the text-only policy {self.name!r}")
        from k15ray.prompting import encode_vision_messages

        return encode_vision_messages(self.processor, messages, images)

    def decode(self, token_ids: list[int]) -> str:
        return str(self.tokenizer.decode(token_ids, skip_special_tokens=False))


def _load_hf(config: PolicyServeConfig) -> RolloutBackend:
    from k15ray.rollout.hf import HFBackend

    return HFBackend.from_pretrained(
        config.model_dir, dtype=config.dtype, device=config.device,
        max_batch_size=config.max_batch_size,
    )


def _load_vllm(config: PolicyServeConfig) -> AsyncBackend:
    if importlib.util.find_spec("vllm") is None:
        raise ValueError(
            "policy.backend 'vllm' needs vLLM on a GPU machine (pip install 'k15ray[vllm]'); "
            "use backend 'hf' here"
        )
    from k15ray.serve.vllm_async import AsyncVLLMBackend

    return AsyncVLLMBackend(config.model_dir, gpu_memory_utilization=config.gpu_memory_utilization)


BACKEND_LOADERS: dict[str, Callable[[PolicyServeConfig], RolloutBackend | AsyncBackend]] = {
    "hf": _load_hf,
    "vllm": _load_vllm,
}
"""Rollout backends by name: the selection point of the policy application."""


def chat_stop_token_ids(tokenizer: Any) -> tuple[int, ...]:
    """Ids that end an answer: EOS and, where the tokenizer has one, its end-of-turn token."""
    from k15ray.prompting import stop_token_ids

    return tuple(int(t) for t in stop_token_ids(tokenizer))


def load_served_policy(config: PolicyServeConfig) -> ServedPolicy:
    """Load the backend named by ``config.backend`` and the tokenizer of ``config.model_dir``
    (with the processor, for a vision-language directory)."""
    if config.backend not in BACKEND_LOADERS:
        raise ValueError(f"policy.backend {config.backend!r} unknown; use one of {sorted(BACKEND_LOADERS)}")
    from k15ray.models import check_model_dir

    check_model_dir(config.model_dir, field="policy.model_dir")
    path = Path(config.model_dir)
    if config.torch_threads > 0 and config.device == "cpu":
        import torch

        torch.set_num_threads(config.torch_threads)
    from transformers import AutoConfig, AutoProcessor, AutoTokenizer

    from k15ray.models.vision_language import is_vision_config

    model_config = AutoConfig.from_pretrained(str(path))
    processor = AutoProcessor.from_pretrained(str(path)) if is_vision_config(model_config) else None
    tokenizer = processor.tokenizer if processor is not None else AutoTokenizer.from_pretrained(str(path))
    # a vision-language config keeps the language model's length in its text config
    max_len = getattr(model_config.get_text_config(), "max_position_embeddings", None)
    backend = BACKEND_LOADERS[config.backend](config)
    return ServedPolicy(
        name=config.model_name or path.name,
        backend=backend,
        tokenizer=tokenizer,
        stop_token_ids=chat_stop_token_ids(tokenizer),
        max_model_len=int(max_len) if max_len else None,
        processor=processor,
    )
