"""Keras's activations by name (``keras.activations.get`` of TF 1.15 and TF 2.15 / Keras 2):
what the Keras-style cells (``tf.contrib.rnn``'s ``CFNCell`` / ``MinimalRNNCell``,
``rnnkit.tfa.rnn``) take as ``activation=``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from rnnkit import _checks

__all__ = ["KERAS_ACTIVATIONS", "TF1_KERAS_ACTIVATIONS", "get"]

Activation = Callable[[torch.Tensor], torch.Tensor]


def _hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Keras 2's piecewise-linear sigmoid: ``clip(0.2 * x + 0.5, 0, 1)``."""
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


def _linear(x: torch.Tensor) -> torch.Tensor:
    return x


def _softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, -1)


#: name -> function, as Keras 2 names them (``swish`` / ``silu`` from TF 2.2 on)
KERAS_ACTIVATIONS: dict[str, Activation] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "relu": torch.relu,
    "elu": F.elu,
    "selu": F.selu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "softmax": _softmax,
    "swish": F.silu,
    "silu": F.silu,
    "exponential": torch.exp,
    "linear": _linear,
}
#: TF 1.15's ``keras.activations``: the same without ``swish`` / ``silu``
TF1_KERAS_ACTIVATIONS: dict[str, Activation] = {
    k: v for k, v in KERAS_ACTIVATIONS.items() if k not in ("swish", "silu")}


def get(name: str, value: Any,
        known: dict[str, Activation] = KERAS_ACTIVATIONS) -> Activation:
    """``keras.activations.get``: a name from ``known`` (any case; TF 1.15's cells pass
    :data:`TF1_KERAS_ACTIVATIONS`), a function, or ``None`` (linear, as Keras reads it);
    anything else is refused naming the argument ``name``."""
    if value is None:
        return _linear
    if isinstance(value, str):
        fn = known.get(value.lower())
        if fn is None:
            raise ValueError(f"{name}: unknown activation {value!r}; known names: "
                             f"{sorted(known)}")
        return fn
    return _checks.as_function(name, value, optional=False)
