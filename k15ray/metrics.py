"""Metric names of the K15 algorithm (STYLE.md rule 10): constants, namespaced by concern.

Every value is logged once per iteration through RLlib's ``MetricsLogger`` (``reduce="item"``),
so each appears at the top level of ``Algorithm.train()``'s result dict under exactly these names,
and Tune's TensorBoard logger writes them with the same slashes (``reward/mean`` ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# rollout/: what the rollout phase produced
ROLLOUT_PROMPTS = "rollout/prompts"
ROLLOUT_TRAJECTORIES = "rollout/trajectories_finished"
ROLLOUT_RESPONSE_LEN_MEAN = "rollout/response_len_mean"
ROLLOUT_RESPONSE_LEN_P95 = "rollout/response_len_p95"
ROLLOUT_FRAC_TRUNCATED = "rollout/frac_truncated"
ROLLOUT_FRAC_CARRIED = "rollout/frac_carried_over"
ROLLOUT_FRAC_REPEAT = "rollout/frac_stopped_repeat"
ROLLOUT_BUFFER_SIZE = "rollout/buffer_trajectories"
ROLLOUT_POLICY_VERSION = "rollout/policy_version"
ROLLOUT_TOKENS = "rollout/tokens"
ROLLOUT_RESUMED = "rollout/requests_resumed"
ROLLOUT_ACTOR_REPLACEMENTS = "rollout/actor_replacements"  # cumulative: engines replaced after a failure

# reward/: the shaped reward and its parts
REWARD_MEAN = "reward/mean"
REWARD_TASK_MEAN = "reward/task_mean"
REWARD_ACCURACY = "reward/accuracy"
REWARD_LENGTH_PENALTY_MEAN = "reward/length_penalty_mean"
REWARD_LENGTH_PENALTY_WEIGHT = "reward/length_penalty_weight"
REWARD_REPEAT_PENALTY_MEAN = "reward/repeat_penalty_mean"
REWARD_GROUPS_ALL_SAME = "reward/frac_groups_zero_advantage"
REWARD_STATUS_NOT_OK = "reward/frac_status_not_ok"
REWARD_VERIFIER_ACCURACY = "reward/verifier_accuracy"
"""With a model RM as the reward (``reward.kind``): the fraction the verifier finds correct."""
REWARD_FOOLING_RATE = "reward/fooling_rate"
"""With a model RM: of the responses the verifier finds wrong, the fraction the RM calls correct."""
REWARD_RM_AGREEMENT = "reward/rm_verifier_agreement"
"""With a model RM: the fraction of responses on which the RM and the verifier agree."""

# loss/: the learner's objective (means over the iteration's optimizer steps)
LOSS_TOTAL = "loss/total"
LOSS_PG = "loss/pg"
LOSS_TAU = "loss/tau"
LOSS_LOG_RATIO_MEAN = "loss/log_ratio_mean"
LOSS_LOG_RATIO_MAX_ABS = "loss/log_ratio_max_abs"
LOSS_GRAD_NORM = "loss/grad_norm"
LOSS_OPTIMIZER_STEPS = "loss/optimizer_steps"
# |log pi_theta_i (learner, recomputed) - log pi (rollout backend)| per token of this version's
# segments: the two must agree; a gap is a silent bug (precision, sampling, weight sync). Measured only
# on the iterations whose rollouts report log-probs (``rollout.logprobs_every_iterations``); nan on
# the others (left out of TensorBoard).
LOSS_ROLLOUT_LOGP_GAP_MEAN = "loss/rollout_logp_gap_mean"
LOSS_ROLLOUT_LOGP_GAP_MAX = "loss/rollout_logp_gap_max"

# eval/: held-out evaluation (only on iterations that run it)
EVAL_PASS_AT_1 = "eval/pass_at_1"
EVAL_GREEDY_ACCURACY = "eval/greedy_accuracy"
EVAL_RESPONSE_TOKENS = "eval/response_tokens_mean"

# perf/: throughput and seconds per phase
PERF_ROLLOUT_TOKENS_PER_S = "perf/rollout_tokens_per_s"
PERF_LEARNER_TOKENS_PER_S = "perf/learner_tokens_per_s"
PERF_SECONDS_ROLLOUT = "perf/seconds_rollout"
PERF_SECONDS_REWARD = "perf/seconds_reward"
PERF_SECONDS_REFERENCE = "perf/seconds_reference_logp"
PERF_SECONDS_LEARNER = "perf/seconds_learner"
PERF_SECONDS_WEIGHT_SYNC = "perf/seconds_weight_sync"
PERF_SECONDS_EVAL = "perf/seconds_eval"
PERF_SECONDS_ITERATION = "perf/seconds_iteration"

PROGRESS_METRICS: tuple[str, ...] = (
    REWARD_MEAN,
    REWARD_ACCURACY,
    ROLLOUT_RESPONSE_LEN_MEAN,
    LOSS_TOTAL,
    EVAL_PASS_AT_1,
    PERF_SECONDS_ITERATION,
)
"""What ``k15ray train`` shows per iteration."""


def length_stats(lengths: Sequence[int]) -> dict[str, float]:
    """Mean and 95th percentile of response lengths (tokens); zeros for no responses."""
    if not lengths:
        return {ROLLOUT_RESPONSE_LEN_MEAN: 0.0, ROLLOUT_RESPONSE_LEN_P95: 0.0}
    arr = np.asarray(lengths, dtype=np.float64)
    return {
        ROLLOUT_RESPONSE_LEN_MEAN: float(arr.mean()),
        ROLLOUT_RESPONSE_LEN_P95: float(np.percentile(arr, 95)),
    }


def mean_of(steps: Sequence[Mapping[str, float]], key: str) -> float:
    """Mean of ``key`` over the dicts of ``steps`` that have it (nan when none has)."""
    values = [s[key] for s in steps if key in s]
    return float(np.mean(values)) if values else float("nan")


def rm_verifier_metrics(rm_correct: Sequence[bool], verifier_correct: Sequence[bool]) -> dict[str, float]:
    """How a model RM's verdicts compare with the verifier's on the same responses:
    ``reward/verifier_accuracy``, ``reward/fooling_rate`` (RM correct among verifier-wrong; 0 when
    none is wrong) and ``reward/rm_verifier_agreement``."""
    n = max(len(verifier_correct), 1)
    wrong = [rm for rm, ok in zip(rm_correct, verifier_correct, strict=True) if not ok]
    return {
        REWARD_VERIFIER_ACCURACY: sum(verifier_correct) / n,
        REWARD_FOOLING_RATE: sum(wrong) / len(wrong) if wrong else 0.0,
        REWARD_RM_AGREEMENT: sum(rm == ok for rm, ok in zip(rm_correct, verifier_correct, strict=True)) / n,
    }
