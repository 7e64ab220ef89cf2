"""``Dense``: TF's fully connected layer, sized at its first call when its input depth is not
given (``tf.layers.Dense`` / ``tf.keras.layers.Dense`` without an activation).

The weights are stored as ``nn.Linear`` stores them (``weight [units, in_features]``,
``bias [units]``); in TF's layout the kernel is ``[in_features, units]``.  A layer sized later
holds its parameters from construction on (``torch.nn.UninitializedParameter``, filled in
place), so an optimizer made first trains them, as in TF.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit import _checks, initializers
from rnnkit.compat import layout
from rnnkit.lazy import LazyParameter, LazyParameterError

__all__ = ["Dense"]


class Dense(nn.Linear):
    """``outputs = activation(inputs @ kernel + bias)`` over the last axis (an
    ``nn.Linear`` whose input depth may be fixed at the first call).

    Args:
        units: output depth.
        activation: a function applied to the result, or ``None``.
        use_bias: add a bias.
        kernel_initializer: TF's default ``glorot_uniform`` (see :mod:`rnnkit.initializers`
            for what is accepted), applied to the TF-shaped ``[in_features, units]`` kernel.
        bias_initializer: TF's default zeros.
        in_features: the input depth, if known now; else the first call sizes the layer.
        dtype, device: of the parameters (default: PyTorch's default dtype; the first input's
            dtype and device when sized at the first call).
        name: the TF scope name (``"dense"``).

    Shapes: ``[..., in_features] -> [..., units]``.
    """

    def __init__(self, units: int, activation: Callable | None = None, use_bias: bool = True,
                 kernel_initializer: Any = None, bias_initializer: Any = None,
                 in_features: int | None = None, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, name: str | None = None):
        nn.Module.__init__(self)  # nn.Linear's own __init__ sizes the weight now
        self.out_features = _checks.as_count("units", units)
        self.activation = _checks.as_function("activation", activation)
        self.use_bias = _checks.as_flag("use_bias", use_bias)
        self._kernel_init = initializers.resolve("kernel_initializer", kernel_initializer)
        self._bias_init = initializers.resolve("bias_initializer", bias_initializer)
        self._dtype = _checks.as_dtype("dtype", dtype)
        self.tf_scope_name = name
        self.weight = LazyParameter(owner=f"Dense({units}).weight")
        self.bias = LazyParameter(owner=f"Dense({units}).bias") if self.use_bias else None
        if in_features is not None:
            self.build(_checks.as_count("in_features", in_features), self._dtype,
                       torch.device(device) if device is not None else None)

    @property
    def in_features(self) -> int | None:  # type: ignore[override]
        """The input depth (``None`` until the layer is sized)."""
        return None if self._lazy() else self.weight.shape[1]

    @in_features.setter
    def in_features(self, value: int) -> None:
        raise AttributeError("Dense.in_features is fixed by the layer's weight")

    def _lazy(self) -> bool:
        return isinstance(self.weight, nn.UninitializedParameter)

    def build(self, in_features: int, dtype: torch.dtype | None = None,
              device: torch.device | None = None) -> None:
        """Size the layer for inputs of depth ``in_features`` and initialise it."""
        if not self._lazy():
            return
        dtype = self._dtype or dtype or torch.get_default_dtype()
        self.weight.materialize((self.out_features, in_features), device=device, dtype=dtype)
        if self.bias is not None:
            self.bias.materialize((self.out_features,), device=device, dtype=dtype)
        layout.initialize(self)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        if self._lazy():
            raise LazyParameterError(
                f"state_dict(): {prefix or 'a '}Dense layer is sized at its first call and has "
                "no value yet: run the model once on example inputs first, "
                "rnnkit.rnn.build(model, *example_inputs)")
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        weight = state_dict.get(prefix + "weight")
        if self._lazy() and isinstance(weight, torch.Tensor) and weight.dim() == 2:
            self.build(weight.shape[1], weight.dtype if weight.is_floating_point() else None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``[..., in_features] -> [..., units]``."""
        if self._lazy():
            _checks.tensor("inputs", inputs)
            self.build(inputs.shape[-1], inputs.dtype if inputs.is_floating_point() else None,
                       inputs.device)
        out = F.linear(inputs, self.weight, self.bias)
        return self.activation(out) if self.activation is not None else out

    # -- TF layout -----------------------------------------------------------------------
    @property
    def tf_name(self) -> str:
        """TF scope name: ``name=`` or ``"dense"``."""
        return self.tf_scope_name or "dense"

    def tf_variables(self, available: Collection[str] = ()) -> dict[str, layout.TFVariable]:
        """``kernel [in_features, units]`` (glorot-uniform) and ``bias [units]`` (zeros)."""
        def build(shape: tuple[int, ...]) -> None:
            self.build(shape[0])

        out = {"kernel": layout.param(lambda: self.weight, "kernel", transpose=True,
                                      initializer=self._kernel_init or "glorot_uniform",
                                      build=build)}
        if self.use_bias:
            out["bias"] = layout.param(lambda: self.bias, "bias",
                                       initializer=self._bias_init or 0.0)
        return out

    def tf_children(self) -> list:
        return []

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, units={self.out_features}, "
                f"use_bias={self.use_bias}")
