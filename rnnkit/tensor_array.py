"""``TensorArray``: per-step values collected in order, read as TF's ``TensorArray``.

rnnkit collects steps in Python lists (its loops run on the host), so this is only the read
side TF code uses: ``stack()``, ``read(t)``, ``size()``, plus ``write`` returning a new
array.  It is immutable: a state holding one can be copied and compared safely.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["TensorArray"]


class TensorArray:
    """Steps ``[batch, ...]`` in order; :meth:`stack` gives ``[time, batch, ...]``.

    Args:
        steps: the values written so far.
        element: optional ``[batch, ...]`` example giving the shape and dtype of an empty
            :meth:`stack`; without it an empty array cannot be stacked.
    """

    __slots__ = ("_element", "_steps")

    def __init__(self, steps: tuple[torch.Tensor, ...] | list[torch.Tensor] = (),
                 element: torch.Tensor | None = None):
        self._steps = tuple(steps)
        self._element = element

    def write(self, index: int, value: torch.Tensor) -> TensorArray:
        """A new array with ``value`` appended at ``index`` (which must be the current
        size)."""
        if index != len(self._steps):
            raise ValueError(f"{type(self).__name__} is written in order: expected index "
                             f"{len(self._steps)}, received {index}")
        return type(self)(self._steps + (value,), self._element)

    def read(self, index: int) -> torch.Tensor:
        """Step ``index``: ``[batch, ...]``."""
        return self._steps[index]

    def size(self) -> int:
        """Steps written."""
        return len(self._steps)

    def __len__(self) -> int:
        return len(self._steps)

    def stack(self) -> torch.Tensor:
        """All steps, ``[time, batch, ...]``."""
        if self._steps:
            return torch.stack(self._steps)
        if self._element is None:
            raise ValueError(f"{type(self).__name__} is empty: nothing has been written yet")
        return self._element.new_zeros((0, *self._element.shape))

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> TensorArray:
        """A new array with ``fn`` applied to each step (e.g. a beam reordering)."""
        return type(self)(tuple(fn(s) for s in self._steps), self._element)

    def __repr__(self) -> str:
        shape = tuple(self._steps[0].shape) if self._steps else ()
        return f"{type(self).__name__}(size={len(self._steps)}, element_shape={shape})"
