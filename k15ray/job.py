"""The ``k15ray train CONFIG [--resume] [--set key=value]`` job, end to end (the quick-start is one).

0. every user input is checked before any expensive work (``check_inputs``, ``k15ray.preflight``):
   the run folder, the env id and its prompt files, the model directory or the SFT inputs; a
   mistake is a ``k15ray.errors.UserError`` naming the field, the file and the fix;
1. data: generated arithmetic splits (train / held-out / SFT) under ``<output_dir>/data``;
2. policy: ``policy.model_dir``, or the long-CoT SFT warm-up of the tiny model (paper 2.2,
   ``k15ray.sft.train_sft``) into ``<output_dir>/sft`` when no base checkpoint exists;
3. held-out accuracy of the starting policy ("before");
4. K15 (``k15ray.algorithms``) on the training env, directly or as a Ray Tune trial
   (``run.use_tune``), with a line of progress per iteration, TensorBoard event files, and
   checkpoints every ``run.checkpoint_every`` iterations (``--resume`` continues from the latest);
   the loop itself is ``k15ray.run_loop``;
5. held-out accuracy of the final policy ("after"), ``curves.png`` and ``summary.json``.

Ctrl-C at any step raises ``k15ray.errors.Interrupted``: what was kept (the SFT checkpoint, the RL
checkpoint and its iteration) and the command that resumes; no ``summary.json`` or ``curves.png``.

Every path is one of ``k15ray.run_layout.RunLayout``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k15ray.config import from_mapping, to_mapping
from k15ray.config.experiment import ExperimentConfig
from k15ray.errors import UserError, interrupted
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
    if not all(p.is_file() for p in paths.values()) and cfg.data.task == "word_problems":
        from k15ray.tasks.word_problems import write_word_splits

        paths = write_word_splits(data_dir, cfg.data.n_train, cfg.data.n_heldout, seed=cfg.data.seed, levels=cfg.data.levels)
    elif not all(p.is_file() for p in paths.values()):
        paths = write_splits(
            data_dir, cfg.data.n_train, cfg.data.n_heldout, seed=cfg.data.seed, levels=cfg.data.levels,
            style=cfg.data.style,
        )
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
        from k15ray.models import check_model_dir

        return str(check_model_dir(cfg.policy.model_dir, "policy.model_dir"))
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
        .k15_environment(entry_point=cfg.env.entry_point, imports=list(cfg.env.imports))
        .policy(model_dir=model_dir, dtype=cfg.policy.dtype)
        .k15_rollouts(
            rollout=cfg.rollout, partial_rollout=cfg.partial_rollout, repeat=cfg.repeat, sampling=cfg.sampling
        )
        .k15_training(
            learner=cfg.learner, mirror_descent=cfg.mirror_descent, length_penalty=cfg.length_penalty,
            reward=cfg.reward,
        )
        .k15_evaluation(heldout=cfg.eval)
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

    env_config = {**cfg.env.config, **cfg.eval.env_config}
    env = k15ray.envs.make_env(cfg.env.id, env_config, entry_point=cfg.env.entry_point, imports=cfg.env.imports).unwrapped
    import torch

    # on a GPU machine the before/after evaluation of a real checkpoint would take minutes on the CPU
    model, tokenizer = load_policy(model_dir, device="cuda" if torch.cuda.is_available() else "cpu")
    final = dataclasses.replace(cfg.eval, num_prompts=cfg.eval.final_num_prompts)
    return evaluate_heldout(model, tokenizer, env, final)


# ---------------------------------------------------------------------- the job
def check_inputs(cfg: ExperimentConfig, *, resume: bool) -> ExperimentConfig:
    """Every user input, before any expensive work (``k15ray.preflight``; a ``UserError`` names
    the field, file and fix); writes the generated data splits if missing (step 1) and returns
    ``cfg`` pointing at them."""
    from k15ray import preflight
    from k15ray.models import check_model_dir

    layout = RunLayout.of(cfg.output_dir)
    preflight.check_run_folder(layout, resume=resume)
    cfg = _absolute_paths(cfg)
    env = cfg.env
    preflight.check_env_id(env.id, entry_point=env.entry_point, imports=env.imports)
    if cfg.policy.model_dir:
        check_model_dir(cfg.policy.model_dir, "policy.model_dir")
    if cfg.reward.model_dir:
        check_model_dir(cfg.reward.model_dir, "reward.model_dir")
    cfg = prepare_data(cfg)
    preflight.check_env(cfg.env.id, cfg.env.config, "env.config")
    if cfg.eval.env_config:  # else the held-out env is the training env, checked above
        preflight.check_env(cfg.env.id, {**cfg.env.config, **cfg.eval.env_config}, "eval.env_config")
    if not cfg.policy.model_dir and not layout.sft_done.is_file():
        try:
            sft = sft_config(cfg)
        except ValueError as err:
            raise UserError(str(err)) from err
        preflight.check_sft(sft, prefix="sft.")
    return cfg


def _absolute_paths(cfg: ExperimentConfig) -> ExperimentConfig:
    """``policy.model_dir`` and the envs' ``data_path`` made absolute: a Tune trial runs in its own
    working directory, where a relative path would name another file (or, for a model, a Hub repo)."""

    def absolute(env_config: Mapping[str, Any]) -> dict[str, Any]:
        path = env_config.get("data_path")
        return {**env_config, "data_path": str(Path(path).resolve())} if isinstance(path, str) else dict(env_config)

    model_dir = str(Path(cfg.policy.model_dir).resolve()) if cfg.policy.model_dir else cfg.policy.model_dir
    rm_dir = str(Path(cfg.reward.model_dir).resolve()) if cfg.reward.model_dir else ""
    return dataclasses.replace(
        cfg,
        policy=dataclasses.replace(cfg.policy, model_dir=model_dir),
        reward=dataclasses.replace(cfg.reward, model_dir=rm_dir),
        env=dataclasses.replace(cfg.env, config=absolute(cfg.env.config)),
        eval=dataclasses.replace(cfg.eval, env_config=absolute(cfg.eval.env_config)),
    )


def train(
    cfg: ExperimentConfig, *, resume: bool = False, progress: bool = True, resume_command: str = ""
) -> TrainResult:
    """Run the whole job of the module docstring; returns before/after accuracy and paths.

    A user mistake raises ``UserError`` before any expensive work; Ctrl-C raises ``Interrupted``
    saying what was kept and the command that resumes (``resume_command``, by default
    ``k15ray train CONFIG --resume``); neither writes ``summary.json`` or ``curves.png``."""
    from k15ray.curves import write_curves
    from k15ray.run_loop import run_rl

    # Absolute from here on: RLlib's checkpoints go through pyarrow, which rejects relative paths.
    layout = RunLayout.of(cfg.output_dir)
    cfg = check_inputs(dataclasses.replace(cfg, output_dir=str(layout.output_dir)), resume=resume)
    layout.output_dir.mkdir(parents=True, exist_ok=True)
    layout.config_json.write_text(json.dumps(_plain(cfg), indent=2))
    with _stage("the SFT warm-up", lambda: _sft_kept(layout), resume_command):
        model_dir = ensure_policy(cfg, progress=progress)
    _log(progress, f"policy: {model_dir}")
    before_file = layout.before_json
    if resume and before_file.is_file():
        before = json.loads(before_file.read_text())
    else:
        with _stage("the held-out evaluation before RL", lambda: f"the starting policy {model_dir} is kept", resume_command):
            before = heldout_accuracy(model_dir, cfg)
        before_file.write_text(json.dumps(before))
    _log(progress, f"held-out pass@1 before RL: {100 * before['pass_at_1']:.1f}%")
    t0 = time.perf_counter()
    policy_dir, history = run_rl(
        cfg, k15_config(cfg, model_dir), resume=resume, progress=progress, resume_command=resume_command
    )
    rl_seconds = time.perf_counter() - t0
    with _stage("the held-out evaluation after RL", lambda: f"the trained policy is kept in {policy_dir}", resume_command):
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


@contextlib.contextmanager
def _stage(name: str, kept: Callable[[], str], resume_command: str) -> Iterator[None]:
    """Ctrl-C inside: ``Interrupted`` saying during what, what is kept, and how to resume."""
    try:
        yield
    except KeyboardInterrupt:
        raise interrupted(f"stopped during {name}; {kept()}", resume_command) from None


def _sft_kept(layout: RunLayout) -> str:
    from k15ray.sft import checkpoints

    saved = checkpoints(layout.sft)
    return f"its checkpoint is kept in {saved[-1]}" if saved else "no SFT checkpoint was saved yet"


def _plain(cfg: ExperimentConfig) -> Mapping[str, Any]:
    return {f.name: to_mapping(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _log(progress: bool, message: str) -> None:
    if progress:
        from rich.console import Console

        Console().print(message)
