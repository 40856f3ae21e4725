"""``first_loop_end`` (the chunk-wise form used by the vLLM backend) agrees with the streaming
``RepeatDetector`` token for token."""

from __future__ import annotations

import random

from k15ray.config.repeat import RepeatConfig
from k15ray.rollout.repeat import RepeatDetector, first_loop_end, first_loop_ends


def _streaming(tokens: list[int], cfg: RepeatConfig) -> int | None:
    det = RepeatDetector(cfg)
    for i, t in enumerate(tokens):
        if det.update(t):
            return i + 1
    return None


def test_agrees_with_streaming_detector_on_loops_and_noise() -> None:
    rng = random.Random(0)
    cfg = RepeatConfig(max_period=8, min_repeats=3, min_tokens=6)
    cases = [
        [1, 2, 3] * 5,  # period 3: caught at L = max(3*3, 6) = 9 tokens
        [9, 9, 9, 9, 9, 9, 9],  # period 1: caught at L = max(1*3, 6) = 6 tokens
        [5, 6, 7, 8, 1, 2, 1, 2, 1, 2, 4],  # period 2 from index 4: L = 6 at index 9 -> end 10
        [rng.randrange(50) for _ in range(300)],  # noise
        [1, 2, 3, 1, 2, 4, 1, 2, 3, 1, 2, 4],  # near-loop of period 6 repeated twice only
    ]
    cases += [[rng.randrange(3) for _ in range(40)] for _ in range(50)]  # small alphabet: many loops
    for tokens in cases:
        assert first_loop_end(tokens, cfg) == _streaming(tokens, cfg), tokens
    assert first_loop_end([1, 2, 3] * 5, cfg) == 9
    assert first_loop_end([9] * 7, cfg) == 6
    assert first_loop_end([5, 6, 7, 8, 1, 2, 1, 2, 1, 2, 4], cfg) == 10
    assert first_loop_end([1, 2, 3, 1, 2, 4, 1, 2, 3, 1, 2, 4], cfg) is None


def test_disabled_config_never_fires() -> None:
    assert first_loop_end([7] * 100, RepeatConfig(enabled=False)) is None


def test_many_samples_at_once_agree_with_streaming() -> None:
    """``first_loop_ends`` (samples x periods x positions at once, padded to the longest sample,
    several passes) gives each sample's streaming answer, whatever its length and neighbours."""
    rng = random.Random(1)
    cfg = RepeatConfig(max_period=8, min_repeats=3, min_tokens=6)
    samples = [[rng.randrange(alphabet) for _ in range(rng.randrange(0, 120))]
               for alphabet in (2, 3, 5, 50) for _ in range(20)]
    samples += [[4] * 5, [1, 2] * 40, []]  # too short to fire; a loop; empty
    got = first_loop_ends(samples, cfg, rows_per_pass=7)
    assert got == [_streaming(t, cfg) for t in samples]
    assert any(e is not None for e in got) and any(e is None for e in got)
    assert first_loop_ends(samples, RepeatConfig(enabled=False)) == [None] * len(samples)
