"""Plots: alignment heatmaps and loss curves (matplotlib, written to PNG files).

Heatmap labels may be in any script.  They are drawn with matplotlib's bundled DejaVu Sans
(Latin, Greek, Cyrillic, ...) and, when the ``koreanize-matplotlib`` package is installed
(part of ``rnnkit[apps]``), the NanumGothic font it ships (Hangul); a character that none of
these fonts has is written as its ``\\uXXXX`` escape instead of a box, so no missing-glyph
warning is ever raised.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from rnnkit.apps.interrupts import pause_point

__all__ = ["alignment", "loss_curve", "safe_label"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


@functools.lru_cache(maxsize=1)
def _label_fonts() -> tuple[list[str], frozenset[int]]:
    """The font families labels are drawn with (first wins, the next ones fill in
    glyphs) and the code points they cover together."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    paths = [Path(font_manager.findfont("DejaVu Sans", fallback_to_default=True))]
    spec = importlib.util.find_spec("koreanize_matplotlib")  # its fonts, not its code
    if spec is not None and spec.submodule_search_locations:
        nanum = Path(list(spec.submodule_search_locations)[0]) / "fonts" / "NanumGothic.ttf"
        if nanum.is_file():
            font_manager.fontManager.addfont(str(nanum))
            paths.append(nanum)
    families, covered = [], set()
    for path in paths:
        families.append(font_manager.FontProperties(fname=str(path)).get_name())
        covered.update(FT2Font(str(path)).get_charmap())
    return families, frozenset(covered)


def safe_label(text: str) -> str:
    """``text`` with each character the label fonts lack written as ``\\uXXXX``."""
    _, covered = _label_fonts()
    return "".join(c if ord(c) in covered or c in " \t" else
                   (f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}")
                   for c in text)


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
    families, _ = _label_fonts()
    if source_tokens is not None:
        ax.set_xticks(range(len(source_tokens)), [safe_label(t) for t in source_tokens],
                      rotation=90, fontfamily=families)
    if target_tokens is not None:
        ax.set_yticks(range(len(target_tokens)), [safe_label(t) for t in target_tokens],
                      fontfamily=families)
    ax.set_xlabel("source (memory)")
    ax.set_ylabel("target (decoder step)")
    if title:
        ax.set_title(safe_label(title), fontfamily=families)
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
