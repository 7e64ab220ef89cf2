"""``tfa.rnn`` (tensorflow-addons 0.23): the Keras-style cells ``LayerNormLSTMCell``,
``LayerNormSimpleRNNCell``, ``NASCell``, ``PeepholeLSTMCell`` and ``ESNCell`` on rnnkit's
:class:`~rnnkit.rnn.RNNCell`, so they run under :func:`rnnkit.rnn.dynamic_rnn` and the
seq2seq decoders.

Each keeps Keras's variables, names and layouts (``kernel [I, gates * H]``,
``recurrent_kernel [H, gates * H]``, ``bias``; Keras's gate order ``i, f, c, o``; the layer
normalisations' ``gamma`` / ``beta``) and Keras's state: a list ``[h, c]`` for the LSTMs,
``[c, m]`` for ``NASCell`` (tfa's order), one tensor for the others.  A Keras checkpoint's
values load through :func:`rnnkit.compat.load_tf_variables` under the cell's name
(``layer_norm_lstm_cell/kernel``, ...).

Arguments are Keras's: activations by name (``"tanh"``, ``"sigmoid"``, ``"relu"``,
``"linear"``, ...) or as functions, initializers by Keras name or anything
:func:`rnnkit.initializers.resolve` takes.  Regularizers, constraints and the cells' own
``dropout`` / ``recurrent_dropout`` are not available: anything but their defaults is refused
(wrap the cell in :class:`rnnkit.rnn.DropoutWrapper` for dropout).
"""

from __future__ import annotations

from typing import Any

import torch

from rnnkit import _checks, activations, initializers
from rnnkit.rnn.cells import layer_norm
from rnnkit.rnn.contrib import NASCell as _ContribNASCell
from rnnkit.rnn.contrib import _TFLayoutCell

__all__ = [
    "ESNCell",
    "LayerNormLSTMCell",
    "LayerNormSimpleRNNCell",
    "NASCell",
    "PeepholeLSTMCell",
]

def _refuse_unsupported(owner: str, **given: Any) -> None:
    """Keras arguments rnnkit has no counterpart for: only their defaults are accepted."""
    for arg, value in given.items():
        if arg in ("dropout", "recurrent_dropout"):
            if _checks.as_number(arg, value, low=0, high=1) != 0:
                raise ValueError(f"{owner}: {arg}={value} is not supported (Keras's per-cell "
                                 "dropout masks); wrap the cell in rnn.DropoutWrapper")
        elif value is not None:
            raise ValueError(f"{owner}: {arg} is not supported by rnnkit (no Keras "
                             "regularizers or constraints); pass None")


class _UnitForgetBias(initializers.Initializer):
    """Keras's ``unit_forget_bias``: ``bias_initializer`` for ``i``, ones for ``f``,
    ``bias_initializer`` for ``c, o``."""

    def __init__(self, inner: initializers.Initializer, units: int):
        super().__init__()
        self.inner, self.units = inner, units

    def fill(self, t, gen):
        h = self.units
        self.inner.fill(t[:h], gen)
        t[h:2 * h].fill_(1.0)
        self.inner.fill(t[2 * h:], gen)


class _KerasCell(_TFLayoutCell):
    """A Keras cell: variables in Keras's layout and names, built like TF's."""

    def __init__(self, units, name, dtype, input_size, trainable=True):
        super().__init__(units, name, dtype, input_size, trainable=trainable)

    @property
    def units(self) -> int:
        """Keras's ``units``."""
        return self._num_units

    def _initializer(self, name):
        return self._inits.get(name)


class PeepholeLSTMCell(_KerasCell):
    """``tfa.rnn.PeepholeLSTMCell``: Keras's ``LSTMCell`` with peephole connections (Gers et
    al. 2002, Sak et al. 2014).

    ``z = x @ kernel + h @ recurrent_kernel + bias`` split ``i, f, c, o``; ``i = ra(z_i +
    input_gate_peephole_weights * c)``, ``f = ra(z_f + forget_gate_peephole_weights * c)``,
    ``c' = f * c + i * act(z_c)``, ``o = ra(z_o + output_gate_peephole_weights * c')``, ``h'
    = o * act(c')`` (``act`` = ``activation``, ``ra`` = ``recurrent_activation``).

    Args:
        units: ``H``.
        activation, recurrent_activation: default ``tanh`` / ``sigmoid``.
        use_bias: add ``bias``.
        kernel_initializer, recurrent_initializer, bias_initializer: default
            ``glorot_uniform``, ``orthogonal``, ``zeros``; the peephole weights take
            ``kernel_initializer`` (as tfa).
        unit_forget_bias: start the forget part of ``bias`` at one.
        implementation: Keras's 1 or 2 (the same values either way).
        kernel_regularizer, ..., bias_constraint, dropout, recurrent_dropout: refused
            unless left at their defaults.
        name: default ``peephole_lstm_cell``.

    Shapes: inputs ``[batch, I]``; state ``[h, c]`` (a list, Keras's order), each ``[batch,
    H]``; output ``h [batch, H]``.  Variables: ``kernel [I, 4H]``, ``recurrent_kernel [H,
    4H]``, ``bias [4H]``, ``input_gate_peephole_weights``, ``forget_gate_peephole_weights``,
    ``output_gate_peephole_weights [H]``.  The input product is hoisted (``project_inputs``).
    """

    _fast_paths = ("project_inputs",)
    _peepholes = True

    def __init__(self, units: int, activation: Any = "tanh",
                 recurrent_activation: Any = "sigmoid", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 unit_forget_bias: bool = True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, implementation: int = 2, *,
                 name: str | None = None, dtype: torch.dtype | None = None,
                 trainable: bool = True, input_size: int | None = None):
        owner = type(self).__name__
        _refuse_unsupported(owner, kernel_regularizer=kernel_regularizer,
                            recurrent_regularizer=recurrent_regularizer,
                            bias_regularizer=bias_regularizer,
                            kernel_constraint=kernel_constraint,
                            recurrent_constraint=recurrent_constraint,
                            bias_constraint=bias_constraint, dropout=dropout,
                            recurrent_dropout=recurrent_dropout)
        if implementation not in (1, 2):
            raise ValueError(f"implementation must be 1 or 2, received {implementation!r}")
        units = _checks.as_count("units", units)
        self._act = activations.get("activation", activation)
        self._rec_act = activations.get("recurrent_activation", recurrent_activation)
        self._use_bias = _checks.as_flag("use_bias", use_bias)
        k_init = initializers.resolve("kernel_initializer", kernel_initializer)
        b_init = initializers.resolve("bias_initializer", bias_initializer) \
            or initializers.zeros_initializer()
        if _checks.as_flag("unit_forget_bias", unit_forget_bias):
            b_init = _UnitForgetBias(b_init, units)
        self._inits = {"kernel": k_init, "bias": b_init,
                       "recurrent_kernel": initializers.resolve("recurrent_initializer",
                                                                recurrent_initializer)}
        if self._peepholes:
            self._inits.update({f"{g}_gate_peephole_weights": k_init
                                for g in ("input", "forget", "output")})
        self._extra_init()
        super().__init__(units, name, dtype, input_size, trainable)

    def _extra_init(self) -> None:
        """Subclasses' own arguments, read before the variables are declared."""

    def _shapes(self, input_depth):
        h = self._num_units
        out = {"kernel": (input_depth, 4 * h), "recurrent_kernel": (h, 4 * h)}
        if self._use_bias:
            out["bias"] = (4 * h,)
        if self._peepholes:
            out.update({f"{g}_gate_peephole_weights": (h,)
                        for g in ("input", "forget", "output")})
        return out

    @property
    def state_size(self):
        return [self._num_units, self._num_units]

    def project_inputs(self, inputs):
        """``[..., I] -> [..., 4H]``: ``x @ kernel + bias``."""
        z = inputs @ self.kernel
        return z + self.bias if self._use_bias else z

    def _carry_and_output(self, z, c):
        zi, zf, zc, zo = z.chunk(4, -1)
        ra = self._rec_act
        i = ra(zi + self.input_gate_peephole_weights * c)
        f = ra(zf + self.forget_gate_peephole_weights * c)
        new_c = f * c + i * self._act(zc)
        o = ra(zo + self.output_gate_peephole_weights * new_c)
        return new_c, o

    def call_projected(self, projected, state):
        h, c = state
        new_c, o = self._carry_and_output(projected + h @ self.recurrent_kernel, c)
        new_h = o * self._act(new_c)
        return new_h, [new_h, new_c]


class LayerNormLSTMCell(PeepholeLSTMCell):
    """``tfa.rnn.LayerNormLSTMCell``: Keras's ``LSTMCell`` with layer normalisation (Ba et
    al. 2016) of the input product, the recurrent product and the new carry.

    ``z = kernel_norm(x @ kernel) + recurrent_norm(h @ recurrent_kernel) + bias`` split ``i,
    f, c, o``; ``c' = state_norm(ra(z_f) * c + ra(z_i) * act(z_c))``; ``h' = ra(z_o) *
    act(c')``.  Each norm is ``(v - mean) / sqrt(var + norm_epsilon) * gamma + beta``.

    Args:
        units, activation, recurrent_activation, use_bias, the initializers,
            unit_forget_bias, implementation: as :class:`PeepholeLSTMCell`.
        norm_gamma_initializer, norm_beta_initializer: default ``ones`` / ``zeros``.
        norm_epsilon: default ``1e-3``.
        regularizers, constraints, dropout, recurrent_dropout: refused unless left at their
            defaults.
        name: default ``layer_norm_lstm_cell``.

    Shapes: inputs ``[batch, I]``; state ``[h, c]``, each ``[batch, H]``; output ``[batch,
    H]``.  Variables: ``kernel [I, 4H]``, ``recurrent_kernel [H, 4H]``, ``bias [4H]``,
    ``kernel_norm/gamma``, ``kernel_norm/beta``, ``recurrent_norm/gamma``,
    ``recurrent_norm/beta [4H]``, ``state_norm/gamma``, ``state_norm/beta [H]``.
    """

    _fast_paths = ("project_inputs",)
    _peepholes = False

    def __init__(self, units: int, activation: Any = "tanh",
                 recurrent_activation: Any = "sigmoid", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 unit_forget_bias: bool = True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, norm_gamma_initializer: Any = "ones",
                 norm_beta_initializer: Any = "zeros", norm_epsilon: float = 1e-3,
                 implementation: int = 2, *, name: str | None = None,
                 dtype: torch.dtype | None = None, trainable: bool = True,
                 input_size: int | None = None):
        self._gamma_init = initializers.resolve("norm_gamma_initializer",
                                                norm_gamma_initializer)
        self._beta_init = initializers.resolve("norm_beta_initializer", norm_beta_initializer)
        self._eps = _checks.as_number("norm_epsilon", norm_epsilon, low=0)
        super().__init__(units, activation, recurrent_activation, use_bias,
                         kernel_initializer, recurrent_initializer, bias_initializer,
                         unit_forget_bias, kernel_regularizer, recurrent_regularizer,
                         bias_regularizer, kernel_constraint, recurrent_constraint,
                         bias_constraint, dropout, recurrent_dropout, implementation,
                         name=name, dtype=dtype, trainable=trainable, input_size=input_size)

    _NORMS = ("kernel_norm", "recurrent_norm", "state_norm")

    def _extra_init(self):
        for n in self._NORMS:
            self._inits[f"{n}/gamma"] = self._gamma_init
            self._inits[f"{n}/beta"] = self._beta_init

    def _shapes(self, input_depth):
        h = self._num_units
        out = super()._shapes(input_depth)
        for n, size in zip(self._NORMS, (4 * h, 4 * h, h), strict=True):
            out.update({f"{n}/gamma": (size,), f"{n}/beta": (size,)})
        return out

    def _norm(self, which: str, x: torch.Tensor) -> torch.Tensor:
        return layer_norm(x, getattr(self, f"{which}_gamma"), getattr(self, f"{which}_beta"),
                           self._eps)

    def project_inputs(self, inputs):
        """``[..., I] -> [..., 4H]``: ``kernel_norm(x @ kernel) + bias``."""
        z = self._norm("kernel_norm", inputs @ self.kernel)
        return z + self.bias if self._use_bias else z

    def call_projected(self, projected, state):
        h, c = state
        z = projected + self._norm("recurrent_norm", h @ self.recurrent_kernel)
        zi, zf, zc, zo = z.chunk(4, -1)
        ra = self._rec_act
        new_c = self._norm("state_norm", ra(zf) * c + ra(zi) * self._act(zc))
        new_h = ra(zo) * self._act(new_c)
        return new_h, [new_h, new_c]


class LayerNormSimpleRNNCell(_KerasCell):
    """``tfa.rnn.LayerNormSimpleRNNCell``: Keras's ``SimpleRNNCell`` with a scale-only
    layer normalisation before the bias: ``h' = act(ln(x @ kernel + h @ recurrent_kernel) +
    bias)``, ``ln(v) = (v - mean) / sqrt(var + layernorm_epsilon) * gamma``.

    Args:
        units: ``H``.
        activation: default ``tanh`` (``None``: linear).
        use_bias: add ``bias``.
        layernorm_epsilon: default ``1e-5``.
        kernel_initializer, recurrent_initializer, bias_initializer, gamma_initializer:
            default ``glorot_uniform``, ``orthogonal``, ``zeros``, ``ones``.
        regularizers, constraints, dropout, recurrent_dropout: refused unless left at their
            defaults.
        name: default ``layer_norm_simple_rnn_cell``.

    Shapes: inputs ``[batch, I]``; state and output ``[batch, H]``.  Variables: ``kernel [I,
    H]``, ``recurrent_kernel [H, H]``, ``bias [H]``, ``gamma [H]`` (the normalisation's,
    built in the cell's scope as tfa builds it).  The input product is hoisted.
    """

    _fast_paths = ("project_inputs",)

    def __init__(self, units: int, activation: Any = "tanh", use_bias: bool = True,
                 layernorm_epsilon: float = 1e-05, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, gamma_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 gamma_constraint=None, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 *, name: str | None = None, dtype: torch.dtype | None = None,
                 trainable: bool = True, input_size: int | None = None):
        _refuse_unsupported(type(self).__name__, kernel_regularizer=kernel_regularizer,
                            recurrent_regularizer=recurrent_regularizer,
                            bias_regularizer=bias_regularizer,
                            gamma_regularizer=gamma_regularizer,
                            kernel_constraint=kernel_constraint,
                            recurrent_constraint=recurrent_constraint,
                            bias_constraint=bias_constraint, gamma_constraint=gamma_constraint,
                            dropout=dropout, recurrent_dropout=recurrent_dropout)
        self._act = activations.get("activation", activation)
        self._use_bias = _checks.as_flag("use_bias", use_bias)
        self._eps = _checks.as_number("layernorm_epsilon", layernorm_epsilon, low=0)
        self._inits = {
            "kernel": initializers.resolve("kernel_initializer", kernel_initializer),
            "recurrent_kernel": initializers.resolve("recurrent_initializer",
                                                     recurrent_initializer),
            "bias": initializers.resolve("bias_initializer", bias_initializer)
            or initializers.zeros_initializer(),
            "gamma": initializers.resolve("gamma_initializer", gamma_initializer)
            or initializers.ones_initializer()}
        super().__init__(units, name, dtype, input_size, trainable)

    def _shapes(self, input_depth):
        h = self._num_units
        out = {"kernel": (input_depth, h), "recurrent_kernel": (h, h)}
        if self._use_bias:
            out["bias"] = (h,)
        out["gamma"] = (h,)
        return out

    @property
    def state_size(self) -> int:
        return self._num_units

    def project_inputs(self, inputs):
        """``[..., I] -> [..., H]``: ``x @ kernel`` (the bias comes after the norm)."""
        return inputs @ self.kernel

    def call_projected(self, projected, state):
        z = layer_norm(projected + state @ self.recurrent_kernel, self.gamma, None, self._eps)
        if self._use_bias:
            z = z + self.bias
        out = self._act(z)
        return out, out


class NASCell(_ContribNASCell):
    """``tfa.rnn.NASCell``: :class:`rnnkit.rnn.NASCell`'s step (Zoph & Le 2017) with tfa's
    arguments and state order.

    Args:
        units: ``H``.
        projection: project the output to ``P``.
        use_bias: add ``bias [8H]`` to the recurrent product.
        kernel_initializer, recurrent_initializer, projection_initializer,
            bias_initializer: default ``glorot_uniform`` (the first three), ``zeros``.
        name: default ``nas_cell``.

    Shapes: inputs ``[batch, I]``; state ``[c [batch, H], m [batch, P or H]]`` (a list,
    tfa's order); output ``m``.  Variables: ``kernel [I, 8H]``, ``recurrent_kernel [P or H,
    8H]``, ``bias [8H]``, ``projection_weights [H, P]``.
    """

    _fast_paths = ("project_inputs",)

    def __init__(self, units: int, projection: int | None = None, use_bias: bool = False,
                 kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "glorot_uniform",
                 projection_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", *, name: str | None = None,
                 dtype: torch.dtype | None = None, trainable: bool = True,
                 input_size: int | None = None):
        self._inits = {
            "kernel": initializers.resolve("kernel_initializer", kernel_initializer),
            "recurrent_kernel": initializers.resolve("recurrent_initializer",
                                                     recurrent_initializer),
            "projection_weights": initializers.resolve("projection_initializer",
                                                       projection_initializer),
            "bias": initializers.resolve("bias_initializer", bias_initializer)
            or initializers.zeros_initializer()}
        if not trainable:
            raise ValueError("trainable=False: freeze the cell's parameters with "
                             "cell.requires_grad_(False)")
        super().__init__(units, num_proj=projection, use_bias=use_bias, name=name,
                         dtype=dtype, input_size=input_size)

    @property
    def units(self) -> int:
        """Keras's ``units``."""
        return self._num_units

    def _initializer(self, name):
        return self._inits.get(name)

    @property
    def state_size(self):
        return [self._num_units, self._num_proj or self._num_units]

    def call_projected(self, projected, state):
        out, new = super().call_projected(projected, state)
        return out, [new.c, new.h]


class _ESNRecurrent(initializers.Initializer):
    """tfa's reservoir: ``recurrent_initializer``'s values kept with probability
    ``connectivity``, scaled to ``spectral_radius`` (over the largest absolute eigenvalue,
    or over the 2-norm with ``use_norm2``)."""

    def __init__(self, cell: ESNCell, inner: initializers.Initializer):
        super().__init__()
        self._cell, self.inner = [cell], inner  # the cell: not a submodule

    def fill(self, t, gen):
        cell = self._cell[0]
        self.inner.fill(t, gen)
        keep = torch.rand(t.shape, generator=gen, dtype=t.dtype) <= cell._connectivity
        t.mul_(keep.to(t.dtype))
        if cell._use_norm2:
            norm = t.pow(2).sum().sqrt()
            scale = cell._spectral_radius / (norm + (norm == 0).to(t.dtype))
        else:
            top = torch.linalg.eigvals(t).abs().max()
            scale = cell._spectral_radius / top if top > 0 else torch.zeros((), dtype=t.dtype)
        t.mul_(scale)


class ESNCell(_KerasCell):
    """``tfa.rnn.ESNCell``: an echo-state network's reservoir (Jaeger 2001), its weights
    fixed (not trained).

    ``y = act([x, h] @ [kernel; recurrent_kernel] + bias)``; ``h' = (1 - leaky) * h + leaky
    * y``.

    Args:
        units: ``H``, the reservoir size.
        connectivity: the probability that a reservoir connection exists (default 0.1).
        leaky: the leaking rate (1: no leaky integration).
        spectral_radius: the reservoir matrix's spectral radius at initialisation.
        use_norm2: scale by the 2-norm (an upper bound) instead of the eigenvalues.
        use_bias: add ``bias``.
        activation: default ``tanh``.
        kernel_initializer, recurrent_initializer, bias_initializer: default
            ``glorot_uniform``, ``glorot_uniform`` (then masked and scaled), ``zeros``.
        name: default ``esn_cell``.

    Shapes: inputs ``[batch, I]``; state and output ``[batch, H]``.  Variables (none
    trainable, as tfa): ``recurrent_kernel [H, H]``, ``kernel [I, H]``, ``bias [H]``.
    """

    _fast_paths = ("project_inputs",)

    def __init__(self, units: int, connectivity: float = 0.1, leaky: float = 1,
                 spectral_radius: float = 0.9, use_norm2: bool = False, use_bias: bool = True,
                 activation: Any = "tanh", kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", *, name: str | None = None,
                 dtype: torch.dtype | None = None, trainable: bool = True,
                 input_size: int | None = None):
        self._connectivity = _checks.as_number("connectivity", connectivity, low=0, high=1)
        self._leaky = _checks.as_number("leaky", leaky, low=0, high=1)
        self._spectral_radius = _checks.as_number("spectral_radius", spectral_radius, low=0)
        self._use_norm2 = _checks.as_flag("use_norm2", use_norm2)
        self._use_bias = _checks.as_flag("use_bias", use_bias)
        self._act = activations.get("activation", activation)
        rec = initializers.resolve("recurrent_initializer", recurrent_initializer) \
            or initializers.glorot_uniform_initializer()
        self._inits = {"recurrent_kernel": _ESNRecurrent(self, rec),
                       "kernel": initializers.resolve("kernel_initializer", kernel_initializer),
                       "bias": initializers.resolve("bias_initializer", bias_initializer)
                       or initializers.zeros_initializer()}
        super().__init__(units, name, dtype, input_size, trainable)

    def _shapes(self, input_depth):
        h = self._num_units
        out = {"recurrent_kernel": (h, h), "kernel": (input_depth, h)}
        if self._use_bias:
            out["bias"] = (h,)
        return out

    def build(self, inputs_shape):
        self._input_size = _checks.matrix_depth(type(self).__name__, inputs_shape)
        for name, shape in self._shapes(self._input_size).items():
            self.add_variable(name, shape, initializer=self._initializer(name),
                              trainable=False)

    @property
    def state_size(self) -> int:
        return self._num_units

    def project_inputs(self, inputs):
        """``[..., I] -> [..., H]``: ``x @ kernel + bias``."""
        z = inputs @ self.kernel
        return z + self.bias if self._use_bias else z

    def call_projected(self, projected, state):
        y = self._act(projected + state @ self.recurrent_kernel)
        out = (1 - self._leaky) * state + self._leaky * y
        return out, out
