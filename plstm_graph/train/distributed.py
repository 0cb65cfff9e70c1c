"""Data-parallel training with ``torch.distributed``: one process per device, started by
``torchrun``; a single process when the environment names no process group.

Every epoch the trainer draws ONE global order of the training graphs from the run's seeded
generator (the same on every rank, saved in its checkpoints), cuts it into global batches of
``batch_size`` graphs and hands rank ``r`` the ``r``-th slice of each (:func:`shard`), so a
run follows the same global batches whatever its number of processes (``DistributedSampler``
semantics with the batch, not the sample, as the unit), and a checkpoint resumes under any
world size.
"""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    """This process's place in the run: ``rank`` of ``world_size``."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the run folder and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init(device: str = "cpu") -> Context:
    """Joins the process group ``torchrun`` describes in the environment (gloo on CPU, nccl on
    CUDA), once; a plain process gets ``Context(0, 1)``."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Context()
    if not dist.is_initialized():
        backend = "nccl" if str(device).startswith("cuda") else "gloo"
        dist.init_process_group(backend)
    return Context(dist.get_rank(), dist.get_world_size())


def local_device(device: str) -> torch.device:
    """``cuda`` means this process's GPU (``LOCAL_RANK``) under torchrun."""
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return torch.device(device)


def shard(batch: torch.Tensor, context: Context) -> torch.Tensor:
    """This rank's slice of a global batch (sizes differ by at most one)."""
    return torch.tensor_split(batch, context.world_size)[context.rank]


def all_gather(tensors: list[torch.Tensor], context: Context) -> list[torch.Tensor]:
    """Every rank's tensors, concatenated in rank order (the tensors themselves on one rank)."""
    if not context.distributed:
        return tensors
    gathered = [None] * context.world_size
    dist.all_gather_object(gathered, [t.cpu() for t in tensors])
    return [torch.cat(parts) for parts in zip(*gathered)]


def all_sum(values: list[float], context: Context) -> list[float]:
    """Sums of ``values`` over ranks."""
    if not context.distributed:
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


def barrier(context: Context) -> None:
    if context.distributed:
        dist.barrier()
