"""Partial rollouts (paper section 2.6.2): a per-iteration output-token budget and a replay buffer
of unfinished trajectories that continue in later iterations.

Every trajectory may generate at most ``budget_tokens`` new tokens per iteration, and at most
``max_response_tokens`` in total. A trajectory that uses its budget before finishing keeps its
segments (token ids, rollout log-probs when that iteration asked for them, policy version) in the
buffer and is resumed next iteration from prompt + earlier segments (``finish_reason ==
"budget"``). The backend's ``length`` therefore means ``budget`` while the total is below
``max_response_tokens`` and ``length`` (truncated, finished) once it reaches it; ``stop`` and
``repeat`` finish the trajectory.

Groups: each new prompt gets a *group* of k trajectories (sample_index 0..k-1) with a buffer-wide
``group_id`` (so the same prompt may have several groups in flight). A group is *complete*, and
only then scored and trained on (the baseline of eq. 3 needs all k rewards), when all k of its
trajectories are finished; ``apply_results`` hands complete groups out and forgets them.

One iteration::

    requests = buffer.resume_requests() + buffer.new_requests(prompt_ids, prompt_token_ids, k)
    results = backend.generate(requests, params)             # any order, any subset
    update = buffer.apply_results(results)                    # update.groups: complete groups

A trajectory whose result never came back (e.g. a dead actor) stays unfinished and is re-requested
by the next ``resume_requests()``. Request ids are ``"<group_id>:<sample_index>:<segments>"``, so a
stale result (for a segment already applied) is rejected instead of being appended twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from k15ray.config.partial_rollout import PartialRolloutConfig
from k15ray.types import GenerationRequest, GenerationResult, Segment, Trajectory


@dataclass
class Group:
    """The k trajectories sampled for one prompt in one group (sample_index order)."""

    group_id: int
    prompt_id: str
    trajectories: list[Trajectory]

    @property
    def complete(self) -> bool:
        return all(t.finished for t in self.trajectories)


@dataclass
class RolloutUpdate:
    """What ``apply_results`` did: trajectories finished now, carried over, and complete groups."""

    finished: list[Trajectory] = field(default_factory=list)
    carried: list[Trajectory] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)


def _request_id(group_id: int, traj: Trajectory) -> str:
    return f"{group_id}:{traj.sample_index}:{len(traj.segments)}"


class PartialRolloutBuffer:
    """Holds every group with an unfinished trajectory; builds requests and applies results."""

    def __init__(self, config: PartialRolloutConfig | None = None) -> None:
        self.config = config or PartialRolloutConfig()
        self.groups: dict[int, Group] = {}
        self._next_group_id = 0

    def __len__(self) -> int:
        """Number of groups held (each with at least one unfinished trajectory)."""
        return len(self.groups)

    def unfinished(self) -> list[Trajectory]:
        return [t for g in self.groups.values() for t in g.trajectories if not t.finished]

    def num_carried(self) -> int:
        """Trajectories paused by the budget, waiting for the next iteration."""
        return sum(t.finish_reason == "budget" for t in self.unfinished())

    def _request(self, group_id: int, traj: Trajectory) -> GenerationRequest:
        so_far = traj.num_response_tokens
        # max_new_tokens = min(budget, max_response_tokens - tokens so far)
        max_new = min(self.config.budget_tokens, self.config.max_response_tokens - so_far)
        assert max_new > 0, "an unfinished trajectory is below max_response_tokens"
        return GenerationRequest(
            request_id=_request_id(group_id, traj),
            token_ids=tuple(traj.prompt_token_ids) + traj.response_token_ids,  # prompt + earlier segments
            max_new_tokens=max_new,
            images=traj.images,  # a continuation sees the prompt's images again
        )

    def resume_requests(self) -> list[GenerationRequest]:
        """Requests continuing every unfinished trajectory already in the buffer (call it first)."""
        return [
            self._request(gid, t)
            for gid, g in self.groups.items()
            for t in g.trajectories
            if not t.finished
        ]

    def new_requests(
        self,
        prompt_ids: Sequence[str],
        prompt_token_ids: Sequence[Sequence[int]],
        k: int,
        images: Sequence[tuple[Any, ...]] | None = None,
    ) -> list[GenerationRequest]:
        """Open one group of k trajectories per prompt and return their k requests each;
        ``images`` (one tuple per prompt, ``()`` for a text-only one) go with every trajectory."""
        if len(prompt_ids) != len(prompt_token_ids):
            raise ValueError("prompt_ids and prompt_token_ids must have one entry per prompt")
        images = images if images is not None else [()] * len(prompt_ids)
        if len(images) != len(prompt_ids):
            raise ValueError("images must have one entry (a tuple, () for none) per prompt")
        if k < 1:
            raise ValueError(f"k (samples per prompt) must be >= 1, got {k}")
        requests: list[GenerationRequest] = []
        for pid, ids, shown in zip(prompt_ids, prompt_token_ids, images, strict=True):
            gid = self._next_group_id
            self._next_group_id += 1
            trajs = [Trajectory(pid, j, tuple(int(t) for t in ids), images=tuple(shown)) for j in range(k)]
            self.groups[gid] = Group(gid, pid, trajs)
            requests.extend(self._request(gid, t) for t in trajs)
        return requests

    def _lookup(self, request_id: str) -> tuple[Group, Trajectory]:
        try:
            gid, j, n_seg = (int(x) for x in request_id.split(":"))
            group = self.groups[gid]
            traj = group.trajectories[j]
        except (ValueError, KeyError, IndexError) as err:
            raise ValueError(f"result {request_id!r} matches no trajectory in the buffer") from err
        if traj.finished or n_seg != len(traj.segments):
            raise ValueError(f"result {request_id!r} is stale: that segment was already applied")
        return group, traj

    def trajectory(self, request_id: str) -> Trajectory:
        """The unfinished trajectory that request ``request_id`` continues (ValueError if none)."""
        return self._lookup(request_id)[1]

    def apply_results(self, results: Sequence[GenerationResult]) -> RolloutUpdate:
        """Append one Segment per result, set finish reasons, and hand out complete groups."""
        update = RolloutUpdate()
        touched: dict[int, Group] = {}
        seen: set[str] = set()
        for res in results:
            if res.request_id in seen:
                raise ValueError(f"two results for request {res.request_id!r}")
            seen.add(res.request_id)
            group, traj = self._lookup(res.request_id)
            traj.segments.append(Segment(tuple(res.token_ids), tuple(res.logprobs), res.policy_version))
            if res.finish_reason == "length":
                # the backend used all max_new_tokens: over the budget, or at the length cap
                at_cap = traj.num_response_tokens >= self.config.max_response_tokens
                traj.finish_reason = "length" if at_cap else "budget"
            else:
                traj.finish_reason = res.finish_reason  # stop | repeat
            (update.finished if traj.finished else update.carried).append(traj)
            touched[group.group_id] = group
        for gid, group in touched.items():
            if group.complete:
                update.groups.append(self.groups.pop(gid))
        return update

    def state_dict(self) -> dict[str, Any]:
        """Plain Python data (lists, dicts, numbers, strings): picklable, and JSON-friendly unless
        a trajectory has images (they stay uint8 arrays)."""
        return {
            "next_group_id": self._next_group_id,
            "groups": [
                {
                    "group_id": g.group_id,
                    "prompt_id": g.prompt_id,
                    "trajectories": [_traj_to_dict(t) for t in g.trajectories],
                }
                for g in self.groups.values()
            ],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._next_group_id = int(state["next_group_id"])
        self.groups = {
            int(g["group_id"]): Group(
                int(g["group_id"]), str(g["prompt_id"]), [_traj_from_dict(t) for t in g["trajectories"]]
            )
            for g in state["groups"]
        }


def loss_mask(traj: Trajectory, mode: str = "all", current_version: int | None = None) -> list[int]:
    """1/0 per response token: which tokens of ``traj`` enter the loss (paper 2.6.2).

    * ``all``: every segment.
    * ``current``: the segments of the trajectory's LAST generating iteration, i.e. those whose
      ``policy_version`` equals that of its final segment; the earlier segments of a carried-over
      trajectory were generated by older policies and are excluded from the loss. A trajectory
      that finished in an earlier iteration while its group was still running keeps its whole
      last segment: it is trained on, not only used in the group's baseline.

    ``current_version`` (optional) is the policy version of the iteration that trains on
    ``traj``; a segment newer than it means a result was applied to the wrong iteration
    (ValueError). It does not change the mask; ``version_mask`` selects one version's tokens.
    """
    if mode not in ("all", "current"):
        raise ValueError(f"loss mask mode {mode!r} is not one of ['all', 'current']")
    versions = [s.policy_version for s in traj.segments if s.token_ids]
    if current_version is not None and versions and max(versions) > current_version:
        raise ValueError(
            f"trajectory {traj.prompt_id}/{traj.sample_index} holds tokens of policy version "
            f"{max(versions)}, newer than current_version={current_version}; pass the version of "
            "the iteration that trains on it"
        )
    if mode == "all" or not versions:
        return [1] * traj.num_response_tokens
    return version_mask(traj, versions[-1])  # the last generating iteration's version


def version_mask(traj: Trajectory, version: int) -> list[int]:
    """1/0 per response token: 1 on the tokens generated by policy ``version``.

    With ``version`` = the learner's current version, these are the tokens whose rollout
    log-probs are comparable with the learner's reference log-probs of pi_theta_i."""
    return [int(s.policy_version == version) for s in traj.segments for _ in s.token_ids]


def _traj_to_dict(t: Trajectory) -> dict[str, Any]:
    return {
        "prompt_id": t.prompt_id,
        "sample_index": t.sample_index,
        "prompt_token_ids": list(t.prompt_token_ids),
        "segments": [
            {"token_ids": list(s.token_ids), "logprobs": list(s.logprobs), "policy_version": s.policy_version}
            for s in t.segments
        ],
        "finish_reason": t.finish_reason,
        "response_text": t.response_text,
        "reward": t.reward,
        "reward_details": dict(t.reward_details),
        **({"images": [np.asarray(i) for i in t.images]} if t.images else {}),  # uint8 arrays
    }


def _traj_from_dict(d: Mapping[str, Any]) -> Trajectory:
    return Trajectory(
        prompt_id=str(d["prompt_id"]),
        sample_index=int(d["sample_index"]),
        prompt_token_ids=tuple(int(x) for x in d["prompt_token_ids"]),
        segments=[
            Segment(tuple(int(x) for x in s["token_ids"]), tuple(float(x) for x in s["logprobs"]), int(s["policy_version"]))
            for s in d["segments"]
        ],
        finish_reason=d["finish_reason"],
        response_text=str(d["response_text"]),
        reward=float(d["reward"]),
        reward_details=dict(d["reward_details"]),
        images=tuple(np.asarray(i, dtype=np.uint8) for i in d.get("images", ())),
    )
