"""TensorFlow interop: read TF checkpoints without TensorFlow and place their variables.

* :func:`list_tf_variables` / :func:`read_tf_checkpoint`: a TF checkpoint's variables
  (:mod:`rnnkit.compat.bundle` reads the tensor bundle, every block and tensor CRC-checked).
* :func:`load_tf_variables` / :func:`load_tf_checkpoint`: copy them into rnnkit modules.
* :func:`tf_variables_of`: a module's weights as TF's variables (the reverse).

Each module describes its own TF variables (:mod:`rnnkit.compat.layout`): rnnkit's cells,
wrappers, mechanisms and ``rnnkit.layers.Dense`` define ``tf_name``, ``tf_variables`` and
``tf_children``; PyTorch's ``nn.Linear`` and ``nn.Embedding`` are described here (Keras Dense
/ ``tf.layers.dense``, contrib ``fully_connected``, embedding matrices).  This module only
reads and places.

Scopes: a module's variables live under its TF name (``basic_lstm_cell``,
``multi_rnn_cell/cell_0/...``; a cell built with ``name=`` uses that name).  Pass ``scope``
to strip a prefix first (``"rnn/"`` for ``tf.nn.dynamic_rnn``, ``"bidirectional_rnn/fw/"``
...), or a dict ``{full_scope: module}`` to load a model made of several modules (e.g.
``{"rnn/multi_rnn_cell": cell, "output_projection": dense}``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit.compat import bundle, layout
from rnnkit.compat.bundle import TFCheckpointError
from rnnkit.compat.layout import TFVariable

__all__ = [
    "TFCheckpointError",
    "TFVariable",
    "layout",
    "list_tf_variables",
    "load_tf_checkpoint",
    "load_tf_variables",
    "read_tf_checkpoint",
    "register_tf_layout",
    "tf_name",
    "tf_variable_names",
    "tf_variables_of",
]

#: ``fn(module, available) -> {relative name: TFVariable}`` for module classes that do not
#: describe themselves (PyTorch's own layers).
ForeignLayout = Callable[[nn.Module, Collection[str]], dict[str, TFVariable]]
_FOREIGN: dict[type, tuple[ForeignLayout, str | None]] = {}


def register_tf_layout(cls: type, default_name: str | None = None
                       ) -> Callable[[ForeignLayout], ForeignLayout]:
    """Decorator describing the TF variables of a module class that cannot define
    ``tf_variables`` itself (a class from another library): ``fn(module, available) ->
    {relative name: TFVariable}``.  Your own modules define ``tf_variables`` instead."""

    def deco(fn: ForeignLayout) -> ForeignLayout:
        _FOREIGN[cls] = (fn, default_name)
        return fn

    return deco


def _foreign(module: nn.Module) -> tuple[ForeignLayout, str | None] | None:
    for cls in type(module).__mro__:
        if cls in _FOREIGN:
            return _FOREIGN[cls]
    return None


def tf_name(module: nn.Module) -> str:
    """The TF scope name of ``module`` (its ``name=`` or TF's default for the class)."""
    own = getattr(module, "tf_name", None)
    if isinstance(own, str) and own:
        return own
    found = _foreign(module)
    if found is not None and found[1]:
        return found[1]
    raise TypeError(f"no TF name known for {type(module).__name__}; pass a dict of scopes")


def _own(module: nn.Module, available: Collection[str]) -> dict[str, TFVariable]:
    if callable(getattr(module, "tf_variables", None)):
        return module.tf_variables(available)
    found = _foreign(module)
    if found is None:
        raise TypeError(f"load_tf_variables does not know how to load "
                        f"{type(module).__name__}: give it tf_variables() (see "
                        "rnnkit.compat.layout) or register_tf_layout")
    return found[0](module, available)


def collect(module: nn.Module, scope: str,
            available: Collection[str] = ()) -> dict[str, TFVariable]:
    """Every TF variable of ``module`` and the modules below it, by full name; ``scope`` is
    the module's own scope, ``available`` the full names being loaded."""
    prefix = f"{scope}/" if scope else ""
    relative = {n[len(prefix):] for n in available if n.startswith(prefix)}
    out = {f"{prefix}{name}" if name else scope: var
           for name, var in _own(module, relative).items()}
    children = module.tf_children() if callable(getattr(module, "tf_children", None)) else []
    for rel, child in children:
        child_scope = f"{prefix}{rel}" if rel else scope
        out.update(collect(child, child_scope, available))
    return out


def _normalise(name: str) -> str:
    name = name[:-2] if name.endswith(":0") else name
    # tf.train.Checkpoint (object-based) names: "layer/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    return name.removesuffix("/.ATTRIBUTES/VARIABLE_VALUE")


def _variables(module: nn.Module | Mapping[str, nn.Module],
               available: Collection[str] = ()) -> dict[str, TFVariable]:
    if isinstance(module, Mapping):
        out: dict[str, TFVariable] = {}
        for scope, m in module.items():
            if not isinstance(scope, str):
                raise TypeError(f"scopes must be strings, received {scope!r}")
            out.update(collect(m, scope.strip("/"), available))
        return out
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module or a dict of them, received "
                        f"{type(module).__name__}")
    return collect(module, tf_name(module), available)


def tf_variable_names(module: nn.Module | Mapping[str, nn.Module]) -> list[str]:
    """The TF variable names that :func:`load_tf_variables` expects for ``module``."""
    return sorted(_variables(module))


def tf_variables_of(module: nn.Module | Mapping[str, nn.Module]) -> dict[str, np.ndarray]:
    """``{TF name: array}``: the module's current weights as TF stores them (what
    :func:`load_tf_variables` reads back).  The module must be built."""
    out = {}
    for name, var in sorted(_variables(module).items()):
        if var.read is None:
            raise ValueError(f"{name}: the module is not built yet (its shape is unknown)")
        out[name] = var.read().cpu().numpy()
    return out


def load_tf_variables(
    module: nn.Module | Mapping[str, nn.Module],
    variables: Mapping[str, Any],
    scope: str = "",
) -> None:
    """Copy TF variables into ``module``, all or nothing.

    Args:
        module: an rnnkit cell / wrapper / mechanism / ``nn.Linear`` / ``nn.Embedding``, or
            a dict ``{tf_scope: module}`` (the scope includes the module's own name).
        variables: ``{name: array}`` as ``tf.train.list_variables`` / ``load_variable`` give
            them (a trailing ``:0`` is ignored).
        scope: prefix removed from every name first (e.g. ``"rnn/"``); names outside it are
            an error.

    Raises:
        ValueError: a name that matches no parameter, a shape mismatch, or a parameter of
            ``module`` that received no value.  Nothing is changed then (a cell a failed
            load would have sized stays unsized).
    """
    if not isinstance(variables, Mapping):
        raise TypeError("load_tf_variables: variables must be a mapping {name: array}, "
                        f"received {type(variables).__name__}")
    if not isinstance(scope, str):
        raise TypeError(f"load_tf_variables: scope must be a str, received {scope!r}")
    prefix = scope if not scope or scope.endswith("/") else scope + "/"
    placed, unknown = [], []
    for raw, value in variables.items():
        name = _normalise(str(raw))
        if prefix and not name.startswith(prefix):
            unknown.append(raw)
            continue
        placed.append((name[len(prefix):], _checked_value(str(raw), value)))
    targets = _variables(module, {n for n, _ in placed})
    unknown += [n for n, _ in placed if n not in targets]
    if unknown:  # refused before anything is written
        raise ValueError(
            f"load_tf_variables: cannot place {sorted(map(str, unknown))} (after removing "
            f"scope {prefix!r}); expected names: {sorted(targets)}")
    modules = list(module.values()) if isinstance(module, Mapping) else [module]
    with _all_or_nothing(modules):
        done: set[int] = set()
        # variables that size an unbuilt module first (TF lists "bias" before "kernel")
        names = {n for n, _ in placed}
        for name, value in sorted(placed, key=lambda nv: not targets[nv[0]].builds):
            # looked up again: a variable written before may have sized the module
            for p in _variables(module, names)[name].write(value):
                base = p._base if p._base is not None else p  # a row of a parameter
                done.add(id(base))
        missing = [n for m in modules for n, p in m.named_parameters()
                   if id(p) not in done and not isinstance(p, nn.UninitializedParameter)]
        if missing:
            raise ValueError(f"load_tf_variables: no value for parameters {missing}")


def _checked_value(name: str, value: Any) -> np.ndarray:
    """A TF value as a real numeric array (complex, bool, strings are refused by name)."""
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"load_tf_variables: {name} has dtype {value.dtype}; model "
                            "weights are real numbers")
        if value.is_floating_point() and value.dtype not in (torch.float16, torch.float32,
                                                              torch.float64):
            value = value.float()  # bfloat16 and the float8 kinds: numpy has no dtype
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"load_tf_variables: {name} is not an array ({e})") from None
    if array.dtype.kind not in "fiu":
        raise TypeError(f"load_tf_variables: {name} has dtype {array.dtype}; model weights "
                        "are real numbers")
    return array


class _all_or_nothing:
    """Restore every parameter's value, and un-size modules sized on the way, if the block
    raises."""

    def __init__(self, modules: list[nn.Module]):
        self.modules = modules

    def __enter__(self) -> None:
        self.saved = [(p, p.detach().clone()) for m in self.modules for p in m.parameters()
                      if not isinstance(p, nn.UninitializedParameter)]
        self.unbuilt = []
        for root in self.modules:
            for m in root.modules():
                lazy = {k: (type(p), getattr(p, "owner", None), p.requires_grad)
                        for k, p in m._parameters.items()
                        if isinstance(p, nn.UninitializedParameter)}
                if lazy:
                    self.unbuilt.append((m, lazy, getattr(m, "built", None)))

    def __exit__(self, kind, exc, tb) -> None:
        if exc is None:
            return
        with torch.no_grad():
            for p, old in self.saved:
                if p.shape == old.shape:
                    p.copy_(old)
        for m, lazy, built in self.unbuilt:  # sized by the failed load: unsized again
            for key, (cls, owner, grad) in lazy.items():
                if not isinstance(m._parameters.get(key), nn.UninitializedParameter):
                    m._parameters[key] = (cls(grad, owner) if owner is not None
                                          else cls(grad))
            if built is not None:
                m.built = built


#: Variables that optimizers and savers add beside the model's own (skipped by
#: :func:`load_tf_checkpoint` unless ``include_optimizer=True``).
_OPTIMIZER_NAME = re.compile(
    r"(^|/)(beta[12]_power|global_step|save_counter|_CHECKPOINTABLE_OBJECT_GRAPH)$"
    r"|/(Adam|Adam_1|Momentum|RMSProp|RMSProp_1|Adagrad|Adadelta|Adadelta_1|Ftrl|Ftrl_1"
    r"|ExponentialMovingAverage)$|(^|/)optimizer/|\.OPTIMIZER_SLOT/")


def list_tf_variables(ckpt) -> list[tuple[str, list[int]]]:
    """``[(name, shape), ...]`` of a TF checkpoint, as ``tf.train.list_variables`` prints
    them; no TensorFlow needed.  ``ckpt``: a prefix (``.../char-rnn_3``) or a directory with
    TF's ``checkpoint`` file."""
    return bundle.list_variables(ckpt)


def read_tf_checkpoint(ckpt) -> dict[str, np.ndarray]:
    """``{name: array}`` of every numeric variable of a TF checkpoint (CRC32C-verified); a
    partitioned variable reassembled from its slices."""
    return bundle.read_variables(ckpt)


def load_tf_checkpoint(module: nn.Module | Mapping[str, nn.Module], ckpt, scope: str = "",
                       include_optimizer: bool = False) -> dict[str, np.ndarray]:
    """:func:`read_tf_checkpoint` then :func:`load_tf_variables` (all or nothing).

    Optimizer slots and bookkeeping (``.../Adam``, ``.../Adam_1``, ``beta1_power``,
    ``global_step``, TF 2's ``optimizer/...`` and ``save_counter``) are skipped unless
    ``include_optimizer``; so are variables outside ``scope``.  Returns what was loaded.
    """
    if not isinstance(scope, str):
        raise TypeError(f"load_tf_checkpoint: scope must be a str, received {scope!r}")
    variables = read_tf_checkpoint(ckpt)
    if not include_optimizer:
        variables = {k: v for k, v in variables.items()
                     if not _OPTIMIZER_NAME.search(_normalise(k))}
    if scope:
        prefix = scope if scope.endswith("/") else scope + "/"
        variables = {k: v for k, v in variables.items() if _normalise(k).startswith(prefix)}
    load_tf_variables(module, variables, scope)
    return variables


# -- PyTorch's own layers ------------------------------------------------------------------------

@register_tf_layout(nn.Linear)
def _linear(layer: nn.Linear, available: Collection[str]) -> dict[str, TFVariable]:
    """Keras ``Dense`` / ``tf.layers.dense`` (``kernel``, ``bias``) or contrib
    ``fully_connected`` (``weights``, ``biases``): the kernel ``[in, out]`` is the transposed
    weight."""
    contrib = "weights" in available
    if contrib and "kernel" in available:
        raise ValueError("the variables match two layouts (Dense: kernel, bias; contrib "
                         "fully_connected: weights, biases)")
    w, b = ("weights", "biases") if contrib else ("kernel", "bias")
    out = {w: layout.param(lambda: layer.weight, w, transpose=True)}
    if layer.bias is not None:
        out[b] = layout.param(lambda: layer.bias, b)
    return out


@register_tf_layout(nn.Embedding)
def _embedding(layer: nn.Embedding, available: Collection[str]) -> dict[str, TFVariable]:
    """A TF 1.x embedding matrix is the variable the scope names itself (``embedding``); a
    Keras ``Embedding`` holds ``embeddings``."""
    return {"embeddings" if "embeddings" in available else "":
            layout.param(lambda: layer.weight, "embedding")}
