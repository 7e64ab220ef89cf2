"""TF variable layouts: how a module's parameters look as TensorFlow's variables.

A module describes its own variables (cells and mechanisms define it beside their fused
form; :mod:`rnnkit.compat` only reads checkpoints and places values):

* ``tf_name`` (a property): the module's TF scope name (``"basic_lstm_cell"``, ``name=``).
* ``tf_variables(available) -> {relative name: TFVariable}``: its own variables, in the
  layout that ``available`` (the relative names being loaded, empty when none are) uses;
  TF 1.x's by default.  Cells with several TF layouts (TF 1.x, Keras, contrib) pick one.
* ``tf_children() -> [(relative scope, module)]``: the modules below it in TF's scope tree
  (an empty scope: the child takes the module's own place, as variable-free wrappers do).

The same description initialises the module: each :class:`TFVariable` carries the
initializer TF would apply, and :func:`initialize` applies them to values of TF's shapes and
writes them through, so ``glorot_uniform`` sees the fused kernel's fans, exactly as in TF.

A user cell of its own gets a layout for free: the variables it creates with
``add_variable(name, shape)`` are TF's ``name`` with that shape.  One that stores weights in
another layout overrides ``tf_variables``.  ::

    def tf_variables(self, available=()):
        return {"kernel": layout.param(lambda: self.w, transpose=True),
                "bias": layout.param(lambda: self.b, initializer=0.0)}
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from rnnkit import initializers

__all__ = ["TFVariable", "assign", "fused_kernel", "gate_perm", "initialize", "param",
           "row_of"]


class TFVariable(NamedTuple):
    """One TF variable of a module.

    Attributes:
        shape: TF's shape, or ``None`` while the module is not built yet.
        read: the current value in TF's layout (``None`` while not built).
        write: writes a value given in TF's layout (its shape checked) and returns the
            parameters written.
        initializer: TF's initial value for it (:mod:`rnnkit.initializers`), or ``None``.
        builds: writing it sizes a module that is not built yet (a kernel): such variables
            are written first.
    """

    shape: tuple[int, ...] | None
    read: Callable[[], torch.Tensor] | None
    write: Callable[[Any], list[torch.Tensor]]
    initializer: initializers.Initializer | None = None
    builds: bool = False


def as_value(value: Any) -> torch.Tensor:
    """A TF value (numpy array or tensor) as a tensor."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    return torch.as_tensor(np.asarray(value))


def assign(target: torch.Tensor, value: Any, what: str) -> torch.Tensor:
    """Copy ``value`` into the parameter ``target`` (a view of one is fine); shapes must
    agree exactly."""
    value = as_value(value)
    if tuple(value.shape) != tuple(target.shape):
        raise ValueError(f"{what}: expected shape {tuple(target.shape)}, received "
                         f"{tuple(value.shape)}")
    with torch.no_grad():
        target.copy_(value.to(dtype=target.dtype, device=target.device))
    return target


def _built(p: Any) -> bool:
    return isinstance(p, torch.Tensor) and not isinstance(p, nn.parameter.UninitializedTensorMixin)


def param(get: Callable[[], torch.Tensor], what: str = "", *, transpose: bool = False,
          perm: np.ndarray | None = None, initializer: Any = None,
          build: Callable[[tuple[int, ...]], None] | None = None) -> TFVariable:
    """A variable held in one parameter ``get()``: TF's value is the parameter itself, its
    transpose (a Dense kernel ``[in, out]`` stored as ``weight [out, in]``), or the
    parameter with its last axis reordered by ``perm`` (TF's gate order).  ``build``, given
    the TF shape, sizes the module first when it is not built."""

    def to_tf(t: torch.Tensor) -> torch.Tensor:
        t = t.detach()
        t = t.t() if transpose else t
        return t[..., np.argsort(perm)] if perm is not None else t

    def read() -> torch.Tensor:
        return to_tf(get())

    def write(value: Any) -> list[torch.Tensor]:
        value = as_value(value)
        if build is not None and not _built(get()):
            build(tuple(value.shape))
        target = get()
        if perm is not None:
            if value.shape[-1:] != perm.shape:
                raise ValueError(f"{what}: expected shape {tuple(to_tf(target).shape)}, "
                                 f"received {tuple(value.shape)}")
            value = value[..., perm]
        return [assign(target, value.t() if transpose else value, what)]

    p = get()
    shape = tuple(to_tf(p).shape) if _built(p) else None
    return TFVariable(shape, read if shape is not None else None, write,
                      initializers.resolve(what or "initializer", initializer),
                      builds=build is not None)


def fused_kernel(get_ih: Callable[[], torch.Tensor], get_hh: Callable[[], torch.Tensor],
                 what: str, perm: np.ndarray | None = None, initializer: Any = None,
                 build: Callable[[tuple[int, ...]], None] | None = None) -> TFVariable:
    """TF's fused kernel ``[input + state, cols]`` held as ``w_ih [cols, input]`` and
    ``w_hh [cols, state]`` (PyTorch's layout; columns reordered by ``perm``).  ``build``,
    given the kernel's TF shape, sizes an unbuilt cell first."""

    def read() -> torch.Tensor:
        k = torch.cat([get_ih().detach(), get_hh().detach()], 1).t()
        return k[:, np.argsort(perm)] if perm is not None else k

    def write(value: Any) -> list[torch.Tensor]:
        k = as_value(value)
        if k.dim() != 2:
            raise ValueError(f"{what}: expected a 2-D kernel, received shape "
                             f"{tuple(k.shape)}")
        if build is not None and not _built(get_ih()):
            build(tuple(k.shape))
        w_hh = get_hh()
        state, cols = w_hh.shape[1], w_hh.shape[0]
        depth = get_ih().shape[1]
        if tuple(k.shape) != (depth + state, cols):
            raise ValueError(f"{what}: expected shape {(depth + state, cols)} ([input + "
                             f"{state}, {cols}]), received {tuple(k.shape)}")
        if perm is not None:
            k = k[:, perm]
        return [assign(get_ih(), k[:depth].t(), f"{what} (input part)"),
                assign(get_hh(), k[depth:].t(), f"{what} (state part)")]

    ih, hh = get_ih(), get_hh()
    shape = (ih.shape[1] + hh.shape[1], ih.shape[0]) if _built(ih) else None
    return TFVariable(shape, read if shape is not None else None, write,
                      initializers.resolve(what, initializer), builds=build is not None)


def row_of(get: Callable[[], torch.Tensor], row: int, what: str,
           initializer: Any = None) -> TFVariable:
    """Row ``row`` of a parameter (a per-gate vector stored as one ``[gates, units]``)."""

    def write(value: Any) -> list[torch.Tensor]:
        return [assign(get()[row], value, what)]

    p = get()
    shape = tuple(p.shape[1:]) if _built(p) else None
    return TFVariable(shape, (lambda: get()[row].detach()) if shape is not None else None,
                      write, initializers.resolve(what, initializer))


def gate_perm(units: int) -> np.ndarray:
    """Column order from TF's LSTM gates ``i, j, f, o`` to PyTorch's ``i, f, g, o``: the TF
    columns that make each PyTorch column."""
    i, j, f, o = (np.arange(units) + k * units for k in range(4))
    return np.concatenate([i, f, j, o])


def initialize(module: Any, available: Collection[str] = ()) -> None:
    """Write TF's initial value into each of ``module``'s own variables (its
    ``tf_variables``), computed for TF's shape: what TF's variable initialisation does."""
    for var in module.tf_variables(available).values():
        if var.initializer is None or var.shape is None:
            continue
        var.write(var.initializer(var.shape, torch.float32))
