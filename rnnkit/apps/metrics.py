"""Training metrics of a run: ``metrics.jsonl`` (one JSON object a line: ``step`` and
scalars named ``train/loss``, ``valid/loss``, ...) and the same scalars as TensorBoard
events under ``tensorboard/`` (through ``torch.utils.tensorboard``; skipped with a note when
the ``tensorboard`` package is missing).  ``tensorboard --logdir runs/`` shows them.

On ``--resume`` from step ``k``, lines after ``k`` (written by the interrupted process past
its last checkpoint) are dropped and TensorBoard purges its events after ``k``, so each step
is recorded once.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

__all__ = ["Metrics"]


class Metrics:
    def __init__(self, run_dir: str | os.PathLike, resume_step: int | None = None, log=None):
        self.path = Path(run_dir) / "metrics.jsonl"
        if resume_step is not None and self.path.is_file():
            kept = []
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line).get("step", math.inf) <= resume_step:
                        kept.append(line + "\n")
                except (json.JSONDecodeError, AttributeError):
                    break  # a line cut short by the interruption, and all after it
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text("".join(kept), encoding="utf-8")
            os.replace(tmp, self.path)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            if log is not None:
                log("note: no TensorBoard events (pip install tensorboard); metrics.jsonl "
                    "holds the same scalars")
        else:
            self._tb = SummaryWriter(
                log_dir=str(Path(run_dir) / "tensorboard"),
                purge_step=resume_step + 1 if resume_step is not None else None)

    def log(self, step: int, **scalars: float) -> None:
        """Record ``scalars`` (``{"train/loss": 2.3, ...}``) at ``step``."""
        self._file.write(json.dumps({"step": step, **scalars}, sort_keys=True) + "\n")
        self._file.flush()
        if self._tb is not None:
            for name, value in scalars.items():
                if isinstance(value, (int, float)):
                    self._tb.add_scalar(name, value, step)
            self._tb.flush()

    def image(self, tag: str, png: str | os.PathLike, step: int) -> None:
        """Show a PNG the run wrote (an alignment heatmap) in TensorBoard's images."""
        if self._tb is None:
            return
        import matplotlib.image
        import numpy as np

        pixels = matplotlib.image.imread(str(png))[..., :3]
        self._tb.add_image(tag, np.ascontiguousarray(pixels), step, dataformats="HWC")
        self._tb.flush()

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()
