"""The RL run loop of ``k15ray train``: K15 run directly or as a Ray Tune trial, with progress lines.

* ``run_rl(cfg, k15_config, resume)`` trains until ``run.iterations`` or ``run.time_budget_minutes``
  and returns the final policy's Hugging Face directory and the per-iteration metrics history;
  - direct mode: ``K15Config.build_algo()``; a checkpoint (``save_to_path``) every
    ``run.checkpoint_every`` iterations in ``<output_dir>/rl/checkpoint``, TensorBoard event files
    in ``<output_dir>/rl/tb`` (tensorboardX, the writer Tune's own logger uses);
  - Tune mode (``run.use_tune``): ``tune.Tuner("K15", ...)`` with results under
    ``<output_dir>/rl/tune`` (Tune's CSV/JSON/TensorBoard loggers), resumed with ``Tuner.restore``;

Paths come from ``k15ray.run_layout.RunLayout``; the curves are drawn by ``k15ray.curves``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from k15ray import metrics as M
from k15ray.config.experiment import ExperimentConfig
from k15ray.run_layout import POLICY_DIR, RunLayout

HISTORY_KEYS: tuple[str, ...] = tuple(
    v for k, v in vars(M).items() if k.isupper() and isinstance(v, str) and "/" in v
)


def _row(result: dict[str, Any]) -> dict[str, float]:
    row = {k: float(result[k]) for k in HISTORY_KEYS if k in result and isinstance(result[k], (int, float))}
    row["iteration"] = float(result.get("training_iteration", 0))
    return row


def _print_row(row: dict[str, float], total: int) -> None:
    from rich.console import Console

    def fmt(key: str, scale: float = 1.0, unit: str = "") -> str:
        v = row.get(key)
        return "-" if v is None or math.isnan(v) else f"{scale * v:.1f}{unit}"

    Console().print(
        f"iter {int(row['iteration']):>3}/{total}  reward {fmt(M.REWARD_MEAN, 1.0)}  "
        f"acc {fmt(M.REWARD_ACCURACY, 100, '%')}  len {fmt(M.ROLLOUT_RESPONSE_LEN_MEAN)}  "
        f"loss {fmt(M.LOSS_TOTAL)}  held-out {fmt(M.EVAL_PASS_AT_1, 100, '%')}  "
        f"{fmt(M.PERF_SECONDS_ITERATION)}s"
    )


def ensure_ray(cfg: ExperimentConfig, rollout_cpus: float) -> bool:
    """Start Ray if needed, with enough logical CPUs for the learner and the rollout actors.

    Logical CPUs only reserve; threads are set explicitly (learner.num_threads, per actor), and
    rollout and training phases never overlap, so 1 + rollout CPUs may exceed the cores."""
    import ray

    if ray.is_initialized():
        return False
    cores = cfg.run.num_cpus or os.cpu_count() or 1
    ray.init(
        num_cpus=max(cores, int(math.ceil(1 + rollout_cpus))),
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    return True


def run_rl(cfg: ExperimentConfig, k15_config: Any, *, resume: bool, progress: bool) -> tuple[str, list[dict[str, float]]]:
    """Train K15 (module docstring); returns (final policy dir, history rows)."""
    rollout = cfg.rollout
    started = ensure_ray(cfg, rollout.num_workers * float(rollout.num_cpus_per_worker))
    try:
        if cfg.run.use_tune:
            return _run_tune(cfg, k15_config, resume=resume, progress=progress)
        return _run_direct(cfg, k15_config, resume=resume, progress=progress)
    finally:
        if started:
            import ray

            ray.shutdown()


def _run_direct(cfg: ExperimentConfig, k15_config: Any, *, resume: bool, progress: bool) -> tuple[str, list[dict[str, float]]]:
    from tensorboardX import SummaryWriter

    layout = RunLayout.of(cfg.output_dir)
    ckpt, history_file = layout.checkpoint, layout.history
    layout.rl.mkdir(parents=True, exist_ok=True)
    algo = k15_config.build_algo()
    history: list[dict[str, float]] = []
    if resume and (ckpt / "algorithm_state.pkl").is_file():
        algo.restore_from_path(ckpt)
        history = [json.loads(line) for line in history_file.read_text().splitlines() if line.strip()]
        history = [h for h in history if h["iteration"] <= algo.iteration]
    writer = SummaryWriter(str(layout.tensorboard))
    budget_s = cfg.run.time_budget_minutes * 60
    spent = sum(h.get(M.PERF_SECONDS_ITERATION, 0.0) for h in history)
    t0 = time.perf_counter()
    try:
        while algo.iteration < cfg.run.iterations and not (budget_s and spent + time.perf_counter() - t0 >= budget_s):
            row = _row(algo.train())
            history.append(row)
            for key, value in row.items():
                if key != "iteration" and not math.isnan(value):
                    writer.add_scalar(key, value, int(row["iteration"]))
            if progress:
                _print_row(row, cfg.run.iterations)
            if cfg.run.checkpoint_every and algo.iteration % cfg.run.checkpoint_every == 0:
                _checkpoint(algo, ckpt, history, history_file)
        _checkpoint(algo, ckpt, history, history_file)
        policy_dir = algo.export_policy(layout.policy)
    finally:
        writer.close()
        algo.stop()
    return policy_dir, history


def _checkpoint(algo: Any, ckpt: Path, history: Sequence[dict[str, float]], history_file: Path) -> None:
    algo.save_to_path(ckpt)
    history_file.write_text("".join(json.dumps(h) + "\n" for h in history))


def _run_tune(cfg: ExperimentConfig, k15_config: Any, *, resume: bool, progress: bool) -> tuple[str, list[dict[str, float]]]:
    from ray import tune

    import k15ray.algorithms  # noqa: F401  (registers "K15")

    class _Progress(tune.Callback):  # type: ignore[misc]
        def on_trial_result(self, iteration: int, trials: Any, trial: Any, result: dict[str, Any], **info: Any) -> None:
            if progress:
                _print_row(_row(result), cfg.run.iterations)

    layout = RunLayout.of(cfg.output_dir)
    storage, path = str(layout.rl), str(layout.tune)
    stop: dict[str, float] = {"training_iteration": cfg.run.iterations}
    if cfg.run.time_budget_minutes:
        stop["time_total_s"] = cfg.run.time_budget_minutes * 60
    run_config = tune.RunConfig(
        name=layout.tune.name,
        storage_path=storage,
        stop=stop,
        verbose=0,
        callbacks=[_Progress()],
        checkpoint_config=tune.CheckpointConfig(
            checkpoint_frequency=cfg.run.checkpoint_every, checkpoint_at_end=True, num_to_keep=2
        ),
    )
    if resume and tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, "K15", resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner("K15", param_space=k15_config, run_config=run_config)
    result = tuner.fit()[0]
    if result.error:
        raise RuntimeError(f"the K15 trial failed: {result.error}")
    assert result.checkpoint is not None, "checkpoint_at_end saves a final checkpoint"
    frame: Any = result.metrics_dataframe
    history = [_row(r) for r in frame.to_dict("records")]
    return os.path.join(result.checkpoint.path, POLICY_DIR), history
