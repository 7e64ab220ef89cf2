"""contrib.rnn's other recurrences: ``LayerNormBasicGRUCell`` (TF pull request 14578),
``SRUCell``, ``NASCell``, ``UGRNNCell``, ``CFNCell``, ``MinimalRNNCell``, the Ind cells
(``IndRNNCell``, ``IndyGRUCell``, ``IndyLSTMCell``) and ``IntersectionRNNCell``."""

from __future__ import annotations

from typing import Any

import torch

from rnnkit import _checks, activations, initializers
from rnnkit.rnn.cell import LSTMStateTuple
from rnnkit.rnn.cells import (
    Activation,
    layer_norm,
)
from rnnkit.rnn.contrib._layout import (
    _TFLayoutCell,
)

# -- LayerNormBasicGRUCell ---------------------------------------------------------------------

class LayerNormBasicGRUCell(_TFLayoutCell):
    """A GRU with layer normalisation before its nonlinearities: ``LayerNormBasicGRUCell``
    of TensorFlow pull request 14578 (proposed for ``tf.contrib.rnn``, never merged; the
    class TF 1.x programs copy), with contrib ``layers.layer_norm`` (epsilon 1e-12, 1e-3
    in float16) and no biases::

        z  = sigmoid(LN_update_gate([x, h] @ update_gate/kernel))
        r  = sigmoid(LN_reset_gate([x, h] @ reset_gate/kernel))
        c  = activation(LN_candidate_linear_x(x @ candidate_linear_x/kernel)
                        + r * LN_candidate_linear_h(h @ candidate_linear_h/kernel))
        h' = (1 - z) * h + z * c

    where ``LN_s(a) = (a - mean(a)) / sqrt(var(a) + eps) * s/gamma + s/beta`` over the units.

    Args:
        num_units: ``H``.
        activation: of the candidate, default ``tanh``.
        norm_gain: the initial ``gamma`` of every normalisation.
        norm_shift: the initial ``beta``.
        reuse: TF's variable reuse flag, accepted (a module's parameters are its own).

    Shapes: inputs ``[batch, I]``; state and output ``[batch, H]``.  TF variables
    (``layer_norm_basic_gru_cell/``): ``update_gate/kernel``, ``reset_gate/kernel [I + H,
    H]``, ``candidate_linear_x/kernel [I, H]``, ``candidate_linear_h/kernel [H, H]``
    (glorot-uniform, TF's default), ``{update_gate, reset_gate, candidate_linear_x,
    candidate_linear_h}/{gamma, beta} [H]``.  The input products of all steps are computed
    at once (``project_inputs``).
    """

    _fast_paths = ("project_inputs",)

    tf_default_name = "layer_norm_basic_gru_cell"

    _SCOPES = ("update_gate", "reset_gate", "candidate_linear_x", "candidate_linear_h")

    def __init__(self, num_units: int, activation: Activation | None = None,
                 norm_gain: float = 1.0, norm_shift: float = 0.0, reuse=None, *,
                 name: str | None = None, dtype: torch.dtype | None = None,
                 input_size: int | None = None):
        self._activation = _checks.as_function("activation", activation) or torch.tanh
        self._norm_gain = _checks.as_number("norm_gain", norm_gain)
        self._norm_shift = _checks.as_number("norm_shift", norm_shift)
        super().__init__(num_units, name, dtype, input_size, reuse=reuse)

    def _shapes(self, input_depth):
        h = self._num_units
        out = {f"{scope}/{w}": (h,) for scope in self._SCOPES for w in ("gamma", "beta")}
        out.update({"update_gate/kernel": (input_depth + h, h),
                    "reset_gate/kernel": (input_depth + h, h),
                    "candidate_linear_x/kernel": (input_depth, h),
                    "candidate_linear_h/kernel": (h, h)})
        return out

    def _initializer(self, name):
        if name.endswith("/gamma"):
            return self._norm_gain
        if name.endswith("/beta"):
            return self._norm_shift
        return None

    def input_depth_from(self, params):
        kernel = params.get("candidate_linear_x_kernel")
        return int(kernel.shape[0]) if kernel is not None and kernel.dim() == 2 else None

    @property
    def state_size(self) -> int:
        return self._num_units

    def _norm(self, x: torch.Tensor, scope: str) -> torch.Tensor:
        return layer_norm(x, getattr(self, f"{scope}_gamma"), getattr(self, f"{scope}_beta"))

    def project_inputs(self, inputs):
        """``[..., I] -> [..., 3H]``: the input rows' products of the two gates' kernels and
        the normalised ``x @ candidate_linear_x/kernel``."""
        depth = self.candidate_linear_x_kernel.shape[0]
        return torch.cat([inputs @ self.update_gate_kernel[:depth],
                          inputs @ self.reset_gate_kernel[:depth],
                          self._norm(inputs @ self.candidate_linear_x_kernel,
                                     "candidate_linear_x")], -1)

    def call_projected(self, projected, state):
        depth = self.candidate_linear_x_kernel.shape[0]
        zx, rx, cx = projected.chunk(3, -1)
        z = torch.sigmoid(self._norm(zx + state @ self.update_gate_kernel[depth:],
                                     "update_gate"))
        r = torch.sigmoid(self._norm(rx + state @ self.reset_gate_kernel[depth:],
                                     "reset_gate"))
        ch = self._norm(state @ self.candidate_linear_h_kernel, "candidate_linear_h")
        candidate = self._activation(cx + r * ch)
        new_h = (1 - z) * state + z * candidate
        return new_h, new_h


class SRUCell(_TFLayoutCell):
    """``tf.contrib.rnn.SRUCell``: the simple recurrent unit (Lei et al. 2017).

    ``x~, f, r, x' = split(x @ kernel, 4)``, ``f, r = sigmoid([f, r] + bias)``,
    ``c' = f * c + (1 - f) * x~``, ``h = r * activation(c') + (1 - r) * x'``.

    Args:
        num_units: ``H``.
        activation: default ``tanh``.

    Shapes: inputs ``[batch, I]``, state ``c [batch, H]``, output ``h [batch, H]``.
    TF variables (``sru_cell/``): ``kernel [I, 4H]``, ``bias [2H]`` (zeros).  The input
    product of all steps is computed at once (``project_inputs``).
    """

    _fast_paths = ("project_inputs",)

    def __init__(self, num_units: int, activation: Activation | None = None, reuse=None,
                 name: str | None = None, *, dtype: torch.dtype | None = None,
                 input_size: int | None = None):
        self._activation = _checks.as_function("activation", activation) or torch.tanh
        super().__init__(num_units, name, dtype, input_size, reuse=reuse)

    def _shapes(self, input_depth):
        return {"kernel": (input_depth, 4 * self._num_units), "bias": (2 * self._num_units,)}

    def _initializer(self, name):
        return 0.0 if name == "bias" else None

    @property
    def state_size(self) -> int:
        return self._num_units

    def project_inputs(self, inputs):
        """``[..., I] -> [..., 4H]``: ``x @ kernel`` with ``bias`` added to ``f`` and ``r``."""
        h = self._num_units
        u = inputs @ self.kernel
        return torch.cat([u[..., :h], u[..., h:3 * h] + self.bias, u[..., 3 * h:]], -1)

    def call_projected(self, projected, state):
        x_bar, f, r, x_tx = projected.chunk(4, dim=-1)
        f, r = torch.sigmoid(f), torch.sigmoid(r)
        c = f * state + (1.0 - f) * x_bar
        h = r * self._activation(c) + (1.0 - r) * x_tx
        return h, c


class NASCell(_TFLayoutCell):
    """``tf.contrib.rnn.NASCell``: the recurrent cell found by neural architecture search
    (Zoph & Le 2017), with an optional projection.

    With ``x_k, m_k`` the 8 splits of ``x @ kernel`` and ``m @ recurrent_kernel (+ bias)``:
    layer 1 ``sigmoid(x0+m0), relu(x1+m1), sigmoid(x2+m2), relu(x3*m3), tanh(x4+m4),
    sigmoid(x5+m5), tanh(x6+m6), sigmoid(x7+m7)``; layer 2 ``tanh(l0*l1), tanh(l2+l3),
    tanh(l4*l5), sigmoid(l6+l7)``; ``c' = tanh(l2_0 + c) * l2_1``; ``m' = tanh(c' *
    tanh(l2_2 + l2_3))`` (then ``@ projection_weights``).

    Args:
        num_units: ``H``.
        num_proj: project the output to ``P``.
        use_bias: add ``bias [8H]`` to the recurrent product.

    Shapes: inputs ``[batch, I]``; state ``LSTMStateTuple(c [batch, H], m [batch, P or
    H])``; output ``[batch, P or H]``.  TF variables (``nas_cell/``): ``kernel [I, 8H]``,
    ``recurrent_kernel [P or H, 8H]``, ``bias [8H]``, ``projection_weights [H, P]``.
    """

    _fast_paths = ("project_inputs",)

    def __init__(self, num_units: int, num_proj: int | None = None, use_bias: bool = False,
                 reuse=None, *, name: str | None = None, dtype: torch.dtype | None = None,
                 input_size: int | None = None):
        self._num_proj = None if num_proj is None else _checks.as_count("num_proj", num_proj)
        self._use_bias = _checks.as_flag("use_bias", use_bias)
        super().__init__(num_units, name, dtype, input_size, reuse=reuse)

    def _shapes(self, input_depth):
        h, p = self._num_units, self._num_proj or self._num_units
        out = {"recurrent_kernel": (p, 8 * h), "kernel": (input_depth, 8 * h)}
        if self._use_bias:
            out["bias"] = (8 * h,)
        if self._num_proj is not None:
            out["projection_weights"] = (h, self._num_proj)
        return out

    def _initializer(self, name):
        return 0.0 if name == "bias" else None

    @property
    def state_size(self):
        return LSTMStateTuple(self._num_units, self._num_proj or self._num_units)

    @property
    def output_size(self) -> int:
        return self._num_proj or self._num_units

    def project_inputs(self, inputs):
        """``[..., I] -> [..., 8H]``: ``x @ kernel``."""
        return inputs @ self.kernel

    def call_projected(self, projected, state):
        c, m = state
        mm = m @ self.recurrent_kernel
        if self._use_bias:
            mm = mm + self.bias
        x, r = projected.chunk(8, -1), mm.chunk(8, -1)
        sig, relu, tanh = torch.sigmoid, torch.relu, torch.tanh
        l1 = (sig(x[0] + r[0]), relu(x[1] + r[1]), sig(x[2] + r[2]), relu(x[3] * r[3]),
              tanh(x[4] + r[4]), sig(x[5] + r[5]), tanh(x[6] + r[6]), sig(x[7] + r[7]))
        l2_0, l2_1 = tanh(l1[0] * l1[1]), tanh(l1[2] + l1[3])
        l2_2, l2_3 = tanh(l1[4] * l1[5]), sig(l1[6] + l1[7])
        new_c = tanh(l2_0 + c) * l2_1
        new_m = tanh(new_c * tanh(l2_2 + l2_3))
        if self._num_proj is not None:
            new_m = new_m @ self.projection_weights
        return new_m, LSTMStateTuple(new_c, new_m)


class UGRNNCell(_TFLayoutCell):
    """``tf.contrib.rnn.UGRNNCell``: the update-gate RNN (Collins et al. 2017).

    ``g, c = split([x, h] @ kernel + bias, 2)``; ``g = sigmoid(g + forget_bias)``;
    ``h' = g * h + (1 - g) * activation(c)``.

    Args:
        num_units: ``H``.
        initializer: of ``kernel`` (TF's default glorot-uniform).
        forget_bias: added to the gate.
        activation: default ``tanh``.

    Shapes: inputs ``[batch, I]``; state and output ``[batch, H]``.  TF variables
    (``ugrnn_cell/``): ``kernel [I + H, 2H]``, ``bias [2H]`` (zeros).
    """

    _fast_paths = ("project_inputs",)

    def __init__(self, num_units: int, initializer: Any = None, forget_bias: float = 1.0,
                 activation: Activation | None = None, reuse=None, *,
                 name: str | None = None, dtype: torch.dtype | None = None,
                 input_size: int | None = None):
        self._kernel_init = initializers.resolve("initializer", initializer)
        self._forget_bias = _checks.as_number("forget_bias", forget_bias)
        self._activation = _checks.as_function("activation", activation) or torch.tanh
        super().__init__(num_units, name, dtype, input_size, reuse=reuse)

    def _shapes(self, input_depth):
        h = self._num_units
        return {"kernel": (input_depth + h, 2 * h), "bias": (2 * h,)}

    def _initializer(self, name):
        return 0.0 if name == "bias" else self._kernel_init

    def input_depth_from(self, params):
        kernel = params.get("kernel")
        return int(kernel.shape[0]) - self._num_units if kernel is not None else None

    @property
    def state_size(self) -> int:
        return self._num_units

    def project_inputs(self, inputs):
        """``[..., I] -> [..., 2H]``: the input rows of ``kernel``, plus ``bias``."""
        return inputs @ self.kernel[: self.kernel.shape[0] - self._num_units] + self.bias

    def call_projected(self, projected, state):
        z = projected + state @ self.kernel[self.kernel.shape[0] - self._num_units:]
        g, c = z.chunk(2, -1)
        g = torch.sigmoid(g + self._forget_bias)
        new = g * state + (1.0 - g) * self._activation(c)
        return new, new


# -- Keras-style contrib cells (CFNCell, MinimalRNNCell) ----------------------------------------

#: What TF's layer constructors take through ``**kwargs`` besides the cell's own arguments.
_LAYER_KWARGS = ("trainable", "_reuse", "_scope", "dynamic", "autocast", "weights",
                 "activity_regularizer", "input_shape", "batch_input_shape", "batch_size")


def _layer_kwargs(owner: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ``**kwargs`` of a contrib ``LayerRNNCell`` (TF's ``tf.layers.Layer`` and Keras
    ``Layer`` arguments): those rnnkit honours are returned for :class:`RNNCell`, the others
    are refused by name; a name neither layer knows is a TypeError, as in TF."""
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in ("trainable", "_reuse"):
            out[key] = value
        elif key == "dynamic":  # eager-only in TF; every rnnkit cell runs eagerly
            _checks.as_flag(key, value)
        elif key == "autocast":
            if _checks.as_flag(key, value):
                raise ValueError(f"{owner}: autocast=True is not supported (rnnkit does not "
                                 "cast a cell's inputs); cast them to the cell's dtype")
        elif key in ("_scope", "weights", "activity_regularizer"):
            if value is not None:
                raise ValueError(f"{owner}: {key} is not supported by rnnkit (name the cell "
                                 "with name=, load weights through rnnkit.compat, add "
                                 f"regularisation to the loss); pass None, received {value!r}")
        elif key in ("input_shape", "batch_input_shape", "batch_size"):
            raise ValueError(f"{owner}: {key} is a Keras input-layer argument, not supported "
                             "by rnnkit (a cell is sized by its first inputs or by "
                             f"input_size=), received {value!r}")
        else:
            hint = (f" ({owner} initialises recurrent_kernel with kernel_initializer, as TF "
                    "does)" if key == "recurrent_initializer" else "")
            raise TypeError(f"{owner}: keyword argument not understood: {key!r}{hint}; "
                            f"expected one of the cell's arguments or {list(_LAYER_KWARGS)}")
    return out


class _KerasStyleCell(_TFLayoutCell):
    """A contrib ``LayerRNNCell`` written Keras-style: ``units``, activations and
    initializers by Keras name, the layer's own arguments through ``**kwargs``; state and
    output ``[batch, units]``."""

    _fast_paths = ("project_inputs",)

    def __init__(self, units: int, activation: Any, kernel_initializer: Any,
                 bias_initializer: Any, name: str | None, dtype: torch.dtype | None,
                 input_size: int | None, kwargs: dict[str, Any]):
        owner = type(self).__name__
        units = _checks.as_count("units", units)
        self._activation = activations.get("activation", activation,
                                           activations.TF1_KERAS_ACTIVATIONS)
        self._kernel_init = initializers.resolve("kernel_initializer", kernel_initializer)
        self._bias_init = initializers.resolve("bias_initializer", bias_initializer)
        super().__init__(units, name, dtype, input_size, **_layer_kwargs(owner, kwargs))

    @property
    def units(self) -> int:
        """TF's ``units``: the width of the state and of the output."""
        return self._num_units

    @property
    def state_size(self) -> int:
        return self._num_units

    def _initializer(self, name):
        # Keras's add_weight: an initializer of None is glorot-uniform, biases included
        return self._bias_init if name == "bias" else self._kernel_init


class CFNCell(_KerasStyleCell):
    """``tf.contrib.rnn.CFNCell``: the chaos-free network (Laurent & von Brecht, ICLR 2017),
    with TF's input gate ``1 - eta``::

        v, w       = kernel[:, :2H], kernel[:, 2H:]
        theta, eta = split(sigmoid(h @ recurrent_kernel + x @ v + bias), 2)
        h'         = theta * activation(h) + (1 - eta) * activation(x @ w)

    The output is ``h'``.

    Args:
        units: ``H``.
        activation: a Keras activation name or a function (default ``"tanh"``; ``None``:
            linear).
        kernel_initializer: of ``kernel`` and of ``recurrent_kernel`` (TF has no
            ``recurrent_initializer`` here); default ``"glorot_uniform"``.
        bias_initializer: of ``bias``; default ``"ones"`` (``None``: glorot-uniform, as
            Keras).
        name: the TF scope, default ``cfn_cell``.
        dtype: of the variables.
        input_size: build at once for inputs of this depth (rnnkit's; TF builds at the
            first call).
        **kwargs: TF's layer arguments: ``trainable`` (True only) and ``_reuse`` are
            accepted, ``dynamic`` is accepted and changes nothing, ``autocast=False``,
            ``weights=None``, ``activity_regularizer=None`` and ``_scope=None`` only; Keras's
            input-layer shapes are refused; any other name is a TypeError, as in TF.

    Shapes: inputs ``[batch, I]``; state and output ``[batch, H]``.  TF variables
    (``cfn_cell/``): ``kernel [I, 3H]`` (``V_theta, V_eta, W``), ``recurrent_kernel [H, 2H]``
    (``U_theta, U_eta``), ``bias [2H]`` (``b_theta, b_eta``).  The input products of all
    steps are computed at once (``project_inputs``).
    """

    def __init__(self, units: int, activation: Any = "tanh",
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "ones",
                 name: str | None = None, dtype: torch.dtype | None = None, *,
                 input_size: int | None = None, **kwargs: Any):
        super().__init__(units, activation, kernel_initializer, bias_initializer, name, dtype,
                         input_size, kwargs)

    def _shapes(self, input_depth):
        h = self._num_units
        return {"kernel": (input_depth, 3 * h), "recurrent_kernel": (h, 2 * h),
                "bias": (2 * h,)}

    def project_inputs(self, inputs):
        """``[..., I] -> [..., 3H]``: the gates' input part ``x @ v + bias`` and the
        activated projection ``activation(x @ w)``."""
        h = self._num_units
        u = inputs @ self.kernel
        return torch.cat([u[..., :2 * h] + self.bias, self._activation(u[..., 2 * h:])], -1)

    def call_projected(self, projected, state):
        h = self._num_units
        gates = torch.sigmoid(projected[..., :2 * h] + state @ self.recurrent_kernel)
        theta, eta = gates.chunk(2, -1)
        new_h = theta * self._activation(state) + (1.0 - eta) * projected[..., 2 * h:]
        return new_h, new_h


class MinimalRNNCell(_KerasStyleCell):
    """``tf.contrib.rnn.MinimalRNNCell`` (Chen, Pennington & Schoenholz, ICML 2018): the
    input is mapped to the state space, then mixed with the state by one update gate::

        w_x, w_z, w_h = kernel[:I], kernel[I:I + H], kernel[I + H:]
        z  = activation(x @ w_x)
        u  = sigmoid(z @ w_z + h @ w_h + bias)
        h' = u * h + (1 - u) * z

    The output is ``h'``.

    Args:
        units: ``H``.
        activation: of the input map ``z``: a Keras activation name or a function (default
            ``"tanh"``; ``None``: linear).
        kernel_initializer: of ``kernel``; default ``"glorot_uniform"``.
        bias_initializer: of the gate's ``bias``; default ``"ones"`` (``None``:
            glorot-uniform, as Keras).
        name: the TF scope, default ``minimal_rnn_cell``.
        dtype: of the variables.
        input_size: build at once for inputs of this depth (rnnkit's).
        **kwargs: TF's layer arguments, as for :class:`CFNCell`.

    Shapes: inputs ``[batch, I]``; state and output ``[batch, H]``.  TF variables
    (``minimal_rnn_cell/``): ``kernel [I + 2H, H]`` (``W_x`` over ``W_z, W_h``), ``bias
    [H]``.  The input map and its gate product for all steps are computed at once
    (``project_inputs``).
    """

    def __init__(self, units: int, activation: Any = "tanh",
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "ones",
                 name: str | None = None, dtype: torch.dtype | None = None, *,
                 input_size: int | None = None, **kwargs: Any):
        super().__init__(units, activation, kernel_initializer, bias_initializer, name, dtype,
                         input_size, kwargs)

    def _shapes(self, input_depth):
        h = self._num_units
        return {"kernel": (input_depth + 2 * h, h), "bias": (h,)}

    def input_depth_from(self, params):
        kernel = params.get("kernel")
        return int(kernel.shape[0]) - 2 * self._num_units \
            if kernel is not None and kernel.dim() == 2 else None

    def project_inputs(self, inputs):
        """``[..., I] -> [..., 2H]``: ``z = activation(x @ w_x)`` and the gate's ``z @ w_z +
        bias``."""
        h = self._num_units
        depth = self.kernel.shape[0] - 2 * h
        z = self._activation(inputs @ self.kernel[:depth])
        return torch.cat([z, z @ self.kernel[depth:depth + h] + self.bias], -1)

    def call_projected(self, projected, state):
        h = self._num_units
        z, gate = projected[..., :h], projected[..., h:]
        u = torch.sigmoid(gate + state @ self.kernel[self.kernel.shape[0] - h:])
        new_h = u * state + (1.0 - u) * z
        return new_h, new_h


# -- the Ind cells -----------------------------------------------------------------------------

class _IndCell(_TFLayoutCell):
    """The IndRNN family: ``x @ kernel_w`` plus a diagonal (elementwise) recurrence."""

    _fast_paths = ("project_inputs",)

    def __init__(self, num_units, activation, name, dtype, input_size, kernel_initializer=None,
                 bias_initializer=None, **kwargs):
        self._activation = _checks.as_function("activation", activation) or torch.tanh
        self._kernel_init = initializers.resolve("kernel_initializer", kernel_initializer)
        self._bias_init = initializers.resolve("bias_initializer", bias_initializer)
        super().__init__(num_units, name, dtype, input_size, **kwargs)

    def input_depth_from(self, params):
        w = params.get("kernel_w", params.get("gates_kernel_w"))
        return int(w.shape[0]) if w is not None else None

    def _initializer(self, name):
        if name.endswith("kernel_u"):
            return initializers.random_uniform_initializer(-1.0, 1.0)
        if name.endswith("bias"):
            return self._bias_init or self._default_bias(name)
        return self._kernel_init

    def _default_bias(self, name):
        return 0.0


class IndRNNCell(_IndCell):
    """``tf.contrib.rnn.IndRNNCell`` (Li et al. 2018): ``h' = activation(x @ kernel_w +
    kernel_u * h + bias)``.

    Shapes: inputs ``[batch, I]``; state and output ``[batch, H]``.  TF variables
    (``ind_rnn_cell/``): ``kernel_w [I, H]``, ``kernel_u [1, H]`` (uniform(-1, 1)),
    ``bias [H]`` (zeros).
    """

    def __init__(self, num_units: int, activation: Activation | None = None, reuse=None,
                 name: str | None = None, dtype: torch.dtype | None = None, *,
                 input_size: int | None = None):
        super().__init__(num_units, activation, name, dtype, input_size, reuse=reuse)

    def _shapes(self, input_depth):
        h = self._num_units
        return {"kernel_w": (input_depth, h), "kernel_u": (1, h), "bias": (h,)}

    @property
    def state_size(self) -> int:
        return self._num_units

    def project_inputs(self, inputs):
        """``[..., I] -> [..., H]``: ``x @ kernel_w + bias``."""
        return inputs @ self.kernel_w + self.bias

    def call_projected(self, projected, state):
        out = self._activation(projected + state * self.kernel_u)
        return out, out


class IndyGRUCell(_IndCell):
    """``tf.contrib.rnn.IndyGRUCell``: TF 1.x's GRU with diagonal recurrent weights.

    ``r, u = sigmoid(x @ gates/kernel_w + [h, h] * gates/kernel_u + gates/bias)``;
    ``c = activation(x @ candidate/kernel + (r * h) * candidate/kernel_u + candidate/bias)``;
    ``h' = u * h + (1 - u) * c``.

    Args:
        num_units: ``H``.
        activation: default ``tanh``.
        kernel_initializer: of the input kernels; bias_initializer: of both biases
            (default 1.0 for the gates, 0 for the candidate).

    Shapes: inputs ``[batch, I]``; state and output ``[batch, H]``.  TF variables
    (``indy_gru_cell/``): ``gates/kernel_w [I, 2H]``, ``gates/kernel_u [1, 2H]``,
    ``gates/bias [2H]``, ``candidate/kernel [I, H]``, ``candidate/kernel_u [1, H]``,
    ``candidate/bias [H]``.
    """

    def __init__(self, num_units: int, activation: Activation | None = None, reuse=None,
                 kernel_initializer: Any = None, bias_initializer: Any = None,
                 name: str | None = None, dtype: torch.dtype | None = None, *,
                 input_size: int | None = None):
        super().__init__(num_units, activation, name, dtype, input_size, kernel_initializer,
                         bias_initializer, reuse=reuse)

    def _shapes(self, input_depth):
        h = self._num_units
        return {"gates/kernel_w": (input_depth, 2 * h), "gates/kernel_u": (1, 2 * h),
                "gates/bias": (2 * h,), "candidate/kernel": (input_depth, h),
                "candidate/kernel_u": (1, h), "candidate/bias": (h,)}

    def _default_bias(self, name):
        return 1.0 if name.startswith("gates") else 0.0

    @property
    def state_size(self) -> int:
        return self._num_units

    def project_inputs(self, inputs):
        """``[..., I] -> [..., 3H]``: both input products with their biases."""
        return torch.cat([inputs @ self.gates_kernel_w + self.gates_bias,
                          inputs @ self.candidate_kernel + self.candidate_bias], -1)

    def call_projected(self, projected, state):
        h = self._num_units
        gates = torch.sigmoid(projected[..., :2 * h] + state.repeat(1, 2) * self.gates_kernel_u)
        r, u = gates.chunk(2, -1)
        c = self._activation(projected[..., 2 * h:] + (r * state) * self.candidate_kernel_u)
        new = u * state + (1 - u) * c
        return new, new


class IndyLSTMCell(_IndCell):
    """``tf.contrib.rnn.IndyLSTMCell``: ``BasicLSTMCell`` with diagonal recurrent weights.

    ``i, j, f, o = split(x @ kernel_w + [h]*4 * kernel_u + bias, 4)``;
    ``c' = c * sigmoid(f + forget_bias) + sigmoid(i) * activation(j)``;
    ``h' = activation(c') * sigmoid(o)``.

    Shapes: inputs ``[batch, I]``; state ``LSTMStateTuple(c, h)`` each ``[batch, H]``;
    output ``[batch, H]``.  TF variables (``indy_lstm_cell/``): ``kernel_w [I, 4H]``,
    ``kernel_u [1, 4H]`` (uniform(-1, 1)), ``bias [4H]`` (zeros).
    """

    def __init__(self, num_units: int, forget_bias: float = 1.0,
                 activation: Activation | None = None, reuse=None,
                 kernel_initializer: Any = None, bias_initializer: Any = None,
                 name: str | None = None, dtype: torch.dtype | None = None, *,
                 input_size: int | None = None):
        self._forget_bias = _checks.as_number("forget_bias", forget_bias)
        super().__init__(num_units, activation, name, dtype, input_size, kernel_initializer,
                         bias_initializer, reuse=reuse)

    def _shapes(self, input_depth):
        h = self._num_units
        return {"kernel_w": (input_depth, 4 * h), "kernel_u": (1, 4 * h), "bias": (4 * h,)}

    @property
    def state_size(self):
        return LSTMStateTuple(self._num_units, self._num_units)

    def project_inputs(self, inputs):
        """``[..., I] -> [..., 4H]``: ``x @ kernel_w + bias``."""
        return inputs @ self.kernel_w + self.bias

    def call_projected(self, projected, state):
        c, h = state
        i, j, f, o = (projected + h.repeat(1, 4) * self.kernel_u).chunk(4, -1)
        new_c = c * torch.sigmoid(f + self._forget_bias) + torch.sigmoid(i) * self._activation(j)
        new_h = self._activation(new_c) * torch.sigmoid(o)
        return new_h, LSTMStateTuple(new_c, new_h)


# -- IntersectionRNNCell ------------------------------------------------------------------------

class IntersectionRNNCell(_TFLayoutCell):
    """``tf.contrib.rnn.IntersectionRNNCell``: the +RNN (Collins et al. 2017), gated through
    time and through depth.

    Inputs of depth ``I != N`` are first projected (``x = x @ in_projection/kernel +
    in_projection/bias``; only with ``num_in_proj``).  Then ``gh, h, gy, y = split([x, s] @
    kernel + bias, 4)``; ``gh, gy = sigmoid(gh + forget_bias), sigmoid(gy + forget_bias)``;
    ``s' = gh * s + (1 - gh) * tanh(h)`` (the state); ``y' = gy * x + (1 - gy) *
    y_activation(y)`` (the output).

    Args:
        num_units: ``N``.
        num_in_proj: ``N`` to let inputs of another depth be projected to ``N`` (TF reads
            only whether it is set; another value is refused).
        initializer: of both kernels (TF's default glorot-uniform); biases start at zero.
        forget_bias: added to both gates.
        y_activation: default ``relu``.

    Shapes: inputs ``[batch, I]`` (``I == N`` without ``num_in_proj``); state and output
    ``[batch, N]``.  TF variables (``intersection_rnn_cell/``): ``in_projection/kernel
    [I, N]``, ``in_projection/bias [N]``, ``kernel [2N, 4N]``, ``bias [4N]``.
    """

    _fast_paths = ("project_inputs",)

    def __init__(self, num_units: int, num_in_proj: int | None = None,
                 initializer: Any = None, forget_bias: float = 1.0,
                 y_activation: Activation | None = None, reuse=None, *,
                 name: str | None = None, dtype: torch.dtype | None = None,
                 input_size: int | None = None):
        units = _checks.as_count("num_units", num_units)
        if num_in_proj is not None and _checks.as_count("num_in_proj", num_in_proj) != units:
            raise ValueError(f"num_in_proj must be num_units ({units}) or None: TF projects "
                             f"the inputs to num_units whatever it is, received {num_in_proj}")
        self._num_in_proj = num_in_proj
        self._kernel_init = initializers.resolve("initializer", initializer)
        self._forget_bias = _checks.as_number("forget_bias", forget_bias)
        self._y_activation = _checks.as_function("y_activation", y_activation) or torch.relu
        super().__init__(num_units, name, dtype, input_size, reuse=reuse)

    def _shapes(self, input_depth):
        n = self._num_units
        out = {}
        if self._num_in_proj is not None and input_depth != n:
            out = {"in_projection/kernel": (input_depth, n), "in_projection/bias": (n,)}
        out.update(kernel=(2 * n, 4 * n), bias=(4 * n,))
        return out

    def build(self, inputs_shape):
        depth = _checks.matrix_depth(type(self).__name__, inputs_shape)
        if depth != self._num_units and self._num_in_proj is None:
            raise ValueError("Must have input size == output size for Intersection RNN. To "
                             "fix, num_in_proj should be set to num_units at cell init "
                             f"(inputs have depth {depth}, num_units is {self._num_units}).")
        if depth == self._num_units:  # declared for a projection that is not needed
            for key in ("in_projection_kernel", "in_projection_bias"):
                self._parameters.pop(key, None)
                self._tf_variable_names.pop(key, None)
        super().build(inputs_shape)

    def _initializer(self, name):
        return 0.0 if name.endswith("bias") else self._kernel_init

    def input_depth_from(self, params):
        w = params.get("in_projection_kernel")
        return int(w.shape[0]) if w is not None else self._num_units

    @property
    def state_size(self) -> int:
        return self._num_units

    def project_inputs(self, inputs):
        """``[..., I] -> [..., 5N]``: the (projected) inputs ``x`` and ``x @ kernel[:N] +
        bias``."""
        if "in_projection_kernel" in self._parameters:
            inputs = inputs @ self.in_projection_kernel + self.in_projection_bias
        return torch.cat([inputs, inputs @ self.kernel[: self._num_units] + self.bias], -1)

    def call_projected(self, projected, state):
        n = self._num_units
        x, z = projected[..., :n], projected[..., n:] + state @ self.kernel[n:]
        gh, h, gy, y = z.chunk(4, -1)
        gh = torch.sigmoid(gh + self._forget_bias)
        gy = torch.sigmoid(gy + self._forget_bias)
        new_state = gh * state + (1.0 - gh) * torch.tanh(h)
        new_y = gy * x + (1.0 - gy) * self._y_activation(y)
        return new_y, new_state
