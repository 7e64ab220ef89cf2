"""Padding and length-bucketed batching."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["bucket_batches", "pad_batch"]


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids [batch, max_len] int64, lengths [batch] int64)``, right-padded with ``pad_id``."""
    if not seqs:
        raise ValueError("pad_batch needs at least one sequence")
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), int(lengths.max())), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
    return out, lengths


def bucket_batches(lengths: Sequence[int], batch_size: int,
                   generator: torch.Generator | None = None) -> list[list[int]]:
    """Index batches of similar length (less padding), in a shuffled order.

    Indices are shuffled, sorted by length within windows of ``50 * batch_size``, cut into
    batches, and the batches shuffled; ``generator`` makes it reproducible.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, received {batch_size}")
    n = len(lengths)
    order = torch.randperm(n, generator=generator).tolist()
    window = 50 * batch_size
    batches = []
    for start in range(0, n, window):
        chunk = sorted(order[start:start + window], key=lambda i: lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    perm = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in perm]
