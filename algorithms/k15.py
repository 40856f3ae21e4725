"""``K15``: the Kimi k1.5 iteration as an RLlib ``Algorithm`` (paper 2.3 and 2.6; DESIGN.md "One iteration").

``training_step`` is the iterative synchronous loop, rollout phase then training phase:

1. ``sampler.sample(n)``: n prompts (uniform | curriculum | prioritized, paper 2.3.4);
2. the partial-rollout buffer turns them into k requests each, plus the continuations of
   trajectories carried over from earlier iterations (per-iteration token budget, paper 2.6.2);
3. the rollout actors generate (``k15ray.rollout``; repeat detection may stop a sample early);
4. every trajectory of a complete group is scored by the environment: r(x, y, y*);
5. length penalty (2.3.3) and repeat penalty shape the rewards; the baseline is a group statistic;
6. the learner (``K15Learner``, RLlib ``TorchLearner``): optimizer reset, reference log-probs of
   pi_theta_i, minibatch steps on the mirror-descent surrogate (2.3.2), gradient clipping; with
   ``learner.num_learners >= 2`` on every learner actor of the ``LearnerGroup`` (torch DDP), each
   stepping on a shard of whole groups (``k15ray.algorithms.data_parallel``);
7. the new weights go to the rollout actors through the object store, with a new version (from
   the first learner: after a DDP step all learners hold the same weights);
8. ``sampler.update`` with each prompt's success rate, metrics, held-out evaluation every N.

Steps 1-5 live in ``k15ray.rollout.phase.RolloutPhase``, the batch in ``k15ray.batch``, the loss in
``k15ray.objectives`` / ``k15ray.mirror_descent``: this file is only the RLlib adapter. RLlib supplies the ``LearnerGroup``,
checkpoints (``Checkpointable``), metrics and Tune; RLlib's EnvRunners are not used (``Text``
spaces; DESIGN.md "Ray facts"), so this class overrides the state and resource hooks that
assume them.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.env.env_context import EnvContext
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import LEARNER_RESULTS
from ray.tune.execution.placement_groups import PlacementGroupFactory

from k15ray import metrics as M
from k15ray.algorithms.config import K15Config, check_cluster_fits
from k15ray.algorithms.data_parallel import shard_by_groups
from k15ray.batch import (
    ATTENTION_MASK,
    INPUT_IDS,
    REFERENCE_TOKEN_LOGP,
    build_batch,
    learner_columns,
    minibatches,
    rollout_logp_gap,
)
from k15ray.config.k15 import K15Settings
from k15ray.rollout.phase import RolloutPhase
from k15ray.run_layout import POLICY_DIR

K15_STATE = "k15"


class K15(Algorithm):
    """Online policy mirror descent for LLM reasoning (see the module docstring)."""

    config: K15Config  # type: ignore[assignment]

    @classmethod
    def get_default_config(cls) -> K15Config:
        return K15Config()

    @classmethod
    def default_resource_request(cls, config: Any) -> PlacementGroupFactory:
        """RLlib's bundles (the main process = learner) plus one bundle per rollout actor, so that
        the actors fit inside a Tune trial's placement group (DESIGN.md, Ray facts)."""
        if isinstance(config, AlgorithmConfig):
            config = config.to_dict()
        base: Any = super().default_resource_request(config)
        cfg = cls.get_default_config().update_from_dict(config)
        rollout = cfg.settings().rollout
        actors = [
            {"CPU": float(rollout.num_cpus_per_worker), "GPU": float(rollout.num_gpus_per_worker)}
            for _ in range(0 if rollout.colocate else rollout.num_workers)  # colocated: no actors
        ]
        return PlacementGroupFactory(bundles=list(base.bundles) + actors, strategy=cfg.placement_strategy)

    # ------------------------------------------------------------------ setup / teardown
    def _setup_logdir(self) -> None:
        """Outside Tune, Trainable would make a directory under ~/ray_results: use
        ``config.k15_logdir`` (or a fresh temporary directory) instead."""
        if self._storage:
            super()._setup_logdir()
            return
        logdir = getattr(self.config, "k15_logdir", None)
        path = str(logdir) if logdir else tempfile.mkdtemp(prefix="k15-")
        os.makedirs(path, exist_ok=True)
        self._logdir = path  # type: ignore[assignment]

    def setup(self, config: Any) -> None:
        import ray

        if isinstance(config, K15Config) and ray.is_initialized():  # before any learner actor starts
            check_cluster_fits(config.settings(), ray.cluster_resources(), config.num_cpus_per_learner)
        super().setup(config)
        cfg = self.config
        self.settings: K15Settings = cfg.settings()
        torch.set_num_threads(self.settings.learner.num_threads or os.cpu_count() or 1)
        self._seed = int(cfg.seed or 0)
        self._rng = np.random.default_rng(self._seed)
        random.seed(self._seed)
        torch.manual_seed(self._seed)
        self._policy_version = 0
        self._heldout_env: Any = None
        self._rollout = RolloutPhase(self.settings, self._make_env(), seed=self._seed)
        set_source = getattr(self._rollout.pool, "set_weights_source", None)
        if set_source is not None:  # rollout actors: a replacement takes the learner's current weights
            set_source(self._current_weights)

    def _make_env(self, overrides: dict[str, Any] | None = None) -> Any:
        """An env of ``config.env`` (gym id, Tune-registered name, class path or class) with ``overrides``."""
        import k15ray.envs  # registers the k15/ ids in this process, e.g. a Tune trial

        cfg = self.config
        # A Tune trial is a process of its own: register a user's id here too (K15Config.k15_environment).
        k15ray.envs.ensure_registered(cfg.env, entry_point=cfg.k15_env_entry_point, imports=cfg.k15_env_imports)
        env_config = {**dict(cfg.env_config), **(overrides or {})}
        if isinstance(cfg.env, type):  # RLlib would pass the EnvContext as the only argument
            env = cfg.env(**env_config)
        else:
            env = self.env_creator(EnvContext(env_config, worker_index=0))
        inner = getattr(env, "unwrapped", env)
        if not hasattr(inner, "prompts") or not callable(getattr(inner, "score", None)):
            raise ValueError(
                f"environment {self.config.env!r} has no `prompts` list and `score(prompt, response)` "
                "method: K15 trains on text envs; subclass k15ray.envs.TextEnv"
            )
        return inner

    def cleanup(self) -> None:
        if getattr(self, "_rollout", None) is not None:
            self._rollout.shutdown()
        super().cleanup()

    # ------------------------------------------------------------------ the iteration
    def training_step(self) -> None:
        """One k1.5 iteration (module docstring, steps 1-8); logs through ``self.metrics``."""
        t_start = time.perf_counter()
        iteration = self.iteration  # 0-based index of the iteration running now
        values: dict[str, float] = {}
        groups, rollout_values = self._rollout.collect(iteration, self._policy_version)
        values.update(rollout_values)
        self._rollout.sleep()  # colocated: the engine frees the GPU while the learner trains
        if groups:
            values.update(self._learn(groups))
            values.update(self._sync_weights())
        values.update(self._rollout.update_sampler(groups))
        values.update(self._maybe_evaluate(iteration + 1))
        values[M.ROLLOUT_POLICY_VERSION] = float(self._policy_version)
        values[M.PERF_SECONDS_ITERATION] = time.perf_counter() - t_start
        metrics: Any = self.metrics
        for key, value in values.items():
            metrics.log_value(key, value, reduce="item")

    def _on_learner(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(learner)`` on the first learner (the only one, or actor 0) and return its result."""
        group: Any = self.learner_group
        if group.is_local:
            return next(iter(group.foreach_learner(fn))).get()
        return next(iter(group.foreach_learner(fn, remote_actor_ids=[0]))).get()

    def _on_every_learner(self, fn: Callable[[Any], Any]) -> list[Any]:
        """Run ``fn(learner)`` on every learner; their results (an error in one raises here)."""
        group: Any = self.learner_group
        return [result.get() for result in group.foreach_learner(fn)]

    @property
    def _num_learner_actors(self) -> int:
        return int(self.settings.learner.num_learners)

    def _reference_logprobs(self, full: dict[str, np.ndarray]) -> np.ndarray:
        """pi_ref = pi_theta_i: log-probs of the weights before this iteration's first step, (N, T);
        learner actors each compute their rows (``data_parallel.row_shard``)."""
        n = self._num_learner_actors
        if n == 0:  # the learner is in this process: the batch is passed, not copied
            return self._on_learner(lambda learner: learner.reference_logprobs(full))  # type: ignore[no-any-return]
        inputs = {INPUT_IDS: full[INPUT_IDS], ATTENTION_MASK: full[ATTENTION_MASK]}
        import ray

        ref = ray.put(inputs)  # once in the object store, not once per learner
        shares = self._on_every_learner(lambda learner: learner.reference_logprobs_share(ray.get(ref), n))
        return np.concatenate([logp for _, logp in sorted(shares, key=lambda share: share[0])], axis=0)

    def _update(self, minibatch: dict[str, np.ndarray]) -> Any:
        """One optimizer step on every learner: the whole minibatch, or with learner actors one
        shard of whole groups each (``data_parallel.shard_by_groups``)."""
        group: Any = self.learner_group
        n = self._num_learner_actors
        if n < 2:
            rows = int(minibatch[INPUT_IDS].shape[0])
            return group.update(batch=MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(minibatch)}, env_steps=rows))
        shards = shard_by_groups(minibatch, n, self.settings.mirror_descent)
        batches = [
            MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(shard)}, env_steps=int(shard[INPUT_IDS].shape[0]))
            for shard in shards
        ]
        return group.update(batches=batches)

    def _learn(self, groups: list[Any]) -> dict[str, float]:
        """Optimizer reset, reference log-probs of pi_theta_i, minibatch steps (paper 2.3.2)."""
        cfg = self.settings.learner
        full = build_batch(
            [g.trajectories for g in groups],
            [[bool(t.reward_details.get("correct", False)) for t in g.trajectories] for g in groups],
            self.settings.partial_rollout.loss_mask,
            self._policy_version,
            pad_token_id=self._rollout.pad_token_id,
            pixel_fn=self._rollout.pixel_fn,  # called only when a trajectory has images
        )
        if cfg.reset_optimizer:  # each iteration solves a new surrogate problem (paper 2.3.2)
            self._on_every_learner(lambda learner: learner.reset_optimizer())
        t0 = time.perf_counter()
        reference = self._reference_logprobs(full)
        gap_mean, gap_max = rollout_logp_gap(full, reference)
        batch = {**learner_columns(full), REFERENCE_TOKEN_LOGP: reference}
        t1 = time.perf_counter()
        metrics: Any = self.metrics
        steps = 0
        for _ in range(cfg.num_epochs):
            for mb in minibatches(batch, cfg.num_minibatches, self._rng):
                metrics.aggregate(self._update(mb), key=LEARNER_RESULTS)
                steps += 1
        t2 = time.perf_counter()
        # every learner's steps; an idle learner's (loss scale 0, fewer groups than learners) are not stats
        stats = [
            s for shard in self._on_every_learner(lambda learner: learner.pop_step_stats()) for s in shard
            if s.get("shard_loss_scale", 1.0) != 0.0
        ]
        tokens = float(batch["attention_mask"].sum())
        return {
            M.LOSS_TOTAL: M.mean_of(stats, "total"),
            M.LOSS_PG: M.mean_of(stats, "pg_loss"),
            M.LOSS_TAU: M.mean_of(stats, "tau_loss"),
            M.LOSS_LOG_RATIO_MEAN: M.mean_of(stats, "log_ratio_mean"),
            M.LOSS_LOG_RATIO_MAX_ABS: M.mean_of(stats, "log_ratio_max_abs"),
            M.LOSS_GRAD_NORM: M.mean_of(stats, "grad_norm"),
            M.LOSS_OPTIMIZER_STEPS: float(steps),
            M.LOSS_ROLLOUT_LOGP_GAP_MEAN: gap_mean,
            M.LOSS_ROLLOUT_LOGP_GAP_MAX: gap_max,
            M.PERF_SECONDS_REFERENCE: t1 - t0,
            M.PERF_SECONDS_LEARNER: t2 - t1,
            M.PERF_LEARNER_TOKENS_PER_S: tokens * cfg.num_epochs / max(t2 - t1, 1e-9),
        }

    def _sync_weights(self) -> dict[str, float]:
        """Publish the learner's weights to the rollout actors as version v+1 (object store)."""
        t0 = time.perf_counter()
        self._policy_version += 1
        self._push_weights()
        return {M.PERF_SECONDS_WEIGHT_SYNC: time.perf_counter() - t0}

    def _maybe_evaluate(self, completed: int) -> dict[str, float]:
        every = self.settings.eval.every_iterations
        if every <= 0 or completed % every != 0:
            return {}
        return self.evaluate_heldout()

    def evaluate_heldout(self) -> dict[str, float]:
        """Held-out accuracy of the current policy (``k15ray.evaluation.evaluate``)."""
        from k15ray.heldout import evaluate_policy

        t0 = time.perf_counter()
        eval_cfg = self.settings.eval
        if self._heldout_env is None:
            self._heldout_env = self._make_env(dict(eval_cfg.env_config))
        policy = self._on_learner(lambda learner: learner.policy_for_driver())
        report = evaluate_policy(policy, self._rollout.tokenizer, self._heldout_env, eval_cfg)
        return {**report, M.PERF_SECONDS_EVAL: time.perf_counter() - t0}

    # ------------------------------------------------------------------ checkpoints
    def get_state(self, components: Any = None, *, not_components: Any = None, **kwargs: Any) -> dict[str, Any]:
        """RLlib's state (learner weights, metrics, iteration) plus sampler, buffer, RNGs, version."""
        state = super().get_state(components, not_components=not_components, **kwargs)
        state[K15_STATE] = {
            "policy_version": self._policy_version,
            "rng": self._rng.bit_generator.state,
            "python_rng": random.getstate(),
            "torch_rng": torch.get_rng_state(),
            **self._rollout.state_dict(),
        }
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore without RLlib's EnvRunner syncs (there are none); re-push weights to actors."""
        from ray.rllib.core import COMPONENT_LEARNER_GROUP, COMPONENT_METRICS_LOGGER
        from ray.tune.result import TRAINING_ITERATION

        group: Any = self.learner_group
        metrics: Any = self.metrics
        if COMPONENT_LEARNER_GROUP in state:
            group.set_state(state[COMPONENT_LEARNER_GROUP])
        if COMPONENT_METRICS_LOGGER in state:
            metrics.set_state(state[COMPONENT_METRICS_LOGGER])
        if TRAINING_ITERATION in state:
            self._iteration = state[TRAINING_ITERATION]
        if K15_STATE in state:
            k15 = state[K15_STATE]
            self._rng.bit_generator.state = k15["rng"]
            random.setstate(k15["python_rng"])
            torch.set_rng_state(k15["torch_rng"])
            self._rollout.load_state_dict(k15)
            self._policy_version = int(k15["policy_version"])
        self._push_restored_weights()

    def save_to_path(self, path: Any = None, **kwargs: Any) -> str:
        """RLlib's checkpoint plus ``policy/``: the weights as a Hugging Face model directory, so
        that every checkpoint (direct mode's and Tune's, which saves through this method too) can be
        evaluated (``k15ray eval``) and served (``k15ray serve --policy``)."""
        saved = str(super().save_to_path(path, **kwargs))
        self.export_policy(os.path.join(saved, POLICY_DIR))
        return saved

    def export_policy(self, path: str | os.PathLike[str]) -> str:
        """Save the current policy and tokenizer (a vision-language policy: its whole processor)
        with ``save_pretrained`` (loadable by ``Auto*``)."""
        policy = self._on_learner(lambda learner: learner.policy_for_driver())
        policy.save_pretrained(str(path))
        processor = self._rollout.processor
        if processor is not None:
            processor.save_pretrained(str(path))
            processor.image_processor.save_pretrained(str(path))  # the file older readers look for
        self._rollout.tokenizer.save_pretrained(str(path))
        return str(path)

    def restore_from_path(self, path: Any, *args: Any, **kwargs: Any) -> None:
        """``Checkpointable.restore_from_path`` minus RLlib's EnvRunner syncs (there are none)."""
        from ray.rllib.utils.checkpoints import Checkpointable

        Checkpointable.restore_from_path(self, path, *args, **kwargs)
        self._push_restored_weights()

    def _push_restored_weights(self) -> None:
        if self._policy_version > self._rollout.actor_version():
            self._push_weights()

    def _current_weights(self) -> tuple[dict[str, Any], int]:
        """The first learner's weights (CPU copies) and their version, for a replacement actor."""
        state = self._on_learner(lambda learner: learner.policy_state_dict(on_device=False))
        return state, self._policy_version

    def _push_weights(self) -> None:
        """Load the learner's weights into the rollout pool as ``self._policy_version``.

        Colocated, the learner's own (GPU) tensors go straight into the in-process engine; with
        ``rollout.weight_sync: nccl`` they are broadcast from the learner's GPU to the engines;
        otherwise CPU copies travel through the object store."""
        on_device = self._rollout.weights_on_device
        state = self._on_learner(lambda learner: learner.policy_state_dict(on_device=on_device))
        self._rollout.update_weights(state, self._policy_version)
