"""The learner's batch: its columns, how complete prompt groups become one, and its minibatches.

Pure functions (numpy only), used by ``K15.training_step`` between the reward phase
(``k15ray.reward_shaping``) and the learner:

* the column names every piece of the iteration shares (``INPUT_IDS`` ... ``REFERENCE_TOKEN_LOGP``);
* ``build_batch``: one row per trajectory, ``[prompt tokens | response tokens | pad]`` (right
  padding), ``loss_mask`` 1 on the response tokens that enter the loss (all segments, or only those
  of each trajectory's last generating iteration; ``k15ray.partial_rollout.loss_mask``);
* images (a vision-language policy): when a trajectory has images, ``build_batch`` adds
  ``pixel_values`` (N, M, 3, S, S), each row's images as its policy's image processor makes them
  (zeros past its count), and ``num_images`` (N,); rows keep their images through ``minibatches``,
  and ``row_pixel_values`` gives the forward the images of some rows in row order;
* ``minibatches``: shuffles the groups and cuts them into ``num_minibatches`` minibatches of whole
  groups, renumbering ``group_index`` 0..G'-1 and trimming padding to each minibatch's longest row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from k15ray.partial_rollout import loss_mask, version_mask
from k15ray.types import Trajectory

Batch = dict[str, np.ndarray]

# The policy's inputs, all (N, T): [prompt tokens | response tokens | pad], right padding.
INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"  # 1 on prompt and response tokens
LOSS_MASK = "loss_mask"  # 1 on the response tokens that enter the loss
# Per trajectory, all (N,) unless noted.
REWARD = "reward"  # shaped reward r_j (task + length + repeat penalty)
CORRECT = "correct"  # 1.0 when the answer was right
GROUP_INDEX = "group_index"  # prompt group id, contiguous 0..G-1 within a minibatch
NUM_TOKENS = "num_tokens"  # response tokens in the loss mask
REFERENCE_TOKEN_LOGP = "reference_token_logp"  # (N, T) log pi_theta_i per token, added by the learner
# The policy module's output: (N, T) log pi_theta(input_ids[t] | input_ids[:t]).
TOKEN_LOGP = "token_logp"
# Diagnostics only: taken out of the batch (``learner_columns``) before it reaches the learner.
# (N, T) log-probs the rollout backend reported; nan on tokens whose segment has none
# (``rollout.logprobs_every_iterations``), 0 on prompt and pad
ROLLOUT_TOKEN_LOGP = "rollout_token_logp"
# Vision-language policies only: (N, M, 3, S, S) pixel values of each row's images, and (N,) counts.
PIXEL_VALUES = "pixel_values"
NUM_IMAGES = "num_images"

PixelFn = Callable[[Sequence[Any]], np.ndarray]
"""Images (``(H, W, 3)`` uint8 arrays) -> their pixel values ``(n, 3, S, S)`` (the image processor)."""
CURRENT_VERSION_MASK = "current_version_mask"  # (N, T) 1 on tokens of this policy version


def build_batch(
    groups: Sequence[Sequence[Trajectory]],
    correct: Sequence[Sequence[bool]],
    loss_mask_mode: str,
    current_version: int,
    pad_token_id: int = 0,
    pixel_fn: PixelFn | None = None,
) -> Batch:
    """The padded batch of all trajectories of ``groups`` (their ``reward`` already shaped); with
    images on any trajectory, ``pixel_fn`` turns them into the ``pixel_values`` column."""
    rows = [t for g in groups for t in g]
    lengths = [len(t.prompt_token_ids) + t.num_response_tokens for t in rows]
    n, width = len(rows), max(lengths, default=1)
    input_ids = np.full((n, width), pad_token_id, dtype=np.int64)  # (N, T)
    attention = np.zeros((n, width), dtype=np.int64)  # (N, T)
    mask = np.zeros((n, width), dtype=np.float32)  # (N, T)
    rollout_logp = np.zeros((n, width), dtype=np.float32)  # (N, T) backend log-probs
    current = np.zeros((n, width), dtype=np.float32)  # (N, T) tokens of this policy version
    for i, t in enumerate(rows):
        p, r = len(t.prompt_token_ids), t.num_response_tokens
        input_ids[i, : p + r] = list(t.prompt_token_ids) + list(t.response_token_ids)
        attention[i, : p + r] = 1
        mask[i, p : p + r] = loss_mask(t, loss_mask_mode, current_version)
        rollout_logp[i, p : p + r] = [
            lp for seg in t.segments for lp in (seg.logprobs or [np.nan] * len(seg.token_ids))
        ]
        current[i, p : p + r] = version_mask(t, current_version)
    vision = _pixel_columns(rows, pixel_fn) if any(t.images for t in rows) else {}
    return {
        **vision,
        INPUT_IDS: input_ids,
        ATTENTION_MASK: attention,
        LOSS_MASK: mask,
        REWARD: np.array([t.reward for t in rows], dtype=np.float32),
        CORRECT: np.array([float(c) for cs in correct for c in cs], dtype=np.float32),
        GROUP_INDEX: np.repeat(np.arange(len(groups)), [len(g) for g in groups]).astype(np.int64),
        NUM_TOKENS: mask.sum(axis=1),
        ROLLOUT_TOKEN_LOGP: rollout_logp,
        CURRENT_VERSION_MASK: current,
    }


def _pixel_columns(rows: Sequence[Trajectory], pixel_fn: PixelFn | None) -> Batch:
    if pixel_fn is None:
        raise ValueError("trajectories with images need pixel_fn (the policy's image processor) to build a batch")
    counts = np.array([len(t.images) for t in rows], dtype=np.int64)  # (N,)
    pixels = np.asarray(pixel_fn([image for t in rows for image in t.images]), dtype=np.float32)  # (sum, 3, S, S)
    out = np.zeros((len(rows), int(counts.max()), *pixels.shape[1:]), dtype=np.float32)  # (N, M, 3, S, S)
    starts = np.concatenate([[0], np.cumsum(counts)])
    for i, n in enumerate(counts):
        out[i, :n] = pixels[starts[i] : starts[i] + n]
    return {PIXEL_VALUES: out, NUM_IMAGES: counts}


def row_pixel_values(batch: Any, rows: slice | None = None) -> Any:
    """The pixel values of ``batch``'s rows (all, or ``rows``) in row order, each row's own count:
    ``(sum of num_images, 3, S, S)``, what a LLaVA-style forward takes with those rows' tokens;
    None for a batch without images. Works on numpy arrays and torch tensors alike."""
    if PIXEL_VALUES not in batch:
        return None
    pixels, counts = batch[PIXEL_VALUES], batch[NUM_IMAGES]
    if rows is not None:
        pixels, counts = pixels[rows], counts[rows]
    picked = [pixels[i, : int(n)] for i, n in enumerate(counts) if int(n)]
    if not picked:
        return None
    if isinstance(pixels, np.ndarray):
        return np.concatenate(picked)
    import torch

    return torch.cat(picked)


def rollout_logp_gap(batch: Batch, reference_token_logp: np.ndarray) -> tuple[float, float]:
    """Mean and max of |reference - rollout| log-prob over the tokens of the current version
    whose rollout reported log-probs.

    Both are log pi_theta_i of the same tokens, one recomputed by the learner and one reported by
    the rollout backend while sampling; (nan, nan) when there is no such token (the rollouts of
    this iteration did not ask for log-probs: nan is "not measured", which the run loop leaves out
    of TensorBoard)."""
    sel = (batch[CURRENT_VERSION_MASK] > 0) & ~np.isnan(batch[ROLLOUT_TOKEN_LOGP])
    if not sel.any():
        return float("nan"), float("nan")
    gap = np.abs(reference_token_logp[sel] - batch[ROLLOUT_TOKEN_LOGP][sel])
    return float(gap.mean()), float(gap.max())


def learner_columns(batch: Batch) -> Batch:
    """``batch`` without its diagnostic columns (what the learner's loss reads)."""
    return {k: v for k, v in batch.items() if k not in (ROLLOUT_TOKEN_LOGP, CURRENT_VERSION_MASK)}


def minibatches(batch: Batch, num_minibatches: int, rng: np.random.Generator) -> list[Batch]:
    """Shuffle whole groups and split them into ``min(num_minibatches, G)`` minibatches."""
    group_index = batch[GROUP_INDEX]
    num_groups = int(group_index.max()) + 1 if group_index.size else 0
    order = rng.permutation(num_groups)
    out = []
    for part in np.array_split(order, min(num_minibatches, max(num_groups, 1))):
        if part.size == 0:
            continue
        rows = np.concatenate([np.flatnonzero(group_index == g) for g in part])
        mb = {k: v[rows] for k, v in batch.items()}
        renumber = {int(g): i for i, g in enumerate(part)}
        mb[GROUP_INDEX] = np.array([renumber[int(g)] for g in mb[GROUP_INDEX]], dtype=np.int64)
        width = int(mb[ATTENTION_MASK].sum(axis=1).max())  # trim right padding
        for k, v in mb.items():
            if v.ndim == 2:
                mb[k] = v[:, :width]
        out.append(mb)
    return out
