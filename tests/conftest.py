"""Session-wide fixtures: one small Ray runtime whose logs and results stay in a temporary dir."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
# Ray's own files (sessions, sockets, logs), also of Ray runtimes that commands started by the tests
# bring up: a short directory (AF_UNIX socket paths are limited to 107 bytes), removed at the end.
_RAY_TMP = tempfile.mkdtemp(prefix="k15r-", dir="/tmp")
os.environ["RAY_TMPDIR"] = _RAY_TMP


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_RAY_TMP, ignore_errors=True)
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)


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

    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            _temp_dir=str(Path(_RAY_TMP) / "ray"),
            log_to_driver=False,
            runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}},
        )
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_llama() -> Callable[..., Any]:
    """Builder of a tiny random Llama (2 layers, width 64) over the built-in tokenizer:
    ``tiny_llama(seed=0, vocab_size=None)`` -> a ``LlamaForCausalLM`` in eval mode. Weights are
    large (initializer_range 0.3) so that greedy outputs vary and differ between seeds."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from k15ray.models import build_tokenizer

    tok = build_tokenizer()

    def build(seed: int = 0, vocab_size: int | None = None) -> LlamaForCausalLM:
        config = LlamaConfig(
            vocab_size=vocab_size or len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=512,
            tie_word_embeddings=True,
            initializer_range=0.3,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
        torch.manual_seed(seed)
        return LlamaForCausalLM(config).eval()

    return build
