"""Tests of the rollout actors and their pool (``k15ray.rollout.actor``) on real Ray actors."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import ray
from ray.exceptions import RayActorError
from transformers import LlamaForCausalLM

from k15ray.config.rollout import RolloutConfig
from k15ray.models import build_tokenizer, save_tokenizer
from k15ray.rollout.actor import RolloutPool
from k15ray.rollout.backends import check_backend_available
from k15ray.rollout.hf import HFBackend
from k15ray.rollout.weight_sync import publish
from k15ray.types import GenerationRequest, GenerationResult, SamplingParams

GREEDY = SamplingParams(temperature=0.0, stop_token_ids=(-1,), detect_repeats=False)
"""Greedy decoding that never stops early (no token has id -1): every result has its full budget."""


def write_model(tiny_llama: Callable[..., LlamaForCausalLM], out_dir: Path, seed: int) -> Path:
    """The conftest ``tiny_llama`` of ``seed`` (different seeds give different greedy tokens)
    saved with its tokenizer as a Hugging Face directory."""
    tiny_llama(seed).save_pretrained(str(out_dir))
    save_tokenizer(build_tokenizer(), out_dir)
    return out_dir


@pytest.fixture(scope="module")
def model_dirs(
    tmp_path_factory: pytest.TempPathFactory, tiny_llama: Callable[..., LlamaForCausalLM]
) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("rollout_actor")
    return write_model(tiny_llama, root / "a", seed=0), write_model(tiny_llama, root / "b", seed=1)


@pytest.fixture(scope="module")
def pool(ray_session: None, model_dirs: tuple[Path, Path]):  # type: ignore[no-untyped-def]
    config = RolloutConfig(num_workers=2, num_cpus_per_worker=0.5, max_batch_size=16)
    pool = RolloutPool(config, model_dir=model_dirs[0])
    yield pool
    pool.shutdown()


def requests(n: int, budget: int) -> list[GenerationRequest]:
    return [GenerationRequest(f"r{i}", (5 + i % 50, 9, 14 + i % 7), budget) for i in range(n)]


def local(model_dir: Path, reqs: list[GenerationRequest]) -> list[GenerationResult]:
    return HFBackend.from_pretrained(model_dir).generate(reqs, GREEDY)


def test_pool_generates_every_request_in_order(
    pool: RolloutPool, model_dirs: tuple[Path, Path]
) -> None:
    reqs = requests(9, 7)
    results = pool.generate(reqs, GREEDY)
    assert [r.request_id for r in results] == [r.request_id for r in reqs]
    expected = local(model_dirs[0], reqs)
    assert [r.token_ids for r in results] == [r.token_ids for r in expected]
    assert {r.policy_version for r in results} == {0}
    assert pool.policy_versions() == [0, 0]


def test_weight_update_is_visible_in_outputs(
    pool: RolloutPool, model_dirs: tuple[Path, Path]
) -> None:
    reqs = requests(6, 8)
    before = pool.generate(reqs, GREEDY)
    new_weights = HFBackend.from_pretrained(model_dirs[1]).model.state_dict()
    pool.update_weights(new_weights, version=1)
    assert pool.policy_versions() == [1, 1] and pool.policy_version == 1
    after = pool.generate(reqs, GREEDY)
    expected = local(model_dirs[1], reqs)
    assert [r.token_ids for r in after] == [r.token_ids for r in expected]
    assert [r.token_ids for r in after] != [r.token_ids for r in before]
    assert {r.policy_version for r in after} == {1}
    with pytest.raises(ValueError, match="must increase"):
        pool.update_weights(new_weights, version=1)
    with pytest.raises(ValueError, match="must increase"):
        pool.update_weights(publish(new_weights, 0))


def test_killed_worker_is_replaced_and_no_request_is_lost(
    pool: RolloutPool, model_dirs: tuple[Path, Path]
) -> None:
    """An actor killed mid-call is replaced; its replacement loads the current weights (model b,
    the latest version) and re-runs the dead actor's requests."""
    version = (pool.sync.version or 0) + 1
    pool.update_weights(HFBackend.from_pretrained(model_dirs[1]).model.state_dict(), version)
    pids = pool.ping()
    replaced = pool.num_replacements
    reqs = requests(64, 400)  # 32 requests x 400 tokens per actor: seconds of work
    out: dict[str, list[GenerationResult]] = {}
    call = threading.Thread(target=lambda: out.setdefault("results", pool.generate(reqs, GREEDY)))
    call.start()
    time.sleep(0.3)  # the call is in flight
    ray.kill(pool.actors[0], no_restart=True)
    call.join(timeout=600)
    assert not call.is_alive()
    results = out["results"]
    assert pool.num_replacements == replaced + 1
    assert [r.request_id for r in results] == [r.request_id for r in reqs]
    assert all(len(r.token_ids) == 400 for r in results)
    assert {r.policy_version for r in results} == {version}
    expected = local(model_dirs[1], reqs[::16])
    assert [r.token_ids for r in results[::16]] == [r.token_ids for r in expected]
    new_pids = pool.ping()
    assert new_pids[0] != pids[0] and new_pids[1] == pids[1]


def wait_until_dead(actor: Any, timeout_s: float = 60.0) -> None:
    """Block until ``actor`` answers no more calls (``ray.kill`` returns before it is gone)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ray.get(actor.ping.remote(), timeout=timeout_s)
        except RayActorError:
            return
        time.sleep(0.05)
    raise AssertionError(f"{actor!r} still answers {timeout_s} s after ray.kill")


def test_replacement_is_logged_counted_and_visible(
    pool: RolloutPool, caplog: pytest.LogCaptureFixture
) -> None:
    """A dead actor's replacement leaves traces: one WARNING of logger ``k15ray.rollout`` naming
    the slot, the cause and the new actor; ``num_replacements`` one up; ``actors`` holding the new
    handle in the dead one's slot; and every result of the call."""
    before = pool.actors
    assert isinstance(before, tuple) and len(before) == 2
    replaced = pool.num_replacements
    ray.kill(before[0], no_restart=True)
    wait_until_dead(before[0])
    reqs = requests(6, 5)
    with caplog.at_level(logging.WARNING, logger="k15ray.rollout"):
        results = pool.generate(reqs, GREEDY)
    assert [r.request_id for r in results] == [r.request_id for r in reqs]
    assert all(len(r.token_ids) == 5 for r in results)
    assert {r.policy_version for r in results} == {pool.sync.version or 0}
    assert pool.num_replacements == replaced + 1
    after = pool.actors
    assert after[0] != before[0] and after[1] == before[1]
    (record,) = [r for r in caplog.records if r.name == "k15ray.rollout"]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith("rollout actor 0 died (ActorDiedError: ")
    assert "killed by `ray.kill`" in message and repr(after[0]) in message
    with pytest.raises(AttributeError):
        pool.num_replacements = 0  # type: ignore[misc]  # read-only: only the pool counts


def test_bad_config_fails_before_any_actor_starts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_workers"):
        RolloutConfig(num_workers=0)
    with pytest.raises(ValueError, match="top_p"):
        RolloutConfig(top_p=0.0)
    with pytest.raises(ValueError, match="backend"):
        RolloutConfig(backend="tgi")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_gpus_per_worker"):
        RolloutConfig(backend="vllm")
    with pytest.raises(ValueError, match="not a Hugging Face model directory"):
        RolloutPool(RolloutConfig(), model_dir=tmp_path)


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("vllm") is not None, reason="vLLM is installed here"
)
def test_vllm_backend_without_vllm_says_what_to_do() -> None:
    with pytest.raises(ValueError, match="backend: hf"):
        check_backend_available("vllm")
