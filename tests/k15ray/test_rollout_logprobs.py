"""Rollout log-probs are optional (``rollout.logprobs_every_iterations``): the learner recomputes its
own, and the rollout ones only feed the ``loss/rollout_logp_gap_*`` diagnostic.

Checked here without Ray: the setting, the transformers backend with and without them (the same
tokens either way), the partial-rollout buffer resuming trajectories whose segments lack them, and
the batch builder and gap metric over a mix of segments with and without."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pytest
from transformers import LlamaForCausalLM

from k15ray.batch import CURRENT_VERSION_MASK, ROLLOUT_TOKEN_LOGP, build_batch, rollout_logp_gap
from k15ray.config.partial_rollout import PartialRolloutConfig
from k15ray.config.rollout import RolloutConfig
from k15ray.models import build_tokenizer
from k15ray.partial_rollout import PartialRolloutBuffer
from k15ray.rollout.hf import HFBackend
from k15ray.types import GenerationRequest, GenerationResult, SamplingParams

TinyLlama = Callable[..., LlamaForCausalLM]


def test_the_setting_is_off_by_default_and_samples_every_nth_iteration() -> None:
    assert not any(RolloutConfig().logprobs_on(i) for i in range(10))
    assert [i for i in range(7) if RolloutConfig(logprobs_every_iterations=3).logprobs_on(i)] == [
        0,
        3,
        6,
    ]
    assert all(RolloutConfig(logprobs_every_iterations=1).logprobs_on(i) for i in range(5))
    with pytest.raises(ValueError, match="logprobs_every_iterations must be >= 0"):
        RolloutConfig(logprobs_every_iterations=-1)


def test_hf_backend_without_logprobs_samples_the_same_tokens(tiny_llama: TinyLlama) -> None:
    backend = HFBackend(tiny_llama(), build_tokenizer(), max_batch_size=4)
    requests = [GenerationRequest(f"r{i}", (5 + i, 9, 14), 6 + i) for i in range(5)]
    on = SamplingParams(temperature=1.0, seed=3, stop_token_ids=(-1,), detect_repeats=False)
    off = SamplingParams(
        temperature=1.0, seed=3, stop_token_ids=(-1,), detect_repeats=False, logprobs=False
    )
    with_lp, without = backend.generate(requests, on), backend.generate(requests, off)
    assert [r.token_ids for r in without] == [r.token_ids for r in with_lp]
    assert [r.finish_reason for r in without] == [r.finish_reason for r in with_lp]
    assert all(len(r.logprobs) == len(r.token_ids) > 0 for r in with_lp)
    assert all(r.logprobs == () for r in without)


def _result(
    req: GenerationRequest, n: int, finish: str, version: int, logprobs: bool
) -> GenerationResult:
    tokens = tuple(range(100 + 10 * version, 100 + 10 * version + n))
    logps = tuple(-0.5 - version for _ in range(n)) if logprobs else ()
    return GenerationResult(req.request_id, tokens, logps, finish, version)  # type: ignore[arg-type]


def test_partial_rollouts_resume_without_logprobs_and_the_gap_reads_only_reported_tokens() -> None:
    buf = PartialRolloutBuffer(PartialRolloutConfig(budget_tokens=3, max_response_tokens=9))
    # iteration 0, version 0, log-probs on: sample 0 stops, sample 1 is carried over (budget)
    reqs = buf.new_requests(["p"], [[1, 2]], k=2)
    buf.apply_results(
        [_result(reqs[0], 2, "stop", 0, True), _result(reqs[1], 3, "length", 0, True)]
    )
    # the buffer survives a checkpoint (JSON) between iterations
    state = json.loads(json.dumps(buf.state_dict()))
    buf = PartialRolloutBuffer(buf.config)
    buf.load_state_dict(state)
    # iteration 1, version 1, log-probs off: the carried sample resumes from prompt + its 3 tokens
    (resume,) = buf.resume_requests()
    assert resume.token_ids == (1, 2, 100, 101, 102)
    update = buf.apply_results([_result(resume, 2, "stop", 1, False)])
    (group,) = update.groups
    carried = group.trajectories[1]
    assert [(len(s.token_ids), len(s.logprobs), s.policy_version) for s in carried.segments] == [
        (3, 3, 0),
        (2, 0, 1),
    ]

    batch = build_batch([group.trajectories], [[True, False]], "all", current_version=1)
    rollout = batch[ROLLOUT_TOKEN_LOGP]
    # row 1 = [prompt 1 2 | 100 101 102 (v0, -0.5 each) | 110 111 (v1, none)]
    assert rollout[1, 2:5].tolist() == [-0.5] * 3
    assert np.isnan(rollout[1, 5:7]).all()
    assert batch[CURRENT_VERSION_MASK][1, 5:7].tolist() == [1.0, 1.0]
    # the only version-1 tokens have no rollout log-probs: nothing to compare, the gap is nan
    reference = np.full_like(rollout, -1.0)
    gap_mean, gap_max = rollout_logp_gap(batch, reference)
    assert math.isnan(gap_mean) and math.isnan(gap_max)
    # at version 0, the tokens of iteration 0 are current and do carry log-probs: |-1 - (-0.5)|
    batch0 = build_batch([group.trajectories[:1]], [[True]], "all", current_version=0)
    assert rollout_logp_gap(batch0, np.full_like(batch0[ROLLOUT_TOKEN_LOGP], -1.0)) == (0.5, 0.5)


def test_gap_mixes_segments_with_and_without_logprobs() -> None:
    """Two rows of version 1, one reported (gap 0.25 per token) and one not: the gap is 0.25."""
    buf = PartialRolloutBuffer(PartialRolloutConfig(budget_tokens=4, max_response_tokens=4))
    reqs = buf.new_requests(["p"], [[1]], k=2)
    (group,) = buf.apply_results(
        [_result(reqs[0], 2, "stop", 1, True), _result(reqs[1], 3, "stop", 1, False)]
    ).groups
    batch = build_batch([group.trajectories], [[True, True]], "all", current_version=1)
    reference = np.full_like(batch[ROLLOUT_TOKEN_LOGP], -1.75)  # rollout -1.5: |-1.75 + 1.5| = 0.25
    reference[1] = 100.0  # the row without log-probs must not count
    assert rollout_logp_gap(batch, reference) == pytest.approx((0.25, 0.25))
