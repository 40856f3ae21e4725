"""Prompt sampling strategies (paper section 2.3.4).

* ``UniformSampler``: every prompt of D equally likely.
* ``CurriculumSampler`` (difficulty labels, ``Prompt.difficulty``, 1 = easiest):
  ``warmup_then_hard`` samples all of D for ``warmup_iterations`` iterations, then only prompts
  with difficulty >= ``hard_difficulty`` (the paper's ablation, Figure 9); ``staged`` goes easy to
  hard: stage s = iteration // stage_iterations samples the prompts whose difficulty is at most
  the (s+1)-th lowest level present in D (cumulative, so earlier levels are not forgotten).
* ``PrioritizedSampler``: P(i) proportional to max(1 - s_i, floor), s_i the tracked success rate
  of prompt i (a running mean, or an EMA when ``success_ema`` > 0; unseen prompts have s_i = 0).
* ``CurriculumPrioritizedSampler`` (``curriculum+prioritized``; the paper uses both at once): the
  curriculum's eligible pool E_t of iteration t, weighted as the prioritized sampler weighs:
  P(i) proportional to [i in E_t] * max(1 - s_i, floor).

With ``initial_success: pass_rate``, s_i starts at the pass rate that ``k15ray curate`` stored on the
prompt (``k15ray.curation.difficulty.stored_pass_rate``), counted as one observation; prompts
without one start at 0 as before.

Iterations: each ``sample(n)`` call is one iteration; ``iteration`` says which iteration the next
call samples for, and ``set_iteration(i)`` moves it (e.g. after restoring a checkpoint).
Within one call the n prompts are distinct (sequential draws without replacement from the
eligible pool) while n <= pool size; past that the pool is reused. So the probabilities above are
exactly those of each call's first draw (and of ``sample(1)``). Every sampler tracks success rates
(``update``) and checkpoints them, its iteration and its RNG state (``state_dict``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from k15ray.config.sampling import SamplingConfig
from k15ray.types import Prompt, Sampler


class UniformSampler:
    """Uniform over D; the base of the others (success tracking, iteration count, RNG, state)."""

    def __init__(self, prompts: Sequence[Prompt], config: SamplingConfig | None = None, seed: int = 0) -> None:
        if not prompts:
            raise ValueError("the prompt set is empty: give the sampler at least one Prompt")
        ids = [p.id for p in prompts]
        if len(set(ids)) != len(ids):
            raise ValueError("prompt ids must be unique; the sampler tracks success per id")
        self.prompts = list(prompts)
        self.config = config or SamplingConfig()
        self._index = {pid: i for i, pid in enumerate(ids)}
        self._rng = np.random.default_rng(seed)
        self.iteration = 0
        self.success = np.zeros(len(self.prompts))  # s_i
        self.counts = np.zeros(len(self.prompts), dtype=np.int64)  # number of updates of s_i
        if self.config.initial_success == "pass_rate":
            from k15ray.curation.difficulty import stored_pass_rate

            for i, prompt in enumerate(self.prompts):
                rate = stored_pass_rate(prompt)
                if rate is not None:
                    self.success[i], self.counts[i] = rate, 1  # the curation's k samples: one observation

    def set_iteration(self, iteration: int) -> None:
        if iteration < 0:
            raise ValueError(f"iteration must be >= 0, got {iteration}")
        self.iteration = iteration

    def probabilities(self) -> np.ndarray:
        """P(i) of the next call's first draw, over all of D (zero outside the eligible pool)."""
        return np.full(len(self.prompts), 1.0 / len(self.prompts))

    def sample(self, n: int) -> list[Prompt]:
        """n prompts for the current iteration, then advance the iteration counter."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        weights = self.probabilities()
        chosen: list[int] = []
        while len(chosen) < n:
            w = weights.copy()
            for _ in range(min(n - len(chosen), int(np.count_nonzero(w)))):
                i = int(self._rng.choice(len(w), p=w / w.sum()))
                chosen.append(i)
                w[i] = 0.0  # without replacement within one pass over the pool
        self.iteration += 1
        return [self.prompts[i] for i in chosen]

    def update(self, prompt_ids: Sequence[str], success: Sequence[float]) -> None:
        """Record success (e.g. the fraction of a group's k samples that were correct) per prompt."""
        if len(prompt_ids) != len(success):
            raise ValueError("prompt_ids and success must have the same length")
        alpha = self.config.success_ema
        for pid, s in zip(prompt_ids, success, strict=True):
            if pid not in self._index:
                raise ValueError(f"unknown prompt id {pid!r}: update only ids this sampler returned")
            i = self._index[pid]
            self.counts[i] += 1
            # s_i <- s_i + w (s - s_i), w = 1/count (running mean) or alpha (EMA; first update sets it)
            w = alpha if alpha > 0 and self.counts[i] > 1 else 1.0 / self.counts[i]
            self.success[i] += w * (float(s) - self.success[i])

    def state_dict(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "ids": [p.id for p in self.prompts],
            "success": self.success.tolist(),
            "counts": self.counts.tolist(),
            "rng": self._rng.bit_generator.state,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if list(state["ids"]) != [p.id for p in self.prompts]:
            raise ValueError("sampler state was saved for a different prompt set (ids differ)")
        self.iteration = int(state["iteration"])
        self.success = np.asarray(state["success"], dtype=np.float64)
        self.counts = np.asarray(state["counts"], dtype=np.int64)
        self._rng.bit_generator.state = dict(state["rng"])


class CurriculumSampler(UniformSampler):
    """Uniform over the iteration's eligible pool: warm-up on D then hard only, or staged easy to hard."""

    def __init__(self, prompts: Sequence[Prompt], config: SamplingConfig | None = None, seed: int = 0) -> None:
        super().__init__(prompts, config, seed)
        self._difficulty = np.array([p.difficulty for p in self.prompts])
        self.levels = sorted(set(self._difficulty.tolist()))
        if self.config.curriculum_mode == "warmup_then_hard" and not np.any(
            self._difficulty >= self.config.hard_difficulty
        ):
            raise ValueError(
                f"hard_difficulty: no prompt has difficulty >= {self.config.hard_difficulty} "
                f"(levels present: {self.levels}); lower it"
            )

    def eligible(self) -> np.ndarray:
        """Boolean mask over D of the prompts the current iteration may sample."""
        cfg = self.config
        if cfg.curriculum_mode == "warmup_then_hard":
            if self.iteration < cfg.warmup_iterations:
                return np.ones(len(self.prompts), dtype=bool)  # warm-up on all of D
            return self._difficulty >= cfg.hard_difficulty  # then hard only
        stage = min(self.iteration // cfg.stage_iterations, len(self.levels) - 1)
        return self._difficulty <= self.levels[stage]  # easy -> hard, cumulative

    def probabilities(self) -> np.ndarray:
        mask = self.eligible().astype(np.float64)
        return mask / mask.sum()


class PrioritizedSampler(UniformSampler):
    """P(i) proportional to max(1 - s_i, floor): prompts with low success rates come more often."""

    def probabilities(self) -> np.ndarray:
        priority = np.maximum(1.0 - self.success, self.config.priority_floor)  # max(1 - s_i, floor)
        return priority / priority.sum()


class CurriculumPrioritizedSampler(CurriculumSampler):
    """Curriculum and prioritized sampling at once: the curriculum's pool, weighted by 1 - s_i."""

    def probabilities(self) -> np.ndarray:
        mask = self.eligible().astype(np.float64)  # [i in E_t]
        priority = np.maximum(1.0 - self.success, self.config.priority_floor)  # max(1 - s_i, floor)
        weights = mask * priority
        return weights / weights.sum()


def make_sampler(prompts: Sequence[Prompt], config: SamplingConfig, seed: int = 0) -> Sampler:
    """The sampler named by ``config.strategy``."""
    classes: dict[str, type[UniformSampler]] = {
        "uniform": UniformSampler,
        "curriculum": CurriculumSampler,
        "prioritized": PrioritizedSampler,
        "curriculum+prioritized": CurriculumPrioritizedSampler,
    }
    if config.strategy not in classes:
        raise ValueError(f"strategy {config.strategy!r} is not one of {sorted(classes)}")
    return classes[config.strategy](prompts, config, seed)
