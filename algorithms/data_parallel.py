"""Data-parallel learning: one minibatch split across L learner actors gives the full-batch step.

With ``learner.num_learners = L >= 2`` RLlib's ``LearnerGroup`` runs L ``K15Learner`` actors whose
modules are wrapped in torch ``DistributedDataParallel`` (gloo on CPU, NCCL on GPU): each learner
computes the gradient of the loss on its shard s, and DDP averages the L gradients in backward.

Every objective of ``k15ray.objectives`` is a sum over the minibatch divided by a normaliser Z
(mirror descent: G groups, eq. 3's (1/G) sum_g (1/k_g) sum_j; GRPO: N samples; ReST: |S| correct
samples, or their tokens), and a group's baseline is a statistic of that group only. So shards hold
whole prompt groups, and with shard s's normaliser Z_s the full loss is

    L(theta) = sum_s (Z_s / Z) L_s(theta) ,

while DDP averages (1/L) sum_s grad L'_s. Scaling each shard's loss by w_s = L Z_s / Z
(``SHARD_LOSS_SCALE``, applied by ``K15Learner.compute_loss_for_module``) makes the averaged
gradient exactly grad L(theta), whatever the shard sizes: the same step as one learner on the whole
minibatch, clipping included (the clip sees the averaged gradient). A learner left with no group
(G < L) gets a copy of one with w_s = 0: DDP's all-reduce needs every learner in every step.

The reference pass (log pi_theta_i, before the first step) is split by rows: it is per sequence.
"""

from __future__ import annotations

import numpy as np

from k15ray.batch import CORRECT, GROUP_INDEX, NUM_TOKENS
from k15ray.config.mirror_descent import MirrorDescentConfig

Batch = dict[str, np.ndarray]

SHARD_LOSS_SCALE = "shard_loss_scale"  # (N,) w_s, the same on every row of shard s


def loss_normalizer(batch: Batch, cfg: MirrorDescentConfig) -> float:
    """Z of the objective ``cfg.objective`` on ``batch`` (the module docstring), clamped like the loss."""
    if cfg.objective == "mirror_descent":  # (1/G) sum_g (1/k_g) sum_{j in g}
        return float(np.unique(batch[GROUP_INDEX]).size)
    if cfg.objective == "grpo":  # (1/N) sum_j (1/n_j) sum_t
        return float(batch[GROUP_INDEX].shape[0])
    if cfg.objective == "rest":  # 1/|S|, or 1/(sum_{j in S} n_j) per token, both at least 1
        keep = batch[CORRECT] > 0.5
        if cfg.token_level_normalization:
            return max(float(batch[NUM_TOKENS][keep].sum()), 1.0)
        return max(float(keep.sum()), 1.0)
    raise ValueError(
        f"mirror_descent.objective {cfg.objective!r} has no normaliser for data-parallel learners; "
        "add it to k15ray.algorithms.data_parallel.loss_normalizer or set learner.num_learners: 0"
    )


def shard_by_groups(batch: Batch, num_shards: int, cfg: MirrorDescentConfig) -> list[Batch]:
    """Split a minibatch into ``num_shards`` shards of whole prompt groups, each with its loss scale
    w_s = L Z_s / Z (``SHARD_LOSS_SCALE``) and its groups renumbered 0..G_s-1."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    group_ids = np.unique(batch[GROUP_INDEX])
    if group_ids.size == 0:
        raise ValueError("an empty minibatch cannot be sharded: it holds no prompt group")
    total = loss_normalizer(batch, cfg)
    shards = []
    for part in np.array_split(group_ids, num_shards):
        empty = part.size == 0
        chosen = group_ids[:1] if empty else part  # an idle learner still joins the all-reduce
        rows = np.flatnonzero(np.isin(batch[GROUP_INDEX], chosen))
        shard = {k: v[rows] for k, v in batch.items()}
        _, shard[GROUP_INDEX] = np.unique(shard[GROUP_INDEX], return_inverse=True)
        shard[GROUP_INDEX] = shard[GROUP_INDEX].astype(batch[GROUP_INDEX].dtype)
        scale = 0.0 if empty else num_shards * loss_normalizer(shard, cfg) / total
        shard[SHARD_LOSS_SCALE] = np.full(rows.size, scale, dtype=np.float32)
        shards.append(shard)
    return shards


def row_shard(num_rows: int, num_shards: int, index: int) -> slice:
    """Rows of learner ``index`` in the reference pass: ``np.array_split``'s contiguous split."""
    bounds = np.cumsum([0] + [len(p) for p in np.array_split(np.arange(num_rows), num_shards)])
    return slice(int(bounds[index]), int(bounds[index + 1]))
