"""Wiring of the K15 iteration: each switch of the recipe reaches the part of the run it must change.

Short real runs (``K15Config(...).build_algo()``, ``algo.train()``) of a tiny random policy on a
toy env whose 6 prompts have difficulties 1, 1, 2, 2, 3, 3 and whose reward is the fraction of
digits in the response ("correct" from 10% on). The rollout backend runs in the learner's process
(``rollout.colocate``: no actor to start), and rollouts are full (budget = max length) unless a
test needs partial ones. What each test checks is observed from outside the learner: the learner's
per-step stats (``pop_step_stats``), the batches it is given (``reference_logprobs`` and
``compute_loss_for_module``) and the groups of ``algo._rollout.collect``, all recorded by wrapping
those methods on the in-process learner and rollout phase.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from k15_testkit import small_config, tiny_model

import k15ray.envs
from k15ray.algorithms import K15, K15Config
from k15ray.envs import TextEnv
from k15ray.types import Prompt, RewardResult

ENV_ID = "k15test/DigitsByDifficulty-v0"
K = 4  # samples per prompt
LENGTH_WEIGHT = 0.5
REPEAT_PENALTY = -0.25


def digits(prompt: Prompt, response: str) -> RewardResult:
    """r = (digits in the response) / (characters in it); "correct" when r >= 0.1."""
    score = sum(c.isdigit() for c in response) / max(len(response), 1)
    return RewardResult(score, score >= 0.1)


class DigitsByDifficultyEnv(TextEnv):
    """6 prompts "Say some digits #i" of difficulty 1, 1, 2, 2, 3, 3."""

    def __init__(self, **kwargs: Any) -> None:
        prompts = [
            Prompt(id=f"d{i}", question=f"Say some digits #{i}", answer="0", difficulty=1 + i // 2)
            for i in range(6)
        ]
        super().__init__(prompts=prompts, reward_fn=digits, **kwargs)


@dataclass
class Recorder:
    """What the run showed, per iteration (``groups``, ``step_stats``, ``full_batches``) or per
    optimizer step (``minibatches``)."""

    groups: list[list[Any]] = field(default_factory=list)
    step_stats: list[list[dict[str, float]]] = field(default_factory=list)
    full_batches: list[dict[str, np.ndarray]] = field(default_factory=list)
    minibatches: list[dict[str, np.ndarray]] = field(default_factory=list)


def on_learner(algo: K15, fn: Callable[[Any], Any]) -> Any:
    """``fn(learner)`` on the learner, which runs in this process (``num_learners=0``)."""
    group: Any = algo.learner_group
    return next(iter(group.foreach_learner(fn))).get()


def policy_weights(algo: K15) -> dict[str, np.ndarray]:
    group: Any = algo.learner_group
    return dict(group.get_weights()["default_policy"])


def record(algo: K15) -> Recorder:
    """Wrap the rollout phase's ``collect`` and the learner's hooks to record what they see."""
    rec = Recorder()
    collect = algo._rollout.collect

    def recording_collect(*args: Any, **kwargs: Any) -> Any:
        groups, values = collect(*args, **kwargs)
        rec.groups.append(list(groups))
        return groups, values

    algo._rollout.collect = recording_collect  # type: ignore[method-assign]

    def install(learner: Any) -> None:
        pop, reference, loss = learner.pop_step_stats, learner.reference_logprobs, learner.compute_loss_for_module

        def recording_pop() -> list[dict[str, float]]:
            stats = pop()
            rec.step_stats.append([dict(s) for s in stats])
            return stats

        def recording_reference(batch: dict[str, np.ndarray], *args: Any, **kwargs: Any) -> np.ndarray:
            rec.full_batches.append({k: np.array(v) for k, v in batch.items()})
            return reference(batch, *args, **kwargs)

        def recording_loss(**kwargs: Any) -> torch.Tensor:
            batch = kwargs["batch"]
            rec.minibatches.append({k: batch[k].detach().cpu().numpy() for k in ("group_index", "reward")})
            return loss(**kwargs)

        learner.pop_step_stats = recording_pop
        learner.reference_logprobs = recording_reference
        learner.compute_loss_for_module = recording_loss

    on_learner(algo, install)
    return rec


def wiring_config(tmp: Path, model_dir: str | None = None, budget: int = 24, **sections: Any) -> K15Config:
    """3 prompts x k=4 per iteration, <= 24 response tokens (``budget`` per iteration), in-process
    rollouts; ``partial_rollout``/``sampling`` entries of ``sections`` are merged over these,
    ``repeat`` goes to ``k15_rollouts`` and the rest to ``k15_training``."""
    k15ray.envs.register(ENV_ID, DigitsByDifficultyEnv)  # idempotent
    config = small_config(model_dir or tiny_model(tmp / "tiny"), tmp / "logs", env=ENV_ID)
    config.k15_rollouts(
        rollout={"colocate": True, "samples_per_prompt": K, "max_batch_size": 16},
        partial_rollout={"budget_tokens": budget, "max_response_tokens": 24, **sections.pop("partial_rollout", {})},
        sampling={"prompts_per_iteration": 3, **sections.pop("sampling", {})},
        **{k: sections.pop(k) for k in ("repeat",) if k in sections},
    )
    config.k15_training(**sections)
    return config


def run(config: K15Config, iterations: int) -> tuple[K15, list[dict[str, Any]], Recorder]:
    algo: Any = config.build_algo()
    rec = record(algo)
    try:
        results = [algo.train() for _ in range(iterations)]
    except BaseException:
        algo.stop()
        raise
    return algo, results, rec


# ----------------------------------------------------------------------------- mirror descent
@pytest.fixture(scope="module")
def mirror_run(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[K15, list[dict[str, Any]], Recorder]]:
    """Mirror descent, length penalty (weight 0.5 from iteration 0), prioritized sampling."""
    config = wiring_config(
        tmp_path_factory.mktemp("mirror"),
        length_penalty={"weight": LENGTH_WEIGHT, "warmup_iterations": 0},
        sampling={"strategy": "prioritized"},
    )
    algo, results, rec = run(config, 2)
    yield algo, results, rec
    algo.stop()


def test_optimizer_state_is_reset_every_iteration(mirror_run: tuple[K15, list[dict[str, Any]], Recorder]) -> None:
    """Paper 2.3.2: after 2 iterations of 2 steps each, AdamW has counted the 2 of the last one."""
    algo, results, rec = mirror_run
    assert [len(s) for s in rec.step_stats] == [2, 2], "both iterations must train (2 minibatches each)"
    optimizer = on_learner(algo, lambda learner: learner.get_optimizer())
    steps = {int(state["step"]) for state in optimizer.state.values()}
    assert steps == {2} == {int(results[1]["loss/optimizer_steps"])}


def test_reference_is_the_policy_at_the_iteration_start(mirror_run: tuple[K15, list[dict[str, Any]], Recorder]) -> None:
    """pi_ref = pi_theta_i: the first step's log pi / pi_ref is 0 (same weights, same function,
    up to float rounding between batch shapes); the second step's, after one update, is not."""
    _, _, rec = mirror_run
    for stats in rec.step_stats:
        first, second = stats[0]["log_ratio_max_abs"], stats[1]["log_ratio_max_abs"]
        assert first < 1e-4, stats
        assert second > 100 * max(first, 1e-5), stats
        # the loss itself reads pi_ref: its tau term (tau/2)(log pi - log pi_ref)^2 is 0 on the
        # first step and > 0 after an update (a pi_ref taken from the current, detached log-probs
        # would make it vanish on every step)
        assert stats[0]["tau_loss"] < 1e-6, stats
        assert stats[1]["tau_loss"] > 1e-6, stats


def expected_length_part(lengths: list[int], correct: list[bool]) -> list[float]:
    """w * len_reward of paper 2.3.3: lambda = 0.5 - (len - min) / (max - min); correct -> lambda,
    wrong -> min(0, lambda); all 0 when every length is the same."""
    lo, hi = min(lengths), max(lengths)
    if lo == hi:
        return [0.0] * len(lengths)
    lam = [0.5 - (n - lo) / (hi - lo) for n in lengths]
    return [LENGTH_WEIGHT * (x if ok else min(0.0, x)) for x, ok in zip(lam, correct, strict=True)]


def test_length_penalty_reaches_each_group(mirror_run: tuple[K15, list[dict[str, Any]], Recorder]) -> None:
    """r_j = score_j + w * len_reward_j within each group of k (paper 2.3.3): the shortest sample
    gets +0.5 w when correct, the longest -0.5 w; the metric reports the mean length part."""
    _, results, rec = mirror_run
    varied = 0
    for groups, result in zip(rec.groups, results, strict=True):
        parts = []
        for group in groups:
            trajs = group.trajectories
            lengths = [t.num_response_tokens for t in trajs]
            expected = expected_length_part(lengths, [bool(t.reward_details["correct"]) for t in trajs])
            got = [t.reward - t.reward_details["score"] for t in trajs]
            assert got == pytest.approx(expected, abs=1e-6), (lengths, got, expected)
            varied += min(lengths) < max(lengths)
            parts += got
        assert result["reward/length_penalty_mean"] == pytest.approx(np.mean(parts), abs=1e-6)
    assert varied >= 1, "no group had samples of different lengths: the penalty was never exercised"
    assert any(r["reward/length_penalty_mean"] != 0.0 for r in results)


def test_minibatches_hold_whole_groups_with_their_shaped_rewards(
    mirror_run: tuple[K15, list[dict[str, Any]], Recorder],
) -> None:
    """The baseline b of eq. (3) is a group statistic: every minibatch holds all k samples of each
    of its groups, with the shaped rewards of one collected group."""
    _, _, rec = mirror_run
    collected = {tuple(sorted(round(t.reward, 5) for t in g.trajectories)) for gs in rec.groups for g in gs}
    assert len(rec.minibatches) == 4
    for mb in rec.minibatches:
        index = mb["group_index"]
        for g in np.unique(index):
            assert (index == g).sum() == K
            assert tuple(sorted(round(float(r), 5) for r in mb["reward"][index == g])) in collected


def test_prioritized_sampler_learns_success_rates(mirror_run: tuple[K15, list[dict[str, Any]], Recorder]) -> None:
    """Paper 2.3.4: each trained prompt's success rate s_i (fraction of its k samples correct) is
    recorded, and P(i) proportional to max(1 - s_i, floor) follows it."""
    algo, _, rec = mirror_run
    sampler: Any = algo._rollout.sampler
    state = sampler.state_dict()
    success = dict(zip(state["ids"], state["success"], strict=True))
    counts = dict(zip(state["ids"], state["counts"], strict=True))
    trained: dict[str, list[float]] = {}
    for groups in rec.groups:
        for g in groups:
            trained.setdefault(g.prompt_id, []).append(np.mean([t.reward_details["correct"] for t in g.trajectories]))
    assert trained and {pid for pid, n in counts.items() if n} == set(trained)
    for pid, rates in trained.items():
        assert success[pid] == pytest.approx(np.mean(rates))  # running mean of the group rates
    priority = np.maximum(1 - np.array(state["success"]), sampler.config.priority_floor)
    np.testing.assert_allclose(sampler.probabilities(), priority / priority.sum())
    assert any(success[pid] > 0 for pid in trained), "no prompt had a correct sample"


# ----------------------------------------------------------------------------- ReST + curriculum
@pytest.fixture(scope="module")
def rest_run(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[K15, list[dict[str, Any]], Recorder]]:
    """ReST (paper 3.5's ablation baseline) with a staged curriculum, one stage per iteration."""
    config = wiring_config(
        tmp_path_factory.mktemp("rest"),
        mirror_descent={"objective": "rest"},
        sampling={"prompts_per_iteration": 2, "strategy": "curriculum", "curriculum_mode": "staged", "stage_iterations": 1},
    )
    algo, results, rec = run(config, 2)
    yield algo, results, rec
    algo.stop()


def test_staged_curriculum_samples_only_the_stages_difficulties(
    rest_run: tuple[K15, list[dict[str, Any]], Recorder],
) -> None:
    """Paper 2.3.4: stage s samples difficulty <= the (s+1)-th lowest level: {1}, then {1, 2}."""
    _, _, rec = rest_run
    difficulty = {f"d{i}": 1 + i // 2 for i in range(6)}
    stages = [{difficulty[g.prompt_id] for g in groups} for groups in rec.groups]
    assert stages[0] == {1}
    assert stages[1] <= {1, 2}


def test_rest_fits_the_correct_samples(rest_run: tuple[K15, list[dict[str, Any]], Recorder]) -> None:
    """ReST's loss -mean log pi over correct samples is > 0 on a step with a correct sample."""
    _, results, rec = rest_run
    steps = [s for stats in rec.step_stats for s in stats]
    assert steps and all("rest_loss" in s for s in steps)  # the objective the config names
    kept = [s for s in steps if s["rest_fraction_kept"] > 0]
    assert kept, "no minibatch held a correct sample"
    assert all(s["rest_loss"] > 0 and s["total"] == s["rest_loss"] for s in kept)
    assert all(np.isfinite(r["loss/total"]) for r in results)


# ----------------------------------------------------------------------------- GRPO + partial rollouts
@pytest.fixture(scope="module")
def grpo_partial_run(
    ray_session: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[K15, list[dict[str, Any]], Recorder, dict[str, np.ndarray]]]:
    """GRPO on partial rollouts (budget 12 of 24 tokens) with ``loss_mask: current``, 6 prompts per
    iteration. Iteration 0 trains nothing (every group still runs), iteration 1 trains the groups of
    iteration 0 (all at version 0) and publishes version 1, iteration 2 trains the groups opened in
    iteration 1: segments of versions 0 and 1."""
    config = wiring_config(
        tmp_path_factory.mktemp("grpo"),
        budget=12,
        mirror_descent={"objective": "grpo"},
        partial_rollout={"loss_mask": "current"},
        sampling={"prompts_per_iteration": 6},
    )
    algo: Any = config.build_algo()
    weights0 = {k: v.copy() for k, v in policy_weights(algo).items()}
    rec = record(algo)
    try:
        results = [algo.train() for _ in range(3)]
    except BaseException:
        algo.stop()
        raise
    yield algo, results, rec, weights0
    algo.stop()


def test_grpo_trains(grpo_partial_run: tuple[K15, list[dict[str, Any]], Recorder, dict[str, np.ndarray]]) -> None:
    algo, results, rec, weights0 = grpo_partial_run
    steps = [s for stats in rec.step_stats for s in stats]
    assert steps and all("grpo_loss" in s and np.isfinite(s["total"]) for s in steps)
    assert any(s["grad_norm"] > 0 for s in steps)
    weights = policy_weights(algo)
    assert any(not np.array_equal(v, weights[k]) for k, v in weights0.items())


def test_current_loss_mask_trains_early_finished_trajectories(
    grpo_partial_run: tuple[K15, list[dict[str, Any]], Recorder, dict[str, np.ndarray]],
) -> None:
    """Paper 2.6.2 with ``loss_mask: current``: in the batch, a trajectory's last generating
    iteration is in the loss, its earlier segments are not. A trajectory that stopped in an
    earlier iteration while its group still ran keeps its (only) segment: a non-zero mask."""
    _, _, rec, _ = grpo_partial_run
    trained = [groups for groups in rec.groups if groups]
    assert len(trained) == len(rec.full_batches) == 2
    early = carried = 0
    for groups, batch in zip(trained, rec.full_batches, strict=True):
        rows = iter(batch["loss_mask"])  # build_batch's rows: groups in order, samples in order
        for group in groups:
            newest = max(s.policy_version for t in group.trajectories for s in t.segments)
            for t in group.trajectories:
                last = t.segments[-1].policy_version
                in_loss = sum(len(s.token_ids) for s in t.segments if s.policy_version == last)
                assert next(rows).sum() == in_loss > 0
                early += last < newest  # finished while its group still ran
                carried += len({s.policy_version for s in t.segments}) > 1
    assert carried, "no carried-over trajectory: partial rollouts were not exercised"
    assert early, "no trajectory finished while its group still ran"


# ----------------------------------------------------------------------------- repeat penalty
def looping_model(src: str, dst: Path) -> str:
    """A copy of the tiny policy that repeats its input token: orthonormal (tied) embeddings of
    norm 4 and zeroed attention/MLP outputs make the logits peak at the current token (about 45
    nats above every other), so every sample loops with period 1 from its first token."""
    from transformers import AutoModelForCausalLM

    shutil.copytree(src, dst)
    model = AutoModelForCausalLM.from_pretrained(dst)
    vocab, hidden = model.model.embed_tokens.weight.shape  # (V, H), V <= H
    with torch.no_grad():
        q, _ = torch.linalg.qr(torch.randn(hidden, vocab, generator=torch.Generator().manual_seed(0)))
        model.model.embed_tokens.weight.copy_(4.0 * q.T)  # rows e_v orthonormal x 4
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
    model.save_pretrained(dst)
    return str(dst)


def test_repeat_penalty_lowers_the_reward_of_looping_samples(ray_session: None, tmp_path: Path) -> None:
    """Paper 2.6.2: a sample stopped by repeat detection (here after 8 tokens of period 1) gets
    r = score + penalty; the metric reports the mean penalty."""
    model_dir = looping_model(tiny_model(tmp_path / "tiny"), tmp_path / "looping")
    config = wiring_config(
        tmp_path,
        model_dir=model_dir,
        repeat={"max_period": 4, "min_repeats": 4, "min_tokens": 8, "penalty": REPEAT_PENALTY},
        sampling={"prompts_per_iteration": 2},
    )
    algo, results, rec = run(config, 1)
    algo.stop()
    trajs = [t for g in rec.groups[0] for t in g.trajectories]
    repeats = [t for t in trajs if t.finish_reason == "repeat"]
    assert len(repeats) >= K, [t.finish_reason for t in trajs]
    for t in trajs:
        penalty = REPEAT_PENALTY if t.finish_reason == "repeat" else 0.0
        assert t.reward == pytest.approx(t.reward_details["score"] + penalty)
    assert results[0]["reward/repeat_penalty_mean"] == pytest.approx(REPEAT_PENALTY * len(repeats) / len(trajs))
    assert results[0]["rollout/frac_stopped_repeat"] == pytest.approx(len(repeats) / len(trajs))
