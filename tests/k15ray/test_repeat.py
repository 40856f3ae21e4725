"""Repeat detection (paper 2.6.2): loops, near-loops, long non-repeating text, cost per token."""

from __future__ import annotations

import random
import time

import pytest

from k15ray.config.repeat import RepeatConfig
from k15ray.rollout.repeat import RepeatDetector, find_repeat, first_loop_end

CFG = RepeatConfig(max_period=8, min_repeats=3, min_tokens=10)


def first_fire(tokens: list[int], cfg: RepeatConfig = CFG) -> int | None:
    det = RepeatDetector(cfg)
    for t, tok in enumerate(tokens):
        if det.update(tok):
            return t
    return None


def test_simple_loop_fires_exactly_when_thresholds_are_met() -> None:
    # prefix 9 8, then period "1 2 3" repeated. Period 3 x 3 repeats = 9 tokens < min_tokens 10,
    # so it needs L >= 10: tokens index 2.. form the loop; L = t - 2 + 1 >= 10 -> t = 11.
    tokens = [9, 8] + [1, 2, 3] * 6
    assert first_fire(tokens) == 11
    det = RepeatDetector(CFG)
    for tok in tokens[:12]:
        det.update(tok)
    assert det.period == 3 and det.repeats == 3  # L = 10 -> 10 // 3 = 3 repeats
    assert find_repeat(tokens[:12], CFG) == (3, 3)
    assert find_repeat(tokens[:11], CFG) is None  # L = 9 < 10


def test_period_one_needs_min_tokens_and_long_period_needs_min_repeats() -> None:
    # period 1: needs max(1*3, 10) = 10 equal tokens; the 10th is index 9
    assert first_fire([5] * 20) == 9
    # period 7: needs max(7*3, 10) = 21 tokens of the loop -> index 20
    block = [1, 2, 3, 4, 5, 6, 7]
    assert first_fire(block * 4) == 20
    assert find_repeat(block * 3, CFG) == (7, 3)


def test_period_longer_than_max_period_is_not_caught() -> None:
    block = list(range(9))  # period 9 > max_period 8
    assert first_fire(block * 10) is None
    assert find_repeat(block * 10, CFG) is None


def test_near_loop_with_a_broken_period_does_not_fire() -> None:
    # "1 2 3" twice, one changed token, then twice again: no tail reaches 3 repeats / 10 tokens
    tokens = [1, 2, 3, 1, 2, 3, 1, 2, 4, 1, 2, 3, 1, 2, 3]
    assert first_fire(tokens) is None
    # and after the break the count restarts: the loop needs 10 more periodic tokens
    tokens2 = [1, 2, 3, 1, 2, 3, 1, 2, 4] + [1, 2, 3] * 4
    # periodic tail starts at index 8 ('4' then 1 2 3 ...)? tok[8]=4 != tok[11]=1, so the tail of
    # period 3 begins at index 9: L = t - 9 + 1 >= 10 -> t = 18
    assert first_fire(tokens2) == 18


def test_long_non_repeating_text_never_fires_and_agrees_with_find_repeat() -> None:
    rng = random.Random(0)
    tokens = [rng.randrange(50) for _ in range(5000)]
    assert first_fire(tokens, RepeatConfig()) is None
    # streaming == offline on random low-entropy sequences (loops do happen with 3 symbols)
    for seed in range(30):
        r = random.Random(seed)
        seq = [r.randrange(3) for _ in range(60)]
        fired = first_fire(seq)
        offline = next((t for t in range(len(seq)) if find_repeat(seq[: t + 1], CFG)), None)
        assert fired == offline
        # the batch form (vLLM backend) stops at exactly the same token
        assert first_loop_end(seq, CFG) == (None if fired is None else fired + 1)
    assert first_loop_end([9, 8] + [1, 2, 3] * 6, CFG) == 12  # fires at index 11 (see above)
    assert first_loop_end(tokens, RepeatConfig()) is None
    assert first_loop_end([1] * 30, RepeatConfig(enabled=False)) is None


def test_disabled_and_reset() -> None:
    det = RepeatDetector(RepeatConfig(enabled=False))
    assert not any(det.update(1) for _ in range(500))
    det = RepeatDetector(CFG)
    assert any(det.update(1) for _ in range(20))
    det.reset()
    assert det.period is None and not det.update(1)


def test_cost_per_token_is_bounded() -> None:
    # O(max_period) per token: 20k tokens must take well under a second-ish per 10k on a busy CPU
    rng = random.Random(1)
    det = RepeatDetector(RepeatConfig(max_period=64))
    tokens = [rng.randrange(100) for _ in range(20000)]
    start = time.perf_counter()
    for tok in tokens:
        det.update(tok)
    per_token_us = (time.perf_counter() - start) / len(tokens) * 1e6
    assert per_token_us < 200  # measured ~5-10 us on 2 shared cores


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="min_repeats"):
        RepeatConfig(min_repeats=1)
    with pytest.raises(ValueError, match="penalty"):
        RepeatConfig(penalty=0.5)
    with pytest.raises(ValueError, match="max_period"):
        RepeatConfig(max_period=0)
