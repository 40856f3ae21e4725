"""Rollouts (paper 2.6): backends that sample from the policy, the actors that host them, weight sync.

* ``k15ray.rollout.hf.HFBackend``: transformers backend (CPU default, GPU fallback);
* ``k15ray.rollout.vllm.VLLMBackend``: vLLM backend (GPU, ``k15ray[vllm]``);
* ``k15ray.rollout.worker``: ``RolloutWorker`` (one backend in a Ray actor);
* ``k15ray.rollout.actor``: ``RolloutPool`` (the workers as Ray actors; replaces dead ones);
* ``k15ray.rollout.vllm_prompts``: a request as a vLLM engine takes it (images: one ``<image>`` each);
* ``k15ray.rollout.weight_sync``: versioned weight pushes through the Ray object store;
* ``k15ray.rollout.repeat``: streaming repeat detection;
* ``k15ray.rollout.sampling``: the sampling rule and per-request random streams both backends share.

Names are imported lazily, so ``import k15ray.rollout`` loads neither torch nor Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "HFBackend": "k15ray.rollout.hf",
    "RolloutWorker": "k15ray.rollout.worker",
    "RolloutPool": "k15ray.rollout.actor",
    "make_backend": "k15ray.rollout.backends",
    "WeightSync": "k15ray.rollout.weight_sync",
    "WeightsRef": "k15ray.rollout.weight_sync",
    "publish": "k15ray.rollout.weight_sync",
    "RepeatDetector": "k15ray.rollout.repeat",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'k15ray.rollout' has no attribute {name!r}")
