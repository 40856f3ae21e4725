"""Core types shared by every layer of k15ray (DESIGN.md, "Core types").

Plain dataclasses travel through Ray (pickled) and through Serve (converted to pydantic at the edge).
Interfaces are ``typing.Protocol``s so that the transformers and vLLM rollout backends, in-process
and served rewards, and every sampler are interchangeable.

Vocabulary used throughout:

* a *prompt* x is one question of the prompt set D;
* a *trajectory* is one sampled answer (z, y) for x: the j-th of the k samples of its group;
* a *segment* is the part of a trajectory produced within one iteration's token budget
  (partial rollouts, paper section 2.6.2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

FinishReason = Literal["stop", "length", "budget", "repeat"]
"""Why a trajectory ended (or paused):

* ``stop``: the policy emitted an end-of-sequence / stop token;
* ``length``: it reached the maximum response length and was truncated;
* ``budget``: it used this iteration's token budget and waits in the partial-rollout buffer;
* ``repeat``: repeat detection caught it looping and stopped it early.
"""

BackendFinish = Literal["stop", "length", "repeat"]
"""What a rollout backend reports for one request: ``length`` means it produced exactly the
request's ``max_new_tokens``; the partial-rollout buffer decides whether that is ``budget`` or
``length`` for the trajectory."""

RewardStatus = Literal[
    "ok", "wrong_format", "parse_error", "timeout", "runtime_error", "sandbox_error", "error"
]


@dataclass(frozen=True)
class CodeTest:
    """One stdin/stdout test case of a coding prompt."""

    stdin: str
    expected_stdout: str


@dataclass(frozen=True)
class Prompt:
    """One question of the prompt set D.

    ``question`` is plain text or a list of chat messages (``{"role": ..., "content": ...}``).
    ``difficulty`` is an integer level, 1 = easiest (the curriculum's and curation's label).
    """

    id: str
    question: str | tuple[Mapping[str, str], ...]
    answer: str
    domain: str = "math"
    difficulty: int = 1
    tags: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    tests: tuple[CodeTest, ...] = ()


@dataclass(frozen=True)
class Segment:
    """Tokens generated for one trajectory within one iteration (paper 2.6.2).

    ``logprobs[t]`` is log pi_{version}(token_ids[t] | context) as reported by the rollout backend,
    or ``()`` when the rollout did not ask for them (``rollout.logprobs_every_iterations``).
    """

    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    policy_version: int

    def __post_init__(self) -> None:
        assert len(self.logprobs) in (0, len(self.token_ids)), "one log-prob per token, or none"


@dataclass
class Trajectory:
    """One sample (z, y) of prompt ``prompt_id``; the ``sample_index``-th of its group of k."""

    prompt_id: str
    sample_index: int
    prompt_token_ids: tuple[int, ...]
    segments: list[Segment] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    response_text: str = ""
    reward: float = 0.0
    reward_details: dict[str, Any] = field(default_factory=dict)
    images: tuple[Any, ...] = ()
    """The prompt's images (``GenerationRequest.images``): every continuation request and the
    learner's log-prob and reference passes see them with the tokens."""

    @property
    def response_token_ids(self) -> tuple[int, ...]:
        """All response tokens so far, earliest segment first."""
        return tuple(t for s in self.segments for t in s.token_ids)

    @property
    def num_response_tokens(self) -> int:
        return sum(len(s.token_ids) for s in self.segments)

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None and self.finish_reason != "budget"


@dataclass(frozen=True)
class RewardResult:
    """What a reward function returns: never an exception (STYLE.md rule 8).

    ``score`` is the scalar reward r(x, y, y*); ``correct`` whether the final answer is right;
    ``status`` says whether scoring itself worked (``ok``) or why it did not (score 0 then).
    """

    score: float
    correct: bool
    status: RewardStatus = "ok"
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationRequest:
    """Ask a rollout backend to continue ``token_ids`` (prompt + earlier segments) by at most
    ``max_new_tokens`` tokens. ``request_id`` comes back unchanged in the result."""

    request_id: str
    token_ids: tuple[int, ...]
    max_new_tokens: int
    images: tuple[Any, ...] = field(default=(), compare=False)
    """The prompt's images, ``(H, W, 3)`` uint8 arrays, in the order of their placeholders in
    ``token_ids`` (``k15ray.prompting.encode_vision_prompt``); only a vision-language policy
    takes them. A continuation (partial rollouts) carries them again."""


@dataclass(frozen=True)
class GenerationResult:
    """The new tokens of one request, their rollout log-probs (``()`` unless
    ``SamplingParams.logprobs``) and the policy version that produced them (one ``Segment``'s worth)."""

    request_id: str
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    finish_reason: BackendFinish
    policy_version: int


@dataclass(frozen=True)
class SamplingParams:
    """Decoding parameters shared by every rollout backend (maps onto vLLM's SamplingParams)."""

    temperature: float = 1.0
    top_p: float = 1.0
    stop_token_ids: tuple[int, ...] = ()
    seed: int | None = None
    detect_repeats: bool = True
    ignore_eos: bool = False
    """Generate exactly ``max_new_tokens``, ignoring stop tokens (forced lengths in benchmarks)."""
    logprobs: bool = True
    """Report each sampled token's log-prob; False: ``GenerationResult.logprobs`` is ``()`` and the
    backend skips the work (the learner recomputes log-probs itself)."""


@runtime_checkable
class RolloutBackend(Protocol):
    """Token ids in; token ids, log-probs, finish reasons and the weight version out.

    Implemented by ``k15ray.rollout.hf.HFBackend`` (CPU, transformers) and
    ``k15ray.rollout.vllm.VLLMBackend`` (GPU).
    """

    @property
    def policy_version(self) -> int: ...

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[GenerationResult]: ...

    def update_weights(self, state_dict: Mapping[str, Any], version: int) -> None: ...


@runtime_checkable
class SleepableBackend(RolloutBackend, Protocol):
    """A backend that frees its accelerator memory while the learner trains (paper 2.6.3)."""

    def sleep(self) -> None: ...

    def wake(self) -> None: ...


@runtime_checkable
class RewardFn(Protocol):
    """r(x, y, y*): scores one response to one prompt. Never raises for bad responses."""

    def __call__(self, prompt: Prompt, response: str) -> RewardResult: ...


@runtime_checkable
class Sampler(Protocol):
    """Chooses the prompts of each iteration (paper 2.3.4) and learns from their success."""

    def sample(self, n: int) -> list[Prompt]: ...

    def update(self, prompt_ids: Sequence[str], success: Sequence[float]) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...
