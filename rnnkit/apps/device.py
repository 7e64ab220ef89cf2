"""The ``--device`` option of the applications: one rule, one error message."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(name: str | None) -> torch.device:
    """``None`` -> ``cuda`` when PyTorch sees a GPU, else ``cpu``; otherwise ``name`` checked.

    Raises ``ValueError`` (one line for the CLI) for a name PyTorch does not know, for
    ``cuda`` on a PyTorch build or a machine without CUDA, and for a GPU index out of range.
    """
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"--device {name!r} is not a device: expected cpu, cuda or cuda:N") from e
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r}: the applications run on cpu or cuda")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else "no visible GPU"
            raise ValueError(f"--device {name}: CUDA is not available here (PyTorch "
                             f"{torch.__version__}, {build}); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) "
                             "are visible")
    return device
