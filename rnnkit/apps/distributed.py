"""Multi-process training on PyTorch's own engine (``torchrun``; gloo on CPU, NCCL on GPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from rnnkit.apps.device import resolve_device

__all__ = ["Dist", "setup"]


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_mean(self, value: float) -> float:
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t) / self.world_size

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def setup(device: str | None = None) -> Dist:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1).

    ``device`` as :func:`rnnkit.apps.device.resolve_device`; under ``torchrun`` each process
    takes the GPU of its ``LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    resolved = resolve_device(device)
    want_cuda = resolved.type == "cuda"
    if world <= 1:
        return Dist(device=resolved)
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if want_cuda:
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if want_cuda else "gloo")
    return Dist(rank=rank, world_size=world, device=dev)
