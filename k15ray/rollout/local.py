"""Colocated rollouts (paper 2.6.3): the rollout engine lives in the learner's own process and GPU.

``LocalRolloutPool`` has the interface of ``RolloutPool`` (``generate``, ``update_weights``,
``policy_version(s)``, ``ping``, ``shutdown``) plus ``sleep``/``wake``, so the K15 master drives
either one. The iteration becomes: wake -> rollout -> sleep (the engine frees its GPU memory) ->
train -> ``update_weights(learner.state_dict())``: the learner's GPU tensors go straight into the
engine's ``load_weights`` (``VLLMBackend``), with no copy through host memory, disk or the object
store. With the ``hf`` backend it runs the rollouts in-process (useful on one machine without Ray
actors to spare); sleep and wake then do nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from k15ray.config.repeat import RepeatConfig
from k15ray.config.rollout import RolloutConfig
from k15ray.models import check_model_dir
from k15ray.rollout.backends import check_backend_available, make_backend
from k15ray.rollout.weight_sync import WeightsRef, fetch
from k15ray.types import GenerationRequest, GenerationResult, SamplingParams


class LocalRolloutPool:
    """One rollout backend in this process, behind the ``RolloutPool`` interface."""

    def __init__(
        self,
        config: RolloutConfig | None = None,
        *,
        model_dir: str | Path,
        repeat_config: RepeatConfig | None = None,
    ) -> None:
        self.config = config or RolloutConfig()
        check_backend_available(self.config.backend)
        check_model_dir(model_dir)
        self.model_dir = str(model_dir)
        self.backend = make_backend(
            self.config.backend,
            model_dir,
            max_batch_size=self.config.max_batch_size,
            dtype=self.config.dtype,
            device=self.config.device,
            repeat_config=repeat_config,
            gpu_memory_utilization=self.config.gpu_memory_utilization,
        )

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[GenerationResult]:
        self.wake()
        return self.backend.generate(requests, params)

    def update_weights(
        self, weights: Mapping[str, Any] | WeightsRef, version: int | None = None
    ) -> None:
        """Load a state dict (GPU tensors stay on the GPU) or a published ``WeightsRef``."""
        if isinstance(weights, WeightsRef):
            self.backend.update_weights(fetch(weights), weights.version)
            return
        if version is None:
            raise ValueError("pass the version of these weights: update_weights(state_dict, version)")
        self.backend.update_weights(weights, version)

    def sleep(self) -> None:
        """Free the engine's accelerator memory for the training phase (no-op for hf)."""
        sleep = getattr(self.backend, "sleep", None)
        if callable(sleep):
            sleep()

    def wake(self) -> None:
        wake = getattr(self.backend, "wake", None)
        if callable(wake):
            wake()

    def policy_versions(self) -> list[int]:
        return [self.backend.policy_version]

    @property
    def policy_version(self) -> int:
        return self.backend.policy_version

    @property
    def num_replacements(self) -> int:
        """Always 0: no actor to replace (a failure here is the master's failure)."""
        return 0

    def ping(self) -> list[int]:
        return [os.getpid()]

    def shutdown(self) -> None:
        self.backend = None  # type: ignore[assignment]
