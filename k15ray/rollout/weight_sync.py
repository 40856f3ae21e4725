"""Versioned weight sync from the learner to the rollout actors (paper 2.6.1, step 7 of DESIGN.md).

After each training phase the learner's weights theta_{i+1} become the rollout policy of the next
iteration. On CPU they travel through the Ray object store:

* ``publish(state_dict, version)`` converts the tensors to CPU numpy arrays and makes ONE
  ``ray.put``; the returned ``WeightsRef`` (version + object ref) is what every actor receives;
* each actor ``ray.get``s it (numpy arrays are read zero-copy from shared memory, then copied once
  into the model's parameters) and loads it with ``backend.update_weights(state, version)``;
* ``check_versions`` verifies that every actor now reports the expected version: a rollout produced
  by stale weights would silently be off-policy for mirror descent's pi_ref = pi_theta_i.

Versions only increase; a replacement actor (``RolloutPool``) loads the latest ``WeightsRef``.
bfloat16 tensors, which numpy lacks, travel as their int16 bit patterns and are viewed back.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class WeightsRef:
    """A published set of weights: its version and the object-store reference to its tensors."""

    version: int
    ref: Any  # ray.ObjectRef of dict[str, tuple[np.ndarray, str]]
    num_tensors: int
    num_bytes: int


def to_numpy_state(state_dict: Mapping[str, Any]) -> dict[str, tuple[np.ndarray, str]]:
    """``name -> (array, torch dtype name)`` on CPU; bfloat16 as int16 bits (numpy has no bf16)."""
    out: dict[str, tuple[np.ndarray, str]] = {}
    for name, value in state_dict.items():
        t = torch.as_tensor(value).detach().to("cpu").contiguous()
        dtype = str(t.dtype).removeprefix("torch.")
        if t.dtype == torch.bfloat16:
            t = t.view(torch.int16)
        out[name] = (t.numpy(), dtype)
    return out


def from_numpy_state(state: Mapping[str, tuple[np.ndarray, str]]) -> dict[str, torch.Tensor]:
    """The inverse of ``to_numpy_state``: tensors that share the arrays' (read-only) memory."""
    out: dict[str, torch.Tensor] = {}
    with warnings.catch_warnings():  # object-store arrays are read-only; load_state_dict copies
        warnings.filterwarnings("ignore", message=".*not writable.*")
        for name, (array, dtype) in state.items():
            t = torch.from_numpy(array)
            out[name] = t.view(torch.bfloat16) if dtype == "bfloat16" else t
    return out


def publish(state_dict: Mapping[str, Any], version: int) -> WeightsRef:
    """Put ``state_dict`` (any device) into the object store once, tagged with ``version``."""
    import ray

    state = to_numpy_state(state_dict)
    num_bytes = sum(a.nbytes for a, _ in state.values())
    return WeightsRef(version, ray.put(state), len(state), num_bytes)


def fetch(weights: WeightsRef) -> dict[str, torch.Tensor]:
    """What an actor does with a ``WeightsRef``: get the tensors from the object store."""
    import ray

    return from_numpy_state(ray.get(weights.ref))


def check_new_version(held: int | None, version: int, holder: str = "the rollout pool") -> None:
    """The one versioning rule of weight sync: a new version is greater than every version held.

    ``held`` is the highest version the receiver holds (None: nothing yet). Raises ``ValueError``."""
    if held is not None and version <= held:
        raise ValueError(
            f"weight version must increase: {holder} holds version {held}, got {version}; "
            "push each training phase's weights with the next version"
        )


def check_versions(reported: Sequence[int], expected: int) -> None:
    """Raise ``RuntimeError`` naming every actor whose weights are not version ``expected``."""
    stale = {i: v for i, v in enumerate(reported) if v != expected}
    if stale:
        raise RuntimeError(
            f"weight sync failed: actors {sorted(stale)} report versions {list(stale.values())}, "
            f"expected {expected}"
        )


class WeightSync:
    """Publishes increasing weight versions and pushes them to rollout actors.

    ``latest`` is kept so that an actor started later (a replacement) loads the current weights.
    Actors must have a remote method ``update_weights(weights: WeightsRef) -> int`` returning the
    version they hold afterwards (``k15ray.rollout.worker.RolloutWorker``)."""

    def __init__(self) -> None:
        self.latest: WeightsRef | None = None

    @property
    def version(self) -> int | None:
        return None if self.latest is None else self.latest.version

    def publish(self, state_dict: Mapping[str, Any], version: int) -> WeightsRef:
        check_new_version(self.version, version, "the latest published weights")
        self.latest = publish(state_dict, version)
        return self.latest

    def push(self, actors: Sequence[Any], weights: WeightsRef | None = None) -> None:
        """Send ``weights`` (default: the latest) to every actor and check their versions."""
        import ray

        weights = weights or self.latest
        if weights is None:
            raise ValueError("nothing to push: publish(state_dict, version) first")
        reported = ray.get([a.update_weights.remote(weights) for a in actors])
        check_versions(reported, weights.version)
