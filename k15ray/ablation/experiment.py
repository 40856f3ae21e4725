"""The ablation sweep as one Ray Tune experiment: (ablation, arm) x seed, one ``k15ray train`` per trial.

::

    <out>/
        plan.json                   the ablations, arms and seeds of this sweep (checked on --resume)
        tune/                       Tune's experiment folder (Tuner.restore resumes it)
        trials/<ablation>/<arm>/seed<k>/   each trial's k15ray train run folder (k15ray.run_layout)
        <ablation>.md / .json / .png        the gathered table and curves (k15ray.ablation.report)

* The grid: ``tune.grid_search`` over the (ablation, arm) pairs of every config and over the seeds,
  so several ablations share one scheduler and as many trials run side by side as there are CPUs
  (``max_concurrent``, ``cpus_per_trial``).
* A trial is ``k15ray.job.train`` on its arm's experiment (no second trainer loop): the start's
  model, the held-out evaluations, RL in direct mode with its checkpoints, ``summary.json``. It runs
  with ``resume=True`` in its own folder, so a trial that Tune restarts (``--resume`` after Ctrl-C
  or a crash) continues from its last K15 checkpoint instead of starting over.
* "before" is the same for every trial of a start (same model, same held-out prompts and settings):
  it is measured once per distinct start, in parallel Ray tasks of one CPU, and written as each
  trial's ``before.json`` (which ``train(resume=True)`` reads instead of evaluating again).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from k15ray.ablation.config import AblationConfig
from k15ray.config.experiment import ExperimentConfig
from k15ray.errors import UserError, interrupted
from k15ray.run_layout import RunLayout

PLAN_FILE = "plan.json"
TUNE_NAME = "tune"


def trial_dir(out: Path, ablation: str, arm: str, seed: int) -> Path:
    """The ``k15ray train`` run folder of one trial."""
    return out / "trials" / ablation / arm / f"seed{seed}"


def plan_of(ablations: Sequence[AblationConfig]) -> dict[str, Any]:
    """What the sweep runs: ablation -> arms and seeds (``plan.json``)."""
    return {a.name: {"arms": list(a.arms), "seeds": a.seeds} for a in ablations}


def trial_experiments(
    ablations: Sequence[AblationConfig], out: Path
) -> dict[str, ExperimentConfig]:
    """``"ablation/arm/seed"`` -> the trial's experiment, its output_dir under ``out/trials``."""
    experiments = {}
    for ablation in ablations:
        arms = ablation.arm_experiments()
        for arm, exp in arms.items():
            for seed in range(ablation.seeds):
                folder = trial_dir(out, ablation.name, arm, seed)
                experiments[f"{ablation.name}/{arm}/{seed}"] = dataclasses.replace(
                    exp, seed=seed, output_dir=str(folder)
                )
    return experiments


def check_sweep(
    ablations: Sequence[AblationConfig], out: Path, *, resume: bool
) -> dict[str, ExperimentConfig]:
    """Every input before Ray starts: distinct names, the run folder, each start's model and prompt
    files (``k15ray.job.check_inputs`` on one trial per arm); returns the trials' experiments."""
    from k15ray.job import check_inputs

    names = [a.name for a in ablations]
    if len(set(names)) != len(names):
        raise UserError(
            f"two ablations are both named {next(n for n in names if names.count(n) > 1)!r}; rename one"
        )
    counts = sorted({a.seeds for a in ablations})
    if len(counts) > 1:  # one (ablation, arm) grid times one seed grid
        raise UserError(
            f"the ablations ask for different seed counts {counts}; one sweep runs one seed grid: give them the same seeds"
        )
    plan_file = out / PLAN_FILE
    if not resume and (out / TUNE_NAME).exists():
        raise UserError(
            f"{out} already holds an ablation sweep; add --resume to continue it, or pass another --out"
        )
    if resume and plan_file.is_file() and json.loads(plan_file.read_text()) != plan_of(ablations):
        raise UserError(
            f"{plan_file} was written for other ablations, arms or seeds: resume with the same configs, or pass another --out"
        )
    experiments = trial_experiments(ablations, out)
    checked: set[str] = set()
    for key, exp in experiments.items():
        ablation, arm, _ = key.split("/")
        if f"{ablation}/{arm}" not in checked:  # the seeds of an arm share every file
            try:
                check_inputs(exp, resume=True)
            except UserError as err:
                raise UserError(f"{ablation}, arm {arm}: {err}") from None
            checked.add(f"{ablation}/{arm}")
    return experiments


def _before_key(exp: ExperimentConfig) -> str:
    """Trials with the same key have the same "before": model, held-out prompts and settings."""
    heldout_env = {**exp.env.config, **exp.eval.env_config}  # k15ray.job.heldout_accuracy's env
    final = dataclasses.replace(exp.eval, every_iterations=0, num_prompts=0)  # only final_* is used
    return json.dumps(
        [exp.policy.model_dir, exp.env.id, heldout_env, dataclasses.asdict(final)],
        sort_keys=True,
        default=str,
    )


def measure_before(experiments: dict[str, ExperimentConfig], cpus_per_task: float) -> None:
    """Write each trial's ``before.json``: one held-out evaluation per distinct start, as parallel
    Ray tasks (module docstring); trials that have one already are left alone."""
    import ray

    todo: dict[str, list[ExperimentConfig]] = {}
    for exp in experiments.values():
        if not RunLayout.of(exp.output_dir).before_json.is_file():
            todo.setdefault(_before_key(exp), []).append(exp)
    if not todo:
        return

    @ray.remote(num_cpus=cpus_per_task)
    def before(exp: ExperimentConfig) -> dict[str, float]:
        from k15ray.job import heldout_accuracy

        _cpu_only(cpus_per_task)
        assert exp.policy.model_dir, "an ablation always starts from policy.model_dir"
        return heldout_accuracy(exp.policy.model_dir, exp)

    refs = {key: before.remote(group[0]) for key, group in todo.items()}
    for key, group in todo.items():
        figures = ray.get(refs[key])
        for exp in group:
            layout = RunLayout.of(exp.output_dir)
            layout.output_dir.mkdir(parents=True, exist_ok=True)
            layout.before_json.write_text(json.dumps(figures))


def _cpu_only(cpus: float) -> None:
    """A trial computes on its CPUs only, with as many torch threads: on a GPU machine the held-out
    evaluations would otherwise move to the GPU (``k15ray.job.heldout_accuracy``) in some
    processes and not others, and the trials would no longer measure alike."""
    import torch

    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before CUDA is first touched in this worker
    torch.set_num_threads(max(1, int(cpus)))


def _trainable(
    experiments: dict[str, ExperimentConfig], cpus_per_trial: float
) -> Callable[[dict[str, Any]], None]:
    """The Tune function trainable: ``k15ray.job.train`` on the experiment of ``config["arm"]``
    (``"ablation/arm"``) and ``config["seed"]``."""

    def run_trial(config: dict[str, Any]) -> None:
        from ray import tune

        from k15ray.job import train

        _cpu_only(cpus_per_trial)
        exp = experiments[f"{config['arm']}/{config['seed']}"]
        t0 = time.perf_counter()
        result = train(exp, resume=True, progress=False)
        tune.report(
            {
                "gain_points": result.gain_points,
                "final_pass_at_1": result.after["pass_at_1"],
                "iterations": result.iterations,
                "minutes": (time.perf_counter() - t0) / 60,
            }
        )

    return run_trial


class _TrialLines:
    """One line per finished trial (the Tune callback of ``run_sweep``)."""

    def __init__(self, echo: Callable[[str], None], total: int) -> None:
        self.echo, self.total, self.done = echo, total, 0

    def callback(self) -> Any:
        from ray import tune

        lines = self

        class Lines(tune.Callback):  # type: ignore[misc]
            def on_trial_complete(
                self, iteration: int, trials: Any, trial: Any, **info: Any
            ) -> None:
                lines.done += 1
                r = trial.last_result or {}
                lines.echo(
                    f"[{lines.done}/{lines.total}] {trial.config['arm']} seed {trial.config['seed']}: held-out "
                    f"pass@1 {100 * r.get('final_pass_at_1', float('nan')):.1f}% "
                    f"({r.get('gain_points', float('nan')):+.1f} points), {r.get('minutes', float('nan')):.1f} min"
                )

            def on_trial_error(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
                lines.done += 1
                lines.echo(
                    f"[{lines.done}/{lines.total}] {trial.config['arm']} seed {trial.config['seed']}: FAILED ({trial.path})"
                )

        return Lines()


def run_sweep(
    ablations: Sequence[AblationConfig],
    out: str | Path,
    *,
    resume: bool = False,
    max_concurrent: int = 0,
    cpus_per_trial: float = 1.0,
    num_cpus: int = 0,
    resume_command: str = "",
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Run (or resume) the sweep of the module docstring; returns the keys of failed trials.

    ``max_concurrent`` trials at once (0: as many as the CPUs hold); Ray is started with
    ``num_cpus`` logical CPUs (0: all cores) unless it is running already."""
    import ray
    from ray import tune

    from k15ray.noise import ray_runtime_env
    from k15ray.run_loop import _TuneInterrupt

    out = Path(out).resolve()
    experiments = check_sweep(ablations, out, resume=resume)
    out.mkdir(parents=True, exist_ok=True)
    (out / PLAN_FILE).write_text(json.dumps(plan_of(ablations), indent=2))
    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            runtime_env=ray_runtime_env(),
        )
    try:
        measure_before(experiments, cpus_per_trial)
        pairs = sorted({key.rsplit("/", 1)[0] for key in experiments})
        seeds = sorted({int(key.rsplit("/", 1)[1]) for key in experiments})
        trainable = tune.with_resources(
            _trainable(experiments, cpus_per_trial), {"cpu": cpus_per_trial}
        )
        path = str(out / TUNE_NAME)
        if resume and tune.Tuner.can_restore(path):
            tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=True)
        else:
            cpus = ray.cluster_resources().get("CPU", 1)
            tuner = tune.Tuner(
                trainable,
                param_space={"arm": tune.grid_search(pairs), "seed": tune.grid_search(seeds)},
                tune_config=tune.TuneConfig(
                    max_concurrent_trials=max_concurrent or max(1, int(cpus // cpus_per_trial))
                ),
                run_config=tune.RunConfig(
                    name=TUNE_NAME,
                    storage_path=str(out),
                    verbose=0,
                    callbacks=[_TrialLines(echo, len(experiments)).callback()],
                ),
            )
        try:
            with _TuneInterrupt() as interrupt:
                grid = tuner.fit()
        except KeyboardInterrupt:
            raise interrupted(
                f"stopped at once; the trials' checkpoints and Tune's last saved state are kept in {out}",
                resume_command,
            ) from None
        if interrupt.happened:
            raise interrupted(
                f"Tune stopped the sweep; finished trials and the others' checkpoints are kept in {out}",
                resume_command,
            )
        results = [grid[i] for i in range(len(grid))]
        return [
            f"{(r.config or {}).get('arm')}/{(r.config or {}).get('seed')}"
            for r in results
            if r.error
        ]
    finally:
        if started:
            ray.shutdown()
