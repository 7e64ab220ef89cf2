"""Parameters sized at a module's first call, and what keeps TF's order working.

TF builds every variable when the graph is constructed, before the optimizer and
``global_variables_initializer``; a PyTorch module whose input depth is unknown sizes its
weights at its first call.  rnnkit's cells and layers therefore hold such weights from
construction on as :class:`LazyParameter` (a ``torch.nn.UninitializedParameter`` filled in
place at the first call), so an optimizer made first trains them.  Using one before then
raises :class:`LazyParameterError` naming it and the one-call fix,
:func:`rnnkit.rnn.build`.  A cell of your own that creates new parameters at its first
call is watched instead: a warning names them at the first optimizer step that misses them.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Any

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

__all__ = ["LazyParameter", "LazyParameterError", "track_lazy"]


class LazyParameterError(ValueError):
    """A parameter sized at the first call was used before that call."""


class LazyParameter(nn.UninitializedParameter):
    """A parameter whose shape the cell's first call fixes (its input depth is unknown
    before).  Any use before then raises :class:`LazyParameterError` naming the owner and
    the one-call fix, :func:`rnnkit.rnn.build`."""

    cls_to_become = nn.Parameter

    def __new__(cls, requires_grad: bool = True, owner: str = ""):
        p = super().__new__(cls, requires_grad=requires_grad)
        p.owner = owner
        return p

    def materialize(self, shape, device=None, dtype=None) -> None:
        """Give the parameter its shape in place (the same object, so an optimizer that
        holds it trains it), on any device (``meta`` too)."""
        device = torch.device(device) if device is not None else self.data.device
        if device.type == self.data.device.type:
            super().materialize(shape, device=device, dtype=dtype)
            return
        fresh = nn.Parameter(torch.empty(shape, device=device, dtype=dtype or self.data.dtype),
                             requires_grad=self.requires_grad)
        torch.utils.swap_tensors(self, fresh)

    def __reduce_ex__(self, proto):
        return (type(self), (self.requires_grad, getattr(self, "owner", "")))

    def __deepcopy__(self, memo):
        return type(self)(self.requires_grad, getattr(self, "owner", ""))

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in cls._allowed_methods or func.__class__.__name__ == "method-wrapper":
            return super().__torch_function__(func, types, args, kwargs)
        owner = next((getattr(a, "owner", "") for a in args if isinstance(a, LazyParameter)),
                     "")
        raise LazyParameterError(
            f"{owner or 'a parameter'} is sized at the cell's first call (its input depth is "
            f"unknown until then) and was used before it ({getattr(func, '__name__', func)}): "
            "run the model once on example inputs first, rnnkit.rnn.build(model, "
            "*example_inputs), or give the cell input_size=")


# cells whose build registered new parameters, until an optimizer is seen holding them
_LAZY: weakref.WeakSet = weakref.WeakSet()
_OPTIMIZERS: weakref.WeakSet = weakref.WeakSet()
# the optimizer-step pre-hook that checks them: registered while _LAZY holds a cell, so a
# program whose cells declare their variables (every built-in cell) has no global hook
_HOOK: Any = None
_PERIOD = 0  # counts registrations: optimizer steps are counted from the latest one


def track_lazy(cell: nn.Module, names: list[str]) -> None:
    """Watch parameters ``names`` that ``cell`` created at its first call."""
    global _HOOK, _PERIOD
    cell._lazy_names = names
    _LAZY.add(cell)
    if _HOOK is None:
        _HOOK = register_optimizer_step_pre_hook(_check_lazy_params)
        _PERIOD += 1


def _check_lazy_params(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    """Optimizer step pre-hook: warn (once per cell) when parameters that a cell created at
    its first call have gradients but no optimizer holds them (made before that call).
    Judged from an optimizer's second step on, so that every optimizer has stepped once."""
    global _HOOK
    if not _LAZY:  # every tracked cell was judged (or freed): the hook is not needed
        if _HOOK is not None:
            _HOOK.remove()
            _HOOK = None
        return
    _OPTIMIZERS.add(optimizer)
    period, steps = optimizer.__dict__.get("_rnnkit_steps", (_PERIOD, 0))
    steps = steps if period == _PERIOD else 0
    optimizer._rnnkit_steps = (_PERIOD, steps + 1)
    if steps == 0:
        return
    held = {id(p) for opt in _OPTIMIZERS for g in opt.param_groups for p in g["params"]}
    for cell in list(_LAZY):
        params = [p for p in (getattr(cell, n, None) for n in cell._lazy_names)
                  if isinstance(p, torch.Tensor)]
        if any(id(p) in held for p in params):
            _LAZY.discard(cell)  # trained
        elif any(p.grad is not None for p in params):
            _LAZY.discard(cell)
            warnings.warn(
                f"{type(cell).__name__} created parameters {cell._lazy_names} at its first "
                "call; they receive gradients but no optimizer holds them, so they do not "
                "train.  Make the optimizer after rnnkit.rnn.build(model, *example_inputs), "
                "or declare them in __init__ (declare_variables(...) then add_variable in "
                "build).", stacklevel=3)
