"""Seeded random draws on any device: one generator per device, each seeded with the seed.

A module given ``seed=`` (``DropoutWrapper``, ``LayerNormBasicLSTMCell``'s
``dropout_prob_seed``, monotonic attention's ``sigmoid_noise_seed``) draws from its own
stream, so its results do not depend on what else used PyTorch's generators; the draws
happen on the tensors' device (never on the CPU and copied over).  Without a seed it uses
PyTorch's default generators (which CUDA graphs can replay).

:func:`stable_uniforms` gives uniforms that code without PyTorch computes identically
(numpy's PCG64 stream, stable across numpy versions): the char-RNN sampler draws with them,
so that its exported ONNX sampler reproduces its text.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnkit import _checks
from rnnkit.capture import NotCapturable

__all__ = ["SeededGenerators", "stable_uniforms"]


class SeededGenerators:
    """A seed's generators, made per device on first use; ``seed=None``: PyTorch's own."""

    def __init__(self, seed: int | None, name: str = "seed"):
        self.seed = None if seed is None else _checks.as_int(name, seed)
        if self.seed is not None and not -(2**63) <= self.seed < 2**64:
            raise ValueError(f"{name} must lie in [-2**63, 2**64) (a 64-bit seed), received "
                             f"{self.seed}")
        self._by_device: dict[torch.device, torch.Generator] = {}

    def on(self, device: torch.device) -> torch.Generator | None:
        """The generator to draw with on ``device`` (``None`` when unseeded)."""
        if self.seed is None:
            return None
        gen = self._by_device.get(device)
        if gen is None:
            gen = self._by_device[device] = torch.Generator(device=device)
            gen.manual_seed(self.seed)
        return gen

    def refuse_graphs(self, what: str) -> None:
        """When seeded, raise :class:`~rnnkit.capture.NotCapturable`: a CUDA graph cannot
        replay a private generator.  ``what`` names the drawer (``"X(seed=...) draws its
        masks"``)."""
        if self.seed is not None:
            raise NotCapturable(f"{what} from its own generator, which a graph cannot replay "
                                f"(without the seed it draws from PyTorch's default "
                                f"generator, which a graph can)")

    def reset(self) -> None:
        """Start the seed's streams again (the next draws repeat the first ones)."""
        self._by_device.clear()

    def mask(self, like: torch.Tensor, keep: float) -> torch.Tensor:
        """An inverted-dropout mask shaped like ``like``: ``1 / keep`` with probability
        ``keep``, else 0."""
        u = torch.rand(like.shape, generator=self.on(like.device), dtype=like.dtype,
                       device=like.device)
        return (u < keep).to(like.dtype) / keep

    def normal(self, like: torch.Tensor) -> torch.Tensor:
        """Standard normal noise shaped like ``like``, on its device."""
        return torch.randn(like.shape, generator=self.on(like.device), dtype=like.dtype,
                           device=like.device)


def stable_uniforms(seed: int | None, count: int) -> np.ndarray:
    """``count`` float64 uniforms in ``[0, 1)`` from ``seed``: ``[count]``.

    The values are ``(numpy.random.PCG64(seed).random_raw(count) >> 11) * 2**-53``: the top
    53 bits of each 64-bit output of the PCG64 generator seeded through numpy's
    ``SeedSequence(seed)``.  numpy keeps that stream identical across its versions, so any
    numpy program computes the same values (``seed=None``: fresh entropy).
    """
    if seed is not None:
        seed = _checks.as_int("seed", seed)
        if not 0 <= seed < 2**128:
            raise ValueError(f"seed must lie in [0, 2**128), received {seed}")
    count = _checks.as_int("count", count)
    if count < 0:
        raise ValueError(f"count must be >= 0, received {count}")
    raw = np.random.PCG64(seed).random_raw(count) if count else np.zeros(0, np.uint64)
    return (np.asarray(raw, np.uint64) >> np.uint64(11)).astype(np.float64) * 2.0**-53
