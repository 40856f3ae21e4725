"""Configuration of the Ray Serve applications (policy, rewards, sandbox) (docs/serve.md).

One frozen dataclass per application plus ``ServeConfig`` that groups them with the HTTP address.
``configs/serve.yaml`` documents the same fields for ``serve run`` / ``serve deploy``; the
``k15ray serve`` command builds a ``ServeConfig`` from its flags.
"""

from __future__ import annotations

from dataclasses import dataclass

from k15ray.config import doc

POLICY_BACKENDS = ("hf", "vllm")
"""Rollout backends the policy application can drive (selection point in ``serve/policy_model.py``)."""

REWARD_KINDS = ("math", "code")
"""Verifiable rewards the rewards application can serve."""


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}; pass a positive number")


def _non_negative(name: str, value: float) -> None:
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}; pass 0 or a positive number")


@dataclass(frozen=True)
class PolicyServeConfig:
    """The OpenAI-compatible policy application (``/v1/models``, ``/v1/completions``, ...)."""

    model_dir: str = doc("checkpoint directory in Hugging Face format (weights + tokenizer.json)", "")
    model_name: str = doc("model id clients put in the `model` field; empty = the directory's name", "")
    backend: str = doc("rollout backend: `hf` (transformers, CPU/GPU) or `vllm` (GPU, if installed)", "hf")
    device: str = doc("torch device for the `hf` backend (`cpu`, `cuda`)", "cpu")
    dtype: str = doc("torch dtype for the `hf` backend (`float32`, `bfloat16`, `float16`)", "float32")
    max_batch_size: int = doc("`hf` step batching: most sequences (chunks) in one backend call", 16)
    batch_wait_timeout_s: float = doc(
        "`hf` step batching: wait for more requests before the first call after an idle spell, seconds",
        0.01,
    )
    max_tokens_limit: int = doc("largest `max_tokens` a request may ask for", 1024)
    default_max_tokens: int = doc("`max_tokens` when a request leaves it out", 16)
    max_n: int = doc("largest `n` (choices per prompt) a request may ask for", 16)
    stream_chunk_tokens: int = doc("tokens generated per backend call when streaming or watching stop strings", 8)
    batch_chunk_tokens: int = doc(
        "`hf`: other choices are generated in chunks of this many tokens, so concurrent requests join "
        "and leave batches between chunks; 0 = one backend call per choice (vLLM batches by itself)", 32
    )
    gpu_memory_utilization: float = doc("`vllm`: fraction of the GPU's memory the engine may take", 0.85)
    detect_repeats: bool = doc("stop a completion early when the backend detects a loop", False)
    num_replicas: int = doc("replicas of the policy deployment", 1)
    num_cpus: float = doc("CPUs reserved per policy replica", 1.0)
    num_gpus: float = doc("GPUs reserved per policy replica (vLLM needs 1)", 0.0)
    torch_threads: int = doc("torch intra-op threads per replica on CPU; 0 = torch's default", 1)

    def __post_init__(self) -> None:
        if self.backend not in POLICY_BACKENDS:
            raise ValueError(f"policy.backend: {self.backend!r} is unknown; use one of {POLICY_BACKENDS}")
        for name in ("max_batch_size", "max_tokens_limit", "default_max_tokens", "max_n",
                     "stream_chunk_tokens", "num_replicas"):
            _positive(f"policy.{name}", getattr(self, name))
        _non_negative("policy.batch_wait_timeout_s", self.batch_wait_timeout_s)
        _non_negative("policy.num_cpus", self.num_cpus)
        _non_negative("policy.num_gpus", self.num_gpus)
        _non_negative("policy.torch_threads", self.torch_threads)
        _non_negative("policy.batch_chunk_tokens", self.batch_chunk_tokens)
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(
                f"policy.gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization!r}"
            )
        if self.default_max_tokens > self.max_tokens_limit:
            raise ValueError(
                f"policy.default_max_tokens ({self.default_max_tokens}) exceeds "
                f"policy.max_tokens_limit ({self.max_tokens_limit}); lower it or raise the limit"
            )


REWARD_MODELS = ("value_rm", "cot_rm")
"""Model reward models (paper 2.3.5) the rewards application can serve (docs/reward_models.md)."""


@dataclass(frozen=True)
class RewardModelServeConfig:
    """The model reward models of the rewards application (``/v1/rewards/value_rm``, ``/cot_rm``):
    one batched deployment each, served when its directory is given."""

    value_rm: str = doc("value-head RM directory (train_value_rm); empty = not served", "")
    cot_rm: str = doc("chain-of-thought judge directory (train_cot_judge); empty = not served", "")
    device: str = doc("torch device of the reward models (`cpu`, `cuda`)", "cpu")
    dtype: str = doc("torch dtype of the reward models (`float32`, `bfloat16`, `float16`)", "float32")
    max_batch_size: int = doc("dynamic batching: most (prompt, response) pairs in one forward pass", 32)
    batch_wait_timeout_s: float = doc("dynamic batching: longest wait to fill a batch, seconds", 0.01)
    max_length: int = doc("value RM: longest input in tokens (cut from the left)", 1024)
    judge_max_new_tokens: int = doc("CoT judge: token budget of one verdict", 128)
    num_cpus: float = doc("CPUs reserved per reward-model replica", 0.5)
    num_gpus: float = doc("GPUs reserved per reward-model replica", 0.0)

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_length", "judge_max_new_tokens"):
            _positive(f"rewards.models.{name}", getattr(self, name))
        for name in ("batch_wait_timeout_s", "num_cpus", "num_gpus"):
            _non_negative(f"rewards.models.{name}", getattr(self, name))

    def served(self) -> dict[str, str]:
        """``name -> model directory`` of every reward model given a directory."""
        return {name: getattr(self, name) for name in REWARD_MODELS if getattr(self, name)}


@dataclass(frozen=True)
class RewardServeConfig:
    """The rewards application (``/v1/rewards/math``, ``/v1/rewards/code``, and the model reward
    models ``/v1/rewards/value_rm``, ``/v1/rewards/cot_rm`` when ``models`` names their directories)."""

    kinds: tuple[str, ...] = doc("verifiable rewards to serve: any of `math`, `code`", ("math", "code"))
    models: RewardModelServeConfig = doc(
        "model reward models (value head, CoT judge)", default_factory=RewardModelServeConfig
    )
    max_batch_items: int = doc("most items one request may carry in `items`", 256)
    max_batch_requests: int = doc(
        "dynamic batching: most concurrent requests (or handle calls) scored as one batch", 32
    )
    batch_wait_timeout_s: float = doc("dynamic batching: longest wait to fill a batch, seconds", 0.002)
    num_replicas: int = doc("replicas of the rewards deployment (it scores every kind)", 1)
    num_cpus: float = doc("CPUs reserved per rewards replica", 0.5)
    max_ongoing_requests: int = doc("concurrent requests one reward replica accepts", 32)
    threads: int = doc("items one reward replica scores in parallel (worker threads)", 8)

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in REWARD_KINDS]
        if unknown:
            raise ValueError(f"rewards.kinds: {unknown} unknown; choose from {REWARD_KINDS}")
        for name in ("max_batch_items", "max_batch_requests", "num_replicas", "max_ongoing_requests",
                     "threads"):
            _positive(f"rewards.{name}", getattr(self, name))
        _non_negative("rewards.batch_wait_timeout_s", self.batch_wait_timeout_s)
        _non_negative("rewards.num_cpus", self.num_cpus)


@dataclass(frozen=True)
class SandboxServeConfig:
    """The sandbox application (``/v1/sandbox/run``)."""

    enabled: bool = doc("serve `/v1/sandbox/run`", True)
    max_timeout_s: float = doc("largest `timeout_s` a request may ask for, seconds", 30.0)
    max_memory_mb: int = doc("largest `memory_mb` a request may ask for, MiB", 2048)
    num_replicas: int = doc("replicas of the sandbox deployment", 1)
    num_cpus: float = doc("CPUs reserved per sandbox replica", 0.25)
    max_ongoing_requests: int = doc("concurrent runs one sandbox replica accepts", 8)

    def __post_init__(self) -> None:
        for name in ("max_timeout_s", "max_memory_mb", "num_replicas", "max_ongoing_requests"):
            _positive(f"sandbox.{name}", getattr(self, name))
        _non_negative("sandbox.num_cpus", self.num_cpus)


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``k15ray serve`` starts: the HTTP address and the three applications.

    The policy application is left out when ``policy.model_dir`` is empty; the rewards application
    when ``rewards.kinds`` is empty and ``rewards.models`` serves none; the sandbox application
    when ``sandbox.enabled`` is false.
    """

    host: str = doc("address the HTTP proxy listens on", "127.0.0.1")
    port: int = doc("port the HTTP proxy listens on", 8000)
    max_body_bytes: int = doc("largest request body accepted; larger ones get 413", 1_000_000)
    policy: PolicyServeConfig = doc("the policy application", default_factory=PolicyServeConfig)
    rewards: RewardServeConfig = doc("the rewards application", default_factory=RewardServeConfig)
    sandbox: SandboxServeConfig = doc("the sandbox application", default_factory=SandboxServeConfig)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}; pick a free TCP port")
        _positive("max_body_bytes", self.max_body_bytes)


__all__ = [
    "POLICY_BACKENDS",
    "REWARD_KINDS",
    "REWARD_MODELS",
    "PolicyServeConfig",
    "RewardModelServeConfig",
    "RewardServeConfig",
    "SandboxServeConfig",
    "ServeConfig",
]
