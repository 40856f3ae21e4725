"""A rollout actor that dies after an NCCL weight sync: its replacement takes the current weights
before it generates (``RolloutPool.set_weights_source``), not the weights on disk.

NCCL needs GPUs; here a stand-in "broadcast" loads the new weights straight into the actors, as
NCCL does, leaving no copy in the object store (``pool.sync``). The transformers backend on CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import ray
from transformers import LlamaForCausalLM

import k15ray.rollout.actor as actor_module
from k15ray.config.rollout import RolloutConfig
from k15ray.models import build_tokenizer, save_tokenizer
from k15ray.rollout.actor import RolloutPool
from k15ray.rollout.hf import HFBackend
from k15ray.rollout.weight_sync import publish
from k15ray.types import GenerationRequest, SamplingParams

GREEDY = SamplingParams(temperature=0.0, stop_token_ids=(-1,), detect_repeats=False)


def _model(tiny_llama: Callable[..., LlamaForCausalLM], out_dir: Path, seed: int) -> Path:
    tiny_llama(seed).save_pretrained(str(out_dir))
    save_tokenizer(build_tokenizer(), out_dir)
    return out_dir


def _fake_nccl(monkeypatch: pytest.MonkeyPatch) -> None:
    """NCCL's effect without GPUs: every actor loads the state dict as ``version``; pool.sync
    (the object store's latest published weights) is left as it was."""

    def broadcast(
        actors: Sequence[Any],
        sender: Any,
        state_dict: Mapping[str, Any],
        version: int,
        timeout_s: float,
    ) -> list[int]:
        ref = publish(state_dict, version)  # a private copy: not the pool's WeightSync
        return [int(v) for v in ray.get([a.update_weights.remote(ref) for a in actors])]

    monkeypatch.setattr(actor_module, "connect_actors", lambda actors, device, **kw: object())
    monkeypatch.setattr(actor_module, "broadcast_to_actors", broadcast)
    monkeypatch.setattr(RolloutPool, "_check_nccl_backend", lambda self: None)


@pytest.mark.parametrize("with_source", [True, False])
def test_replacement_after_nccl_sync_generates_with_current_weights(
    ray_session: None,
    tmp_path: Path,
    tiny_llama: Callable[..., LlamaForCausalLM],
    monkeypatch: pytest.MonkeyPatch,
    with_source: bool,
) -> None:
    on_disk, trained = _model(tiny_llama, tmp_path / "a", 0), _model(tiny_llama, tmp_path / "b", 1)
    reqs = [GenerationRequest(f"r{i}", (5 + i, 9, 14), 6) for i in range(3)]
    expected = HFBackend.from_pretrained(trained).generate(reqs, GREEDY)  # what version 1 generates
    _fake_nccl(monkeypatch)
    pool = RolloutPool(RolloutConfig(num_workers=1, num_cpus_per_worker=0.5), model_dir=on_disk)
    try:
        state = HFBackend.from_pretrained(trained).model.state_dict()
        pool.update_weights_nccl(pool.init_nccl("cpu"), state, 1)
        assert pool.policy_versions() == [1] and pool.sync.latest is None  # no copy to restart from
        asked: list[int] = []

        def source() -> tuple[Mapping[str, Any], int]:
            asked.append(1)
            return state, 1

        if with_source:
            pool.set_weights_source(source)
        ray.kill(pool.actors[0], no_restart=True)
        results = pool.generate(reqs, GREEDY)  # the dead actor's requests re-run on its replacement
        assert pool.num_replacements == 1
        if with_source:
            assert asked == [1]  # one fetch of the learner's weights, for the one replacement
            assert {r.policy_version for r in results} == {1}
            assert [r.token_ids for r in results] == [r.token_ids for r in expected]
            assert pool.policy_versions() == [1]
        else:  # without a source the old behaviour, said in a warning: the weights on disk
            assert {r.policy_version for r in results} == {0}
    finally:
        pool.shutdown()
