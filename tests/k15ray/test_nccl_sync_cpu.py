"""CPU tests of the NCCL weight-sync layout (``k15ray.rollout.nccl_sync``) and its guards.

The broadcast itself needs two GPUs and vLLM: tests/gpu/test_nccl_sync.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from k15ray.rollout.nccl_sync import NcclWeightSender
from k15ray.rollout.weight_layout import (
    PackedLayout,
    TensorSlot,
    pack_state,
    state_layout,
    unpack_state,
)


def mixed_state() -> dict[str, torch.Tensor]:
    """fp32 and bf16 tensors interleaved, one of them 0-dim; bf16 values exact in bf16."""
    return {
        "a": torch.arange(6, dtype=torch.float32).reshape(2, 3),  # 6 fp32
        "b": torch.tensor([1.5, -2.25, 3.0, 0.125], dtype=torch.bfloat16),  # 4 bf16
        "c": torch.tensor(7.5),  # 1 fp32, shape ()
        "d": torch.tensor([[4.0, -8.0], [0.5, 2.0]], dtype=torch.bfloat16),  # 4 bf16
    }


def test_layout_one_bucket_per_dtype_hand_checked() -> None:
    layout = state_layout(mixed_state())
    # fp32 bucket: a at 0..5, c at 6 -> 7 elements; bf16 bucket: b at 0..3, d at 4..7 -> 8.
    assert layout.buckets == (("float32", 7), ("bfloat16", 8))
    assert layout.slots == (
        TensorSlot("a", "float32", (2, 3), 0, 0, 6),
        TensorSlot("b", "bfloat16", (4,), 1, 0, 4),
        TensorSlot("c", "float32", (), 0, 6, 1),
        TensorSlot("d", "bfloat16", (2, 2), 1, 4, 4),
    )
    assert layout.num_bytes == 7 * 4 + 8 * 2  # = 44


def test_layout_with_bucket_limit_hand_checked() -> None:
    layout = state_layout(mixed_state(), max_bucket_bytes=16)
    # a: 6*4 = 24 B > 16 but its bucket is empty -> bucket 0 alone (a larger tensor is not split);
    # b: 4*2 = 8 B -> new bf16 bucket 1; c: (6+1)*4 = 28 B > 16 -> new fp32 bucket 2;
    # d: (4+4)*2 = 16 B <= 16 -> joins bucket 1 at offset 4.
    assert layout.buckets == (("float32", 6), ("bfloat16", 8), ("float32", 1))
    assert [(s.name, s.bucket, s.offset) for s in layout.slots] == [
        ("a", 0, 0),
        ("b", 1, 0),
        ("c", 2, 0),
        ("d", 1, 4),
    ]


@pytest.mark.parametrize("max_bucket_bytes", [None, 16, 1])
def test_pack_unpack_round_trip_keeps_names_order_dtypes_values(
    max_bucket_bytes: int | None,
) -> None:
    state = mixed_state()
    buffers, layout = pack_state(state, max_bucket_bytes)
    assert [(str(b.dtype), b.numel()) for b in buffers] == [
        (f"torch.{d}", n) for d, n in layout.buckets
    ]
    back = unpack_state(buffers, layout)
    assert list(back) == list(state)
    for name, tensor in state.items():
        assert back[name].dtype == tensor.dtype and back[name].shape == tensor.shape, name
        assert torch.equal(back[name], tensor), name


def test_pack_concatenates_in_state_order_and_unpack_views_the_buffers() -> None:
    (fp32, bf16), layout = pack_state(mixed_state())
    assert fp32.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 7.5]  # a's 6 values, then c
    assert bf16.tolist() == [1.5, -2.25, 3.0, 0.125, 4.0, -8.0, 0.5, 2.0]  # b, then d
    back = unpack_state([fp32, bf16], layout)
    fp32[6] = -1.0  # unpack makes views, no copies: c sees the change
    assert back["c"].item() == -1.0


def test_layout_wire_form_is_plain_and_round_trips() -> None:
    layout = state_layout(mixed_state(), max_bucket_bytes=16)
    wire = json.loads(json.dumps(layout.to_wire()))  # only lists, strings and ints
    assert PackedLayout.from_wire(wire) == layout


def test_model_state_dict_round_trip(tiny_llama: Callable[..., Any]) -> None:
    model = tiny_llama(seed=3)
    state = {  # half the tensors in bf16, as a learner with mixed precision may hold them
        k: (v.to(torch.bfloat16) if i % 2 else v)
        for i, (k, v) in enumerate(model.state_dict().items())
    }
    buffers, layout = pack_state(state)
    assert len(buffers) == 2
    assert layout.num_bytes == sum(v.numel() * v.element_size() for v in state.values())
    back = unpack_state(buffers, layout)
    assert list(back) == list(state)
    assert all(torch.equal(back[k], v) and back[k].dtype == v.dtype for k, v in state.items())


def test_bad_inputs_say_what_to_fix() -> None:
    with pytest.raises(ValueError, match="empty"):
        state_layout({})
    with pytest.raises(ValueError, match="max_bucket_bytes"):
        state_layout(mixed_state(), max_bucket_bytes=0)
    with pytest.raises(ValueError, match="one device"):
        pack_state({"x": torch.zeros(2), "y": torch.zeros(2, device="meta")})
    buffers, layout = pack_state(mixed_state())
    with pytest.raises(ValueError, match="same layout"):
        unpack_state([buffers[0], buffers[1][:-1]], layout)
    with pytest.raises(ValueError, match="2 buffers for a layout of 1"):
        unpack_state(buffers, state_layout({"a": torch.zeros(3)}))
    with pytest.raises(ValueError, match="world_size must be >= 2"):
        NcclWeightSender("127.0.0.1", 1, world_size=1)
    with pytest.raises(ValueError, match="CUDA device"):
        NcclWeightSender("127.0.0.1", 1, world_size=2, device="cpu")


def test_nccl_sync_needs_the_vllm_backend(tmp_path: Path, ray_session: None) -> None:
    from k15ray.config.rollout import RolloutConfig
    from k15ray.models import create_model
    from k15ray.rollout.actor import RolloutPool
    from k15ray.rollout.worker import RolloutWorker

    model_dir = create_model("tiny", tmp_path / "tiny")
    worker = RolloutWorker(model_dir, "hf")
    with pytest.raises(ValueError, match="needs rollout backend 'vllm'.*HFBackend"):
        worker.receive_weights(state_layout(mixed_state()).to_wire(), 1)
    with pytest.raises(ValueError, match="needs rollout backend 'vllm'"):
        worker.init_nccl("127.0.0.1", 1, 1, 2)
    pool = RolloutPool(RolloutConfig(num_workers=1), model_dir=model_dir)
    try:
        with pytest.raises(ValueError, match=r"needs rollout.backend: vllm .*got 'hf'"):
            pool.init_nccl("cuda:0")
        with pytest.raises(ValueError, match=r"needs rollout.backend: vllm"):
            pool.update_weights_nccl(None, mixed_state(), 1)  # type: ignore[arg-type]
        assert not pool.nccl_group_current  # no group before init_nccl
        pool._nccl_workers = list(pool.workers)  # as init_nccl leaves it
        assert pool.nccl_group_current
        pool.workers[0] = None  # a replaced actor is not in the group: rebuild it
        assert not pool.nccl_group_current
        pool.workers = list(pool._nccl_workers)
    finally:
        pool.shutdown()


def test_weight_sync_config_names_the_fix() -> None:
    from k15ray.config.rollout import RolloutConfig

    assert RolloutConfig(backend="vllm", num_gpus_per_worker=1, weight_sync="nccl").weight_sync == "nccl"
    with pytest.raises(ValueError, match="rollout.weight_sync 'gloo' is not one of"):
        RolloutConfig(weight_sync="gloo")
    with pytest.raises(ValueError, match="nccl needs backend: vllm with colocate: false"):
        RolloutConfig(weight_sync="nccl")  # hf backend
    with pytest.raises(ValueError, match="nccl needs backend: vllm with colocate: false"):
        RolloutConfig(backend="vllm", colocate=True, weight_sync="nccl")
