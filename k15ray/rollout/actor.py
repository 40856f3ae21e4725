"""Rollout workers as Ray actors, and a pool that survives their death (paper 2.6.1-2.6.2).

The paper's rollout workers "generate rollout trajectories by interacting with the model" while a
central master coordinates them. Here:

* ``RolloutWorker`` (``k15ray.rollout.worker``) is a plain class holding one rollout backend built
  inside its process from a model directory (``backend="hf"``: ``HFBackend``; ``"vllm"``:
  ``VLLMBackend``, docs/gpu.md). The pool runs it as a Ray actor (``ray.remote(RolloutWorker)``) with
  ``num_cpus_per_worker`` CPUs and as many torch threads;
* ``RolloutPool`` is the master's handle: ``generate`` splits the requests of an iteration across
  the actors (striding, so carried-over long continuations spread evenly), and when an actor dies
  mid-call (``ray.exceptions.RayActorError``) it starts a replacement, which loads the current
  weights before it generates (the latest published version, or after an NCCL sync those of the
  ``set_weights_source`` callback), and re-runs that actor's requests, so no prompt is lost; each replacement is
  a WARNING of logger ``k15ray.rollout`` and counts in ``num_replacements``;
* ``update_weights`` publishes the learner's state dict once to the object store and pushes the
  versioned reference to every actor (``k15ray.rollout.weight_sync``), then checks the versions;
  with vLLM actors on GPUs of their own, ``init_nccl`` + ``update_weights_nccl`` broadcast the
  learner's GPU tensors to the engines through NCCL instead (``k15ray.rollout.nccl_sync``).

Requests sample from per-request random streams (``k15ray.rollout.sampling.request_seed``), so the split
across actors and a re-run on a replacement do not change what is drawn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from k15ray.config.repeat import RepeatConfig
from k15ray.config.rollout import RolloutConfig
from k15ray.models import check_model_dir
from k15ray.rollout.backends import check_backend_available
from k15ray.rollout.nccl_sync import NcclWeightSender, broadcast_to_actors, connect_actors
from k15ray.rollout.weight_sync import (
    WeightsRef,
    WeightSync,
    check_new_version,
    check_versions,
)
from k15ray.rollout.worker import RolloutWorker
from k15ray.types import GenerationRequest, GenerationResult, SamplingParams

logger = logging.getLogger("k15ray.rollout")


class RolloutPool:
    """``config.num_workers`` rollout actors behind one ``generate`` that loses no request.

    Args:
        config: the rollout section (workers, CPUs, backend, batch size, dtype, restarts).
        model_dir: Hugging Face directory of the policy's initial weights (version 0).
        repeat_config: repeat detection inside the backends (paper 2.6.2).
    """

    def __init__(
        self,
        config: RolloutConfig | None = None,
        *,
        model_dir: str | Path,
        repeat_config: RepeatConfig | None = None,
    ) -> None:
        import ray

        self.config = config or RolloutConfig()
        check_backend_available(self.config.backend)
        check_model_dir(model_dir)
        if not ray.is_initialized():
            raise RuntimeError("ray.init() first: the rollout pool starts Ray actors")
        self.model_dir = str(model_dir)
        self.repeat_config = repeat_config
        self.sync = WeightSync()
        self._version: int | None = None  # the version last loaded into the actors, by either route
        self._weights_source: Callable[[], tuple[Mapping[str, Any], int]] | None = None
        self._num_replacements = 0
        # the first actors load the weights in model_dir
        self.workers: list[Any] = [self._start() for _ in range(self.config.num_workers)]
        self._nccl_workers: list[Any] = []  # the actors of the NCCL group (init_nccl)

    def set_weights_source(self, source: Callable[[], tuple[Mapping[str, Any], int]]) -> None:
        """``source() -> (state_dict, version)``: the learner's current weights. After an NCCL sync
        the object store holds no copy of them, so a replacement actor takes them from here (one
        publish) before it generates, rather than the weights on disk."""
        self._weights_source = source

    def _replacement_weights(self) -> WeightsRef | None:
        """The weights a replacement loads as it starts: the latest published version, or, when
        the actors were last updated through NCCL, the weights source's, published now."""
        if self._version is None or self._version == self.sync.version:
            return self.sync.latest
        if self._weights_source is None:
            logger.warning(
                "a replacement rollout actor starts from weights version %s, the actors hold %d "
                "(NCCL sync; no weights source set: RolloutPool.set_weights_source)",
                self.sync.version if self.sync.version is not None else "0 (from model_dir)",
                self._version,
            )
            return self.sync.latest
        state, version = self._weights_source()
        return self.sync.publish(state, version)

    def _start(self, weights: WeightsRef | None = None) -> Any:
        import ray
        from ray.util.placement_group import get_current_placement_group

        cfg = self.config
        # Outside a placement group (a Tune trial's holds its actors), spread the engines over the
        # cluster's nodes rather than packing them onto the driver's (docs/scale_out.md).
        spread = (
            {} if get_current_placement_group() is not None else {"scheduling_strategy": "SPREAD"}
        )
        actor_cls = ray.remote(RolloutWorker).options(
            num_cpus=cfg.num_cpus_per_worker,
            num_gpus=cfg.num_gpus_per_worker,
            max_restarts=0,
            **spread,
        )
        return actor_cls.remote(  # type: ignore[attr-defined]
            self.model_dir,
            cfg.backend,
            num_threads=int(cfg.num_cpus_per_worker),
            max_batch_size=cfg.max_batch_size,
            dtype=cfg.dtype,
            device=cfg.device,
            repeat_config=self.repeat_config,
            weights=weights,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
        )

    @property
    def actors(self) -> tuple[Any, ...]:
        """The rollout actors' handles, one per slot (a replacement takes its dead actor's slot)."""
        return tuple(self.workers)

    @property
    def num_replacements(self) -> int:
        """Dead actors replaced since the pool started (cumulative)."""
        return self._num_replacements

    def _replace(self, index: int, restarts: list[int], error: Exception) -> None:
        """Start a new actor in slot ``index`` (it loads the latest weights), saying so in the
        log: ``error`` is why the old one is gone."""
        import ray

        if restarts[0] >= self.config.max_worker_restarts:
            raise RuntimeError(
                f"rollout actors died {restarts[0] + 1} times in one call; raise "
                "rollout.max_worker_restarts or look at the actors' logs for the cause"
            ) from error
        restarts[0] += 1
        self._num_replacements += 1
        ray.kill(self.workers[index], no_restart=True)
        self.workers[index] = self._start(self._replacement_weights())
        reason = " ".join(str(error).split())  # Ray's message spans lines: pid, ip, cause
        logger.warning(
            "rollout actor %d died (%s: %s); replaced by %r, which loads weights version %s "
            "(%d replacements since the pool started)",
            index,
            type(error).__name__,
            reason[:500],
            self.workers[index],
            self.sync.version if self.sync.version is not None else "0 (from model_dir)",
            self._num_replacements,
        )

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[GenerationResult]:
        """Split ``requests`` across the actors; results come back in request order, all of them,
        even when actors die mid-call (their requests re-run on replacements)."""
        import ray
        from ray.exceptions import RayActorError

        n = len(self.workers)
        shards = {i: list(requests[i::n]) for i in range(n) if requests[i::n]}
        pending = {self.workers[i].generate.remote(s, params): i for i, s in shards.items()}
        done: dict[int, list[GenerationResult]] = {}
        restarts = [0]
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(ready[0])
            try:
                done[index] = ray.get(ready[0])
            except RayActorError as error:
                self._replace(index, restarts, error)
                pending[self.workers[index].generate.remote(shards[index], params)] = index
        results: list[GenerationResult | None] = [None] * len(requests)
        for i, shard_results in done.items():
            results[i::n] = shard_results
        assert all(r is not None for r in results), "every request has its result"
        return [r for r in results if r is not None]

    def update_weights(
        self, weights: Mapping[str, Any] | WeightsRef, version: int | None = None
    ) -> None:
        """Publish ``weights`` (a state dict with its ``version``, or an already published
        ``WeightsRef``) and load them into every actor; dead actors are replaced (the
        replacement starts with these weights). Raises if an actor reports another version."""
        import ray
        from ray.exceptions import RayActorError

        if isinstance(weights, WeightsRef):
            check_new_version(self.sync.version, weights.version, "the rollout pool")
            self.sync.latest = ref = weights
        else:
            if version is None:
                raise ValueError(
                    "pass the version of these weights: update_weights(state_dict, version)"
                )
            ref = self.sync.publish(weights, version)
        restarts = [0]
        calls = [w.update_weights.remote(ref) for w in self.workers]
        for i, call in enumerate(calls):
            try:
                ray.get(call)
            except RayActorError as error:
                self._replace(i, restarts, error)  # the replacement loads ``ref`` as it starts
        self._version = ref.version
        check_versions(self.policy_versions(), ref.version)

    def _check_nccl_backend(self) -> None:
        if self.config.backend != "vllm":
            raise ValueError(
                f"NCCL weight sync needs rollout.backend: vllm (engines on GPUs of their own), got "
                f"{self.config.backend!r}: use update_weights (object store) instead"
            )

    def init_nccl(
        self,
        device: str = "cuda:0",
        *,
        host: str | None = None,
        port: int | None = None,
        max_bucket_bytes: int | None = None,
    ) -> NcclWeightSender:
        """Build the NCCL group of the learner (rank 0, on ``device`` of this process) and the
        actors (rank 1 + i); returns the sender for ``update_weights_nccl``. Call it again after
        an actor was replaced (a replacement is not in the group)."""
        self._check_nccl_backend()
        sender = connect_actors(
            self.workers, device, host=host, port=port, max_bucket_bytes=max_bucket_bytes
        )
        self._nccl_workers = list(self.workers)
        return sender

    @property
    def nccl_group_current(self) -> bool:
        """Whether the group of the last ``init_nccl`` holds exactly today's actors (not after a
        replacement, nor before any ``init_nccl``)."""
        return bool(self._nccl_workers) and self._nccl_workers == self.workers

    def update_weights_nccl(
        self,
        sender: NcclWeightSender,
        state_dict: Mapping[str, Any],
        version: int,
        timeout_s: float = 600.0,
    ) -> None:
        """Broadcast ``state_dict`` (on the learner's GPU) into every actor's engine as weights
        ``version`` (``nccl_sync.broadcast_to_actors``), then check the versions."""
        self._check_nccl_backend()
        if not self.nccl_group_current:
            raise RuntimeError(
                "the rollout actors are not those of the NCCL group: call "
                "sender = pool.init_nccl(device) first (again, after an actor was replaced)"
            )
        held = self.policy_versions()  # checked here: a receive that raised would hang the sender
        if not self.nccl_group_current:  # an actor died just now: its replacement is not in the group
            raise RuntimeError(
                "a rollout actor was replaced before the NCCL weight sync: call "
                "sender = pool.init_nccl(device) again, then sync"
            )
        check_new_version(max(held), version, f"the rollout actors ({held})")
        reported = broadcast_to_actors(self.workers, sender, state_dict, version, timeout_s)
        self._version = version
        check_versions(reported, version)

    def policy_versions(self) -> list[int]:
        """The weight version each actor holds (replacing dead actors first)."""
        import ray
        from ray.exceptions import RayActorError

        restarts = [0]
        versions: list[int] = []
        for i in range(len(self.workers)):
            while True:
                try:
                    versions.append(int(ray.get(self.workers[i].policy_version.remote())))
                    break
                except RayActorError as error:
                    self._replace(i, restarts, error)
        return versions

    @property
    def policy_version(self) -> int:
        """The oldest weight version among the actors (what a rollout may be produced with)."""
        return min(self.policy_versions())

    def sleep(self) -> None:
        """Actors keep their memory between phases (their GPUs are their own): nothing to free."""

    def wake(self) -> None:
        """Nothing to take back (``sleep`` freed nothing)."""

    def ping(self) -> list[int]:
        """Wait until every actor is up; their process ids."""
        import ray

        return [int(p) for p in ray.get([w.ping.remote() for w in self.workers])]

    def shutdown(self) -> None:
        """Kill the pool's actors (their CPUs return to Ray)."""
        import ray

        for w in self.workers:
            ray.kill(w, no_restart=True)
        self.workers = []
