"""The training reward named by the ``reward`` settings section (``k15ray.config.reward``).

``training_reward(cfg, kind)`` builds the ``RewardFn`` that scores one kind of prompt: a served
reward (``ServedReward``, one batched handle call per iteration) or a model RM loaded in this
process (``ValueRM``, ``CoTJudge``). ``reward_kind(cfg, domain)`` says which kind scores a prompt of
``domain``, or None for the env's own reward.
"""

from __future__ import annotations

from k15ray.config.reward import RewardConfig
from k15ray.types import RewardFn


def reward_kind(cfg: RewardConfig, domain: str) -> str | None:
    """The reward kind scoring a prompt of ``domain``: ``value_rm``/``cot_rm`` for the model RM's
    domains, the domain itself (``math``, ``code``) for the served verifier, None for the env's
    own reward in this process."""
    if cfg.uses_model:
        return cfg.kind if domain in cfg.domains else None
    return domain if cfg.backend == "serve" else None


def training_reward(cfg: RewardConfig, kind: str) -> RewardFn:
    """The ``RewardFn`` of ``kind`` (from ``reward_kind``) as ``cfg`` places it."""
    if cfg.backend == "serve":
        from k15ray.serve.client import ServedReward

        return ServedReward(kind, app_name=cfg.app, timeout_s=cfg.timeout_s)
    if kind == "value_rm":
        from k15ray.rewards.models.value_head import ValueRM

        return ValueRM(cfg.model_dir, device=cfg.device)
    if kind == "cot_rm":
        from k15ray.rewards.models.cot_judge import CoTJudge

        return CoTJudge(cfg.model_dir, device=cfg.device, max_new_tokens=cfg.max_new_tokens)
    raise ValueError(f"reward kind {kind!r} has no local model; use backend: serve or kind value_rm/cot_rm")
