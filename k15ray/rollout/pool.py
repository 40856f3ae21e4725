"""The rollout pool interface: what one K15 iteration asks of its rollout engines (paper 2.6.1).

Two pools satisfy it: ``k15ray.rollout.actor.RolloutPool`` (Ray actors, one backend each; dead
actors are replaced with nothing lost) and ``k15ray.rollout.local.LocalRolloutPool`` (one backend
in the learner's process, paper 2.6.3's colocated mode, asleep while the learner trains).
``k15ray.rollout.phase.RolloutPhase`` drives either one through this ``Protocol`` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from k15ray.rollout.weight_sync import WeightsRef
from k15ray.types import GenerationRequest, GenerationResult, SamplingParams


@runtime_checkable
class Pool(Protocol):
    """Rollout engines behind one ``generate``, with versioned weights."""

    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams) -> list[GenerationResult]:
        """One result per request, in any order (matched by ``request_id``)."""
        ...

    def update_weights(self, weights: Mapping[str, Any] | WeightsRef, version: int | None = None) -> None:
        """Load new weights as ``version``; versions only increase (``weight_sync.check_new_version``)."""
        ...

    def sleep(self) -> None:
        """Free accelerator memory for the training phase (a no-op where there is none to free)."""
        ...

    def wake(self) -> None:
        """Take the memory back before the next rollout phase."""
        ...

    def policy_versions(self) -> list[int]:
        """The weight version each engine holds."""
        ...

    @property
    def policy_version(self) -> int:
        """The oldest version among the engines (what the next rollout may be produced with)."""
        ...

    @property
    def num_replacements(self) -> int:
        """Engines replaced after a failure since the pool started (0 where none can be)."""
        ...

    def shutdown(self) -> None:
        """Stop the engines and free what they hold."""
        ...
