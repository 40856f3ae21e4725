"""The RL run loop of ``k15ray train``: K15 run directly or as a Ray Tune trial, with progress lines.

* ``run_rl(cfg, k15_config, resume)`` trains until ``run.iterations`` or ``run.time_budget_minutes``
  and returns the final policy's Hugging Face directory and the per-iteration metrics history;
  - direct mode: ``K15Config.build_algo()``; a checkpoint (``save_to_path``) every
    ``run.checkpoint_every`` iterations in ``<output_dir>/rl/checkpoint``, TensorBoard event files
    in ``<output_dir>/rl/tb`` (tensorboardX, the writer Tune's own logger uses);
  - Tune mode (``run.use_tune``): ``tune.Tuner("K15", ...)`` with results under
    ``<output_dir>/rl/tune`` (Tune's CSV/JSON/TensorBoard loggers), resumed with ``Tuner.restore``;
    the history is read back from the trial's ``result.json``, one row per ``training_iteration``
    (the latest: iterations after the checkpoint a resume starts from run again);
* Ctrl-C raises ``k15ray.errors.Interrupted`` (exit status 130 in the CLI), whose message names the
  checkpoint kept and the command that resumes. Direct mode: the first Ctrl-C lets the running
  iteration finish, saves its checkpoint and stops; a second one stops at once, keeping the last
  saved checkpoint. Tune mode: Tune stops the trial at once and keeps its last periodic checkpoint.

Paths come from ``k15ray.run_layout.RunLayout``; the curves are drawn by ``k15ray.curves``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import signal
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from k15ray import metrics as M
from k15ray.config.experiment import ExperimentConfig
from k15ray.errors import interrupted
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
    """Start Ray if needed, with enough logical CPUs for the learner and the rollout actors, or
    attach to the running cluster at ``run.address``.

    Logical CPUs only reserve; threads are set explicitly (learner.num_threads, per actor), and
    rollout and training phases never overlap, so 1 + rollout CPUs may exceed the cores."""
    import ray

    from k15ray.noise import ray_runtime_env

    if ray.is_initialized():
        return False
    if cfg.run.address:  # a cluster of its own (ray start --head / --address, KubeRay): attach
        ray.init(
            address=cfg.run.address,
            log_to_driver=False,
            configure_logging=False,
            runtime_env=ray_runtime_env(),
        )
        return True  # ray.shutdown() detaches this driver; the cluster keeps running
    cores = cfg.run.num_cpus or os.cpu_count() or 1
    ray.init(
        num_cpus=max(cores, int(math.ceil(1 + rollout_cpus))),
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env=ray_runtime_env(),  # the same library-noise filters in every worker
    )
    return True


def run_rl(
    cfg: ExperimentConfig, k15_config: Any, *, resume: bool, progress: bool, resume_command: str = ""
) -> tuple[str, list[dict[str, float]]]:
    """Train K15 (module docstring); returns (final policy dir, history rows). Ctrl-C raises
    ``Interrupted`` naming the kept checkpoint and ``resume_command``."""
    rollout = cfg.rollout
    started = False
    try:
        started = ensure_ray(cfg, rollout.num_workers * float(rollout.num_cpus_per_worker))
        if cfg.run.use_tune:
            return _run_tune(cfg, k15_config, resume=resume, progress=progress, resume_command=resume_command)
        return _run_direct(cfg, k15_config, resume=resume, progress=progress, resume_command=resume_command)
    except KeyboardInterrupt:  # outside the loops' own handling: Ray start-up, building the algorithm
        kept = _kept_direct(RunLayout.of(cfg.output_dir)) if not cfg.run.use_tune else "Tune's last saved state is kept"
        raise interrupted(f"stopped before RL was under way; {kept}", resume_command) from None
    finally:
        if started:
            import ray

            ray.shutdown()


class _StopRequest:
    """SIGINT handler of the direct loop: the first Ctrl-C asks the loop to stop after the running
    iteration (``requested``); a second one raises ``KeyboardInterrupt`` at once, unless a
    checkpoint is being written (``shielded``): a half-written checkpoint would be lost."""

    def __init__(self) -> None:
        self.requested = False
        self._shielded = False
        self._previous: Any = None

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and not self._shielded:
            raise KeyboardInterrupt
        if not self.requested:
            self.requested = True
            # os.write, not print: the main thread may be inside a print to the same stream
            os.write(2, b"Ctrl-C: stopping after the running iteration and saving its checkpoint "
                        b"(Ctrl-C again to stop at once and keep the last saved checkpoint)\n")

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        self._shielded = True
        try:
            yield
        finally:
            self._shielded = False


def _run_direct(
    cfg: ExperimentConfig, k15_config: Any, *, resume: bool, progress: bool, resume_command: str
) -> tuple[str, list[dict[str, float]]]:
    from tensorboardX import SummaryWriter

    layout = RunLayout.of(cfg.output_dir)
    ckpt, history_file = layout.checkpoint, layout.history
    layout.rl.mkdir(parents=True, exist_ok=True)
    algo = k15_config.build_algo()
    history: list[dict[str, float]] = []
    if resume and layout.checkpoint_saved:
        algo.restore_from_path(ckpt)
        history = read_history(history_file)
        history = [h for h in history if h["iteration"] <= algo.iteration]
    writer = SummaryWriter(str(layout.tensorboard))
    budget_s = cfg.run.time_budget_minutes * 60
    spent = sum(h.get(M.PERF_SECONDS_ITERATION, 0.0) for h in history)
    t0 = time.perf_counter()
    total = cfg.run.iterations
    try:
        with _StopRequest() as stop:
            try:
                while algo.iteration < total and not (budget_s and spent + time.perf_counter() - t0 >= budget_s):
                    row = _row(algo.train())
                    history.append(row)
                    for key, value in row.items():
                        if key != "iteration" and not math.isnan(value):
                            writer.add_scalar(key, value, int(row["iteration"]))
                    if progress:
                        _print_row(row, total)
                    periodic = cfg.run.checkpoint_every and algo.iteration % cfg.run.checkpoint_every == 0
                    if periodic or stop.requested:
                        with stop.shielded():
                            _checkpoint(algo, ckpt, history, history_file)
                    if stop.requested:
                        break
            except KeyboardInterrupt:  # the second Ctrl-C, inside an iteration
                raise interrupted(
                    f"stopped during iteration {algo.iteration + 1} of {total}; {_kept_direct(layout)}",
                    resume_command,
                ) from None
            if not stop.requested:
                with stop.shielded():
                    _checkpoint(algo, ckpt, history, history_file)
                    policy_dir = algo.export_policy(layout.policy)
            if stop.requested:
                raise interrupted(
                    f"stopped after iteration {algo.iteration} of {total}; its checkpoint is kept in {ckpt}",
                    resume_command,
                )
    finally:
        writer.close()
        algo.stop()
    return policy_dir, history


def read_history(history_file: Path) -> list[dict[str, float]]:
    """The rows of ``history.jsonl`` (direct mode), in order."""
    return [json.loads(line) for line in history_file.read_text().splitlines() if line.strip()]


def _kept_direct(layout: RunLayout) -> str:
    """Which direct-mode checkpoint is on disk: the history is written right after it."""
    if not layout.checkpoint_saved or not layout.history.is_file():
        return "no RL checkpoint was saved yet (--resume starts RL over)"
    history = read_history(layout.history)
    iteration = int(history[-1]["iteration"]) if history else 0
    return f"the checkpoint of iteration {iteration} is kept in {layout.checkpoint}"


def _checkpoint(algo: Any, ckpt: Path, history: Sequence[dict[str, float]], history_file: Path) -> None:
    algo.save_to_path(ckpt)
    history_file.write_text("".join(json.dumps(h) + "\n" for h in history))


def unique_iterations(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One result per ``training_iteration``, the latest reported, in iteration order: a Tune trial
    resumed from the checkpoint of iteration m reports iterations m+1, m+2, ... again."""
    latest = {int(r["training_iteration"]): r for r in results if "training_iteration" in r}
    return [latest[i] for i in sorted(latest)]


def _tune_history(trial_dir: str) -> list[dict[str, float]]:
    """The history of a Tune trial from its ``result.json`` (one JSON object per result: unlike
    ``progress.csv``, each row names its own columns)."""
    from ray.air.constants import EXPR_RESULT_FILE

    lines = Path(trial_dir, EXPR_RESULT_FILE).read_text().splitlines()
    return [_row(r) for r in unique_iterations(json.loads(line) for line in lines if line.strip())]


def _progress_csv_callback() -> Any:
    """Tune's ``progress.csv`` logger, which after ``Tuner.restore`` keeps writing under the header
    already in the file (Tune's own takes the columns of the first new result, which shifts them)."""
    from ray.air.constants import EXPR_PROGRESS_FILE
    from ray.tune.logger import CSVLoggerCallback

    class ContinuedCSVLoggerCallback(CSVLoggerCallback):  # type: ignore[misc]
        def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
            if trial not in self._trial_files:
                self._setup_trial(trial)
            if self._trial_csv[trial] is None and self._trial_continue[trial]:
                with Path(trial.local_path, EXPR_PROGRESS_FILE).open(newline="") as fh:
                    header = next(csv.reader(fh), None)
                if header:  # missing columns stay empty; columns new since the restore are left out
                    self._trial_csv[trial] = csv.DictWriter(self._trial_files[trial], header)
            super().log_trial_result(iteration, trial, result)

    return ContinuedCSVLoggerCallback()


def _run_tune(
    cfg: ExperimentConfig, k15_config: Any, *, resume: bool, progress: bool, resume_command: str
) -> tuple[str, list[dict[str, float]]]:
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
        callbacks=[_Progress(), _progress_csv_callback()],
        checkpoint_config=tune.CheckpointConfig(
            checkpoint_frequency=cfg.run.checkpoint_every, checkpoint_at_end=True, num_to_keep=2
        ),
    )
    if resume and tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, "K15", resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner("K15", param_space=k15_config, run_config=run_config)
    try:
        with _TuneInterrupt() as interrupt:
            result = tuner.fit()[0]
    except KeyboardInterrupt:  # a second Ctrl-C: Tune may not have saved its state this time
        raise interrupted(
            f"stopped at once; the trial's checkpoints and Tune's last saved state are kept in {layout.tune}",
            resume_command,
        ) from None
    if interrupt.happened:
        raise interrupted(f"Tune stopped the trial; {_kept_tune(result)}", resume_command)
    if result.error:
        raise RuntimeError(f"the K15 trial failed: {result.error}")
    assert result.checkpoint is not None, "checkpoint_at_end saves a final checkpoint"
    return os.path.join(result.checkpoint.path, POLICY_DIR), _tune_history(result.path)


class _TuneInterrupt:
    """Whether Tune saw Ctrl-C during ``Tuner.fit``.

    Tune installs its own SIGINT handler in ``fit`` (the first Ctrl-C ends the run, saves the
    experiment state and returns normally), and on that first Ctrl-C puts back the handler that was
    there before: ours. So ours being installed again after ``fit`` means Tune was interrupted; a
    second Ctrl-C reaches ours and stops at once. ``__exit__`` puts back the original handler, which
    Tune otherwise leaves replaced by its own after a run without Ctrl-C."""

    def __init__(self) -> None:
        self.happened = False
        self._previous: Any = None

    @staticmethod
    def _second_ctrl_c(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    def __enter__(self) -> _TuneInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._second_ctrl_c)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            self.happened = signal.getsignal(signal.SIGINT) is self._second_ctrl_c
            signal.signal(signal.SIGINT, self._previous)


def _kept_tune(result: Any) -> str:
    """The trial's last persisted checkpoint and its iteration (``Result.best_checkpoints``)."""
    if result.checkpoint is None:
        return "no checkpoint was saved yet (--resume starts the trial over)"
    iteration = next(
        (int(m["training_iteration"]) for c, m in result.best_checkpoints or [] if c.path == result.checkpoint.path),
        None,
    )
    of = f" of iteration {iteration}" if iteration is not None else ""
    return f"its checkpoint{of} is kept in {result.checkpoint.path} (the iterations after it run again on --resume)"
