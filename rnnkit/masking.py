"""The masking primitive: per batch entry, keep a new value or an old one.

Drivers and decoders stop entries that have ended (past their ``sequence_length``, or
finished decoding) by selecting, row by row, between what a step computed and what the
entry held before (or zeros).  Selection, never multiplication: a NaN or inf computed for an
ended entry cannot leak into its kept value or its gradient.
"""

from __future__ import annotations

from typing import Any

import torch

from rnnkit import nest

__all__ = ["rows_like", "select_rows", "sequence_mask", "zero_padding"]


def rows_like(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``mask`` ``[batch]`` (or ``[batch, beam]``) viewed to broadcast against ``like``
    ``[batch, ...]`` (``[batch, beam, ...]``, or ``[batch * beam, ...]``)."""
    if like.shape[: mask.dim()] != mask.shape:
        mask = mask.reshape(-1)  # a [batch * beam, ...] leaf against a [batch, beam] mask
    return mask.view(*mask.shape, *([1] * (like.dim() - mask.dim())))


def select_rows(mask: torch.Tensor, new: Any, old: Any) -> Any:
    """Per batch entry: ``new`` where ``mask`` is true, else ``old``.

    Args:
        mask: bool ``[batch]`` (or ``[batch, beam]``).
        new: a (nested) structure of tensors ``[batch, ...]``.
        old: a structure matching ``new``, or a number that ends up in every row where
            ``mask`` is false (``0.0``: zero those rows).

    Leaves of ``new`` that are not tensors or have no batch dimension (a step counter, an
    ``AlignmentHistory``) are taken from ``new`` as they are.
    """
    def pick(n, o):
        if not isinstance(n, torch.Tensor) or n.dim() == 0:
            return n
        return torch.where(rows_like(mask, n), n, o)

    if isinstance(old, (int, float)):
        return nest.map_structure(lambda n: pick(n, _number_like(old, n)), new)
    return nest.map_structure(pick, new, old)


def _number_like(value: int | float, like: Any) -> int | float | bool:
    """``value`` as a Python number of ``like``'s kind, so that ``torch.where`` keeps its
    dtype (a float would promote integer ids to floats)."""
    if not isinstance(like, torch.Tensor) or like.is_floating_point() or like.is_complex():
        return value
    if like.dtype == torch.bool:
        return bool(value)
    return int(value)


def sequence_mask(lengths: torch.Tensor, max_time: int, time_major: bool = False
                  ) -> torch.Tensor:
    """``[batch, max_time]`` bool (``[max_time, batch]`` if ``time_major``): True at the
    steps ``t < lengths[b]`` of each entry (TF's ``tf.sequence_mask``)."""
    steps = torch.arange(max_time, device=lengths.device)
    if time_major:
        return steps[:, None] < lengths[None, :]
    return steps[None, :] < lengths[:, None]


def zero_padding(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``x`` with the positions where ``valid`` (``x``'s leading dimensions) is False
    replaced by zeros of ``x``'s dtype (replaced, never multiplied: NaN there cannot
    leak)."""
    mask = valid.view(*valid.shape, *([1] * (x.dim() - valid.dim())))
    return torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))
