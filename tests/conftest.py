"""Session-wide fixtures: one small Ray runtime whose logs and results stay in a temporary dir."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Keep everything any library writes (Ray results, HF caches, Tune logs) out of the home directory.
_SESSION_TMP = Path(tempfile.mkdtemp(prefix="k15ray-tests-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HOME", str(_SESSION_TMP / "hf"))
os.environ.setdefault("RAY_AIR_LOCAL_CACHE_DIR", str(_SESSION_TMP / "ray_results"))
os.environ.setdefault("TUNE_RESULT_DIR", str(_SESSION_TMP / "ray_results"))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MPLCONFIGDIR", str(_SESSION_TMP / "mpl"))
# Anything that asks tempfile for a scratch dir (caches of generated images, ...) lands in the
# session's own directory too, in this process and in the processes it starts.
_SCRATCH = _SESSION_TMP / "tmp"
_SCRATCH.mkdir()
os.environ["TMPDIR"] = str(_SCRATCH)
tempfile.tempdir = str(_SCRATCH)


def _has_gpu() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _has_gpu():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def session_tmp() -> Path:
    return _SESSION_TMP


@pytest.fixture(scope="session")
def ray_session(session_tmp: Path) -> Iterator[None]:
    """One Ray runtime for the whole test session (2 CPUs, no dashboard, temp dir for logs)."""
    import ray

    ray_tmp = ""
    if not ray.is_initialized():
        # Ray's socket paths must stay short (AF_UNIX limit), so a short dir under /tmp.
        ray_tmp = tempfile.mkdtemp(prefix="k15r-", dir="/tmp")
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            _temp_dir=ray_tmp,
            log_to_driver=False,
            runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}},
        )
    yield
    ray.shutdown()
    if ray_tmp:
        shutil.rmtree(ray_tmp, ignore_errors=True)
