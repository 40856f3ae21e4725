"""Benchmark ``ablations``: the paper's four ablations in miniature, and the sign of each effect.

``python bench/ablations.py --starts runs/ablation_starts --out OUT`` (or ``python bench/run.py
ablations``, configured by the environment below) runs ``configs/ablations/{objective,sampling,
length_penalty,beyond_sft}.yaml`` as one ``k15ray ablate`` sweep (3 seeds per arm, 10 arms, 30
trials of one CPU each; on 16 cores two waves of 15) from the SFT starts in ``--starts`` (one folder
per config's ``start`` name: ``std_l12``, ``long_l12``, ``std_l1``; docs/ablations.md makes them),
then copies the tables, figures and JSON (and each trial's ``summary.json``, ``before.json`` and
``rl/history.jsonl``, not its checkpoints) into ``--out``.

The regression check: every expectation of the configs (the paper's direction, e.g. mirror descent
gains more than ReST) is re-evaluated; ``REPRODUCED`` lists the ones that reproduced in the run
recorded in docs/ablations.md, and the JSON line's ``value`` counts how many of those still hold
(``ratio`` = value / their number; 1.0 = none broke). A claim that never reproduced is reported but
not counted.

Environment (``bench/run.py``): ``K15_ABLATION_STARTS`` (default ``runs/ablation_starts``),
``K15_BENCH_DIR`` (the output folder; default a new temporary one), ``K15_ABLATION_WORK`` (the sweep's
run folder with the checkpoints; default ``<out>/sweep``), ``K15_ABLATION_CONCURRENT`` (trials at
once; default all cores), ``K15_ABLATIONS`` (comma-separated subset of the four).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ABLATIONS: tuple[str, ...] = ("objective", "sampling", "length_penalty", "beyond_sft")
REPRODUCED: tuple[str, ...] = ("on lower response_tokens than off",)
"""Claims (``report.check_expectation``'s ``claim`` text) that reproduced in the recorded run of
docs/ablations.md beyond the seed spread (|t| >= 2): the ones this benchmark guards."""
SMALL_FILES: tuple[str, ...] = ("summary.json", "before.json", "config.json", "rl/history.jsonl")


STARTS: dict[str, dict[str, Any]] = {
    "std_l12": {"levels": [1, 2], "sft_levels": [1, 2], "style": "standard", "n_train": 4000},
    "long_l12": {"levels": [1, 2], "sft_levels": [1, 2], "style": "long", "n_train": 4000},
    "std_l1": {
        "levels": [1, 2],
        "sft_levels": [1],
        "style": "standard",
        "n_train": 2000,
        "glimpse": 100,
    },
}
"""The SFT starts the configs name: prompt splits (300 held-out) and what the SFT warm-up saw.
``glimpse``: that many examples of the next level mixed in, evenly spaced: with none, the level-1
model's pass@k on level 2 was 0 (0 of 400 samples; it answers every sum as a 2-digit one), which
leaves RL no signal there."""


def _with_glimpse(
    seen: list[dict[str, Any]], sft: list[dict[str, Any]], n: int
) -> list[dict[str, Any]]:
    """``seen`` with the first ``n`` examples of the next level inserted after every
    ``len(seen) // n``-th record."""
    if not n:
        return seen
    nxt = [r for r in sft if r["difficulty"] == max(r["difficulty"] for r in seen) + 1][:n]
    step, out = len(seen) // n, []
    for i, record in enumerate(seen):
        out.append(record)
        if i % step == step - 1 and nxt:
            out.append(nxt.pop(0))
    return out


def make_starts(starts: Path, names: Sequence[str] = tuple(STARTS)) -> None:
    """Write each start's ``data/`` (train, held-out, SFT splits; the SFT levels' subsets; a
    128-prompt ``train_small.jsonl``; ``heldout_l2.jsonl``) and SFT its ``model/`` with
    ``configs/ablations/starts/sft.yaml``; finished parts are kept."""
    from k15ray.config import load_config
    from k15ray.config.sft import SFTConfig
    from k15ray.jsonl import write_jsonl
    from k15ray.sft import train_sft
    from k15ray.tasks import write_splits

    for name in names:
        spec, folder = STARTS[name], starts / name
        data = folder / "data"
        if not (data / "heldout_l2.jsonl").is_file():
            write_splits(
                data, spec["n_train"], 300, seed=0, levels=spec["levels"], style=spec["style"]
            )
            rows = {
                s: [json.loads(x) for x in (data / f"{s}.jsonl").read_text().splitlines()]
                for s in ("train", "heldout", "sft")
            }
            seen = [r for r in rows["sft"] if r["difficulty"] in spec["sft_levels"]]
            write_jsonl(
                data / "sft_seen.jsonl", _with_glimpse(seen, rows["sft"], spec.get("glimpse", 0))
            )
            write_jsonl(
                data / "train_seen.jsonl",
                [r for r in rows["train"] if r["difficulty"] in spec["sft_levels"]],
            )
            write_jsonl(data / "train_small.jsonl", rows["train"][:128])
            write_jsonl(
                data / "heldout_l2.jsonl", [r for r in rows["heldout"] if r["difficulty"] == 2]
            )
        if not (folder / "model" / "config.json").is_file():
            overrides = {
                "data": str(data / "sft_seen.jsonl"),
                "eval_data": str(data / "train_seen.jsonl"),
                "out_dir": str(folder / "sft"),
            }
            final = train_sft(
                load_config(
                    SFTConfig, ROOT / "configs" / "ablations" / "starts" / "sft.yaml", overrides
                ),
                progress=False,
            )
            shutil.copytree(final, folder / "model")


def run_ablations(
    starts: Path,
    out: Path,
    *,
    work: Path | None = None,
    names: Sequence[str] = ABLATIONS,
    max_concurrent: int = 0,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """The sweep (resumed when ``work`` holds one), the reports copied into ``out``, and the
    regression check's JSON."""
    from k15ray.ablation import load_ablation, run_sweep, write_report
    from k15ray.config.experiment import parse_override
    from k15ray.errors import Interrupted

    work = (work or out / "sweep").resolve()
    out.mkdir(parents=True, exist_ok=True)
    sets = dict(parse_override(item) for item in overrides)
    ablations = []
    for name in names:
        cfg = load_ablation(ROOT / "configs" / "ablations" / f"{name}.yaml", sets)
        start = starts / Path(cfg.start).name  # the config's start, found under --starts
        ablations.append(
            load_ablation(
                ROOT / "configs" / "ablations" / f"{name}.yaml", {**sets, "start": str(start)}
            )
        )
    t0 = time.perf_counter()
    interrupted = ""
    try:
        failed = run_sweep(
            ablations, work, resume=(work / "tune").exists(), max_concurrent=max_concurrent
        )
    except Interrupted as err:  # e.g. `timeout -s INT`: report the finished trials; rerun resumes
        failed, interrupted = [], str(err).splitlines()[0]
    wall_minutes = (time.perf_counter() - t0) / 60
    claims = []
    for cfg in ablations:
        report = write_report(cfg, work)
        for suffix in (".md", ".json", ".png"):
            shutil.copy2(work / f"{cfg.name}{suffix}", out / f"{cfg.name}{suffix}")
        claims += [{**e, "ablation": cfg.name} for e in report["expectations"]]
    for path in (work / "trials").rglob("*"):
        rel = path.relative_to(work)
        if (
            path.is_file()
            and any(str(rel).endswith(f) for f in SMALL_FILES)
            and "checkpoint" not in rel.parts
        ):
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out / rel)
    guarded = [c for c in claims if c["claim"] in REPRODUCED]
    holding = sum(c["reproduced"] for c in guarded)
    return {
        "value": holding if REPRODUCED else sum(c["reproduced"] for c in claims),
        "unit": "recorded-as-reproduced paper directions that still hold"
        if REPRODUCED
        else "paper directions reproduced",
        "baseline": len(guarded) if REPRODUCED else len(claims),
        "ratio": round(holding / len(guarded), 3)
        if guarded
        else (sum(c["reproduced"] for c in claims) / max(len(claims), 1)),
        "claims": [
            {k: (round(v, 2) if isinstance(v, float) else v) for k, v in c.items()} for c in claims
        ],
        "failed_trials": failed,
        "interrupted": interrupted,
        "wall_minutes": round(wall_minutes, 2),
        "trials": sum(len(c.arms) * c.seeds for c in ablations),
        "trials_done": len(list((work / "trials").glob("*/*/*/summary.json"))),
        "outputs": str(out),
    }


def run() -> dict[str, Any]:
    """``bench/run.py``'s entry point (module docstring: the environment variables)."""
    out = Path(os.environ.get("K15_BENCH_DIR") or tempfile.mkdtemp(prefix="k15-ablations-"))
    work = os.environ.get("K15_ABLATION_WORK")
    names = [n for n in os.environ.get("K15_ABLATIONS", ",".join(ABLATIONS)).split(",") if n]
    return run_ablations(
        Path(os.environ.get("K15_ABLATION_STARTS", ROOT / "runs" / "ablation_starts")).resolve(),
        out.resolve(),
        work=Path(work) if work else None,
        names=names,
        max_concurrent=int(os.environ.get("K15_ABLATION_CONCURRENT", "0")),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--starts", default=str(ROOT / "runs" / "ablation_starts"), help="folder of the SFT starts"
    )
    parser.add_argument(
        "--make-starts", action="store_true", help="write the SFT starts into --starts, then stop"
    )
    parser.add_argument(
        "--out", default="", help="folder for the tables, figures, JSON and small trial files"
    )
    parser.add_argument(
        "--work", default=None, help="the sweep's run folder (checkpoints); default OUT/sweep"
    )
    parser.add_argument("--ablations", default=",".join(ABLATIONS), help="comma-separated subset")
    parser.add_argument(
        "--max-concurrent", type=int, default=0, help="trials at once (0 = all cores)"
    )
    parser.add_argument(
        "--set", action="append", default=[], help="override every config: --set seeds=2"
    )
    args = parser.parse_args(argv)
    if args.make_starts:
        make_starts(Path(args.starts).resolve())
        return
    if not args.out:
        parser.error("--out is required (the folder for the tables, figures and JSON)")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import machine  # bench/run.py

    result = run_ablations(
        Path(args.starts).resolve(),
        Path(args.out).resolve(),
        work=Path(args.work) if args.work else None,
        names=[n for n in args.ablations.split(",") if n],
        max_concurrent=args.max_concurrent,
        overrides=args.set,
    )
    print(json.dumps({"name": "ablations", **result, "machine": machine()}), flush=True)


if __name__ == "__main__":
    main()
