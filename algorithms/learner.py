"""The K15 learner: RLlib's ``TorchLearner`` minimising the mirror-descent surrogate (paper 2.3.2).

One iteration of ``K15.training_step`` drives this learner as follows:

1. ``reset_optimizer()``: the AdamW state is cleared (= re-created), since every iteration solves
   a new surrogate problem around pi_ref = pi_theta_i ("the optimizer is reset at each iteration");
2. ``reference_logprobs(batch)``: log pi_theta_i(y_t | x, y_<t) for every response token, computed
   once, before the first step, with no gradient. The sequence sum is the ``logpi_ref_j`` of
   loss_j = -logpi_j * (r_j - b) + (tau/2) * (logpi_j - logpi_ref_j)^2;
3. ``LearnerGroup.update(batch=minibatch)`` once per optimizer step: minibatches hold whole prompt
   groups (the baseline b is a group statistic), the global gradient norm is clipped.

With ``learner.num_learners >= 2`` these calls reach every learner actor: each resets its optimizer,
computes its rows of the reference pass (``reference_logprobs_share``), and steps on its shard of
whole groups with the loss scaled by ``SHARD_LOSS_SCALE`` (``k15ray.algorithms.data_parallel``).

The objective is chosen in config (``mirror_descent.objective``) from ``k15ray.objectives.OBJECTIVE_FNS``,
a small registry of pure losses (eq. 3 of ``k15ray.mirror_descent``, and the paper's ablation
baselines ReST and a GRPO-style clipped ratio). Log-probs are taken at the rollout temperature T
and without dropout (``k15ray.algorithms.module``), in the reference pass and in the loss alike.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.learner.torch.torch_learner import TorchLearner

from k15ray.algorithms.config import K15Config
from k15ray.algorithms.data_parallel import SHARD_LOSS_SCALE, row_shard
from k15ray.batch import (
    ATTENTION_MASK,
    INPUT_IDS,
    LOSS_MASK,
    REFERENCE_TOKEN_LOGP,
    TOKEN_LOGP,
    row_pixel_values,
)
from k15ray.config.k15 import K15Settings
from k15ray.errors import UserError
from k15ray.logprobs import policy_token_logprobs, sequence_logprobs
from k15ray.objectives import objective_fn


def freeze_vision_tower(module: torch.nn.Module) -> int:
    """Fix the vision tower's weights (``learner.freeze_vision_tower``); returns how many tensors.
    A module without one (a text-only policy) is a ``UserError``."""
    tower = [p for name, p in module.named_parameters() if "vision_tower." in name]
    if not tower:
        raise UserError(
            "learner.freeze_vision_tower: the policy has no vision tower (a text-only model); "
            "set it to false, or use a vision-language policy"
        )
    for p in tower:
        p.requires_grad_(False)
    return len(tower)


class K15Learner(TorchLearner):
    """Mirror-descent learner; see the module docstring for the per-iteration protocol."""

    config: K15Config  # type: ignore[assignment]

    def build(self) -> None:
        self.step_stats: list[dict[str, float]] = []
        if self.config.num_learners > 0:  # a learner actor: the main process sets its own threads
            torch.set_num_threads(self.settings.learner.num_threads or 1)
        super().build()

    @functools.cached_property
    def settings(self) -> K15Settings:
        """The run's typed settings, built once from the config this learner was given."""
        return self.config.settings()

    def configure_optimizers_for_module(self, module_id: str, config: Any = None) -> None:
        cfg = self.settings.learner
        modules: Any = self.module
        module = modules[module_id]
        if cfg.freeze_vision_tower:
            freeze_vision_tower(module)
        params = [p for p in self.get_parameters(module) if p.requires_grad]
        optimizer = torch.optim.AdamW(
            params, lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]), eps=cfg.eps, weight_decay=cfg.weight_decay
        )
        self.register_optimizer(
            module_id=module_id, optimizer=optimizer, params=params, lr_or_lr_schedule=cfg.lr
        )

    # ------------------------------------------------------------ per-iteration protocol
    @property
    def policy(self) -> torch.nn.Module:
        """The Hugging Face causal LM inside the (single) RLModule."""
        modules: Any = self.module
        return modules[DEFAULT_MODULE_ID].unwrapped().policy  # type: ignore[no-any-return]

    def reset_optimizer(self) -> None:
        """Forget every optimizer's moments and step counts: a fresh AdamW (paper 2.3.2)."""
        for optimizer in self._named_optimizers.values():
            optimizer.state.clear()
        self.step_stats = []

    def reference_logprobs(self, batch: dict[str, np.ndarray], chunk: int = 64) -> np.ndarray:
        """log pi_theta_i(y_t | ...) per token, (N, T), of the current weights, with no gradient."""
        policy = self.policy
        was_training = policy.training
        policy.eval()
        temperature = self.settings.logprob_temperature  # the same T as the loss's forward
        out = []
        with torch.no_grad():
            for s in range(0, batch[INPUT_IDS].shape[0], chunk):
                ids = torch.as_tensor(batch[INPUT_IDS][s : s + chunk], device=self._device)
                mask = torch.as_tensor(batch[ATTENTION_MASK][s : s + chunk], device=self._device)
                pixels = row_pixel_values(batch, slice(s, s + chunk))  # the same images as the loss's forward
                if pixels is not None:
                    pixels = torch.as_tensor(pixels, device=self._device, dtype=next(policy.parameters()).dtype)
                token_logp = policy_token_logprobs(policy, ids, mask, temperature=temperature, pixel_values=pixels)
                out.append(token_logp.float().cpu().numpy())
        policy.train(was_training)
        if not out:  # a learner whose share of the reference pass is empty
            return np.zeros((0, batch[INPUT_IDS].shape[1]), dtype=np.float32)
        return np.concatenate(out, axis=0)

    def reference_logprobs_share(self, batch: dict[str, np.ndarray], num_learners: int) -> tuple[int, np.ndarray]:
        """This learner's rows of the reference pass (``data_parallel.row_shard``): (index, (n, T))."""
        rows = row_shard(batch[INPUT_IDS].shape[0], num_learners, self._learner_index)
        return self._learner_index, self.reference_logprobs({k: v[rows] for k, v in batch.items()})

    def policy_state_dict(self, on_device: bool = False) -> dict[str, torch.Tensor]:
        """The policy's weights (Hugging Face names): CPU copies for the rollout actors, or with
        ``on_device`` the live tensors themselves, for a colocated engine that copies them in place."""
        if on_device:
            return {k: v.detach() for k, v in self.policy.state_dict().items()}
        return {k: v.detach().cpu().clone() for k, v in self.policy.state_dict().items()}

    def policy_for_driver(self) -> torch.nn.Module:
        """The policy for the main process: the live module when this learner runs there, else a
        CPU copy (a CUDA tensor would not unpickle in a process without that GPU)."""
        if self.config.num_learners == 0 or self._device == torch.device("cpu"):
            return self.policy
        import copy

        return copy.deepcopy(self.policy).cpu()

    def pop_step_stats(self) -> list[dict[str, float]]:
        stats, self.step_stats = self.step_stats, []
        return stats

    # ------------------------------------------------------------ RLlib hooks
    def compute_loss_for_module(
        self, *, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        cfg = self.settings.mirror_descent
        token_logp = fwd_out[TOKEN_LOGP]  # (N, T)
        loss, stats = objective_fn(cfg.objective)(batch, token_logp, cfg)
        scale = 1.0
        if SHARD_LOSS_SCALE in batch:  # one shard of L (k15ray.algorithms.data_parallel): w_s L_s
            scale = float(batch[SHARD_LOSS_SCALE][0])
            loss = loss * scale
        with torch.no_grad():  # log pi/pi_ref per sequence, whatever the objective
            log_ratio = sequence_logprobs(token_logp - batch[REFERENCE_TOKEN_LOGP], batch[LOSS_MASK])
        stats = {
            **stats,
            "total": float(loss.detach()) / scale if scale else 0.0,
            "shard_loss_scale": scale,
            "log_ratio_mean": float(log_ratio.mean()),
            "log_ratio_max_abs": float(log_ratio.abs().max()),
        }
        self.step_stats.append(stats)
        return loss

    def postprocess_gradients_for_module(
        self, *, module_id: str, config: Any = None, module_gradients_dict: dict[Any, Any]
    ) -> dict[Any, Any]:
        """Clip the global gradient norm to ``learner.grad_clip`` (0 = no clipping)."""
        grads = [g for g in module_gradients_dict.values() if g is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])) if grads else torch.tensor(0.0)
        clip = self.settings.learner.grad_clip
        if clip > 0 and float(norm) > clip:
            scale = clip / (float(norm) + 1e-6)
            for g in grads:
                g.mul_(scale)
        if self.step_stats:
            self.step_stats[-1]["grad_norm"] = float(norm)
        return module_gradients_dict
