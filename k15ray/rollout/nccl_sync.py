"""NCCL weight sync from the learner's GPU to vLLM rollout actors on GPUs of their own (paper 2.6.1; docs/gpu.md).

Paper 2.6.1 step 7 of DESIGN.md: after each training phase the learner's weights theta_{i+1} become
the rollout policy of the next iteration. When the rollout actors have GPUs of their own (separate
mode) the weights go GPU to GPU through one NCCL broadcast instead of the Ray object store:

* the learner is rank 0 and engine worker ``j`` of rollout actor ``i`` is rank ``1 + i + j`` of a
  stateless NCCL group (vLLM's ``StatelessProcessGroup`` + ``PyNcclCommunicator``, independent of
  any ``torch.distributed`` group the learner or the engine already has);
* ``pack_state`` lays the state dict out as a few flat buffers, one per dtype (or per
  ``max_bucket_bytes`` of one dtype), so a sync is a handful of large broadcasts rather than one per
  tensor; the ``PackedLayout`` (names, dtypes, shapes, offsets) travels ahead through Ray;
* each receiver allocates the same buffers on its GPU one at a time, receives one, views it back
  into named tensors (as ``unpack_state`` does) and loads them with the model's own
  ``load_weights`` (which fuses q/k/v and gate/up projections and shards for tensor parallelism)
  inside the vLLM worker, through the worker extension ``NcclWorkerExtension``
  (``LLM(worker_extension_cls=...)``), in place: no round trip through host memory or disk.

Why not vLLM's weight-transfer API (``LLM.init_weight_transfer_engine``/``update_weights``): its
trainer side changed shape between vLLM 0.26 and 0.29 (``TrainerWeightTransferEngine``), while this
module only needs ``StatelessProcessGroup``, ``PyNcclCommunicator`` and ``collective_rpc``, which are
the same across the vLLM versions the project supports (0.26 to 0.33).

The layout (``pack_state``/``unpack_state``/``PackedLayout``) is pure and lives in
``k15ray.rollout.weight_layout``; vLLM is imported only by the functions that build a communicator.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

from k15ray.models.llava_names import llava_weights, tower_type
from k15ray.rollout.weight_layout import (
    PackedLayout,
    dtype_from_name,
    pack_state,
    slot_view,
    state_layout,
)

NCCL_EXTENSION = "k15ray.rollout.nccl_sync.NcclWorkerExtension"
"""Qualified name of the worker extension that ``VLLMBackend`` gives its engine."""


def free_port() -> int:
    """A TCP port that is free on this machine now (for the group's rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def make_communicator(
    host: str, port: int, rank: int, world_size: int, device: torch.device | str | int
) -> Any:
    """Join the stateless NCCL group at ``host:port`` as ``rank`` (rank 0 hosts the rendezvous).

    Blocks until all ``world_size`` ranks have joined."""
    from vllm.distributed.device_communicators.pynccl import PyNcclCommunicator
    from vllm.distributed.utils import StatelessProcessGroup

    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside the group of world_size {world_size}")
    group = StatelessProcessGroup.create(host=host, port=port, rank=rank, world_size=world_size)
    comm = PyNcclCommunicator(group, device=device)
    if getattr(comm, "disabled", False):  # its broadcasts would silently do nothing
        raise RuntimeError(
            "vLLM's PyNcclCommunicator is disabled here (VLLM_DISABLE_PYNCCL is set or the NCCL "
            "library was not found): unset VLLM_DISABLE_PYNCCL or use the object-store sync"
        )
    return comm


def receive(
    comm: Any, layout: PackedLayout, device: torch.device | str
) -> Iterator[dict[str, torch.Tensor]]:
    """Receive the buckets of ``layout`` from rank 0 one at a time; yields each bucket's named
    tensors (views of its buffer), so a receiver holds one bucket at a time on top of its model.

    Everything runs on ``device``'s current stream: whatever the caller does with a bucket's
    tensors (``load_weights`` copies them) is ordered after their broadcast."""
    stream = torch.cuda.current_stream(device)
    for b, (dtype, numel) in enumerate(layout.buckets):
        buffer = torch.empty(numel, dtype=dtype_from_name(dtype), device=device)
        comm.broadcast(buffer, src=0, stream=stream)
        yield {s.name: slot_view(buffer, s) for s in layout.slots if s.bucket == b}


def _wait(stream: Any, timeout_s: float) -> None:
    """Wait for ``stream``'s work like ``synchronize()``, but give up after ``timeout_s``."""
    done = torch.cuda.Event()
    done.record(stream)
    deadline = time.monotonic() + timeout_s
    while not done.query():
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the NCCL broadcast did not complete in {timeout_s:.0f} s: a receiver did not "
                "start its receive; look at the rollout actors' logs, then rebuild the group"
            )
        time.sleep(0.0005)


class NcclWeightSender:
    """The learner's end of the group: rank 0, broadcasting packed state dicts.

    Arguments:
        host: address of this (the learner's) machine, reachable from the rollout actors.
        port: a free TCP port on it for the rendezvous (``free_port()``).
        world_size: 1 + the number of engine workers that receive.
        device: the learner's CUDA device, where the buffers are packed.
        max_bucket_bytes: the most bytes per flat buffer (None: one buffer per dtype, which holds
            a full extra copy of the weights on ``device`` while a sync runs).

    The constructor blocks until every receiver has joined: start the receivers' joins first
    (``RolloutPool.init_nccl`` does both)."""

    def __init__(
        self,
        host: str,
        port: int,
        world_size: int,
        device: torch.device | str = "cuda:0",
        max_bucket_bytes: int | None = None,
    ) -> None:
        if world_size < 2:
            raise ValueError(f"world_size must be >= 2 (the learner + receivers), got {world_size}")
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise ValueError(
                f"device {device!r}: NCCL broadcasts from a CUDA device, e.g. 'cuda:0'"
            )
        if self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.world_size = world_size
        self.max_bucket_bytes = max_bucket_bytes
        with torch.cuda.device(self.device):  # NCCL's calls run on this device's streams
            self._comm = make_communicator(host, port, 0, world_size, self.device)

    def layout(self, state_dict: Mapping[str, Any]) -> PackedLayout:
        """What the receivers need to know before ``broadcast(state_dict)``."""
        return state_layout(state_dict, self.max_bucket_bytes)

    def broadcast(self, state_dict: Mapping[str, Any], timeout_s: float = 600.0) -> PackedLayout:
        """Pack ``state_dict`` bucket by bucket on ``device`` and broadcast each bucket; returns
        once the broadcasts are complete on this side. Raises ``TimeoutError`` when they are not
        complete after ``timeout_s`` (a receiver that never started its receive)."""
        layout = self.layout(state_dict)
        # The learner may have written the weights on another stream (vLLM's PyNccl makes a new
        # current stream when the group is built): wait for all of that work first.
        torch.cuda.synchronize(self.device)
        with torch.cuda.device(self.device):
            # The current stream of the buffers' device, not of whichever device is current;
            # packing and broadcasting run on it in order.
            stream = torch.cuda.current_stream(self.device)
            for b in range(len(layout.buckets)):
                slots = [s for s in layout.slots if s.bucket == b]
                part = {s.name: torch.as_tensor(state_dict[s.name]).to(self.device) for s in slots}
                # Only this bucket's tensors, all of one dtype: pack_state makes one buffer.
                (buffer,), _ = pack_state(part)
                self._comm.broadcast(buffer, src=0, stream=stream)
            _wait(stream, timeout_s)
        return layout


def _physical_gpu(index: int) -> str:
    """The physical id of this process's ``cuda:index`` (``CUDA_VISIBLE_DEVICES`` maps them)."""
    import os

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return visible.split(",")[index].strip() if visible else str(index)


def reserve_learner_gpu(device_index: int = 0) -> Any:
    """Keep Ray from giving the learner's GPU to a rollout actor; returns the holder (keep it).

    NCCL needs every rank on a GPU of its own. Under Tune the trial's placement group already
    holds the learner's GPU (``ray.get_gpu_ids()`` is not empty there) and None is returned. A
    plain driver process holds no Ray GPU, so Ray would hand its ``cuda:device_index`` to the first
    actor: a one-GPU actor started before the rollout actors takes it instead (Ray hands out the
    lowest free GPU id), and a ``ValueError`` says what to do if it got another one."""
    import ray

    if ray.get_gpu_ids():
        return None
    holder: Any = ray.remote(num_gpus=1, num_cpus=0)(_GpuHolder).remote()
    held = [str(g) for g in ray.get(holder.gpu_ids.remote())]
    wanted = _physical_gpu(device_index)
    if held != [wanted]:
        ray.kill(holder)
        raise ValueError(
            f"rollout.weight_sync: nccl: the learner uses GPU {wanted} but Ray would hand out GPU "
            f"{held} first; run under Tune (run.use_tune: true), whose placement group reserves the "
            "learner's GPU, or set CUDA_VISIBLE_DEVICES so the learner's GPU comes first"
        )
    return holder


class _GpuHolder:
    """A Ray actor that only holds a GPU (``reserve_learner_gpu``)."""

    def gpu_ids(self) -> list[str]:
        import ray

        return [str(g) for g in ray.get_runtime_context().get_accelerator_ids().get("GPU", [])]


def connect_actors(
    actors: Sequence[Any],
    device: torch.device | str = "cuda:0",
    *,
    host: str | None = None,
    port: int | None = None,
    max_bucket_bytes: int | None = None,
) -> NcclWeightSender:
    """Build the group of this process (rank 0, on ``device``) and ``actors`` (Ray handles of
    ``RolloutWorker``s with one engine worker each: rank 1 + i). Every actor's join starts first,
    since joining blocks until the whole group is there."""
    import ray

    host = host or ray.util.get_node_ip_address()
    port = port or free_port()
    world_size = 1 + len(actors)
    joins = [a.init_nccl.remote(host, port, 1 + i, world_size) for i, a in enumerate(actors)]
    sender = NcclWeightSender(host, port, world_size, device, max_bucket_bytes)
    ranks = sorted(r for rs in ray.get(joins) for r in rs)
    if ranks != list(range(1, world_size)):
        raise RuntimeError(
            f"NCCL group ranks {ranks}, expected 1..{world_size - 1}: an engine with tensor "
            "parallelism > 1 needs rank offsets per engine worker, which this group does not assign"
        )
    return sender


def broadcast_to_actors(
    actors: Sequence[Any],
    sender: NcclWeightSender,
    state_dict: Mapping[str, Any],
    version: int,
    timeout_s: float = 600.0,
) -> list[int]:
    """One sync: every actor starts ``receive_weights(layout, version)``, then ``sender``
    broadcasts; returns the versions the actors report. Callers check that ``version`` is newer
    than every actor's first: an actor whose receive raised would leave the broadcast hanging."""
    import ray
    from ray.exceptions import RayActorError

    if sender.world_size != 1 + len(actors):
        raise ValueError(
            f"sender.world_size {sender.world_size} != 1 + {len(actors)} actors: use the sender "
            "that connect_actors (RolloutPool.init_nccl) returned for these actors"
        )
    wire = sender.layout(state_dict).to_wire()
    calls = [a.receive_weights.remote(wire, version) for a in actors]
    sender.broadcast(state_dict, timeout_s)
    try:
        return [int(v) for v in ray.get(calls, timeout=timeout_s)]
    except RayActorError as err:
        raise RuntimeError(
            "a rollout actor died during an NCCL weight sync: rebuild the group with "
            "RolloutPool.init_nccl(device) before the next sync"
        ) from err


class NcclWorkerExtension:
    """Methods mixed into vLLM's GPU worker (``LLM(worker_extension_cls=NCCL_EXTENSION)``) and
    called through ``LLM.collective_rpc``. ``self`` is the worker: ``self.device``, ``self.rank``
    and ``self.get_model()`` are vLLM's (``vllm.v1.worker.gpu_worker.Worker``)."""

    def k15_init_nccl(self, host: str, port: int, rank_offset: int, world_size: int) -> int:
        """Join the learner's group as rank ``rank_offset + worker rank``; returns that rank."""
        worker: Any = self
        rank = rank_offset + int(worker.rank)
        worker._k15_nccl = make_communicator(host, port, rank, world_size, worker.device)
        return rank

    def k15_receive_weights(self, wire: Mapping[str, Any]) -> int:
        """Receive one broadcast (layout ``wire``) and load it; returns the number of tensors."""
        worker: Any = self
        comm = getattr(worker, "_k15_nccl", None)
        if comm is None:
            raise RuntimeError("k15_receive_weights before k15_init_nccl: join the group first")
        layout = PackedLayout.from_wire(wire)
        model = worker.get_model()
        tower = tower_type(worker.vllm_config.model_config.hf_config)  # LLaVA names for vLLM's loader
        for bucket in receive(comm, layout, worker.device):
            model.load_weights(weights=llava_weights(bucket.items(), tower))
        torch.cuda.current_stream(worker.device).synchronize()
        return len(layout.slots)

    def k15_checksum(self) -> tuple[float, float, int]:
        """(sum, sum of squares, element count) over the engine's parameters, in float64."""
        worker: Any = self
        total, squares, count = 0.0, 0.0, 0
        for p in worker.get_model().parameters():
            x = p.detach().double()
            total += float(x.sum())
            squares += float((x * x).sum())
            count += x.numel()
        return total, squares, count
