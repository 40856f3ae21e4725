"""The packed layout of a state dict: a few flat buffers, one per dtype (paper 2.6.1, weight sync).

``pack_state`` lays a state dict out as flat buffers (one per dtype, or per ``max_bucket_bytes`` of
one dtype) so that moving the weights is a handful of large copies or broadcasts instead of one
per tensor; ``PackedLayout`` (names, dtypes, shapes, offsets) describes them and travels as plain
lists (``to_wire``/``from_wire``); ``unpack_state`` views the buffers back into named tensors
without copying. Pure and device-agnostic: ``k15ray.rollout.nccl_sync`` broadcasts the buffers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class TensorSlot:
    """Where one named tensor lies: ``numel`` elements from ``offset`` of buffer ``bucket``."""

    name: str
    dtype: str  # torch dtype name without "torch.", e.g. "bfloat16"
    shape: tuple[int, ...]
    bucket: int
    offset: int
    numel: int


@dataclass(frozen=True)
class PackedLayout:
    """The layout of a packed state dict: tensors in state-dict order, and the flat buffers
    (``buckets``: dtype and element count each, in broadcast order)."""

    slots: tuple[TensorSlot, ...]
    buckets: tuple[tuple[str, int], ...]

    @property
    def num_bytes(self) -> int:
        return sum(n * dtype_from_name(d).itemsize for d, n in self.buckets)

    def to_wire(self) -> dict[str, Any]:
        """Plain lists and strings only (vLLM serializes ``collective_rpc`` arguments)."""
        return {
            "slots": [
                [s.name, s.dtype, list(s.shape), s.bucket, s.offset, s.numel] for s in self.slots
            ],
            "buckets": [[d, n] for d, n in self.buckets],
        }

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> PackedLayout:
        slots = tuple(
            TensorSlot(str(n), str(d), tuple(int(x) for x in shape), int(b), int(o), int(k))
            for n, d, shape, b, o, k in wire["slots"]
        )
        return cls(slots, tuple((str(d), int(n)) for d, n in wire["buckets"]))


def dtype_from_name(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown torch dtype {name!r} in a packed layout")
    return dtype


def state_layout(
    state_dict: Mapping[str, Any], max_bucket_bytes: int | None = None
) -> PackedLayout:
    """The ``PackedLayout`` of ``state_dict``: one bucket per dtype (in order of first appearance),
    or, with ``max_bucket_bytes``, a new bucket of that dtype whenever the next tensor would take
    the current one past the limit (a larger tensor gets a bucket of its own)."""
    if not state_dict:
        raise ValueError("state_dict is empty: nothing to send")
    if max_bucket_bytes is not None and max_bucket_bytes < 1:
        raise ValueError(f"max_bucket_bytes must be >= 1 or None, got {max_bucket_bytes}")
    buckets: list[list[Any]] = []  # [dtype, numel]
    open_bucket: dict[str, int] = {}  # dtype -> index of the bucket being filled
    slots: list[TensorSlot] = []
    for name, value in state_dict.items():
        t = torch.as_tensor(value)
        dtype = str(t.dtype).removeprefix("torch.")
        numel = t.numel()
        b = open_bucket.get(dtype)
        full = (
            b is not None
            and max_bucket_bytes is not None
            and buckets[b][1] > 0
            and (buckets[b][1] + numel) * t.element_size() > max_bucket_bytes
        )
        if b is None or full:
            b = open_bucket[dtype] = len(buckets)
            buckets.append([dtype, 0])
        slots.append(TensorSlot(name, dtype, tuple(t.shape), b, buckets[b][1], numel))
        buckets[b][1] += numel
    return PackedLayout(tuple(slots), tuple((d, n) for d, n in buckets))


def pack_state(
    state_dict: Mapping[str, Any], max_bucket_bytes: int | None = None
) -> tuple[list[torch.Tensor], PackedLayout]:
    """Copy ``state_dict`` into flat 1-D buffers (on the tensors' device), one per layout bucket.

    Returns ``(buffers, layout)``; ``buffers[b]`` has dtype ``layout.buckets[b][0]`` and
    ``layout.buckets[b][1]`` elements (a bucket of one contiguous tensor is a view of it)."""
    layout = state_layout(state_dict, max_bucket_bytes)
    devices = {torch.as_tensor(v).device for v in state_dict.values()}
    if len(devices) > 1:
        raise ValueError(
            f"state_dict holds tensors on {sorted(map(str, devices))}: move them to one device first"
        )
    parts: list[list[torch.Tensor]] = [[] for _ in layout.buckets]
    for slot, value in zip(layout.slots, state_dict.values(), strict=True):
        parts[slot.bucket].append(torch.as_tensor(value).detach().reshape(-1))  # (numel,)
    # A tensor alone in its bucket is sent as it is (a view when contiguous), not copied.
    return [p[0] if len(p) == 1 else torch.cat(p) for p in parts], layout


def slot_view(buffer: torch.Tensor, slot: TensorSlot) -> torch.Tensor:
    """Slot ``slot`` of its bucket's flat ``buffer``, as a tensor of its shape (a view)."""
    return buffer[slot.offset : slot.offset + slot.numel].view(slot.shape)


def unpack_state(buffers: Sequence[torch.Tensor], layout: PackedLayout) -> dict[str, torch.Tensor]:
    """Named tensors that are views into ``buffers`` (no copy), in the layout's order."""
    if len(buffers) != len(layout.buckets):
        raise ValueError(
            f"got {len(buffers)} buffers for a layout of {len(layout.buckets)} buckets"
        )
    for b, (buf, (dtype, numel)) in enumerate(zip(buffers, layout.buckets, strict=True)):
        if buf.dtype != dtype_from_name(dtype) or buf.dim() != 1 or buf.numel() != numel:
            raise ValueError(
                f"buffer {b} is {buf.dtype} of shape {tuple(buf.shape)}; the layout expects "
                f"{numel} elements of {dtype}: pack and unpack with the same layout"
            )
    return {s.name: slot_view(buffers[s.bucket], s) for s in layout.slots}
