"""``sequence_loss`` and ``SequenceLoss``: weighted cross-entropy over
``[batch, time, classes]`` logits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit import _checks

__all__ = ["SequenceLoss", "sequence_loss"]


def _div_no_nan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(b == 0, torch.zeros_like(a), a / torch.where(b == 0, torch.ones_like(b), b))


def sequence_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    average_across_timesteps: bool = True,
    average_across_batch: bool = True,
    sum_over_timesteps: bool = False,
    sum_over_batch: bool = False,
    softmax_loss_function: Callable[..., torch.Tensor] | None = None,
    name: str | None = None,
) -> torch.Tensor:
    """Weighted cross-entropy of a batch of sequences (``tf.contrib.seq2seq.sequence_loss``).

    Args:
        logits: ``[batch, time, num_classes]`` floats.
        targets: ``[batch, time]`` class ids in ``[0, num_classes)``, or (tensorflow-addons'
            form) ``[batch, time, num_classes]`` label probabilities such as one-hot rows.
        weights: ``[batch, time]`` floats (e.g. 0 on padding).
        average_across_timesteps / average_across_batch: divide the weighted sum over that
            axis by the sum of the weights over it.
        sum_over_timesteps / sum_over_batch: divide the weighted sum over that axis by the
            number of non-zero weights over it (TF's definition).
        softmax_loss_function: ``fn(labels=[n], logits=[n, classes]) -> [n]`` replacing the
            sparse softmax cross-entropy.

    Returns:
        A scalar when both axes are reduced; ``[time]`` when only the batch is reduced;
        ``[batch]`` when only time is reduced; ``[batch, time]`` when neither is.
    """
    _checks.as_function("softmax_loss_function", softmax_loss_function)
    average_across_timesteps = _checks.as_flag("average_across_timesteps",
                                               average_across_timesteps)
    average_across_batch = _checks.as_flag("average_across_batch", average_across_batch)
    sum_over_timesteps = _checks.as_flag("sum_over_timesteps", sum_over_timesteps)
    sum_over_batch = _checks.as_flag("sum_over_batch", sum_over_batch)
    if average_across_timesteps and sum_over_timesteps:
        raise ValueError("average_across_timesteps and sum_over_timesteps cannot both be True")
    if average_across_batch and sum_over_batch:
        raise ValueError("average_across_batch and sum_over_batch cannot both be True")
    for (avg, on_avg), (total, on_total) in (
            (("average_across_batch", average_across_batch),
             ("sum_over_timesteps", sum_over_timesteps)),
            (("average_across_timesteps", average_across_timesteps),
             ("sum_over_batch", sum_over_batch))):
        if on_avg and on_total:
            raise ValueError(f"{avg} and {total} cannot both be True because of ambiguous "
                             "order (reduce both axes the same way, or one axis only)")
    logits = _checks.as_inputs("logits", logits)  # numpy accepted, as in TF
    _checks.rank("logits", logits, 3, "[batch, time, num_classes]")
    _checks.floating("logits", logits)
    soft = _soft_targets(targets, logits)
    if soft is None:
        targets = _checks.as_ids("targets", targets, logits.device)
        _checks.rank("targets", targets, 2, "[batch, time]")
    weights = _checks.as_inputs("weights", weights, logits.dtype)
    _checks.rank("weights", weights, 2, "[batch, time]")
    want = tuple(logits.shape) if soft is not None else tuple(logits.shape[:2])
    got = tuple((soft if soft is not None else targets).shape)
    if got != want:
        raise ValueError(
            f"targets must have shape {want} (logits' [batch, time]"
            f"{', num_classes' if soft is not None else ''}), received {got}"
        )
    if weights.shape != logits.shape[:2]:
        raise ValueError(
            f"weights must have shape {tuple(logits.shape[:2])} (logits' [batch, time]), "
            f"received {tuple(weights.shape)}"
        )
    num_classes = logits.shape[-1]
    flat_logits = logits.reshape(-1, num_classes)
    if flat_logits.dtype in (torch.float16, torch.bfloat16):
        flat_logits = flat_logits.float()  # the loss is reduced in float32 (mixed precision)
    flat_weights = weights.reshape(-1)
    # positions of weight 0 never reach the loss or its gradient, whatever their logits
    # (NaN or inf in padding included)
    keep = (flat_weights != 0)[:, None]
    flat_logits = torch.where(keep, flat_logits, torch.zeros((), dtype=flat_logits.dtype,
                                                             device=flat_logits.device))
    if soft is not None:
        if softmax_loss_function is not None:
            raise ValueError("softmax_loss_function takes class ids: give targets as "
                             "[batch, time] ids")
        flat_soft = soft.reshape(-1, num_classes).to(flat_logits.dtype)
        crossent = F.cross_entropy(flat_logits, torch.where(keep, flat_soft, 0.0),
                                   reduction="none")
        return _reduce(crossent, weights, logits.shape[:2], average_across_timesteps,
                       average_across_batch, sum_over_timesteps, sum_over_batch)
    flat_targets = targets.reshape(-1).long()
    if softmax_loss_function is None:
        if flat_targets.numel() and (
            int(flat_targets.min()) < 0 or int(flat_targets.max()) >= num_classes
        ):
            raise ValueError(
                f"targets must lie in [0, {num_classes}), received min "
                f"{int(flat_targets.min())} and max {int(flat_targets.max())}"
            )
        crossent = F.cross_entropy(flat_logits, flat_targets, reduction="none")
    else:
        crossent = softmax_loss_function(labels=flat_targets, logits=flat_logits)
        if crossent.shape != flat_targets.shape:
            raise ValueError(
                f"softmax_loss_function must return shape {tuple(flat_targets.shape)}, "
                f"received {tuple(crossent.shape)}"
            )
    return _reduce(crossent, weights, logits.shape[:2], average_across_timesteps,
                   average_across_batch, sum_over_timesteps, sum_over_batch)


def _soft_targets(targets: Any, logits: torch.Tensor) -> torch.Tensor | None:
    """Targets given as ``[batch, time, classes]`` floats (label probabilities), else
    ``None`` (class ids)."""
    t = targets if isinstance(targets, torch.Tensor) else None
    if t is None:
        try:
            t = torch.as_tensor(np.asarray(targets))
        except (TypeError, ValueError):
            return None
    if t.dim() == 3 and t.is_floating_point():
        return t.to(logits.device)
    return None


def _reduce(crossent: torch.Tensor, weights: torch.Tensor, shape: torch.Size,
            average_across_timesteps: bool, average_across_batch: bool,
            sum_over_timesteps: bool, sum_over_batch: bool) -> torch.Tensor:
    """The weighted losses ``[batch * time]`` reduced as TF reduces them."""
    weights = weights.to(crossent.dtype)
    keep = weights.reshape(-1) != 0
    crossent = torch.where(keep, crossent * weights.reshape(-1), 0.0)
    logits_shape = shape
    if average_across_timesteps and average_across_batch:
        return _div_no_nan(crossent.sum(), weights.sum())
    if sum_over_timesteps and sum_over_batch:
        return _div_no_nan(crossent.sum(), (weights != 0).sum().to(crossent.dtype))
    crossent = crossent.reshape(logits_shape)
    if average_across_timesteps or average_across_batch:
        axis = 0 if average_across_batch else 1
        return _div_no_nan(crossent.sum(axis), weights.sum(axis))
    if sum_over_timesteps or sum_over_batch:
        axis = 0 if sum_over_batch else 1
        return _div_no_nan(crossent.sum(axis), (weights != 0).sum(axis).to(crossent.dtype))
    return crossent


class SequenceLoss(nn.Module):
    """:func:`sequence_loss` as a loss object (contrib's and tensorflow-addons'
    ``SequenceLoss``): ``loss(targets, logits, weights=None)`` (tfa's ``y_true``, ``y_pred``,
    ``sample_weight``; weights default to ones), reduced as configured.  The defaults are
    tensorflow-addons': the weighted sum divided by the number of non-zero weights."""

    def __init__(self, average_across_timesteps: bool = False,
                 average_across_batch: bool = False, sum_over_timesteps: bool = True,
                 sum_over_batch: bool = True,
                 softmax_loss_function: Callable | None = None, name: str | None = None):
        super().__init__()
        self.options = dict(average_across_timesteps=average_across_timesteps,
                            average_across_batch=average_across_batch,
                            sum_over_timesteps=sum_over_timesteps,
                            sum_over_batch=sum_over_batch,
                            softmax_loss_function=softmax_loss_function)
        self.name = name

    def forward(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> torch.Tensor:
        """The loss of logits ``y_pred [batch, time, classes]`` for targets ``y_true``."""
        y_pred = _checks.as_inputs("y_pred", y_pred)
        if sample_weight is None:
            sample_weight = torch.ones(y_pred.shape[:2], dtype=y_pred.dtype,
                                       device=y_pred.device)
        return sequence_loss(y_pred, y_true, sample_weight, **self.options)
