"""The wheel carries the four import names of DESIGN.md's layout, and nothing else is needed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("k15ray", "k15ray.envs", "k15ray.algorithms", "k15ray.serve")


@pytest.mark.slow
def test_wheel_exposes_the_four_import_names(tmp_path: Path) -> None:
    # Build from a copy so that setuptools' build/ and egg-info never land in the checkout.
    src = tmp_path / "src"
    shutil.copytree(
        ROOT, src, symlinks=True,
        ignore=shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "*.egg-info",
                                      "__pycache__", ".*_cache", ".stage", "runs", "checkpoints"),
    )
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheel_dir), str(src)],
        check=True,
        cwd=tmp_path,  # the build must not write into the checkout's build/ either
    )
    (wheel,) = wheel_dir.glob("k15ray-*.whl")
    members = zipfile.ZipFile(wheel).namelist()
    for name in NAMES:
        assert f"{name.replace('.', '/')}/__init__.py" in members, name
    assert not any(m.startswith(("envs/", "algorithms/", "serve/", "tests/")) for m in members)

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
    )
    probe = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(target)!r})\n"
        f"for n in {NAMES!r}:\n"
        "    print(importlib.import_module(n).__file__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path
    ).stdout.split()
    assert len(out) == len(NAMES)
    for path in out:
        assert Path(path).resolve().is_relative_to(target.resolve()), path
