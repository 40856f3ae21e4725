"""The ``k15ray`` command. Each sub-command is a thin wrapper over a library function.

Commands: ``train``, ``sft``, ``eval``, ``serve``, ``gen-data`` ... (see ``k15ray --help``).
Sub-commands import their modules lazily so that ``k15ray --help`` stays fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.command("serve")
def serve_command(
    policy: str = typer.Option(None, "--policy", help="checkpoint directory to serve behind the OpenAI-compatible API"),
    rewards: str = typer.Option(None, "--rewards", help="comma-separated verifiable rewards to serve: math,code ('' = none)"),
    sandbox: bool = typer.Option(None, "--sandbox/--no-sandbox", help="serve /v1/sandbox/run (default: on)"),
    host: str = typer.Option(None, "--host", help="address to listen on (default 127.0.0.1)"),
    port: int = typer.Option(None, "--port", help="port to listen on (default 8000)"),
    backend: str = typer.Option(None, "--backend", help="policy rollout backend: hf or vllm (default hf)"),
    config: str = typer.Option(None, "--config", help="a Serve config file such as configs/serve.yaml; flags override it"),
) -> None:
    """Serve the policy, rewards and sandbox on Ray Serve until Ctrl-C (see docs/serve.md)."""
    from k15ray.serve.app import config_from_cli, serve_until_interrupted

    try:
        serve_config = config_from_cli(
            policy=policy, rewards=rewards, sandbox=sandbox, host=host, port=port,
            backend=backend, config_path=config,
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    serve_until_interrupted(serve_config, echo=typer.echo)


@app.command("train")
def train_command(
    config: str = typer.Argument(..., help="experiment YAML, e.g. configs/quickstart.yaml"),
    resume: bool = typer.Option(False, "--resume", help="continue the run in output_dir from its latest checkpoint"),
    set_: list[str] = typer.Option([], "--set", help="override a config value: --set mirror_descent.tau=0.5 (repeatable)"),
) -> None:
    """SFT warm-up if needed, then K15 RL; prints before/after held-out accuracy (docs/k15.md)."""
    from k15ray.config.experiment import load_experiment, parse_override
    from k15ray.train import train

    try:
        experiment = load_experiment(config, dict(parse_override(item) for item in set_))
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    train(experiment, resume=resume)


@app.command("vision-examples")
def vision_examples_command(
    out: str = typer.Argument("vision_examples.png", help="PNG file to write"),
    seed: int = typer.Option(0, "--seed", help="seed of the generated problems"),
) -> None:
    """Draw every vision generator at every difficulty level into one PNG (docs/vision.md)."""
    from k15ray.vision.montage import write_examples

    typer.echo(str(write_examples(out, seed=seed)))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
