"""``k15ray curate``: from a raw prompt pool to the RL prompt set (paper section 2.1).

The order puts the cheap filters first, so the model only rates what can still be kept:

1. format exclusion (``formats.question_format``): multiple-choice, true/false and proof prompts;
2. easy to hack (``difficulty.is_easy_to_hack``): N no-chain-of-thought tries, one correct drops it;
3. pass rate (``difficulty.pass_rate``) over k samples at a high temperature, stored on the prompt
   as ``difficulty`` (its bucket) and the tag ``pass_rate=0.30``; prompts outside
   [min_pass_rate, max_pass_rate] are dropped.

Steps 2 and 3 run on the Ray rollout actors (``probe.AnswerProbe``) chunk by chunk, each chunk's
scores saved to ``out_dir/scores.jsonl`` before the next starts, so an interrupted run resumes
where it stopped. Writes ``curated.jsonl`` (or ``.parquet``), ``report.json``, ``report.md``
and ``coverage.png`` into ``out_dir``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from k15ray.curation.config import CurationConfig
from k15ray.curation.coverage import coverage, plot_coverage
from k15ray.curation.difficulty import (
    PASS_RATE_TAG,
    difficulty_bucket,
    is_easy_to_hack,
    pass_rate,
    pass_rate_tag,
)
from k15ray.curation.formats import question_format
from k15ray.curation.progress import progress_bar
from k15ray.curation.report import write_report
from k15ray.errors import UserError
from k15ray.types import Prompt

SCORES_FILE = "scores.jsonl"
SETTINGS_FILE = "settings.json"


def _check_settings(cfg: CurationConfig) -> None:
    """The scores in out_dir must come from the same model and sampling settings, else resuming
    would mix two models' ratings."""
    out = Path(cfg.out_dir)
    wanted = {
        "model_dir": cfg.model_dir,
        "samples_per_prompt": cfg.rollout.samples_per_prompt,
        "temperature": cfg.rollout.temperature,
        "top_p": cfg.rollout.top_p,
        "max_new_tokens": cfg.max_new_tokens,
        "hack_tries": cfg.hack_tries,
        "hack_max_new_tokens": cfg.hack_max_new_tokens,
        "hack_template": cfg.hack_template,
        "seed": cfg.seed,
    }
    path = out / SETTINGS_FILE
    if path.is_file() and (out / SCORES_FILE).is_file():
        held = json.loads(path.read_text())
        changed = sorted(k for k in wanted if held.get(k) != wanted[k])
        if changed:
            raise UserError(
                f"{out} holds scores made with other settings ({', '.join(changed)}); "
                "use a new out_dir, or delete its scores.jsonl to start over"
            )
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wanted, indent=2))


def _load(cfg: CurationConfig) -> list[Prompt]:
    from k15ray.envs.dataset import load_prompts

    try:
        prompts = load_prompts(cfg.input)
    except ValueError as err:
        raise UserError(str(err)) from err
    return prompts[: cfg.limit] if cfg.limit else prompts


def _rate(
    cfg: CurationConfig, prompts: Sequence[Prompt], progress: bool
) -> tuple[dict[str, list[bool]], dict[str, list[bool]], dict[str, Any]]:
    """No-CoT tries and pass-rate samples of every prompt (from the store, else from the model)."""
    from k15ray.curation.probe import ProbeStore, reward_for

    for p in prompts:  # before Ray starts: a domain without a verifiable reward is one line
        try:
            reward_for(p.domain)
        except ValueError as err:
            raise UserError(f"{cfg.input}: prompt {p.id!r}: {err}") from None
    store = ProbeStore(Path(cfg.out_dir) / SCORES_FILE)
    k = cfg.rollout.samples_per_prompt
    jobs = {
        "hack": (cfg.hack_tries, cfg.rollout.temperature, cfg.hack_max_new_tokens, cfg.hack_template),
        "pass_rate": (k, cfg.rollout.temperature, cfg.max_new_tokens, "{question}"),
    }
    if cfg.hack_tries == 0:
        del jobs["hack"]
    results: dict[str, dict[str, list[bool]]] = {stage: {} for stage in ("hack", "pass_rate")}
    todo: dict[str, list[Prompt]] = {}
    for stage, (n, *_rest) in jobs.items():
        for p in prompts:
            hit = store.get(stage, p, n)
            if hit is not None:
                results[stage][p.id] = hit
        todo[stage] = [p for p in prompts if p.id not in results[stage]]
    stats: dict[str, Any] = {"resumed": {s: len(results[s]) for s in jobs}, "model_seconds": 0.0, "answers": 0}
    if not any(todo.values()):
        return results["hack"], results["pass_rate"], stats
    probe = _start_probe(cfg)
    try:
        for stage, (n, temperature, max_new, template) in jobs.items():
            # pass-rate samples are only drawn for prompts that survive the easy-to-hack filter
            pending = [
                p for p in todo[stage]
                if stage == "hack" or not is_easy_to_hack(results["hack"].get(p.id, []), max(cfg.hack_tries, 1))
            ]
            with progress_bar(progress, f"{stage} ({n} answers/prompt)", len(pending)) as advance:
                for start in range(0, len(pending), cfg.chunk_prompts):
                    chunk = pending[start : start + cfg.chunk_prompts]
                    t0 = time.perf_counter()
                    scores = probe.score(
                        stage, chunk, n, temperature=temperature, max_new_tokens=max_new,
                        seed=cfg.seed, template=template,
                    )
                    stats["model_seconds"] += time.perf_counter() - t0
                    stats["answers"] += n * len(chunk)
                    store.add(stage, chunk, scores)
                    results[stage].update(scores)
                    advance(len(chunk))
    finally:
        probe.shutdown()
    return results["hack"], results["pass_rate"], stats


def _start_probe(cfg: CurationConfig) -> Any:
    import os

    import ray

    from k15ray.curation.probe import AnswerProbe
    from k15ray.noise import ray_runtime_env

    if not ray.is_initialized():
        ray.init(
            num_cpus=cfg.num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            runtime_env=ray_runtime_env(),
        )
    return AnswerProbe(cfg.model_dir or "", cfg.rollout)


def _with_rating(prompt: Prompt, p: float, edges: Sequence[float]) -> Prompt:
    tags = tuple(t for t in prompt.tags if not t.startswith(PASS_RATE_TAG)) + (pass_rate_tag(p),)
    return dataclasses.replace(prompt, difficulty=difficulty_bucket(p, edges), tags=tags)


def _check_input(cfg: CurationConfig, prompts: Sequence[Prompt]) -> None:
    """What would fail after the model's work, found before it."""
    if cfg.model_dir is not None:
        from k15ray.models import check_model_dir

        try:
            check_model_dir(cfg.model_dir, "model_dir")
        except ValueError as err:
            raise UserError(str(err)) from None
    chat = next((p.id for p in prompts if not isinstance(p.question, str)), None)
    if cfg.output_format == "parquet" and chat is not None:
        raise UserError(f"prompt {chat!r} is a chat-message question, which Parquet output cannot hold; "
                        "set output_format: jsonl")


def excluded_formats(cfg: CurationConfig, prompts: Sequence[Prompt]) -> dict[str, str]:
    """Prompt id -> ``format:<kind>:<rule>`` for every prompt of an excluded kind (code prompts are not checked)."""
    dropped = {}
    for p in prompts:
        match = question_format(p.question, p.answer) if p.domain != "code" else None
        if match is not None and match.kind in cfg.exclude_formats:
            dropped[p.id] = f"format:{match.kind}:{match.rule}"
    return dropped


def apply_ratings(
    cfg: CurationConfig, prompts: Sequence[Prompt], hack: dict[str, list[bool]], samples: dict[str, list[bool]]
) -> tuple[list[Prompt], dict[str, str], dict[str, float]]:
    """The easy-to-hack rule and the pass-rate range: (kept prompts with their difficulty and
    pass_rate tag, dropped id -> reason, pass rate per rated id)."""
    kept, dropped, rates = [], {}, {}
    for p in prompts:
        if cfg.hack_tries and is_easy_to_hack(hack[p.id], cfg.hack_tries):
            dropped[p.id] = "easy_to_hack"
            continue
        rates[p.id] = rate = pass_rate(samples[p.id])
        if rate < cfg.min_pass_rate:
            dropped[p.id] = "pass_rate:below_min"
        elif rate > cfg.max_pass_rate:
            dropped[p.id] = "pass_rate:above_max"
        else:
            kept.append(_with_rating(p, rate, cfg.bucket_edges))
    return kept, dropped, rates


def curate(cfg: CurationConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run the three filters, write the curated set and the report; returns the report."""
    from k15ray.envs.dataset import write_prompts

    started = time.perf_counter()
    prompts = _load(cfg)
    _check_input(cfg, prompts)
    if cfg.model_dir is not None:
        _check_settings(cfg)
    dropped = excluded_formats(cfg, prompts)
    rated = [p for p in prompts if p.id not in dropped]
    stats: dict[str, Any] = {}
    rates: dict[str, float] = {}
    if cfg.model_dir is not None and rated:
        hack, samples, stats = _rate(cfg, rated, progress)
        rated, more, rates = apply_ratings(cfg, rated, hack, samples)
        dropped.update(more)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_prompts(cfg.output_path, rated)
    before, after = coverage(prompts), coverage(rated)
    plot_coverage(before, after, out / "coverage.png")
    report = {
        "input": str(cfg.input),
        "output": str(cfg.output_path),
        "model_dir": cfg.model_dir,
        "prompts_in": len(prompts),
        "prompts_kept": len(rated),
        "dropped": dict(Counter(r.split(":")[0] for r in dropped.values())),
        "dropped_by_reason": dict(Counter(dropped.values()).most_common()),
        "dropped_ids": dropped,
        "pass_rates": rates,
        "difficulty_buckets": dict(Counter(p.difficulty for p in rated)),
        "coverage": {"input": before, "curated": after},
        "settings": {
            "samples_per_prompt": cfg.rollout.samples_per_prompt, "temperature": cfg.rollout.temperature,
            "hack_tries": cfg.hack_tries, "bucket_edges": list(cfg.bucket_edges),
            "pass_rate_range": [cfg.min_pass_rate, cfg.max_pass_rate],
        },
        "seconds": round(time.perf_counter() - started, 2),
        **stats,
    }
    write_report(report, out)
    return report
