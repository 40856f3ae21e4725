"""Sampling strategies (paper 2.3.4): curriculum pools, prioritized probabilities, chi-square, state."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest
from scipy.stats import chisquare

from k15ray.config.sampling import SamplingConfig
from k15ray.sampling import CurriculumSampler, PrioritizedSampler, UniformSampler, make_sampler
from k15ray.types import Prompt, Sampler

PROMPTS = [Prompt(id=f"p{i}", question=f"q{i}", answer="0", difficulty=1 + i % 3) for i in range(6)]
# difficulties: p0 1, p1 2, p2 3, p3 1, p4 2, p5 3


def draw_counts(sampler: UniformSampler, draws: int) -> np.ndarray:
    counts = Counter(p.id for _ in range(draws) for p in sampler.sample(1))
    return np.array([counts[p.id] for p in PROMPTS], dtype=float)


def test_make_sampler_returns_each_strategy_and_implements_the_protocol() -> None:
    for name, cls in [("uniform", UniformSampler), ("curriculum", CurriculumSampler), ("prioritized", PrioritizedSampler)]:
        s = make_sampler(PROMPTS, SamplingConfig(strategy=name), seed=0)  # type: ignore[arg-type]
        assert type(s) is cls and isinstance(s, Sampler)
    with pytest.raises(ValueError, match="strategy"):
        SamplingConfig(strategy="greedy")  # type: ignore[arg-type]


def test_uniform_batch_is_distinct_and_iteration_counts() -> None:
    s = UniformSampler(PROMPTS, seed=1)
    batch = s.sample(6)
    assert sorted(p.id for p in batch) == sorted(p.id for p in PROMPTS)  # without replacement
    assert len(s.sample(8)) == 8  # more than D: the pool is reused
    assert s.iteration == 2


def test_warmup_then_hard_curriculum() -> None:
    cfg = SamplingConfig(strategy="curriculum", warmup_iterations=2, hard_difficulty=3)
    s = CurriculumSampler(PROMPTS, cfg, seed=0)
    assert s.probabilities().tolist() == pytest.approx([1 / 6] * 6)  # warm-up: all of D
    s.sample(3)
    s.sample(3)
    # iteration 2: only difficulty >= 3 (p2, p5), each 1/2
    assert s.probabilities().tolist() == pytest.approx([0, 0, 0.5, 0, 0, 0.5])
    assert {p.id for _ in range(20) for p in s.sample(2)} == {"p2", "p5"}
    with pytest.raises(ValueError, match="hard_difficulty"):
        CurriculumSampler(PROMPTS, SamplingConfig(strategy="curriculum", hard_difficulty=9))


def test_staged_curriculum_goes_easy_to_hard() -> None:
    cfg = SamplingConfig(strategy="curriculum", curriculum_mode="staged", stage_iterations=2)
    s = CurriculumSampler(PROMPTS, cfg, seed=0)
    seen = []
    for it in range(7):
        s.set_iteration(it)
        seen.append(max(p.difficulty for p in s.sample(6)))
    # stage = it // 2: levels <= 1, 1, 2, 2, 3, 3, 3 (last stage stays)
    assert seen == [1, 1, 2, 2, 3, 3, 3]


def test_prioritized_probabilities_hand_computed_and_floor() -> None:
    cfg = SamplingConfig(strategy="prioritized", priority_floor=0.1)
    s = PrioritizedSampler(PROMPTS, cfg, seed=0)
    s.update(["p0", "p1", "p2"], [1.0, 0.5, 0.0])  # s = [1, .5, 0, 0, 0, 0] (unseen = 0)
    # priorities max(1 - s, 0.1) = [0.1, 0.5, 1, 1, 1, 1], sum 4.6
    assert s.probabilities().tolist() == pytest.approx([0.1 / 4.6, 0.5 / 4.6] + [1 / 4.6] * 4)
    # running mean: p1 gets 1.0 next -> (0.5 + 1)/2 = 0.75
    s.update(["p1"], [1.0])
    assert s.success[1] == pytest.approx(0.75)
    ema = PrioritizedSampler(PROMPTS, SamplingConfig(strategy="prioritized", success_ema=0.5))
    ema.update(["p1", "p1", "p1"], [0.0, 1.0, 1.0])  # 0 -> 0 + .5(1 - 0) = .5 -> .5 + .5(.5) = .75
    assert ema.success[1] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="unknown prompt id"):
        s.update(["nope"], [1.0])


@pytest.mark.parametrize("strategy", ["uniform", "prioritized", "curriculum"])
def test_chi_square_empirical_frequencies_match_intended_probabilities(strategy: str) -> None:
    cfg = SamplingConfig(strategy=strategy, priority_floor=0.1, warmup_iterations=0, hard_difficulty=2)  # type: ignore[arg-type]
    s = make_sampler(PROMPTS, cfg, seed=123)
    assert isinstance(s, UniformSampler)
    s.update(["p0", "p1", "p2"], [1.0, 0.5, 0.0])
    expected_p = s.probabilities()
    counts = draw_counts(s, 6000)
    support = expected_p > 0
    assert counts[~support].sum() == 0
    result = chisquare(counts[support], expected_p[support] * counts.sum())
    assert result.pvalue > 0.001
    # and a wrong distribution is rejected by the same test (the test can fail)
    wrong = np.full(support.sum(), 1 / support.sum())
    if not np.allclose(wrong, expected_p[support]):
        assert chisquare(counts[support], wrong * counts.sum()).pvalue < 1e-6


def test_state_dict_round_trip_restores_rng_success_and_iteration() -> None:
    cfg = SamplingConfig(strategy="prioritized")
    a = PrioritizedSampler(PROMPTS, cfg, seed=7)
    a.sample(2)
    a.update(["p3"], [1.0])
    state = pickle.loads(pickle.dumps(a.state_dict()))
    b = PrioritizedSampler(PROMPTS, cfg, seed=999)
    b.load_state_dict(state)
    assert b.iteration == a.iteration == 1
    assert [p.id for p in b.sample(4)] == [p.id for p in a.sample(4)]
    assert b.success.tolist() == a.success.tolist()
    with pytest.raises(ValueError, match="different prompt set"):
        UniformSampler(PROMPTS[:3]).load_state_dict(state)
