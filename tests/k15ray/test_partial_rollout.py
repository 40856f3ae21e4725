"""Partial rollouts (paper 2.6.2): budget, resume requests, finish reasons, groups, masks, state."""

from __future__ import annotations

import json

import pytest

from k15ray.config.partial_rollout import PartialRolloutConfig
from k15ray.partial_rollout import PartialRolloutBuffer, loss_mask
from k15ray.types import GenerationRequest, GenerationResult

CFG = PartialRolloutConfig(budget_tokens=4, max_response_tokens=10)


def answer(req: GenerationRequest, n: int, finish: str, version: int, start: int = 100) -> GenerationResult:
    toks = tuple(range(start, start + n))
    return GenerationResult(req.request_id, toks, tuple(-0.1 * (i + 1) for i in range(n)), finish, version)  # type: ignore[arg-type]


def test_one_prompt_group_across_three_iterations() -> None:
    buf = PartialRolloutBuffer(CFG)
    # iteration 0: one prompt, k = 2 -> 2 requests of min(4, 10 - 0) = 4 tokens each
    reqs = buf.resume_requests() + buf.new_requests(["x"], [[1, 2]], k=2)
    assert [r.max_new_tokens for r in reqs] == [4, 4] and reqs[0].token_ids == (1, 2)
    up = buf.apply_results([answer(reqs[0], 3, "stop", 0), answer(reqs[1], 4, "length", 0)])
    assert [t.finish_reason for t in up.finished] == ["stop"]
    assert [t.finish_reason for t in up.carried] == ["budget"] and up.groups == []  # group waits
    assert buf.num_carried() == 1
    # iteration 1: resume sample 1 from prompt + its 4 tokens; 4 more tokens: total 8 < 10 -> budget
    (r1,) = buf.resume_requests()
    assert r1.token_ids == (1, 2, 100, 101, 102, 103) and r1.max_new_tokens == 4
    up = buf.apply_results([answer(r1, 4, "length", 1, start=200)])
    assert up.carried[0].finish_reason == "budget"
    # iteration 2: min(4, 10 - 8) = 2 tokens; "length" at the cap -> truncated, finished
    (r2,) = buf.resume_requests()
    assert r2.max_new_tokens == 2
    up = buf.apply_results([answer(r2, 2, "length", 2, start=300)])
    assert up.finished[0].finish_reason == "length"
    (group,) = up.groups  # all k = 2 finished: the group is complete and leaves the buffer
    assert group.prompt_id == "x" and [t.sample_index for t in group.trajectories] == [0, 1]
    assert len(buf) == 0 and buf.resume_requests() == []
    traj = group.trajectories[1]
    assert [s.policy_version for s in traj.segments] == [0, 1, 2]
    assert traj.response_token_ids == (100, 101, 102, 103, 200, 201, 202, 203, 300, 301)
    # loss masks: all segments, or only the current version's (here version 2: last 2 tokens)
    assert loss_mask(traj, "all") == [1] * 10
    assert loss_mask(traj, "current", current_version=2) == [0] * 8 + [1, 1]
    with pytest.raises(ValueError, match="current_version"):
        loss_mask(traj, "current")


def test_repeat_and_missing_results_and_stale_results() -> None:
    buf = PartialRolloutBuffer(CFG)
    reqs = buf.new_requests(["a", "a"], [[5], [5]], k=1)  # same prompt twice: two groups
    up = buf.apply_results([answer(reqs[0], 2, "repeat", 0)])  # second result lost (dead actor)
    assert up.groups[0].trajectories[0].finish_reason == "repeat"
    # the lost one is requested again next iteration, from scratch
    (again,) = buf.resume_requests()
    assert again.request_id == reqs[1].request_id and again.max_new_tokens == 4
    buf.apply_results([answer(again, 1, "length", 1)])
    with pytest.raises(ValueError, match="stale"):
        buf.apply_results([answer(again, 1, "stop", 1)])  # the same segment applied twice
    with pytest.raises(ValueError, match="matches no trajectory"):
        buf.apply_results([answer(GenerationRequest("77:0:0", (1,), 1), 1, "stop", 0)])


def test_state_dict_round_trip_is_plain_data() -> None:
    buf = PartialRolloutBuffer(CFG)
    reqs = buf.new_requests(["x", "y"], [[1], [2, 3]], k=2)
    buf.apply_results([answer(r, 4, "length", 3) for r in reqs[:3]])
    state = buf.state_dict()
    restored = PartialRolloutBuffer(CFG)
    restored.load_state_dict(json.loads(json.dumps(state)))  # JSON-able: plain python data
    assert restored.state_dict() == state
    assert restored.resume_requests() == buf.resume_requests()
    # the next new group gets a fresh id in both
    assert restored.new_requests(["z"], [[9]], 1) == buf.new_requests(["z"], [[9]], 1)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="budget_tokens"):
        PartialRolloutConfig(budget_tokens=20, max_response_tokens=10)
    with pytest.raises(ValueError, match="loss_mask"):
        PartialRolloutConfig(loss_mask="some")  # type: ignore[arg-type]
