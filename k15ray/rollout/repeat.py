"""Repeat detection for rollouts (paper section 2.6.2: "The system identifies repeated sequences in
the generated content and terminates them early").

A sequence's tail *loops* with period p when its last L tokens satisfy ``tok[t] == tok[t - p]`` for
every t among them except the first p, i.e. the tail is a block of p tokens repeated L/p times.
It is caught once, for some 1 <= p <= max_period,

    L >= p * min_repeats   and   L >= min_tokens.

Streaming: for every period p we keep ``run[p]``, the number of consecutive latest tokens with
``tok[t] == tok[t - p]``; the p-periodic tail then has length ``L = run[p] + p``. Each new token
updates every run[p] (reset to 0 on a mismatch), so the cost per token is O(max_period) (a few
vectorised numpy operations) and memory is O(max_period).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from k15ray.config.repeat import RepeatConfig


class RepeatDetector:
    """Streaming loop detector for one sequence: ``update(token_id)`` returns True once it loops.

    After a True, ``period`` and ``repeats`` describe the loop; ``reset()`` starts a new sequence.
    A disabled config (``enabled=False``) never fires.
    """

    def __init__(self, config: RepeatConfig | None = None) -> None:
        self.config = config or RepeatConfig()
        p_max = self.config.max_period
        self._periods = np.arange(1, p_max + 1, dtype=np.int64)  # (P,) p = 1..max_period
        # a tail of period p is caught once L = run + p reaches needed[p - 1]
        self._needed = np.maximum(self._periods * self.config.min_repeats, self.config.min_tokens)
        self._history = np.full(p_max, -1, dtype=np.int64)  # history[p - 1] = tok[t - p]
        self._run = np.zeros(p_max, dtype=np.int64)  # run[p - 1]: consecutive tok[t] == tok[t-p]
        self.num_tokens = 0
        self.period: int | None = None
        self.repeats: int | None = None

    def reset(self) -> None:
        self._history.fill(-1)
        self._run.fill(0)
        self.num_tokens = 0
        self.period = None
        self.repeats = None

    def update(self, token_id: int) -> bool:
        """Feed one generated token; True when the tail now loops (and from then on)."""
        if self.period is not None:
            return True
        self.num_tokens += 1
        if not self.config.enabled:
            return False
        match = self._history == token_id  # tok[t] == tok[t - p] for each p; -1 never matches
        self._run += 1
        self._run *= match
        self._history[1:] = self._history[:-1]
        self._history[0] = token_id
        hit = np.flatnonzero(self._run + self._periods >= self._needed)
        if hit.size == 0:
            return False
        p = int(hit[0]) + 1  # the smallest period that loops
        self.period = p
        self.repeats = (int(self._run[p - 1]) + p) // p
        return True


def find_repeat(
    tokens: Sequence[int], config: RepeatConfig | None = None
) -> tuple[int, int] | None:
    """(period, repeats) of the smallest period p whose repetition makes the tail of ``tokens``
    loop under ``config`` (see the module docstring), or None. O(len(tokens) * max_period)."""
    cfg = config or RepeatConfig()
    n = len(tokens)
    for p in range(1, min(cfg.max_period, n - 1) + 1):
        length = p  # L = p + number of trailing t with tok[t] == tok[t - p]
        t = n - 1
        while t >= p and tokens[t] == tokens[t - p]:
            length += 1
            t -= 1
        if length > p and length >= p * cfg.min_repeats and length >= cfg.min_tokens:
            return p, length // p
    return None


def first_loop_end(tokens: Sequence[int], config: RepeatConfig | None = None) -> int | None:
    """How many tokens ``RepeatDetector`` would let through before it fires on ``tokens``, or None.

    Batch form of the streaming detector, for backends that check a whole chunk of generated
    tokens at once (vLLM between chunks): ``tokens[:first_loop_end(tokens)]`` is exactly what a
    generation stopped by ``RepeatDetector.update`` would have kept. ``first_loop_ends`` does many
    samples in one pass.
    """
    return first_loop_ends([tokens], config)[0]


def first_loop_ends(
    samples: Sequence[Sequence[int]], config: RepeatConfig | None = None, rows_per_pass: int = 16
) -> list[int | None]:
    """``first_loop_end`` of every sample, vectorised over samples, periods and positions
    ((samples, periods, positions) arrays, ``rows_per_pass`` samples at a time): a vLLM chunk of
    hundreds of samples is checked in milliseconds instead of a numpy pass per sample and period."""
    cfg = config or RepeatConfig()
    out: list[int | None] = [None] * len(samples)
    if not cfg.enabled:
        return out
    for lo in range(0, len(samples), rows_per_pass):
        part = samples[lo : lo + rows_per_pass]
        lengths = np.array([len(t) for t in part], dtype=np.int64)
        n = int(lengths.max(initial=0))
        if n < 2:
            continue
        periods = np.arange(1, min(cfg.max_period, n - 1) + 1, dtype=np.int64)
        needed = np.maximum(periods * cfg.min_repeats, cfg.min_tokens)
        keep = needed <= n
        if not keep.any():
            continue
        periods, needed = periods[keep, None], needed[keep, None]
        positions = np.arange(n, dtype=np.int64)
        tok = np.full((len(part), n), -1, dtype=np.int64) - positions  # padding matches nothing
        for i, t in enumerate(part):
            tok[i, : len(t)] = t
        back = positions - periods  # (P, n): t - p
        match = (back >= 0) & (tok[:, None, :] == tok[:, np.maximum(back, 0)])  # (S, P, n)
        # run[s, p, t]: consecutive matches ending at t = t - (the last mismatch at or before t)
        last_miss = np.maximum.accumulate(np.where(match, -1, positions), axis=2)
        hit = np.any(positions - last_miss + periods >= needed, axis=1)  # L = run + p (docstring)
        for i in np.flatnonzero(hit.any(axis=1)).tolist():
            out[lo + i] = int(np.argmax(hit[i])) + 1
    return out
