"""Seeded random draws on any device: one generator per device, each seeded with the seed.

A module given ``seed=`` (``DropoutWrapper``, ``LayerNormBasicLSTMCell``'s
``dropout_prob_seed``, monotonic attention's ``sigmoid_noise_seed``) draws from its own
stream, so its results do not depend on what else used PyTorch's generators; the draws
happen on the tensors' device (never on the CPU and copied over).  Without a seed it uses
PyTorch's default generators (which CUDA graphs can replay).
"""

from __future__ import annotations

import torch

from rnnkit import _checks
from rnnkit.capture import NotCapturable

__all__ = ["SeededGenerators"]


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
