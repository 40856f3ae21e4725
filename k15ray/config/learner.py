"""Learner settings of the K15 algorithm: the optimizer that is reset every iteration (paper 2.3.2).

Policy mirror descent solves each iteration's surrogate problem (eq. 3) from scratch around
pi_ref = pi_theta_i, so the optimizer (AdamW) is re-created at the start of every iteration and
takes ``num_epochs * num_minibatches`` steps on that iteration's batch. The calibration in
DESIGN.md found lr 1e-4 stable and 3e-4 collapsing: with a fresh Adam, the first step moves every
parameter by about ``lr`` whatever its gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

from k15ray.config import doc, section


@section("learner")
@dataclass(frozen=True)
class LearnerConfig:
    """Optimizer, minibatching and batch size of one K15 iteration."""

    lr: float = doc("AdamW learning rate (re-created every iteration; 3e-4 collapsed on the tiny model)", 1e-4)
    betas: tuple[float, ...] = doc("AdamW (beta1, beta2)", (0.9, 0.999))
    eps: float = doc("AdamW epsilon", 1e-8)
    weight_decay: float = doc("AdamW decoupled weight decay", 0.0)
    num_minibatches: int = doc("optimizer steps per epoch; each minibatch holds whole prompt groups", 2)
    num_epochs: int = doc("passes over the iteration's batch", 1)
    grad_clip: float = doc("clip the global gradient norm to this value; 0 disables clipping", 1.0)
    reset_optimizer: bool = doc("re-create the optimizer state every iteration (paper 2.3.2)", True)
    num_threads: int = doc("torch threads of the learner process; 0 = all cores of the machine", 0)
    freeze_vision_tower: bool = doc(
        "vision-language policy: keep the vision tower's weights fixed in RL (LLaVA's recipe freezes its "
        "encoder); only the projector and language model train. An error for a text-only policy",
        False,
    )
    num_gpus: float = doc(
        "GPUs of each learner; the same value as RLlib's num_gpus_per_learner (either sets both); 0 = CPU",
        0.0,
    )
    num_learners: int = doc(
        "data-parallel learner actors (RLlib LearnerGroup, torch DDP: gloo on CPU, NCCL on GPU), "
        "each taking a share of every minibatch's prompt groups; 0 = one learner in the main process. "
        "The same value as RLlib's num_learners (either sets both)",
        0,
    )

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"learner.lr must be > 0, got {self.lr}; try 1e-4")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(
                f"learner.betas must be two numbers in [0, 1), got {self.betas}; try [0.9, 0.999]"
            )
        if not self.eps > 0:
            raise ValueError(f"learner.eps must be > 0, got {self.eps}; try 1e-8")
        if self.weight_decay < 0:
            raise ValueError(f"learner.weight_decay must be >= 0, got {self.weight_decay}")
        if self.num_minibatches < 1:
            raise ValueError(
                f"learner.num_minibatches must be >= 1, got {self.num_minibatches}; "
                "use 1 for one full-batch step per epoch"
            )
        if self.num_epochs < 1:
            raise ValueError(f"learner.num_epochs must be >= 1, got {self.num_epochs}")
        if self.grad_clip < 0:
            raise ValueError(
                f"learner.grad_clip must be >= 0, got {self.grad_clip}; use 0 to disable clipping"
            )
        if self.num_threads < 0:
            raise ValueError(
                f"learner.num_threads must be >= 0, got {self.num_threads}; 0 means all cores"
            )
        if self.num_gpus < 0:
            raise ValueError(f"learner.num_gpus must be >= 0, got {self.num_gpus}; 0 trains on CPU")
        if self.num_learners < 0:
            raise ValueError(
                f"learner.num_learners must be >= 0, got {self.num_learners}; 0 trains in the main "
                "process, 2 or more splits each minibatch across learner actors"
            )

    @property
    def optimizer_steps_per_iteration(self) -> int:
        """num_epochs x num_minibatches: the optimizer steps taken on one iteration's batch."""
        return self.num_epochs * self.num_minibatches
