"""The ``k15ray`` command. Each sub-command is a thin wrapper over a library function.

Commands: ``train``, ``sft``, ``eval``, ``serve``, ``gen-data`` ... (see ``k15ray --help``).
Sub-commands import their modules lazily so that ``k15ray --help`` stays fast.
"""

from __future__ import annotations

import os
import shlex
import sys
import traceback
from typing import Any

import typer
from typer.core import TyperGroup

from k15ray.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, Interrupted, UserError


class _Group(TyperGroup):
    """How every command ends early (``k15ray.errors``): a ``UserError`` prints ``error: ...`` on
    one line and exits 2, ``Interrupted`` prints what was kept and how to resume and exits 130;
    ``--debug`` / ``K15RAY_DEBUG=1`` adds the traceback. Any other exception is a bug and keeps its
    traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as err:
            _report(err, " ".join(str(err).split()), ctx, prefix="error: ")
            raise typer.Exit(EXIT_USER_ERROR) from None
        except Interrupted as err:
            _report(err, str(err), ctx)
            raise typer.Exit(EXIT_INTERRUPTED) from None


def _report(err: Exception, message: str, ctx: Any, prefix: str = "") -> None:
    if ctx.params.get("debug") or os.environ.get("K15RAY_DEBUG", "") not in ("", "0"):
        traceback.print_exception(err, file=sys.stderr)
    typer.echo(f"{prefix}{message}", err=True)


app = typer.Typer(
    cls=_Group, add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_show_locals=False
)


@app.callback()
def _options(
    debug: bool = typer.Option(
        False, "--debug", envvar="K15RAY_DEBUG", help="also print the traceback of a user error (or K15RAY_DEBUG=1)"
    ),
) -> None:
    """Global options (before the command: ``k15ray --debug train ...``)."""


_REWARD_MODEL = typer.Option(
    None, "--reward-model", help="serve a model reward model: value_rm=DIR or cot_rm=DIR (repeatable; docs/reward_models.md)"
)


@app.command("serve")
def serve_command(
    policy: str = typer.Option(None, "--policy", help="checkpoint directory to serve behind the OpenAI-compatible API"),
    rewards: str = typer.Option(None, "--rewards", help="comma-separated verifiable rewards to serve: math,code ('' = none)"),
    sandbox: bool = typer.Option(None, "--sandbox/--no-sandbox", help="serve /v1/sandbox/run (default: on)"),
    host: str = typer.Option(None, "--host", help="address to listen on (default 127.0.0.1)"),
    port: int = typer.Option(None, "--port", help="port to listen on (default 8000)"),
    backend: str = typer.Option(None, "--backend", help="policy rollout backend: hf or vllm (default hf)"),
    config: str = typer.Option(None, "--config", help="a Serve config file such as configs/serve.yaml; flags override it"),
    reward_model: list[str] | None = _REWARD_MODEL,
) -> None:
    """Serve the policy, rewards and sandbox on Ray Serve until Ctrl-C or SIGTERM (exit 0; docs/serve.md)."""
    from k15ray.serve.app import config_from_cli, serve_until_interrupted

    models: dict[str, str] = {}
    for item in reward_model or []:
        name, sep, model_dir = item.partition("=")
        if not sep or not name.strip() or not model_dir.strip():
            raise typer.BadParameter(f"--reward-model {item!r}: write NAME=DIR, e.g. --reward-model cot_rm=runs/judge")
        models[name.strip()] = model_dir.strip()
    try:
        serve_config = config_from_cli(
            policy=policy, rewards=rewards, sandbox=sandbox, host=host, port=port,
            backend=backend, config_path=config, reward_models=models,
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    from k15ray.models import check_model_dir

    # found here, in one line, before Ray starts: not three times in replica tracebacks
    if serve_config.policy.model_dir:
        check_model_dir(serve_config.policy.model_dir, "--policy")
    for name in ("value_rm", "cot_rm"):
        if getattr(serve_config.rewards.models, name):
            check_model_dir(getattr(serve_config.rewards.models, name), f"--reward-model {name}")
    serve_until_interrupted(serve_config, echo=typer.echo)


_TRAIN_SET = typer.Option(None, "--set", help="override a config value: --set mirror_descent.tau=0.5 (repeatable)")


@app.command("train")
def train_command(
    config: str = typer.Argument(..., help="experiment YAML, e.g. configs/quickstart.yaml"),
    resume: bool = typer.Option(False, "--resume", help="continue the run in output_dir from its latest checkpoint"),
    set_: list[str] | None = _TRAIN_SET,
) -> None:
    """SFT warm-up if needed, then K15 RL; prints before/after held-out accuracy (docs/k15.md)."""
    from k15ray.config.experiment import load_experiment, parse_override
    from k15ray.job import train

    try:
        experiment = load_experiment(config, dict(parse_override(item) for item in set_ or []))
    except ValueError as err:
        raise UserError(str(err)) from err
    command = ["k15ray", "train", config, *(arg for item in set_ or [] for arg in ("--set", item)), "--resume"]
    train(experiment, resume=resume, resume_command=shlex.join(command))


@app.command("vision-examples")
def vision_examples_command(
    out: str = typer.Argument("vision_examples.png", help="PNG file to write"),
    seed: int = typer.Option(0, "--seed", help="seed of the generated problems"),
) -> None:
    """Draw every vision generator at every difficulty level into one PNG (docs/vision.md)."""
    from k15ray.vision.montage import write_examples

    typer.echo(str(write_examples(out, seed=seed)))


@app.command("gen-data")
def gen_data_command(
    out_dir: str = typer.Argument(..., help="folder for train.jsonl, heldout.jsonl and sft.jsonl"),
    n_train: int = typer.Option(6000, "--n-train", help="train problems (also the SFT examples)"),
    n_heldout: int = typer.Option(250, "--n-heldout", help="held-out problems, none shared with train"),
    seed: int = typer.Option(0, "--seed", help="seed of the generators"),
    levels: str = typer.Option("1,2,3,4,5", "--levels", help="comma-separated difficulty levels"),
) -> None:
    """Write generated arithmetic prompt sets with long-CoT solutions (docs/sft.md)."""
    from k15ray.tasks import write_splits

    try:
        paths = write_splits(out_dir, n_train, n_heldout, seed, [int(x) for x in levels.split(",")])
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


_SFT_SET = typer.Option(None, "--set", help="override a value: --set max_minutes=2 (repeatable)")


@app.command("sft")
def sft_command(
    config: str = typer.Argument(..., help="SFT YAML, e.g. configs/sft_tiny.yaml"),
    set_: list[str] | None = _SFT_SET,
) -> None:
    """Long-CoT SFT warm-up (paper 2.2); resumes from the newest checkpoint in out_dir."""
    from pathlib import Path

    import yaml

    from k15ray.config import load_config
    from k15ray.config.sft import SFTConfig
    from k15ray.preflight import check_sft
    from k15ray.sft import checkpoints, train_sft

    overrides = {}
    for item in set_ or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set {item!r}: write KEY=VALUE, e.g. --set max_minutes=2")
        overrides[key] = yaml.safe_load(value)
    try:
        sft_config = load_config(SFTConfig, config, overrides)
    except ValueError as err:
        raise UserError(str(err)) from err
    check_sft(sft_config)  # before any model is built or loaded
    try:
        final = train_sft(sft_config)
    except KeyboardInterrupt:  # train_sft saved a checkpoint first
        saved = checkpoints(Path(sft_config.out_dir))
        kept = f"its checkpoint is kept in {saved[-1]}" if saved else "no checkpoint was saved yet"
        command = shlex.join(["k15ray", "sft", config, *(arg for item in set_ or [] for arg in ("--set", item))])
        raise Interrupted(f"interrupted: {kept}\nresume with: {command}") from None
    typer.echo(f"final model: {final}")


@app.command("eval")
def eval_command(
    model: str = typer.Argument(..., help="Hugging Face model directory (e.g. runs/quickstart/rl/policy)"),
    data: str = typer.Argument(..., help="prompt set (JSONL or Parquet)"),
    k: int | None = typer.Option(
        None, "--k", help="samples per prompt for pass@1, 0 = greedy only (default: the run's, else 4)"
    ),
    temperature: float | None = typer.Option(
        None, "--temperature", help="sampling temperature of the k samples (default: the run's, else 0.6)"
    ),
    max_new_tokens: int | None = typer.Option(
        None, "--max-new-tokens", help="longest response in tokens (default: the run's, else 384)"
    ),
    batch_size: int = typer.Option(64, "--batch-size", help="requests decoded together"),
    limit: int = typer.Option(0, "--limit", help="evaluate only the first N prompts (0 = all)"),
    json_: bool = typer.Option(False, "--json", help="print the figures as JSON instead of the table"),
    plot: str | None = typer.Option(None, "--plot", help="also write a PNG bar chart per level to this path"),
) -> None:
    """pass@1 over k samples, greedy accuracy and response tokens, overall and per difficulty level.

    Settings not given as flags come from the eval section of the run that made MODEL (the
    config.json of `k15ray train`'s output_dir), else the quick-start's (docs/eval.md).
    """
    import json

    from rich.console import Console

    from k15ray.envs.dataset import load_prompts
    from k15ray.eval_report import (
        header_table,
        report_json,
        results_table,
        settings_for,
        write_plot,
    )
    from k15ray.evaluation import evaluate

    console = Console()
    try:
        settings = settings_for(model, k=k, temperature=temperature, max_new_tokens=max_new_tokens)
        prompts = load_prompts(data)
        prompts = prompts[:limit] if limit else prompts
        if not json_:
            console.print(header_table(model, data, len(prompts), settings))
        report = evaluate(
            model, None, prompts, k=settings.k, temperature=settings.temperature,
            max_new_tokens=settings.max_new_tokens, batch_size=batch_size,
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    if json_:
        typer.echo(json.dumps(report_json(report, model, data, settings), indent=2))
    else:
        console.print(results_table(report))
    if plot:
        written = write_plot(report, plot, f"{model}: k={settings.k}, temperature {settings.temperature}")
        typer.echo(f"plot: {written}", err=json_)


def _quiet_known_noise() -> None:
    """Drop the known-harmless library messages before any library loads (``k15ray.noise``)."""
    from k15ray.noise import quiet_known_noise

    quiet_known_noise()


def main() -> None:
    """Console-script entry point."""
    _quiet_known_noise()
    app()


if __name__ == "__main__":
    main()
