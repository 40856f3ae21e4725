"""Building a rollout backend by name: ``hf`` (transformers, CPU and GPU) or ``vllm`` (GPU).

Both satisfy ``k15ray.types.RolloutBackend``; the rollout actors (``k15ray.rollout.actor``) and the
colocated pool (``k15ray.rollout.local``) build theirs here, so a backend missing on this machine
fails before any actor starts (``check_backend_available``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from k15ray.config.repeat import RepeatConfig
from k15ray.config.rollout import BACKENDS
from k15ray.types import RolloutBackend


def make_backend(
    name: str,
    model_dir: str | Path,
    *,
    max_batch_size: int = 64,
    dtype: str = "float32",
    device: str = "cpu",
    repeat_config: RepeatConfig | None = None,
    gpu_memory_utilization: float = 0.5,
) -> RolloutBackend:
    """Build rollout backend ``name`` ("hf" | "vllm") from a Hugging Face model directory."""
    if name == "hf":
        from k15ray.rollout.hf import HFBackend

        return HFBackend.from_pretrained(
            model_dir,
            dtype=dtype,
            device=device,
            max_batch_size=max_batch_size,
            repeat_config=repeat_config,
        )
    if name == "vllm":
        check_backend_available("vllm")
        from k15ray.rollout.vllm import VLLMBackend

        return VLLMBackend(
            model_dir,
            # vLLM's attention kernels want half precision; the learner may keep float32 (the
            # log-prob gap between the two is reported every iteration).
            dtype="bfloat16" if dtype == "float32" else dtype,
            repeat_config=repeat_config,
            gpu_memory_utilization=gpu_memory_utilization,
        )
    raise ValueError(f"unknown rollout backend {name!r}; valid backends are {list(BACKENDS)}")


def check_backend_available(name: str) -> None:
    """Fail before any actor starts when backend ``name`` cannot run here."""
    if name not in BACKENDS:
        raise ValueError(f"unknown rollout backend {name!r}; valid backends are {list(BACKENDS)}")
    if name == "vllm" and (
        importlib.util.find_spec("vllm") is None
        or importlib.util.find_spec("k15ray.rollout.vllm") is None
    ):
        raise ValueError(
            "rollout backend 'vllm' needs vLLM on a GPU machine (pip install 'k15ray[vllm]', "
            "docs/gpu.md); set rollout.backend: hf to roll out with transformers"
        )
