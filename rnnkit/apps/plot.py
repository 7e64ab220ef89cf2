"""Plots: alignment heatmaps and loss curves (matplotlib, written to PNG files)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

import numpy as np
import torch

from rnnkit.apps.runs import pause_point

__all__ = ["alignment", "loss_curve"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _atomic_savefig(fig, path: str | os.PathLike) -> str:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.png"
    try:  # a full disk or Ctrl-C leaves no half-written image (and the previous one intact)
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
        pause_point("plotting")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def alignment(
    alignments: torch.Tensor | np.ndarray,
    path: str | os.PathLike,
    source_tokens: Sequence[str] | None = None,
    target_tokens: Sequence[str] | None = None,
    title: str | None = None,
) -> str:
    """Write an attention heatmap to ``path`` (PNG) and return the path.

    Args:
        alignments: ``[target_time, source_time]`` weights (e.g. one batch entry of
            ``state.alignment_history.stack()[:, b]``).
        source_tokens: labels for the x axis (memory positions); at most ``source_time``.
        target_tokens: labels for the y axis (decoder steps); at most ``target_time``.
    """
    a = alignments.detach().cpu().numpy() if isinstance(alignments, torch.Tensor) \
        else np.asarray(alignments)
    if a.ndim != 2:
        raise ValueError(f"alignments must be [target_time, source_time], received shape "
                         f"{a.shape}")
    for name, tokens, limit in (("source_tokens", source_tokens, a.shape[1]),
                                ("target_tokens", target_tokens, a.shape[0])):
        if tokens is not None and len(tokens) > limit:
            raise ValueError(f"{name} has {len(tokens)} labels for {limit} positions")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4, 0.45 * a.shape[1] + 2), max(3, 0.4 * a.shape[0] + 1.5)))
    im = ax.imshow(a, aspect="auto", origin="upper", cmap="viridis", vmin=0.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if source_tokens is not None:
        ax.set_xticks(range(len(source_tokens)), list(source_tokens), rotation=90)
    if target_tokens is not None:
        ax.set_yticks(range(len(target_tokens)), list(target_tokens))
    ax.set_xlabel("source (memory)")
    ax.set_ylabel("target (decoder step)")
    if title:
        ax.set_title(title)
    try:
        return _atomic_savefig(fig, path)
    finally:
        plt.close(fig)


def loss_curve(steps: Sequence[int], losses: Sequence[float], path: str | os.PathLike,
               val_steps: Sequence[int] = (), val_losses: Sequence[float] = (),
               title: str | None = None) -> str:
    """Write a training (and optional validation) loss curve to ``path`` (PNG)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(list(steps), list(losses), label="train", linewidth=1)
    if len(val_steps):
        ax.plot(list(val_steps), list(val_losses), "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats / symbol)")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    try:
        return _atomic_savefig(fig, path)
    finally:
        plt.close(fig)
