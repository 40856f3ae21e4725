"""One rollout backend inside one process: the Ray actor of ``k15ray.rollout.actor.RolloutPool``.

``RolloutWorker`` builds its backend from a model directory in its own process (``backend="hf"``:
``HFBackend``; ``"vllm"``: ``VLLMBackend``, docs/gpu.md), loads published weights by reference
(``k15ray.rollout.weight_sync``) and, on the vLLM backend, joins the learner's NCCL group
(``k15ray.rollout.nccl_sync``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from k15ray.config.repeat import RepeatConfig
from k15ray.rollout.backends import make_backend
from k15ray.rollout.weight_sync import WeightsRef, fetch
from k15ray.types import GenerationRequest, GenerationResult, SamplingParams


class RolloutWorker:
    """One rollout backend inside one process; run as a Ray actor by ``RolloutPool``.

    ``weights`` (a ``WeightsRef``) is loaded at start: a replacement actor starts from the latest
    published version rather than from the weights on disk."""

    def __init__(
        self,
        model_dir: str | Path,
        backend: str = "hf",
        *,
        num_threads: int = 1,
        max_batch_size: int = 64,
        dtype: str = "float32",
        device: str = "cpu",
        repeat_config: RepeatConfig | None = None,
        weights: WeightsRef | None = None,
        gpu_memory_utilization: float = 0.5,
    ) -> None:
        import torch

        torch.set_num_threads(max(1, num_threads))
        self.backend = make_backend(
            backend,
            model_dir,
            max_batch_size=max_batch_size,
            dtype=dtype,
            device=device,
            repeat_config=repeat_config,
            gpu_memory_utilization=gpu_memory_utilization,
        )
        if weights is not None:
            self.update_weights(weights)

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[GenerationResult]:
        return self.backend.generate(requests, params)

    def update_weights(self, weights: WeightsRef) -> int:
        """Load published weights; returns the version now held."""
        if weights.version != self.backend.policy_version:  # idempotent re-push
            self.backend.update_weights(fetch(weights), weights.version)
        return self.backend.policy_version

    def policy_version(self) -> int:
        return self.backend.policy_version

    def ping(self) -> int:
        """The actor's process id (a replacement has a new one)."""
        return os.getpid()

    def _vllm(self) -> Any:
        from k15ray.rollout.vllm import VLLMBackend

        if not isinstance(self.backend, VLLMBackend):
            raise ValueError(
                f"NCCL weight sync needs rollout backend 'vllm', this actor runs "
                f"{type(self.backend).__name__}: use update_weights (object store) instead"
            )
        return self.backend

    def init_nccl(self, host: str, port: int, rank: int, world_size: int) -> list[int]:
        """Join the learner's NCCL group (``k15ray.rollout.nccl_sync``) from rank ``rank``."""
        return list(self._vllm().init_nccl(host, port, rank, world_size))

    def receive_weights(self, metadata: Mapping[str, Any], version: int) -> int:
        """Receive one NCCL broadcast (``PackedLayout.to_wire()``) as weights ``version``; returns
        the version now held."""
        self._vllm().receive_weights(metadata, version)
        return self.backend.policy_version

    def param_checksum(self) -> tuple[float, float, int]:
        """(sum, sum of squares, count) of the engine's parameters (vllm backend)."""
        return self._vllm().param_checksum()

    def gpu_ids(self) -> list[str]:
        """The GPUs Ray gave this actor (physical ids)."""
        import ray

        return [str(g) for g in ray.get_runtime_context().get_accelerator_ids().get("GPU", [])]
