"""The rollout phase of a K15 iteration: steps 1-5 of ``K15.training_step`` (paper 2.3.4, 2.6.2, 2.3.3).

No RLlib here: the algorithm (``k15ray.algorithms.k15``) hands it the run's typed ``K15Settings``
and an env; the pool behind it is any ``k15ray.rollout.pool.Pool``. ``RolloutPhase`` owns what the rollout phase needs between iterations, all of it checkpointed:
the prompt sampler (success rates, iteration, RNG) and the partial-rollout buffer (unfinished
trajectories with their segments). It also holds the rollout actors (``RolloutPool``), the
tokenizer and the training environment, whose ``score(prompt, response)`` is the reward.

``collect(iteration, version)``:

1. ``sampler.sample(n)`` new prompts, encoded with the tokenizer's chat template;
2. requests: carried-over trajectories first (``buffer.resume_requests``), then k new ones per
   prompt, each with at most ``budget_tokens`` new tokens;
3. ``pool.generate``: the actors sample with seed ``f(seed, iteration)``, so a resumed run
   draws exactly what the uninterrupted run would;
4. ``buffer.apply_results`` -> groups whose k trajectories are all finished;
5. each finished trajectory is decoded and scored by the env; rewards are shaped per group
   (``k15ray.reward_shaping``: the length and repeat penalties).

It also owns weight sync to its pool (step 7): through the object store, in place when
colocated, or by NCCL broadcast (``rollout.weight_sync: nccl``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from k15ray import metrics as M
from k15ray.config.k15 import K15Settings
from k15ray.partial_rollout import Group, PartialRolloutBuffer
from k15ray.reward_shaping import reward_metrics, shape_groups
from k15ray.rollout.pool import Pool
from k15ray.types import Prompt, RewardResult, SamplingParams

SAMPLER_STATE = "sampler"
BUFFER_STATE = "buffer"


def vision_processor(model_dir: str) -> Any:
    """The processor (tokenizer + image processor) of a vision-language policy directory; None for
    a text-only one."""
    from transformers import AutoProcessor

    from k15ray.models.vision_language import is_vision_model_dir

    return AutoProcessor.from_pretrained(model_dir) if is_vision_model_dir(model_dir) else None


def iteration_seed(seed: int, iteration: int) -> int:
    """The rollout seed of ``iteration``: distinct per iteration, identical across a resume."""
    return (seed * 1_000_003 + iteration) % (2**31 - 1)


class RolloutPhase:
    """Sampler + partial-rollout buffer + rollout actors + env scoring (module docstring)."""

    def __init__(
        self,
        settings: K15Settings,
        env: Any,
        seed: int = 0,
        pool_factory: Callable[[K15Settings], Pool] | None = None,
    ) -> None:
        from transformers import AutoTokenizer

        from k15ray.prompting import stop_token_ids
        from k15ray.sampling import make_sampler

        self.settings = settings
        self.env = env
        self.seed = seed
        self.rollout_cfg = settings.rollout
        self.tokenizer = AutoTokenizer.from_pretrained(settings.policy.model_dir)
        # a vision-language policy: its processor encodes prompts with their images and makes the
        # learner's pixel values (pixel_fn); None for a text-only policy (which sees only the text)
        self.processor = vision_processor(str(settings.policy.model_dir))
        pad = self.tokenizer.pad_token_id
        self.pad_token_id = int(pad if pad is not None else 0)
        self.stop_ids = tuple(stop_token_ids(self.tokenizer))
        self.prompts: dict[str, Prompt] = {p.id: p for p in env.prompts}
        self.sampler = make_sampler(list(env.prompts), settings.sampling, seed)
        self.buffer = PartialRolloutBuffer(settings.partial_rollout)
        self._prompt_tokens: dict[str, tuple[int, ...]] = {}
        self._rewards: dict[str, Any] = {}  # reward kind -> RewardFn (the reward section)
        self._gpu_holder: Any = None  # weight_sync: nccl: the learner's GPU, kept from the actors
        if self.rollout_cfg.weight_sync == "nccl" and pool_factory is None:
            from k15ray.rollout.nccl_sync import reserve_learner_gpu

            self._gpu_holder = reserve_learner_gpu()
        self.pool: Pool = (pool_factory or default_pool)(settings)
        self._nccl_sender: Any = None  # k15ray.rollout.nccl_sync.NcclWeightSender (weight_sync: nccl)

    # ------------------------------------------------------------------ steps 1-5
    def _encode(self, prompt: Prompt, images: tuple[Any, ...]) -> tuple[int, ...]:
        """Token ids of ``prompt`` shown with ``images`` (its ``_images``), encoded once."""
        from k15ray.prompting import encode_prompt, encode_vision_prompt

        if prompt.id not in self._prompt_tokens:
            if self.processor is not None:
                ids = encode_vision_prompt(self.processor, prompt, images)
            else:
                ids = encode_prompt(self.tokenizer, prompt)
            self._prompt_tokens[prompt.id] = tuple(ids)
        return self._prompt_tokens[prompt.id]

    def _images(self, prompt: Prompt) -> tuple[Any, ...]:
        """The images ``prompt`` is shown with: the env's, for a vision-language policy only."""
        if self.processor is None:
            return ()
        return tuple(getattr(self.env, "prompt_images", lambda p: ())(prompt))

    def pixel_fn(self, images: Sequence[Any]) -> Any:
        """Pixel values of ``images`` by the policy's image processor (``k15ray.batch.PixelFn``)."""
        if self.processor is None:
            raise ValueError("a text-only policy has no image processor; its trajectories carry no images")
        return self.processor.image_processor(images=list(images), return_tensors="np")["pixel_values"]

    def collect(self, iteration: int, policy_version: int) -> tuple[list[Group], dict[str, float]]:
        """Sample, generate and score; return the complete groups (rewards set) and metrics."""
        t0 = time.perf_counter()
        new_prompts = self.sampler.sample(self.settings.sampling.prompts_per_iteration)
        requests = self.buffer.resume_requests()
        num_resumed = len(requests)
        images = [self._images(p) for p in new_prompts]
        requests += self.buffer.new_requests(
            [p.id for p in new_prompts],
            [self._encode(p, shown) for p, shown in zip(new_prompts, images, strict=True)],
            self.rollout_cfg.samples_per_prompt,
            images=images,
        )
        params = SamplingParams(
            temperature=self.rollout_cfg.temperature,
            top_p=self.rollout_cfg.top_p,
            stop_token_ids=self.stop_ids,
            seed=iteration_seed(self.seed + self.rollout_cfg.seed, iteration),
            detect_repeats=self.settings.repeat.enabled,
            # only the loss/rollout_logp_gap_* diagnostic reads them: the learner recomputes its own
            logprobs=self.rollout_cfg.logprobs_on(iteration),
        )
        results = self.pool.generate(requests, params)
        update = self.buffer.apply_results(results)
        t1 = time.perf_counter()
        reward_values = self._score_groups(update.groups, iteration)
        t2 = time.perf_counter()
        finished = [t for g in update.groups for t in g.trajectories]
        reasons = [t.finish_reason for t in finished]
        tokens = float(sum(len(r.token_ids) for r in results))
        n_fin = max(len(finished), 1)
        return update.groups, {
            M.ROLLOUT_PROMPTS: float(len(new_prompts)),
            M.ROLLOUT_TRAJECTORIES: float(len(finished)),
            M.ROLLOUT_TOKENS: tokens,
            M.ROLLOUT_FRAC_TRUNCATED: reasons.count("length") / n_fin,
            M.ROLLOUT_FRAC_REPEAT: reasons.count("repeat") / n_fin,
            M.ROLLOUT_FRAC_CARRIED: len(update.carried) / max(len(requests), 1),
            M.ROLLOUT_BUFFER_SIZE: float(len(self.buffer.unfinished())),
            M.ROLLOUT_RESUMED: float(num_resumed),
            M.ROLLOUT_ACTOR_REPLACEMENTS: float(self.pool.num_replacements),
            **M.length_stats([t.num_response_tokens for t in finished]),
            **reward_values,
            M.PERF_SECONDS_ROLLOUT: t1 - t0,
            M.PERF_SECONDS_REWARD: t2 - t1,
            M.PERF_ROLLOUT_TOKENS_PER_S: tokens / max(t1 - t0, 1e-9),
        }

    def _score(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[RewardResult]:
        """r(x, y, y*) of each pair: the env's reward, or the one the ``reward`` section names
        (a model RM, local or served; the served verifier), one batched call per reward kind."""
        from k15ray.rewards.select import reward_kind, training_reward

        cfg = self.settings.reward
        results: list[RewardResult | None] = [None] * len(prompts)
        by_kind: dict[str | None, list[int]] = {}
        for i, prompt in enumerate(prompts):
            by_kind.setdefault(reward_kind(cfg, prompt.domain), []).append(i)
        for kind, indices in by_kind.items():
            if kind is None:
                scored = [self.env.score(prompts[i], responses[i]) for i in indices]
            else:
                if kind not in self._rewards:
                    self._rewards[kind] = training_reward(cfg, kind)
                scored = list(self._rewards[kind].score_batch([prompts[i] for i in indices], [responses[i] for i in indices]))
            for i, result in zip(indices, scored, strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    def _score_groups(self, groups: Sequence[Group], iteration: int) -> dict[str, float]:
        """Decode and score every trajectory, then shape each group's rewards (2.3.3, 2.6.2).

        With a model RM as the reward, the env's verifier also scores each response, for the
        metrics only (``reward/verifier_accuracy``, ``reward/fooling_rate``)."""
        if not groups:
            return {}
        trajectories = [t for g in groups for t in g.trajectories]
        prompts = [self.prompts[g.prompt_id] for g in groups for _ in g.trajectories]
        for t in trajectories:
            t.response_text = str(self.tokenizer.decode(list(t.response_token_ids), skip_special_tokens=True))
        results = self._score(prompts, [t.response_text for t in trajectories])
        for t, result in zip(trajectories, results, strict=True):
            t.reward_details = {"score": float(result.score), "correct": bool(result.correct), "status": result.status}
        scores: list[list[float]] = []
        correct: list[list[bool]] = []
        start = 0
        for group in groups:
            group_results = results[start : start + len(group.trajectories)]
            start += len(group.trajectories)
            scores.append([float(r.score) for r in group_results])
            correct.append([bool(r.correct) for r in group_results])
        cfg = self.settings
        shaped = shape_groups(
            [g.trajectories for g in groups], scores, correct, iteration, cfg.length_penalty, cfg.repeat
        )
        not_ok = sum(r.status != "ok" for r in results) / len(results)
        metrics = {**reward_metrics(shaped, iteration, cfg.length_penalty), M.REWARD_STATUS_NOT_OK: not_ok}
        if cfg.reward.uses_model:
            verified = [bool(self.env.score(p, t.response_text).correct) for p, t in zip(prompts, trajectories, strict=True)]
            for t, ok in zip(trajectories, verified, strict=True):
                t.reward_details["verifier_correct"] = ok
            metrics.update(M.rm_verifier_metrics([bool(r.correct) for r in results], verified))
        return metrics

    def update_sampler(self, groups: Sequence[Group]) -> dict[str, float]:
        """Step 8: each prompt's success = the fraction of its k samples that were correct."""
        if groups:
            success = [
                float(np.mean([bool(t.reward_details.get("correct", False)) for t in g.trajectories]))
                for g in groups
            ]
            self.sampler.update([g.prompt_id for g in groups], success)
        return {}

    # ------------------------------------------------------------------ actors
    @property
    def weights_on_device(self) -> bool:
        """Whether the pool takes the learner's live (GPU) tensors: colocated or NCCL."""
        return self.colocated or self.rollout_cfg.weight_sync == "nccl"

    def update_weights(self, state_dict: dict[str, Any], version: int) -> None:
        """Step 7: the learner's weights become the pool's ``version`` (object store, in place
        when colocated, or NCCL broadcast with ``rollout.weight_sync: nccl``)."""
        if self.rollout_cfg.weight_sync != "nccl":
            self.pool.update_weights(state_dict, version)
            return
        from k15ray.rollout.actor import RolloutPool

        pool = self.pool
        assert isinstance(pool, RolloutPool), "rollout.weight_sync: nccl is validated to use actors"
        if self._nccl_sender is None or not pool.nccl_group_current:
            # one NCCL group of the learner's GPU and the engines; rebuilt after a replacement
            device = str(next(iter(state_dict.values())).device)
            self._nccl_sender = pool.init_nccl(device)
        pool.update_weights_nccl(self._nccl_sender, state_dict, version)

    def sleep(self) -> None:
        """Colocated pools free the GPU for the training phase (paper 2.6.3); others need not."""
        self.pool.sleep()

    @property
    def colocated(self) -> bool:
        return bool(self.rollout_cfg.colocate)

    def actor_version(self) -> int:
        return int(self.pool.policy_version)

    def shutdown(self) -> None:
        self.pool.shutdown()

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        return {SAMPLER_STATE: self.sampler.state_dict(), BUFFER_STATE: self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state[SAMPLER_STATE])
        self.buffer.load_state_dict(state[BUFFER_STATE])


def default_pool(settings: K15Settings) -> Pool:
    """The rollout actors of ``k15ray.rollout.actor`` for ``settings``, or with ``rollout.colocate``
    the backend in this (the learner's) process (``k15ray.rollout.local``)."""
    from k15ray.rollout.actor import RolloutPool
    from k15ray.rollout.local import LocalRolloutPool

    pool_cls = LocalRolloutPool if settings.rollout.colocate else RolloutPool
    model_dir = settings.policy.model_dir
    assert model_dir is not None, "K15Settings of a run always name the policy's model_dir"
    return pool_cls(settings.rollout, model_dir=model_dir, repeat_config=settings.repeat)
