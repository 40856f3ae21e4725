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
    import yaml

    from k15ray.config import load_config
    from k15ray.config.sft import SFTConfig
    from k15ray.sft import train_sft

    overrides = {}
    for item in set_ or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--set {item!r}: write KEY=VALUE, e.g. --set max_minutes=2")
        overrides[key] = yaml.safe_load(value)
    try:
        sft_config = load_config(SFTConfig, config, overrides)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    typer.echo(f"final model: {train_sft(sft_config)}")


@app.command("eval")
def eval_command(
    model: str = typer.Argument(..., help="Hugging Face model directory"),
    data: str = typer.Argument(..., help="prompt set (JSONL or Parquet)"),
    k: int = typer.Option(4, "--k", help="samples per prompt for pass@1 (0 = greedy only)"),
    temperature: float = typer.Option(1.0, "--temperature", help="sampling temperature of the k samples"),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens", help="longest response"),
    batch_size: int = typer.Option(64, "--batch-size", help="requests decoded together"),
    limit: int = typer.Option(0, "--limit", help="evaluate only the first N prompts (0 = all)"),
) -> None:
    """Greedy accuracy, pass@1 over k samples and mean response tokens, by difficulty (JSON)."""
    import json

    from k15ray.envs.dataset import load_prompts
    from k15ray.evaluation import evaluate

    try:
        prompts = load_prompts(data)
        report = evaluate(
            model, None, prompts[:limit] if limit else prompts, k=k, temperature=temperature,
            max_new_tokens=max_new_tokens, batch_size=batch_size,
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    typer.echo(json.dumps(report.to_dict(), indent=2))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
