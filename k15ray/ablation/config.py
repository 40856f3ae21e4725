"""Configuration of one ablation (``configs/ablations/*.yaml``): arms x seeds from one SFT start.

An ablation YAML holds the ``k15ray train`` sections every arm shares (``experiment``), the arms
as dotted overrides of those sections, and the SFT start all trials begin from::

    name: objective
    start: runs/ablation_starts/std_l12   # model/ (a Hugging Face dir) and data/ inside
    seeds: 3
    experiment: {rollout: {...}, learner: {...}, run: {iterations: 16}, ...}
    arms:
      mirror_descent: {mirror_descent.objective: mirror_descent}
      rest: {mirror_descent.objective: rest}
    expect:                               # the paper's direction (bench/ablations.py checks it)
      - {arm: mirror_descent, than: rest, metric: gain_points, sign: higher}

``load_ablation`` builds and validates every arm's ``ExperimentConfig`` at once, so a bad arm field
is a one-line ``ValueError`` (``objective.yaml: arms.rest: mirror_descent.objectiv: unknown key
...``) before Ray starts.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k15ray.config import doc, from_mapping, load_yaml
from k15ray.config.experiment import ExperimentConfig, experiment_from_mapping, set_dotted

METRICS: tuple[str, ...] = (
    "gain_points",
    "final_pass_at_1",
    "response_tokens",
    "rollout_tokens",
    "minutes",
)
"""Per-trial figures the table reports (mean and std over seeds) and ``expect`` may compare."""
SIGNS: tuple[str, ...] = ("higher", "lower")


@dataclass(frozen=True)
class Expectation:
    """One direction the paper reports: ``arm``'s ``metric`` is ``sign`` than ``than``'s (or than 0)."""

    arm: str = doc("the arm the paper favours")
    metric: str = doc(f"the compared figure, one of {list(METRICS)}", "gain_points")
    sign: str = doc("higher or lower: which way the paper says arm differs", "higher")
    than: str | None = doc(
        "the other arm; null compares against 0 (e.g. a gain that should be > 0)", None
    )

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric: {self.metric!r} is not one of {list(METRICS)}")
        if self.sign not in SIGNS:
            raise ValueError(f"sign: {self.sign!r} is not one of {list(SIGNS)}")


@dataclass(frozen=True)
class AblationConfig:
    """One ablation: every arm is a ``k15ray train`` experiment from the same SFT start."""

    name: str = doc("the ablation's name: its table, JSON and PNG are <name>.md/.json/.png")
    start: str = doc(
        "SFT start folder holding model/ (Hugging Face dir) and data/; relative to the cwd"
    )
    arms: dict[str, dict[str, Any]] = doc(
        "arm name -> dotted overrides of experiment, e.g. {learner.lr: 1e-5}"
    )
    experiment: dict[str, Any] = doc(
        "k15ray train sections shared by every arm", default_factory=dict
    )
    model: str = doc("the starting model, relative to start", "model")
    train_data: str = doc(
        "training prompts (env.config.data_path), relative to start", "data/train.jsonl"
    )
    heldout_data: str = doc(
        "held-out prompts (eval.env_config.data_path), relative to start", "data/heldout.jsonl"
    )
    seeds: int = doc("seeds per arm: 0, 1, ..., seeds-1", 3)
    sample_efficiency: bool = doc(
        "also plot held-out pass@1 against cumulative rollout tokens", False
    )
    expect: tuple[Expectation, ...] = doc(
        "the paper's directions, checked by bench/ablations.py", ()
    )
    description: str = doc("one line for the table's caption", "")

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(
                f"name: {self.name!r} must be a non-empty word of letters, digits and _"
            )
        if self.seeds < 1:
            raise ValueError(
                f"seeds: must be >= 1, got {self.seeds}; the paper-style comparison uses 3"
            )
        if not self.arms:
            raise ValueError("arms: give at least one arm, e.g. {on: {length_penalty.weight: 0.5}}")
        for arm, overrides in self.arms.items():
            if not str(arm).replace("_", "").replace("+", "").isalnum():
                raise ValueError(f"arms: {arm!r} must be a word of letters, digits, _ and +")
            if not isinstance(overrides, Mapping):
                raise ValueError(
                    f"arms.{arm}: must be a mapping of dotted keys, e.g. {{learner.lr: 1e-5}}"
                )
        for i, exp in enumerate(self.expect):
            for named in (exp.arm, exp.than):
                if named is not None and named not in self.arms:
                    raise ValueError(
                        f"expect[{i}]: arm {named!r} is not one of the arms {sorted(self.arms)}"
                    )

    @property
    def start_path(self) -> Path:
        return Path(self.start).resolve()

    def arm_experiment(self, arm: str, seed: int, output_dir: str | Path) -> ExperimentConfig:
        """The ``k15ray train`` experiment of one trial: shared sections, the start, the arm, the seed."""
        return dataclasses.replace(
            self.arm_experiments()[arm], seed=seed, output_dir=str(output_dir)
        )

    def arm_experiments(self) -> dict[str, ExperimentConfig]:
        """Every arm's experiment (seed 0); raises ``ValueError`` naming the arm and the bad field."""
        return {arm: _arm_experiment(self, arm) for arm in self.arms}


def _arm_experiment(cfg: AblationConfig, arm: str) -> ExperimentConfig:
    data = copy.deepcopy(cfg.experiment)
    start = cfg.start_path
    where = f"arms.{arm}: "
    for dotted, value in {
        "data.generate": False,  # the start's prompt files, never new ones
        "policy.model_dir": str(start / cfg.model),
        "env.config.data_path": str(start / cfg.train_data),
        "eval.env_config.data_path": str(start / cfg.heldout_data),
    }.items():
        set_dotted(data, dotted, value, "experiment.")
    for dotted, value in cfg.arms[arm].items():
        set_dotted(data, str(dotted), value, where)
    try:
        return experiment_from_mapping(data)
    except ValueError as err:
        raise ValueError(f"{where}{err}") from None


def load_ablation(path: str | Path, overrides: Mapping[str, Any] | None = None) -> AblationConfig:
    """Read an ablation YAML (``--set`` style dotted ``overrides`` applied first) and check every arm;
    errors read ``<file>: <field>: what to fix``."""
    data = load_yaml(path)
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value, "--set ")
    try:
        cfg = from_mapping(AblationConfig, data)
        cfg.arm_experiments()
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return cfg
