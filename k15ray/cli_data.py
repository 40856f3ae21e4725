"""The ``k15ray`` commands that make data: generated prompt sets and vision examples, shortest
rejection sampling, curation and test-case generation. ``k15ray.cli`` registers them; each is a
thin wrapper over a library function and imports it lazily."""

from __future__ import annotations

import os

import typer

from k15ray.cli_common import config_from, resumes
from k15ray.errors import UserError


def vision_examples_command(
    out: str = typer.Argument("vision_examples.png", help="PNG file to write"),
    seed: int = typer.Option(0, "--seed", help="seed of the generated problems"),
) -> None:
    """Draw every vision generator at every difficulty level into one PNG (docs/vision.md)."""
    from k15ray.vision.montage import write_examples

    typer.echo(str(write_examples(out, seed=seed)))


def gen_data_command(
    out_dir: str = typer.Argument(..., help="folder for train.jsonl, heldout.jsonl and sft.jsonl"),
    n_train: int = typer.Option(6000, "--n-train", help="train problems (also the SFT examples)"),
    n_heldout: int = typer.Option(250, "--n-heldout", help="held-out problems, none shared with train"),
    seed: int = typer.Option(0, "--seed", help="seed of the generators"),
    levels: str = typer.Option("1,2,3,4,5", "--levels", help="comma-separated difficulty levels"),
    style: str = typer.Option(
        "standard", "--style", help="solutions: standard, long (variable long CoT), minimal (columns) or short (one line); docs/long2short.md"
    ),
) -> None:
    """Write generated arithmetic prompt sets with long-CoT solutions (docs/sft.md)."""
    from k15ray.tasks import write_splits

    try:
        paths = write_splits(out_dir, n_train, n_heldout, seed, [int(x) for x in levels.split(",")], style=style)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


def rejection_sample_command(
    model: str = typer.Argument(..., help="model to sample from (Hugging Face directory), e.g. the long-CoT model"),
    data: str = typer.Argument(..., help="prompt set with answers (JSONL or Parquet)"),
    out: str = typer.Option(..., "--out", help="SFT JSONL to write: the shortest correct response per prompt"),
    n: int = typer.Option(8, "--n", help="samples per prompt (paper: 8)"),
    temperature: float = typer.Option(1.0, "--temperature", help="sampling temperature"),
    max_new_tokens: int = typer.Option(384, "--max-new-tokens", help="longest response (tokens)"),
    workers: int = typer.Option(2, "--workers", help="Ray rollout actors (1 CPU each)"),
    limit: int = typer.Option(0, "--limit", help="sample only the first N prompts (0 = all)"),
    seed: int = typer.Option(0, "--seed", help="sampling seed"),
) -> None:
    """Shortest rejection sampling (paper 2.4): n samples per prompt, the shortest correct one becomes an
    SFT example; fine-tune on it with `k15ray sft` (docs/long2short.md)."""
    from k15ray.long2short.rejection import rejection_sample
    from k15ray.models import check_model_dir

    check_model_dir(model, "MODEL")
    if n < 1 or temperature <= 0:
        raise UserError(f"--n must be >= 1 and --temperature > 0, got {n} and {temperature}; the paper uses --n 8")
    if not os.path.isfile(data):
        raise UserError(f"DATA: {data}: no such file; give a prompt set (k15ray gen-data writes train.jsonl)")
    stats = rejection_sample(
        model, data, out, n=n, temperature=temperature, max_new_tokens=max_new_tokens,
        num_workers=workers, limit=limit, seed=seed,
    )
    typer.echo(
        f"{stats.num_examples} SFT examples from {stats.num_prompts} prompts (mean tokens: all samples "
        f"{stats.mean_sample_tokens:.1f}, chosen {stats.mean_chosen_tokens:.1f}): {stats.out}"
    )


_CURATE_SET = typer.Option(None, "--set", help="override a value: --set model_dir=runs/sft/final (repeatable)")


def curate_command(
    config: str = typer.Argument(..., help="curation YAML, e.g. configs/curate.yaml"),
    set_: list[str] | None = _CURATE_SET,
    no_progress: bool = typer.Option(False, "--no-progress", help="no progress bar"),
) -> None:
    """Curate a prompt set (paper 2.1): format exclusion, easy-to-hack filter, pass-rate difficulty
    on Ray rollout actors, coverage; resumes from out_dir (docs/curation.md)."""
    from k15ray.curation.config import CurationConfig
    from k15ray.curation.pipeline import curate

    cfg = config_from(CurationConfig, config, set_)
    with resumes("curate", config, set_, f"the rated chunks in {cfg.out_dir}/scores.jsonl are kept"):
        report = curate(cfg, progress=not no_progress)
    typer.echo(
        f"kept {report['prompts_kept']} of {report['prompts_in']} prompts -> {report['output']}; "
        f"dropped: {report['dropped']}; report: {cfg.out_dir}/report.md"
    )


_GEN_TESTS_SET = typer.Option(None, "--set", help="override a value: --set inputs_per_problem=20 (repeatable)")


def gen_tests_command(
    config: str = typer.Argument(..., help="test-generation YAML, e.g. configs/curate_gen_tests.yaml"),
    set_: list[str] | None = _GEN_TESTS_SET,
    no_progress: bool = typer.Option(False, "--no-progress", help="no progress bar"),
) -> None:
    """Generate test cases for code problems (paper 2.3.5): CYaRon inputs, every ground-truth solution
    in the sandbox on Ray, 7-of-10 agreement per case, 9-of-10 per problem; resumes (docs/curation.md)."""
    from k15ray.testgen.config import TestGenConfig
    from k15ray.testgen.pipeline import gen_tests

    cfg = config_from(TestGenConfig, config, set_)
    with resumes("gen-tests", config, set_, f"the finished problems in {cfg.out_dir}/runs.jsonl are kept"):
        report = gen_tests(cfg, progress=not no_progress)
    typer.echo(
        f"kept {report['problems_kept']} of {report['problems']} problems; cases valid "
        f"{report['cases_valid']} of {report['cases_generated']}; planted wrong solutions caught "
        f"{report['planted_wrong_caught']} of {report['planted_wrong_solutions']} -> {cfg.out_dir}/problems.jsonl"
    )
