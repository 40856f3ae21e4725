"""``LocalRolloutPool``: the colocated pool (paper 2.6.3) behind the ``RolloutPool`` interface.

On CPU it runs the transformers backend in-process; the vLLM path is covered by tests/gpu."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from k15ray.config.rollout import RolloutConfig
from k15ray.models import create_model, load_policy
from k15ray.rollout.local import LocalRolloutPool
from k15ray.types import GenerationRequest, SamplingParams


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_model("tiny", tmp_path_factory.mktemp("tiny"))


def test_generates_and_loads_new_weights_in_place(model_dir: Path) -> None:
    pool = LocalRolloutPool(RolloutConfig(), model_dir=model_dir)
    request = GenerationRequest("r0", (5, 6, 7, 8), 12)
    greedy = SamplingParams(temperature=0.0, detect_repeats=False, stop_token_ids=(-1,))
    (before,) = pool.generate([request], greedy)
    assert len(before.token_ids) == 12 and before.policy_version == 0

    model, _ = load_policy(model_dir)
    with torch.no_grad():  # a different policy: shift every output row by one token
        model.get_output_embeddings().weight.copy_(model.get_output_embeddings().weight.roll(1, 0))
    pool.sleep()  # a no-op for hf, as documented
    pool.update_weights(model.state_dict(), version=1)
    (after,) = pool.generate([request], greedy)
    assert after.policy_version == 1 and pool.policy_versions() == [1]
    assert after.token_ids != before.token_ids
    with pytest.raises(ValueError, match="version"):
        pool.update_weights(model.state_dict())


def test_rejects_a_directory_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a Hugging Face model directory"):
        LocalRolloutPool(RolloutConfig(), model_dir=tmp_path)


def test_vllm_needs_a_gpu_or_colocation() -> None:
    with pytest.raises(ValueError, match="colocate"):
        RolloutConfig(backend="vllm")
    assert RolloutConfig(backend="vllm", colocate=True).colocate
