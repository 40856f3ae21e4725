"""Data-parallel shards (``k15ray.algorithms.data_parallel``): what DDP averages is the full step.

DDP averages the L learners' gradients of w_s * L_s; for every objective and option, that average
must be the gradient of the loss on the whole minibatch, whatever the shard sizes (3 groups on 2
learners: 2 + 1), and a learner left without a group (more learners than groups) adds nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from k15ray.algorithms.data_parallel import SHARD_LOSS_SCALE, row_shard, shard_by_groups
from k15ray.batch import (
    ATTENTION_MASK,
    CORRECT,
    GROUP_INDEX,
    INPUT_IDS,
    LOSS_MASK,
    NUM_TOKENS,
    REFERENCE_TOKEN_LOGP,
    REWARD,
)
from k15ray.config.mirror_descent import MirrorDescentConfig
from k15ray.objectives import objective_fn

CONFIGS = [
    MirrorDescentConfig(objective="mirror_descent"),
    MirrorDescentConfig(
        objective="mirror_descent", token_level_normalization=True, baseline="logsumexp"
    ),
    MirrorDescentConfig(objective="grpo"),
    MirrorDescentConfig(objective="rest"),
    MirrorDescentConfig(objective="rest", token_level_normalization=True),
]


def _minibatch(group_sizes: list[int], seed: int = 0) -> dict[str, np.ndarray]:
    """Random rows of groups of the given sizes (rows of a group are not contiguous, as after
    a shuffle), T = 6 tokens, responses of 1..4 tokens at the end."""
    rng = np.random.default_rng(seed)
    group = np.concatenate([np.full(k, g) for g, k in enumerate(group_sizes)])
    group = group[rng.permutation(group.size)]
    n, t = group.size, 6
    num_tokens = rng.integers(1, 5, size=n)
    loss_mask = (np.arange(t)[None, :] >= t - num_tokens[:, None]).astype(np.float32)
    return {
        INPUT_IDS: rng.integers(0, 50, size=(n, t)),
        ATTENTION_MASK: np.ones((n, t), dtype=np.int64),
        LOSS_MASK: loss_mask,
        REWARD: rng.normal(size=n).astype(np.float32),
        CORRECT: (rng.random(n) < 0.5).astype(np.float32),
        GROUP_INDEX: group.astype(np.int64),
        NUM_TOKENS: num_tokens.astype(np.float32),
        REFERENCE_TOKEN_LOGP: (-rng.random((n, t))).astype(np.float32),
    }


def _loss_and_grad(
    batch: dict[str, np.ndarray], logp: np.ndarray, cfg: MirrorDescentConfig
) -> tuple[float, np.ndarray]:
    """The objective's loss times the shard's scale (1 for the whole batch) and d loss / d logp."""
    tensors = {k: torch.as_tensor(v) for k, v in batch.items()}
    token_logp = torch.tensor(logp, requires_grad=True)
    loss, _ = objective_fn(cfg.objective)(tensors, token_logp, cfg)
    loss = loss * float(batch.get(SHARD_LOSS_SCALE, np.ones(1))[0])
    loss.backward()
    assert token_logp.grad is not None
    return float(loss.detach()), token_logp.grad.numpy()


@pytest.mark.parametrize(
    "cfg", CONFIGS, ids=lambda c: f"{c.objective}-tok{int(c.token_level_normalization)}"
)
@pytest.mark.parametrize(
    ("group_sizes", "num_learners"), [([4, 4, 4], 2), ([4, 2, 3, 4, 1], 3), ([4], 2)]
)
def test_average_of_scaled_shard_losses_is_the_full_loss(
    cfg: MirrorDescentConfig, group_sizes: list[int], num_learners: int
) -> None:
    batch = _minibatch(group_sizes)
    rng = np.random.default_rng(1)
    logp = (-rng.random(batch[INPUT_IDS].shape)).astype(np.float64)  # log pi_theta per token
    full_loss, full_grad = _loss_and_grad(batch, logp, cfg)
    shards = shard_by_groups(batch, num_learners, cfg)
    assert len(shards) == num_learners
    mean_loss, mean_grad = 0.0, np.zeros_like(full_grad)
    seen = []
    for shard in shards:
        # a shard's rows, found back in the full batch by their (unique) token ids
        rows = [
            int(np.flatnonzero((batch[INPUT_IDS] == ids).all(axis=1))[0])
            for ids in shard[INPUT_IDS]
        ]
        loss, grad = _loss_and_grad(shard, logp[rows], cfg)
        mean_loss += loss / num_learners  # what DDP averages: (1/L) sum_s w_s L_s
        np.add.at(mean_grad, rows, grad / num_learners)
        if shard[SHARD_LOSS_SCALE][0] != 0:
            seen += rows
        groups = shard[GROUP_INDEX]
        assert sorted(set(groups.tolist())) == list(
            range(int(groups.max()) + 1)
        )  # renumbered 0..G_s-1
    assert sorted(seen) == list(range(batch[INPUT_IDS].shape[0]))  # every row once, in one shard
    # the batch's float32 columns (rewards, reference log-probs) bound the agreement to ~1e-7
    assert mean_loss == pytest.approx(full_loss, rel=1e-6, abs=1e-9)
    np.testing.assert_allclose(mean_grad, full_grad, rtol=1e-6, atol=1e-9)


def test_shards_hold_whole_groups_and_idle_learners_weigh_nothing() -> None:
    batch = _minibatch([3, 3])
    shards = shard_by_groups(batch, 3, MirrorDescentConfig())
    # 2 groups on 3 learners: two shards of one group each (scale 3 * 1/2), one idle copy (scale 0)
    assert [s[INPUT_IDS].shape[0] for s in shards] == [3, 3, 3]
    assert [float(s[SHARD_LOSS_SCALE][0]) for s in shards] == [1.5, 1.5, 0.0]


def test_reference_rows_cover_the_batch_once() -> None:
    # 5 rows on 2 learners: [0, 3) and [3, 5); 1 row on 2 learners: one learner has none
    assert [row_shard(5, 2, i) for i in range(2)] == [slice(0, 3), slice(3, 5)]
    assert [row_shard(1, 2, i) for i in range(2)] == [slice(0, 1), slice(1, 1)]
