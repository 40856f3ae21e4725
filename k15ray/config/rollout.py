"""Configuration of the rollout actors and their sampling (paper 2.6.1-2.6.2; 2.3 for k)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from k15ray.config import check_dtype, doc, section

BackendName = Literal["hf", "vllm"]
BACKENDS: tuple[str, ...] = ("hf", "vllm")
WEIGHT_SYNCS: tuple[str, ...] = ("object_store", "nccl")


@section("rollout")
@dataclass(frozen=True)
class RolloutConfig:
    """Rollout workers (Ray actors, each holding one backend) and how they sample.

    Seeds: each iteration samples with a seed derived from ``seed`` and the iteration, and each
    request draws from its own stream (seed, request id), so results do not depend on how the
    requests are split across workers, nor on a worker being replaced mid-iteration."""

    backend: BackendName = doc(
        "rollout backend: hf (transformers, CPU/GPU) or vllm (GPU, docs/gpu.md)", "hf"
    )
    num_workers: int = doc(
        "rollout actors; the requests of an iteration are split evenly among them", 1
    )
    num_cpus_per_worker: float = doc(
        "CPUs each actor reserves; its torch threads = max(1, int(this))", 1.0
    )
    num_gpus_per_worker: float = doc("GPUs each actor reserves (0 on CPU; vllm needs > 0)", 0.0)
    samples_per_prompt: int = doc(
        "k: samples drawn per prompt (the group of mirror descent, paper 2.3.2)", 8
    )
    temperature: float = doc(
        "sampling temperature T; 0 = greedy (log-probs, here and in the learner, are at T; at 1 when greedy)", 1.0
    )
    top_p: float = doc("nucleus sampling mass in (0, 1]; 1 = off", 1.0)
    logprobs_every_iterations: int = doc(
        "ask the backend for the sampled tokens' log-probs on every n-th iteration (0-based iterations "
        "0, n, 2n, ...), only for the loss/rollout_logp_gap_* diagnostic (the learner recomputes its "
        "own); 0 = never (fastest: vLLM loses about a third of its throughput to them, docs/rollout.md)",
        0,
    )
    max_batch_size: int = doc("most sequences one actor decodes together (micro-batch)", 64)
    dtype: str = doc("weights dtype inside the actors: float32, bfloat16 or float16", "float32")
    device: str = doc("torch device of the hf backend inside an actor: cpu or cuda", "cpu")
    seed: int = doc("base seed of rollout sampling", 0)
    max_worker_restarts: int = doc(
        "actors replaced per generate call before giving up (a dead actor's requests re-run)", 3
    )
    colocate: bool = doc(
        "run the backend inside the learner's process and GPU, asleep while it trains (paper 2.6.3)",
        False,
    )
    gpu_memory_utilization: float = doc(
        "vllm: fraction of the GPU its engine may take (leave room for the learner when colocated)",
        0.5,
    )
    weight_sync: str = doc(
        "how new weights reach separate rollout actors: object_store (any backend, via host memory) "
        "or nccl (vllm actors on GPUs of their own, broadcast from the learner's GPU)",
        "object_store",
    )

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend: {self.backend!r} is not one of {list(BACKENDS)}")
        if self.num_workers < 1:
            raise ValueError(f"num_workers: must be >= 1, got {self.num_workers}")
        if self.num_cpus_per_worker <= 0:
            raise ValueError(
                f"num_cpus_per_worker: must be > 0 (fractions such as 0.5 are fine), got {self.num_cpus_per_worker}"
            )
        if self.num_gpus_per_worker < 0:
            raise ValueError(f"num_gpus_per_worker: must be >= 0, got {self.num_gpus_per_worker}")
        if self.backend == "vllm" and self.num_gpus_per_worker == 0 and not self.colocate:
            raise ValueError(
                "num_gpus_per_worker: the vllm backend needs a GPU; set it > 0, set colocate: true "
                "(share the learner's GPU) or use backend: hf"
            )
        if self.samples_per_prompt < 1:
            raise ValueError(f"samples_per_prompt: must be >= 1, got {self.samples_per_prompt}")
        if self.temperature < 0:
            raise ValueError(f"temperature: must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(
                f"top_p: must be in (0, 1] (1 turns nucleus sampling off), got {self.top_p}"
            )
        if self.logprobs_every_iterations < 0:
            raise ValueError(
                "logprobs_every_iterations: must be >= 0 (0 = never, 1 = every iteration, n = every "
                f"n-th), got {self.logprobs_every_iterations}"
            )
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size: must be >= 1, got {self.max_batch_size}")
        check_dtype(self.dtype)
        if not 0 < self.gpu_memory_utilization < 1:
            raise ValueError(
                f"gpu_memory_utilization: must be in (0, 1), got {self.gpu_memory_utilization}"
            )
        if self.weight_sync not in WEIGHT_SYNCS:
            raise ValueError(f"weight_sync: {self.weight_sync!r} is not one of {list(WEIGHT_SYNCS)}")
        if self.weight_sync == "nccl" and (self.backend != "vllm" or self.colocate):
            raise ValueError(
                "weight_sync: nccl needs backend: vllm with colocate: false (actors on GPUs of their "
                "own); a colocated engine already takes the learner's GPU tensors in place, and the hf "
                "backend uses object_store"
            )
        if self.max_worker_restarts < 0:
            raise ValueError(f"max_worker_restarts: must be >= 0, got {self.max_worker_restarts}")

    def logprobs_on(self, iteration: int) -> bool:
        """Whether the rollouts of 0-based ``iteration`` report their log-probs."""
        every = self.logprobs_every_iterations
        return every > 0 and iteration % every == 0
