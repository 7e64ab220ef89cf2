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

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every process's ``tensor`` (same shape and dtype on all), by rank, on the CPU."""
        if not self.enabled:
            return [tensor]
        local = tensor.to(self.device)
        out = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(out, local)
        return [t.cpu() for t in out]

    def broadcast_flag(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every process (a decision only rank 0 computed)."""
        if not self.enabled:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        dist.broadcast(t, 0)
        return bool(t.item())

    def check_resume(self, meta: dict, where) -> None:
        """Refuse to resume checkpoint ``where`` (its ``meta``) with another number of
        processes than wrote it (``world_size``, 1 when absent): each process's batches
        depend on it, so the run would not be the one it continues."""
        from rnnkit.apps.runs import RunError

        trained_by = meta.get("world_size", 1)
        if isinstance(trained_by, bool) or not isinstance(trained_by, int) or trained_by < 1:
            raise RunError(f"{where}/meta.json: world_size must be a positive int, received "
                           f"{trained_by!r}")
        if trained_by != self.world_size:
            how = ("without torchrun" if trained_by == 1 else
                   f"torchrun --nproc-per-node {trained_by}")
            raise RunError(f"{where} was written by a run of {trained_by} process"
                           f"{'es' if trained_by != 1 else ''} (this one has "
                           f"{self.world_size}): resume it with as many ({how})")

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
