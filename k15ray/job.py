"""The ``k15ray train CONFIG [--resume] [--set key=value]`` job, end to end (the quick-start is one).

1. data: generated arithmetic splits (train / held-out / SFT) under ``<output_dir>/data``;
2. policy: ``policy.model_dir``, or the long-CoT SFT warm-up of the tiny model (paper 2.2,
   ``k15ray.sft.train_sft``) into ``<output_dir>/sft`` when no base checkpoint exists;
3. held-out accuracy of the starting policy ("before");
4. K15 (``k15ray.algorithms``) on the training env, directly or as a Ray Tune trial
   (``run.use_tune``), with a line of progress per iteration, TensorBoard event files, and
   checkpoints every ``run.checkpoint_every`` iterations (``--resume`` continues from the latest);
   the loop itself is ``k15ray.run_loop``;
5. held-out accuracy of the final policy ("after"), ``curves.png`` and ``summary.json``.

Every path is one of ``k15ray.run_layout.RunLayout``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from k15ray.config import from_mapping, to_mapping
from k15ray.config.experiment import ExperimentConfig
from k15ray.run_layout import RunLayout


@dataclass
class TrainResult:
    """What ``train`` did: accuracies before/after RL and where everything was written."""

    before: dict[str, float]
    after: dict[str, float]
    iterations: int
    rl_seconds: float
    model_dir: str
    policy_dir: str
    curves_png: str
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def gain_points(self) -> float:
        """Held-out pass@1 after minus before, in percentage points."""
        return 100.0 * (self.after["pass_at_1"] - self.before["pass_at_1"])


# ---------------------------------------------------------------------- steps 1-2
def prepare_data(cfg: ExperimentConfig) -> ExperimentConfig:
    """Write the generated splits if missing; point the env, the eval and SFT at them by default."""
    if not cfg.data.generate:
        return cfg
    from k15ray.tasks import write_splits

    data_dir = RunLayout.of(cfg.output_dir).data
    paths = {name: data_dir / f"{name}.jsonl" for name in ("train", "heldout", "sft")}
    if not all(p.is_file() for p in paths.values()):
        paths = write_splits(data_dir, cfg.data.n_train, cfg.data.n_heldout, seed=cfg.data.seed, levels=cfg.data.levels)
    env, eval_cfg, sft = cfg.env, cfg.eval, dict(cfg.sft)
    if env.id == "k15/Math-v0" and not {"data_path", "prompts"} & set(env.config):
        env = dataclasses.replace(env, config={**env.config, "data_path": str(paths["train"])})
    if not {"data_path", "prompts"} & set(eval_cfg.env_config):
        eval_cfg = dataclasses.replace(eval_cfg, env_config={**eval_cfg.env_config, "data_path": str(paths["heldout"])})
    sft.setdefault("data", str(paths["sft"]))
    sft.setdefault("eval_data", str(paths["train"]))  # the accuracy check never sees held-out prompts
    return dataclasses.replace(cfg, env=env, eval=eval_cfg, sft=sft)


def sft_config(cfg: ExperimentConfig) -> Any:
    """The ``SFTConfig`` of the warm-up: ``sft`` section + defaults (data split, output dir)."""
    from k15ray.config.sft import SFTConfig

    fields = {"out_dir": str(RunLayout.of(cfg.output_dir).sft), "seed": cfg.seed, **cfg.sft}
    return from_mapping(SFTConfig, fields, "sft")


def ensure_policy(cfg: ExperimentConfig, progress: bool = True) -> str:
    """``policy.model_dir`` if set, else the SFT warm-up's model (trained now if not done yet)."""
    if cfg.policy.model_dir:
        from k15ray.models import is_model_dir

        if not is_model_dir(cfg.policy.model_dir):
            raise ValueError(
                f"policy.model_dir={cfg.policy.model_dir!r} is not a Hugging Face model directory; "
                "fix the path, or remove it to run the SFT warm-up"
            )
        return str(cfg.policy.model_dir)
    done = RunLayout.of(cfg.output_dir).sft_done
    if done.is_file():
        return done.read_text().strip()
    from k15ray.sft import train_sft

    model_dir = str(train_sft(sft_config(cfg), progress=progress))
    done.write_text(model_dir)
    return model_dir


# ---------------------------------------------------------------------- the K15 config
def k15_config(cfg: ExperimentConfig, model_dir: str) -> Any:
    """The ``K15Config`` of an experiment (every section maps onto one builder argument)."""
    from k15ray.algorithms import K15Config

    config = (
        K15Config()
        .environment(cfg.env.id, env_config=dict(cfg.env.config))
        .policy(model_dir=model_dir, dtype=cfg.policy.dtype)
        .k15_rollouts(
            rollout=cfg.rollout, partial_rollout=cfg.partial_rollout, repeat=cfg.repeat, sampling=cfg.sampling
        )
        .k15_training(learner=cfg.learner, mirror_descent=cfg.mirror_descent, length_penalty=cfg.length_penalty)
        .k15_evaluation(heldout=cfg.eval)
        .learners(num_learners=0)  # learner.num_gpus is RLlib's num_gpus_per_learner
        .debugging(seed=cfg.seed)
    )
    config.k15_logdir = str(RunLayout.of(cfg.output_dir).rl)
    return config


# ---------------------------------------------------------------------- evaluation
def heldout_accuracy(model_dir: str, cfg: ExperimentConfig) -> dict[str, float]:
    """pass@1 of the model in ``model_dir`` on the held-out env (``eval`` section)."""
    import k15ray.envs
    from k15ray.heldout import evaluate_heldout
    from k15ray.models import load_policy

    env = k15ray.envs.make_env(cfg.env.id, {**cfg.env.config, **cfg.eval.env_config}).unwrapped
    model, tokenizer = load_policy(model_dir)
    final = dataclasses.replace(cfg.eval, num_prompts=cfg.eval.final_num_prompts)
    return evaluate_heldout(model, tokenizer, env, final)


# ---------------------------------------------------------------------- the job
def train(cfg: ExperimentConfig, *, resume: bool = False, progress: bool = True) -> TrainResult:
    """Run the whole job of the module docstring; returns before/after accuracy and paths."""
    from k15ray.curves import write_curves
    from k15ray.run_loop import run_rl

    # Absolute from here on: RLlib's checkpoints go through pyarrow, which rejects relative paths.
    layout = RunLayout.of(cfg.output_dir)
    cfg = dataclasses.replace(cfg, output_dir=str(layout.output_dir))
    layout.output_dir.mkdir(parents=True, exist_ok=True)
    if not resume and layout.holds_run():
        raise ValueError(
            f"{layout.rl} already holds a run; pass --resume to continue it, or set output_dir elsewhere"
        )
    cfg = prepare_data(cfg)
    layout.config_json.write_text(json.dumps(_plain(cfg), indent=2))
    model_dir = ensure_policy(cfg, progress=progress)
    _log(progress, f"policy: {model_dir}")
    before_file = layout.before_json
    if resume and before_file.is_file():
        before = json.loads(before_file.read_text())
    else:
        before = heldout_accuracy(model_dir, cfg)
        before_file.write_text(json.dumps(before))
    _log(progress, f"held-out pass@1 before RL: {100 * before['pass_at_1']:.1f}%")
    t0 = time.perf_counter()
    policy_dir, history = run_rl(cfg, k15_config(cfg, model_dir), resume=resume, progress=progress)
    rl_seconds = time.perf_counter() - t0
    after = heldout_accuracy(policy_dir, cfg)
    curves = write_curves(history, before, after, layout.curves_png)
    result = TrainResult(before, after, len(history), rl_seconds, model_dir, policy_dir, str(curves), history)
    summary = {k: v for k, v in dataclasses.asdict(result).items() if k != "history"}
    layout.summary_json.write_text(json.dumps({**summary, "gain_points": result.gain_points}, indent=2))
    _log(
        progress,
        f"held-out pass@1: before {100 * before['pass_at_1']:.1f}% -> after {100 * after['pass_at_1']:.1f}% "
        f"({result.gain_points:+.1f} points, {len(history)} iterations, {rl_seconds / 60:.1f} min of RL); "
        f"curves: {curves}",
    )
    return result


def _plain(cfg: ExperimentConfig) -> Mapping[str, Any]:
    return {f.name: to_mapping(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _log(progress: bool, message: str) -> None:
    if progress:
        from rich.console import Console

        Console().print(message)
