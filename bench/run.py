"""Run named benchmarks: ``python bench/run.py NAME [NAME ...]`` (``--list`` lists them).

Each benchmark is a module ``bench/NAME.py`` with ``run() -> dict`` returning at least
``value``, ``unit``, ``baseline`` and ``ratio`` (the figure against a baseline measured in the same
run). This runner adds ``name`` and ``machine`` and prints one JSON line per benchmark.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REQUIRED = ("value", "unit", "baseline", "ratio")


def machine() -> str:
    """A short description of where the figure was measured."""
    desc = f"{platform.machine()} {os.cpu_count()} cores, {platform.system()} {platform.release()}"
    try:
        import torch

        if torch.cuda.is_available():
            desc += f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return desc


def available() -> list[str]:
    return sorted(
        p.stem
        for p in HERE.glob("*.py")
        if p.stem not in {"run", "__init__"} and not p.stem.startswith("_")
    )


def run_one(name: str) -> dict[str, Any]:
    path = HERE / f"{name}.py"
    if not path.is_file():
        raise SystemExit(f"unknown benchmark {name!r}; available: {', '.join(available())}")
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(HERE))
    spec.loader.exec_module(module)
    result = dict(module.run())
    missing = [k for k in REQUIRED if k not in result]
    assert not missing, f"benchmark {name} did not report {missing}"
    return {"name": name, **result, "machine": result.get("machine", machine())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list or not args.names:
        print("\n".join(available()))
        return
    for name in args.names:
        print(json.dumps(run_one(name)), flush=True)


if __name__ == "__main__":
    main()
