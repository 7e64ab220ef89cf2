"""``TensorArray``: per-step values collected by index, read as TF's ``TensorArray``.

TF 1.x code makes one (``TensorArray(dtype, size=0, dynamic_size=True)``), writes a step at
a time (``ta = ta.write(t, x)``) and stacks it at the end; rnnkit's loops run on the host,
so the array is a Python container with TF's contract: ``write`` returns the array written
(a new one; the old one is left as it was, so a state holding one can be copied and compared
safely), every write of an array holds the same element shape and dtype, an index is
written once and read only once written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = ["TensorArray"]


class TensorArray:
    """Steps ``[batch, ...]`` by index; :meth:`stack` gives ``[size, batch, ...]``.

    Args:
        dtype: the elements' dtype (``None``: the first write's).
        size: the number of elements (0: none yet).
        dynamic_size: may grow past ``size`` by writing (TF's default: False for a sized
            array, as in TF; an array made with ``size=0`` and no ``dynamic_size`` grows).
        clear_after_read, tensor_array_name, infer_shape, colocate_with_first_write_call,
            name: TF's graph settings; accepted (they change no value here).
        element_shape: the shape every element must have (``None``: the first write's).
    """

    __slots__ = ("_dtype", "_dynamic", "_element", "_shape", "_size", "_steps")

    def __init__(self, dtype: torch.dtype | None = None, size: int | None = None,
                 dynamic_size: bool | None = None, clear_after_read: bool | None = None,
                 tensor_array_name: str | None = None, handle: Any = None, flow: Any = None,
                 infer_shape: bool = True, element_shape: Any = None,
                 colocate_with_first_write_call: bool = True, name: str | None = None):
        from rnnkit import _checks

        if handle is not None or flow is not None:
            raise ValueError("TensorArray(handle=, flow=) names TF graph objects; rnnkit's "
                             "arrays hold their values")
        self._dtype = _checks.as_dtype("dtype", dtype)
        size = 0 if size is None else _checks.as_count("size", size, minimum=0)
        self._size = size
        self._dynamic = (size == 0) if dynamic_size is None else \
            _checks.as_flag("dynamic_size", dynamic_size)
        self._shape = None if element_shape is None else tuple(
            _checks.as_shape("element_shape", element_shape))
        self._steps: dict[int, torch.Tensor] = {}
        self._element: torch.Tensor | None = None

    @classmethod
    def of(cls, steps: Sequence[torch.Tensor] = (), element: torch.Tensor | None = None
           ) -> TensorArray:
        """An array holding ``steps`` at indices ``0, 1, ...``; ``element`` (a ``[batch,
        ...]`` example) gives the shape and dtype of an empty :meth:`stack`."""
        ta = cls.__new__(cls)
        ta._steps = dict(enumerate(steps))
        ta._size = len(steps)
        ta._dynamic = True
        ta._element = element
        like = steps[0] if steps else element
        ta._dtype = like.dtype if like is not None else None
        ta._shape = tuple(like.shape) if like is not None else None
        return ta

    def _copy(self) -> TensorArray:
        ta = type(self).__new__(type(self))
        ta._steps = dict(self._steps)
        ta._size, ta._dynamic, ta._element = self._size, self._dynamic, self._element
        ta._dtype, ta._shape = self._dtype, self._shape
        return ta

    # -- TF's interface ----------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype | None:
        """The elements' dtype."""
        return self._dtype

    @property
    def element_shape(self) -> torch.Size | None:
        """The shape every element has (``None`` before the first write)."""
        return None if self._shape is None else torch.Size(self._shape)

    def _check_index(self, index: Any, what: str) -> int:
        from rnnkit import _checks

        index = _checks.as_int("index", index)
        if index < 0:
            raise IndexError(f"{type(self).__name__}.{what}: index {index} is negative (TF's "
                             "arrays have no negative indices)")
        return index

    def write(self, index: int, value: torch.Tensor) -> TensorArray:
        """The array with ``value`` written at ``index`` (an index is written once; a sized
        array that is not ``dynamic_size`` takes indices below its size)."""
        from rnnkit import _checks

        index = self._check_index(index, "write")
        value = _checks.tensor("value", value)
        if index in self._steps:
            raise ValueError(f"{type(self).__name__}: index {index} is already written")
        if index >= self._size and not self._dynamic:
            raise IndexError(f"{type(self).__name__}: index {index} is out of range for an "
                             f"array of size {self._size} (make it with dynamic_size=True)")
        if self._dtype is not None and value.dtype != self._dtype:
            raise _checks.DTypeError(f"{type(self).__name__} holds {self._dtype}, received a "
                                     f"value of dtype {value.dtype}")
        if self._shape is not None and tuple(value.shape) != self._shape:
            raise ValueError(f"{type(self).__name__} holds elements of shape {self._shape}, "
                             f"received shape {tuple(value.shape)}")
        ta = self._copy()
        ta._steps[index] = value
        ta._size = max(self._size, index + 1)
        ta._dtype, ta._shape = value.dtype, tuple(value.shape)
        return ta

    def read(self, index: int) -> torch.Tensor:
        """Element ``index``: ``[batch, ...]``."""
        index = self._check_index(index, "read")
        if index not in self._steps:
            raise IndexError(f"{type(self).__name__}: index {index} has not been written (size "
                             f"{self._size})")
        return self._steps[index]

    def size(self) -> int:
        """The number of elements (the highest written index + 1, or the size given)."""
        return self._size

    def __len__(self) -> int:
        return self._size

    def stack(self) -> torch.Tensor:
        """All elements, ``[size, batch, ...]``."""
        if self._size and len(self._steps) == self._size:
            return torch.stack([self._steps[i] for i in range(self._size)])
        if self._size:
            missing = sorted(set(range(self._size)) - set(self._steps))
            raise ValueError(f"{type(self).__name__}: indices {missing} have not been written")
        if self._element is not None:
            return self._element.new_zeros((0, *self._element.shape))
        if self._shape is not None and self._dtype is not None:
            return torch.zeros((0, *self._shape), dtype=self._dtype)
        raise ValueError(f"{type(self).__name__} is empty: nothing has been written yet")

    def gather(self, indices: Any) -> torch.Tensor:
        """The elements at ``indices``, stacked: ``[len(indices), batch, ...]``."""
        return torch.stack([self.read(int(i)) for i in torch.as_tensor(indices).tolist()])

    def concat(self) -> torch.Tensor:
        """The elements joined on their first axis."""
        return torch.cat([self.read(i) for i in range(self._size)])

    def unstack(self, value: torch.Tensor) -> TensorArray:
        """The array holding ``value``'s rows ``value[0], value[1], ...``."""
        from rnnkit import _checks

        value = _checks.tensor("value", value)
        ta = self
        for i, row in enumerate(value.unbind(0)):
            ta = ta.write(i, row)
        return ta

    def scatter(self, indices: Any, value: torch.Tensor) -> TensorArray:
        """The array with ``value[k]`` written at ``indices[k]``."""
        ta = self
        for k, i in enumerate(torch.as_tensor(indices).tolist()):
            ta = ta.write(int(i), value[k])
        return ta

    def split(self, value: torch.Tensor, lengths: Any) -> TensorArray:
        """The array holding ``value`` cut along its first axis into pieces of
        ``lengths``."""
        ta = self
        for i, piece in enumerate(value.split(torch.as_tensor(lengths).tolist())):
            ta = ta.write(i, piece)
        return ta

    def identity(self) -> TensorArray:
        """The array itself (TF's graph op)."""
        return self

    def close(self) -> None:
        """Nothing to release (TF's graph op)."""

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> TensorArray:
        """A new array with ``fn`` applied to each element (e.g. a beam reordering)."""
        ta = self._copy()
        ta._steps = {i: fn(s) for i, s in self._steps.items()}
        if ta._steps:
            first = next(iter(ta._steps.values()))
            ta._dtype, ta._shape = first.dtype, tuple(first.shape)
        return ta

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(size={self._size}, element_shape={self._shape}, "
                f"dtype={self._dtype})")
