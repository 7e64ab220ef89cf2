"""Input validation shared by the public entry points.

Every message names the argument, what was expected and what was received.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import torch

from rnnkit import nest

#: A ``sequence_length`` argument: ``[batch]`` integers as a tensor or a list, or ``None``.
Lengths: TypeAlias = torch.Tensor | Sequence[int] | None


def tensor(name: str, value: Any) -> torch.Tensor:
    """``value`` must be a tensor."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, received {type(value).__name__}")
    return value


def rank(name: str, value: torch.Tensor, expected: int | tuple[int, ...], layout: str = "") -> None:
    ranks = (expected,) if isinstance(expected, int) else expected
    if value.dim() not in ranks:
        want = " or ".join(str(r) for r in ranks)
        hint = f" {layout}" if layout else ""
        raise ValueError(
            f"{name} must have rank {want}{hint}, received shape {tuple(value.shape)}"
        )


def floating(name: str, value: torch.Tensor) -> None:
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, received dtype {value.dtype}")


def integer(name: str, value: torch.Tensor) -> None:
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, received dtype {value.dtype}")


def as_lengths(
    name: str, value: Any, batch_size: int, max_time: int | None, device: torch.device
) -> torch.Tensor:
    """Convert a sequence-length argument to a ``[batch]`` int64 tensor and check its range."""
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() or value.dtype == torch.bool:
            raise TypeError(f"{name} must hold integers, received dtype {value.dtype}")
        lengths = value.to(device=device, dtype=torch.long)
    else:
        try:
            lengths = torch.as_tensor(value, dtype=torch.long, device=device)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{name} must be a sequence of integers, received {value!r}") from e
    if lengths.dim() != 1 or lengths.shape[0] != batch_size:
        raise ValueError(
            f"{name} must have shape [batch_size]=[{batch_size}], "
            f"received shape {tuple(lengths.shape)}"
        )
    if lengths.numel():
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 0 or (max_time is not None and hi > max_time):
            bound = f"[0, {max_time}]" if max_time is not None else "[0, inf)"
            raise ValueError(f"{name} values must lie in {bound}, received min {lo} and max {hi}")
    return lengths


def batch_of_state(name: str, state: Any, batch_size: int) -> None:
    """Every leaf of a state must have ``batch_size`` rows."""
    for leaf in nest.flatten(state):
        if not isinstance(leaf, torch.Tensor):
            raise TypeError(f"{name} leaves must be tensors, received {type(leaf).__name__}")
        if leaf.dim() < 1 or leaf.shape[0] != batch_size:
            raise ValueError(
                f"{name} leaves must have batch size {batch_size} in dimension 0, "
                f"received shape {tuple(leaf.shape)}"
            )
