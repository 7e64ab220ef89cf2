"""contrib.rnn's LSTM variants: ``LayerNormLSTMCell``, ``CoupledInputForgetGateLSTMCell``,
``GLSTMCell``, ``PhasedLSTMCell``, ``WeightNormLSTMCell``."""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

import torch
import torch.nn.functional as F

from rnnkit import _checks, initializers
from rnnkit.rnn.cell import LSTMStateTuple, RNNCell
from rnnkit.rnn.cells import (
    Activation,
    LSTMCell,
    _require_built,
    layer_norm,
    layer_norm_variables,
)
from rnnkit.rnn.contrib._layout import (
    Layout,
    _shard_rows,
    _sharded,
    _TFLayoutCell,
)
from rnnkit.rnn.fused import FusedForm, NotFusableError

# -- LayerNormLSTMCell ------------------------------------------------------------------------

class LayerNormLSTMCell(LSTMCell):
    """``tf.contrib.rnn.LayerNormLSTMCell``: :class:`~rnnkit.rnn.LSTMCell` (peepholes, cell
    clipping, projection) with optional layer normalisation of each gate and of ``c``.

    With ``layer_norm``: ``i, j, f, o`` are each normalised (``gamma`` starts at
    ``norm_gain``, ``beta`` at ``norm_shift``, epsilon 1e-12, 1e-3 in float16) instead of
    adding ``bias``
    (TF creates ``bias`` and leaves it unused); ``forget_bias`` and the peepholes are added
    after; the new ``c`` is normalised before clipping.

    Args:
        num_units: ``H``.
        use_peepholes, cell_clip, initializer, num_proj, proj_clip, forget_bias,
            activation: as in :class:`~rnnkit.rnn.LSTMCell`.
        layer_norm: normalise the gates and ``c``.
        norm_gain, norm_shift: initial ``gamma`` and ``beta``.

    Shapes: inputs ``[batch, I]``; state ``LSTMStateTuple(c [batch, H], h [batch, P or H])``;
    output ``[batch, P or H]``.  TF variables (``layer_norm_lstm_cell/``): ``kernel
    [I + P, 4H]``, ``bias [4H]``, ``w_f_diag``, ``w_i_diag``, ``w_o_diag [H]``,
    ``projection/kernel [H, P]``, ``{input,transform,forget,output,state}/{gamma,beta} [H]``.
    """

    _fast_paths = ("project_inputs",)

    tf_default_name = "layer_norm_lstm_cell"

    def __init__(self, num_units: int, use_peepholes: bool = False,
                 cell_clip: float | None = None, initializer: Any = None,
                 num_proj: int | None = None, proj_clip: float | None = None,
                 forget_bias: float = 1.0, activation: Activation | None = None,
                 layer_norm: bool = False, norm_gain: float = 1.0, norm_shift: float = 0.0,
                 reuse=None, *, name: str | None = None, dtype: torch.dtype | None = None,
                 input_size: int | None = None):
        self._layer_norm = _checks.as_flag("layer_norm", layer_norm)
        self._norm_gain = _checks.as_number("norm_gain", norm_gain)
        self._norm_shift = _checks.as_number("norm_shift", norm_shift)
        super().__init__(num_units, use_peepholes=use_peepholes, cell_clip=cell_clip,
                         initializer=initializer, num_proj=num_proj, proj_clip=proj_clip,
                         forget_bias=forget_bias, state_is_tuple=True, activation=activation,
                         reuse=reuse, name=name, dtype=dtype, input_size=input_size)

    def _variable_names(self):
        names = super()._variable_names()
        if self._layer_norm:
            names += ("ln_gamma", "ln_beta", "state_gamma", "state_beta")
        return names

    def build(self, inputs_shape):
        self._input_size = _checks.matrix_depth(type(self).__name__, inputs_shape)
        shapes = self._gated_shapes(self._input_size)
        h = self._num_units
        if self._use_peepholes:
            shapes.update(w_f_diag=(h,), w_i_diag=(h,), w_o_diag=(h,))
        if self._num_proj is not None:
            shapes["weight_proj"] = (self._num_proj, h)
        if self._layer_norm:
            shapes.update(ln_gamma=(4, h), ln_beta=(4, h), state_gamma=(h,), state_beta=(h,))
        self._make(shapes)

    def fused_form(self) -> FusedForm:
        """Without layer normalisation, :class:`~rnnkit.rnn.LSTMCell`'s."""
        _require_built(self)
        if self._layer_norm:
            raise NotFusableError("LayerNormLSTMCell(layer_norm=True) has no fused kernel")
        return super().fused_form()

    def _project(self, inputs):
        return F.linear(inputs, self.weight_ih, None if self._layer_norm else self.bias)

    def call_projected(self, projected, state):
        c, h = state
        z = projected + F.linear(h, self.weight_hh)
        if self._layer_norm:
            z = layer_norm(z.unflatten(-1, (4, self._num_units)), self.ln_gamma, self.ln_beta)
            i, f, g, o = z.unbind(-2)
        else:
            i, f, g, o = z.chunk(4, dim=-1)
        f = f + self._forget_bias
        if self._use_peepholes:
            f = f + self.w_f_diag * c
            i = i + self.w_i_diag * c
        new_c = torch.sigmoid(f) * c + torch.sigmoid(i) * self._activation(g)
        if self._layer_norm:
            new_c = layer_norm(new_c, self.state_gamma, self.state_beta)
        if self._cell_clip is not None:
            new_c = new_c.clamp(-self._cell_clip, self._cell_clip)
        if self._use_peepholes:
            o = o + self.w_o_diag * new_c
        new_h = torch.sigmoid(o) * self._activation(new_c)
        if self._num_proj is not None:
            new_h = F.linear(new_h, self.weight_proj)
            if self._proj_clip is not None:
                new_h = new_h.clamp(-self._proj_clip, self._proj_clip)
        return new_h, LSTMStateTuple(new_c, new_h)

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        out = super().tf_variables(())
        if not self._layer_norm:
            return out
        return {**out, **layer_norm_variables(self)}


# -- CoupledInputForgetGateLSTMCell -------------------------------------------------------------

class CoupledInputForgetGateLSTMCell(_TFLayoutCell):
    """``tf.contrib.rnn.CoupledInputForgetGateLSTMCell``: an LSTM whose input gate is one
    minus its forget gate (Greff et al. 2015), with optional peepholes, projection and layer
    normalisation.

    ``j, f, o = split([x, m] @ W (+ B), 3)`` (with ``layer_norm`` each normalised instead of
    adding ``B``); ``f = sigmoid(f + forget_bias (+ W_F_diag * c))``;
    ``c' = f * c + (1 - f) * activation(j)`` (normalised with ``layer_norm``);
    ``m' = sigmoid(o (+ W_O_diag * c')) * activation(c')``, then ``@ W_P`` clipped to
    ``proj_clip``.

    Args:
        num_units: ``H``.
        use_peepholes: ``W_F_diag``, ``W_O_diag``.
        initializer: of ``W``, the peepholes and ``W_P`` (TF 1.15 stores this argument but
            creates them with the glorot-uniform default; rnnkit applies it).
        num_proj, proj_clip: project ``m`` to ``P`` and clip it.
        num_unit_shards, num_proj_shards: how many row blocks TF stores ``W`` and ``W_P``
            in (``W_0 ... W_{n-1}``); the computation is the same.
        forget_bias: added to ``f``.
        state_is_tuple: state ``LSTMStateTuple(c, m)``; else ``cat([c, m], 1)``.
        activation: default ``tanh``.
        layer_norm, norm_gain, norm_shift: layer normalisation of ``j``, ``f``, ``o`` and
            ``c'`` (epsilon 1e-12), ``gamma`` starting at ``norm_gain``, ``beta`` at
            ``norm_shift``.

    Shapes: inputs ``[batch, I]``; state ``LSTMStateTuple(c [batch, H], m [batch, P or
    H])`` (or ``[batch, H + P]``); output ``[batch, P or H]``.  TF variables
    (``coupled_input_forget_gate_lstm_cell/``): ``W_0 [I + P, 3H]`` (``W_k`` row blocks
    with shards), ``B [3H]`` (zeros), ``W_F_diag``, ``W_O_diag [H]``, ``W_P_0 [H, P]``,
    ``{transform,forget,output,state}/{gamma,beta} [H]``.
    """

    _fast_paths = ("project_inputs",)

    def __init__(self, num_units: int, use_peepholes: bool = False, initializer: Any = None,
                 num_proj: int | None = None, proj_clip: float | None = None,
                 num_unit_shards: int = 1, num_proj_shards: int = 1,
                 forget_bias: float = 1.0, state_is_tuple: bool = True,
                 activation: Activation | None = None, reuse=None, layer_norm: bool = False,
                 norm_gain: float = 1.0, norm_shift: float = 0.0, *,
                 name: str | None = None, dtype: torch.dtype | None = None,
                 input_size: int | None = None):
        self._use_peepholes = _checks.as_flag("use_peepholes", use_peepholes)
        self._kernel_init = initializers.resolve("initializer", initializer)
        self._num_proj = None if num_proj is None else _checks.as_count("num_proj", num_proj)
        self._proj_clip = None if proj_clip is None else _checks.as_number(
            "proj_clip", proj_clip, low=0)
        self._num_unit_shards = _checks.as_count("num_unit_shards", num_unit_shards)
        self._num_proj_shards = _checks.as_count("num_proj_shards", num_proj_shards)
        self._forget_bias = _checks.as_number("forget_bias", forget_bias)
        self._state_is_tuple = _checks.as_flag("state_is_tuple", state_is_tuple)
        self._activation = _checks.as_function("activation", activation) or torch.tanh
        self._layer_norm = _checks.as_flag("layer_norm", layer_norm)
        self._norm_gain = _checks.as_number("norm_gain", norm_gain)
        self._norm_shift = _checks.as_number("norm_shift", norm_shift)
        if self._num_proj is not None:
            _shard_rows(_checks.as_count("num_units", num_units), self._num_proj_shards,
                        "W_P")
        super().__init__(num_units, name, dtype, input_size, reuse=reuse)

    _NORMED = ("transform", "forget", "output", "state")

    def _shapes(self, input_depth):
        h, p = self._num_units, self._num_proj or self._num_units
        out = {"W": (input_depth + p, 3 * h), "B": (3 * h,)}
        if self._layer_norm:
            for g in self._NORMED:
                out[f"{g}/gamma"] = out[f"{g}/beta"] = (h,)
        if self._use_peepholes:
            out["W_F_diag"] = out["W_O_diag"] = (h,)
        if self._num_proj is not None:
            out["W_P"] = (h, self._num_proj)
        return out

    def build(self, inputs_shape):
        depth = _checks.matrix_depth(type(self).__name__, inputs_shape)
        _shard_rows(depth + (self._num_proj or self._num_units), self._num_unit_shards, "W")
        super().build(inputs_shape)

    def _initializer(self, name):
        if name == "B":
            return 0.0
        if name.endswith("gamma"):
            return self._norm_gain
        if name.endswith("beta"):
            return self._norm_shift
        return self._kernel_init

    def input_depth_from(self, params):
        w = params.get("W")
        return int(w.shape[0]) - (self._num_proj or self._num_units) if w is not None \
            else None

    @property
    def state_size(self):
        h, p = self._num_units, self._num_proj or self._num_units
        return LSTMStateTuple(h, p) if self._state_is_tuple else h + p

    @property
    def output_size(self) -> int:
        return self._num_proj or self._num_units

    def project_inputs(self, inputs):
        """``[..., I] -> [..., 3H]``: the input rows of ``W`` (plus ``B`` without layer
        normalisation)."""
        rows = self.W.shape[0] - (self._num_proj or self._num_units)
        z = inputs @ self.W[:rows]
        return z if self._layer_norm else z + self.B

    def call_projected(self, projected, state):
        h = self._num_units
        if self._state_is_tuple:
            c, m = state
        else:
            c, m = state[:, :h], state[:, h:]
        rows = self.W.shape[0] - m.shape[-1]
        j, f, o = (projected + m @ self.W[rows:]).chunk(3, -1)
        if self._layer_norm:
            j = layer_norm(j, self.transform_gamma, self.transform_beta)
            f = layer_norm(f, self.forget_gamma, self.forget_beta)
            o = layer_norm(o, self.output_gamma, self.output_beta)
        f = f + self._forget_bias
        if self._use_peepholes:
            f = f + self.W_F_diag * c
        f = torch.sigmoid(f)
        new_c = f * c + (1 - f) * self._activation(j)
        if self._layer_norm:
            new_c = layer_norm(new_c, self.state_gamma, self.state_beta)
        if self._use_peepholes:
            o = o + self.W_O_diag * new_c
        new_m = torch.sigmoid(o) * self._activation(new_c)
        if self._num_proj is not None:
            new_m = new_m @ self.W_P
            if self._proj_clip is not None:
                new_m = new_m.clamp(-self._proj_clip, self._proj_clip)
        new_state = LSTMStateTuple(new_c, new_m) if self._state_is_tuple \
            else torch.cat([new_c, new_m], 1)
        return new_m, new_state

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        out = super().tf_variables(available)
        init = self._kernel_init or "glorot_uniform"
        del out["W"]
        out.update(_sharded(lambda: self.W, "W", self._num_unit_shards, init))
        if "W_P" in out:
            del out["W_P"]
            out.update(_sharded(lambda: self.W_P, "W_P", self._num_proj_shards, init))
        return out


# -- GLSTMCell ----------------------------------------------------------------------------------

class GLSTMCell(_TFLayoutCell):
    """``tf.contrib.rnn.GLSTMCell``: the group LSTM (Kuchaiev & Ginsburg 2017): ``G``
    LSTM sub-cells, sub-cell ``k`` reading the ``k``-th of ``G`` equal slices of the inputs
    and of ``m``.

    ``i_k, j_k, f_k, o_k = split([x_k, m_k] @ group{k}/kernel, 4)``; each gate the
    concatenation over ``k`` plus ``bias_{i,j,f,o}``; ``c' = sigmoid(f + forget_bias) * c +
    sigmoid(i) * tanh(j)``; ``m' = sigmoid(o) * activation(c')`` (then ``@
    projection/kernel``).

    Args:
        num_units: ``H`` (divisible by ``number_of_groups``).
        initializer: of the kernels (TF's default glorot-uniform); biases start at zero.
        num_proj: project ``m`` to ``P`` (divisible by ``number_of_groups``).
        number_of_groups: ``G``.
        forget_bias: added to ``f``.
        activation: applied to ``c'`` for ``m'`` (default ``tanh``).

    Shapes: inputs ``[batch, I]`` (``I`` divisible by ``G``); state ``LSTMStateTuple(c
    [batch, H], m [batch, P or H])``; output ``[batch, P or H]``.  TF variables
    (``glstm_cell/``): ``group{k}/kernel [I/G + (P or H)/G, 4H/G]``, ``bias_i``,
    ``bias_j``, ``bias_f``, ``bias_o [H]``, ``projection/kernel [H, P]``.
    """

    _fast_paths = ("project_inputs",)

    tf_default_name = "glstm_cell"

    def __init__(self, num_units: int, initializer: Any = None, num_proj: int | None = None,
                 number_of_groups: int = 1, forget_bias: float = 1.0,
                 activation: Activation | None = None, reuse=None, *,
                 name: str | None = None, dtype: torch.dtype | None = None,
                 input_size: int | None = None):
        units = _checks.as_count("num_units", num_units)
        self._groups = _checks.as_count("number_of_groups", number_of_groups)
        self._num_proj = None if num_proj is None else _checks.as_count("num_proj", num_proj)
        if units % self._groups:
            raise ValueError("num_units must be divisible by number_of_groups")
        if self._num_proj is not None and self._num_proj % self._groups:
            raise ValueError("num_proj must be divisible by number_of_groups")
        self._kernel_init = initializers.resolve("initializer", initializer)
        self._forget_bias = _checks.as_number("forget_bias", forget_bias)
        self._activation = _checks.as_function("activation", activation) or torch.tanh
        super().__init__(num_units, name, dtype, input_size, reuse=reuse)

    def _shapes(self, input_depth):
        g, h = self._groups, self._num_units
        p = self._num_proj or h
        out = {f"group{k}/kernel": (input_depth // g + p // g, 4 * h // g) for k in range(g)}
        out.update({f"bias_{gate}": (h,) for gate in "ijfo"})
        if self._num_proj is not None:
            out["projection/kernel"] = (h, self._num_proj)
        return out

    def build(self, inputs_shape):
        depth = _checks.matrix_depth(type(self).__name__, inputs_shape)
        if depth % self._groups:
            raise ValueError(f"input size ({depth}) must be divisible by number_of_groups "
                             f"({self._groups})")
        super().build(inputs_shape)

    def _initializer(self, name):
        return 0.0 if name.startswith("bias") else self._kernel_init

    def input_depth_from(self, params):
        k = params.get("group0_kernel")
        return (int(k.shape[0]) - (self._num_proj or self._num_units) // self._groups) \
            * self._groups if k is not None else None

    @property
    def state_size(self):
        return LSTMStateTuple(self._num_units, self._num_proj or self._num_units)

    @property
    def output_size(self) -> int:
        return self._num_proj or self._num_units

    def _kernels(self):
        return [getattr(self, f"group{k}_kernel") for k in range(self._groups)]

    def project_inputs(self, inputs):
        """``[..., I] -> [..., 4H]``: each group's input slice through its kernel's input
        rows (group-major)."""
        kernels = self._kernels()
        rows = kernels[0].shape[0] - (self._num_proj or self._num_units) // self._groups
        xs = inputs.chunk(self._groups, -1)
        return torch.cat([x @ k[:rows] for x, k in zip(xs, kernels, strict=True)], -1)

    def call_projected(self, projected, state):
        c, m = state
        g = self._groups
        kernels = self._kernels()
        rows = kernels[0].shape[0] - m.shape[-1] // g
        parts = [p + mk @ k[rows:] for p, mk, k in
                 zip(projected.chunk(g, -1), m.chunk(g, -1), kernels, strict=True)]
        gates = [torch.cat(ps, -1) for ps in zip(*(p.chunk(4, -1) for p in parts),
                                                  strict=True)]
        i, j, f, o = (z + getattr(self, f"bias_{n}")
                      for z, n in zip(gates, "ijfo", strict=True))
        new_c = torch.sigmoid(f + self._forget_bias) * c + torch.sigmoid(i) * torch.tanh(j)
        new_m = torch.sigmoid(o) * self._activation(new_c)
        if self._num_proj is not None:
            new_m = new_m @ self.projection_kernel
        return new_m, LSTMStateTuple(new_c, new_m)


# -- PhasedLSTMCell -----------------------------------------------------------------------------

class _ExpUniform(initializers.Initializer):
    """``exp(uniform(log(low), log(high)))`` (contrib's ``_random_exp_initializer``)."""

    def __init__(self, low: float, high: float):
        super().__init__()
        self.low, self.high = math.log(low), math.log(high)

    def fill(self, t, gen):
        t.uniform_(self.low, self.high, generator=gen).exp_()


class _UpToPeriod(initializers.Initializer):
    """``uniform(0, period)`` element by element, ``period`` the cell's current one (TF
    draws ``phase`` below ``period``'s initial value)."""

    def __init__(self, cell: PhasedLSTMCell):
        super().__init__()
        self._cell = [cell]  # not a submodule

    def fill(self, t, gen):
        t.uniform_(0.0, 1.0, generator=gen).mul_(self._cell[0].period.detach().to(t))


class PhasedLSTMCell(RNNCell):
    """``tf.contrib.rnn.PhasedLSTMCell`` (Neil et al. 2016): an LSTM whose units update only
    while their time gate is open.

    ``i, f = sigmoid(split([x, h (, c)] @ mask_gates/kernel + mask_gates/bias, 2))``;
    ``c~ = f * c + i * tanh([x, h] @ new_input/kernel + new_input/bias)``;
    ``o = sigmoid([x, h (, c~)] @ output_gate/kernel + output_gate/bias)``; ``h~ = tanh(c~)
    * o``.  With ``r = mod(t - phase, period) / period``: ``k = 2r / ratio_on`` for ``r <
    ratio_on / 2``, ``2 - 2r / ratio_on`` for ``r < ratio_on``, else ``leak * r``; ``c' = k
    * c~ + (1 - k) * c``, ``h' = k * h~ + (1 - k) * h``.  The gradient flows through the
    ``mod`` as through ``t - phase`` (TF's stop-gradient trick).

    Args:
        num_units: ``H``.
        use_peepholes: ``c`` feeds the mask gates, ``c~`` the output gate.
        leak: ``k`` while the gate is closed (applied in training and inference, as TF).
        ratio_on: the open fraction of the period (``ratio_on``'s initial value).
        trainable_ratio_on: whether ``ratio_on`` trains.
        period_init_min, period_init_max: ``period`` starts at ``exp(uniform(log(min),
            log(max)))``; ``phase`` at ``uniform(0, period)``.

    Shapes: inputs a pair ``(time [batch, 1], x [batch, F])`` (``dynamic_rnn``: ``(time
    [batch, T, 1], x [batch, T, F])``); state ``LSTMStateTuple(c, h)``, each ``[batch,
    H]``; output ``[batch, H]``.  TF variables (``phased_lstm_cell/``):
    ``mask_gates/kernel [F + H (+ H), 2H]``, ``mask_gates/bias [2H]``, ``new_input/kernel
    [F + H, H]``, ``new_input/bias [H]``, ``output_gate/kernel [F + H (+ H), H]``,
    ``output_gate/bias [H]`` (biases zeros), ``period``, ``phase``, ``ratio_on [H]``.
    """

    _NAMES = ("mask_gates/kernel", "mask_gates/bias", "new_input/kernel", "new_input/bias",
              "output_gate/kernel", "output_gate/bias", "period", "phase", "ratio_on")

    def __init__(self, num_units: int, use_peepholes: bool = False, leak: float = 0.001,
                 ratio_on: float = 0.1, trainable_ratio_on: bool = True,
                 period_init_min: float = 1.0, period_init_max: float = 1000.0, reuse=None,
                 *, name: str | None = None, dtype: torch.dtype | None = None,
                 input_size: int | None = None):
        super().__init__(name=name, dtype=_checks.as_float_dtype("dtype", dtype), reuse=reuse)
        self._num_units = _checks.as_count("num_units", num_units)
        self._use_peepholes = _checks.as_flag("use_peepholes", use_peepholes)
        self._leak = _checks.as_number("leak", leak, low=0)
        self._ratio_on = _checks.as_number("ratio_on", ratio_on, low=0)
        self._trainable_ratio_on = _checks.as_flag("trainable_ratio_on", trainable_ratio_on)
        self._period_min = _checks.as_number("period_init_min", period_init_min)
        self._period_max = _checks.as_number("period_init_max", period_init_max)
        if not 0 < self._period_min < self._period_max:
            raise ValueError(f"period_init_min and period_init_max must satisfy 0 < min < "
                             f"max, received {period_init_min}, {period_init_max}")
        self._input_size: int | None = None
        self.declare_variables(*self._NAMES)
        if input_size is not None:
            self.build_for(_checks.as_count("input_size", input_size), dtype,
                           torch.device("cpu"))

    @property
    def state_size(self):
        return LSTMStateTuple(self._num_units, self._num_units)

    @property
    def output_size(self) -> int:
        return self._num_units

    def maybe_build(self, inputs):
        if not self.built:
            _, x = self._split_inputs(inputs)
            self.build_for(x.shape[-1], x.dtype if x.is_floating_point() else None, x.device)

    def dtype_reference(self, inputs):
        """``x``: the times keep their own dtype (TF computes the phase in it, float64 in
        upstream's test, while ``x`` and the state are float32)."""
        return self._split_inputs(inputs)[1]

    def _split_inputs(self, inputs):
        if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
            raise TypeError("PhasedLSTMCell takes inputs (time [batch, 1], x [batch, "
                            f"features]), received {type(inputs).__name__}")
        time, x = (_checks.as_inputs(n, a) for n, a in zip(("time", "x"), inputs, strict=True))
        return time, x

    def _initializer(self, name):
        if name.endswith("bias"):
            return initializers.resolve(name, 0.0)
        if name == "period":
            return _ExpUniform(self._period_min, self._period_max)
        if name == "phase":
            return _UpToPeriod(self)
        if name == "ratio_on":
            return initializers.resolve(name, self._ratio_on)
        return None

    def _shapes(self, depth):
        h = self._num_units
        gate_rows = depth + h + (h if self._use_peepholes else 0)
        return {"mask_gates/kernel": (gate_rows, 2 * h), "mask_gates/bias": (2 * h,),
                "new_input/kernel": (depth + h, h), "new_input/bias": (h,),
                "output_gate/kernel": (gate_rows, h), "output_gate/bias": (h,),
                "period": (h,), "phase": (h,), "ratio_on": (h,)}

    def build(self, inputs_shape):
        shape = inputs_shape[1] if isinstance(inputs_shape, (tuple, list)) and \
            not isinstance(inputs_shape, torch.Size) else inputs_shape
        self._input_size = int(shape[-1])
        for name, s in self._shapes(self._input_size).items():
            self.add_variable(name, s, initializer=self._initializer(name),
                              trainable=name != "ratio_on" or self._trainable_ratio_on)

    def input_depth_from(self, params):
        w = params.get("new_input_kernel")
        return int(w.shape[0]) - self._num_units if w is not None else None

    def call(self, inputs, state):
        time, x = self._split_inputs(inputs)
        if x.dim() != 2 or x.shape[-1] != self._input_size or time.shape != (x.shape[0], 1):
            raise ValueError(f"PhasedLSTMCell inputs must be (time [batch, 1], x [batch, "
                             f"{self._input_size}]), received {tuple(time.shape)} and "
                             f"{tuple(x.shape)}")
        c, h = state
        gate_in = [x, h, c] if self._use_peepholes else [x, h]
        mask = torch.sigmoid(torch.cat(gate_in, 1) @ self.mask_gates_kernel
                             + self.mask_gates_bias)
        i, f = mask.chunk(2, -1)
        new_input = torch.tanh(torch.cat([x, h], 1) @ self.new_input_kernel
                               + self.new_input_bias)
        new_c = c * f + i * new_input
        out_in = [x, h, new_c] if self._use_peepholes else [x, h]
        o = torch.sigmoid(torch.cat(out_in, 1) @ self.output_gate_kernel
                          + self.output_gate_bias)
        new_h = torch.tanh(new_c) * o
        shifted = time - self.phase.to(time.dtype)
        period = self.period.to(time.dtype)
        wrapped = shifted + (torch.remainder(shifted, period) - shifted).detach()
        ratio = (wrapped / period).to(x.dtype)
        k_up = 2 * ratio / self.ratio_on
        k = torch.where(ratio < self.ratio_on, 2 - k_up, self._leak * ratio)
        k = torch.where(ratio < 0.5 * self.ratio_on, k_up, k)
        new_c = k * new_c + (1 - k) * c
        new_h = k * new_h + (1 - k) * h
        return new_h, LSTMStateTuple(new_c, new_h)

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        out = super().tf_variables(available)
        return {n: v._replace(initializer=self._initializer(n)
                              or initializers.glorot_uniform_initializer())
                for n, v in out.items()}


# -- WeightNormLSTMCell -------------------------------------------------------------------------

def _l2_columns(w: torch.Tensor) -> torch.Tensor:
    """TF's ``l2_normalize(w, axis=0)``: each column over ``sqrt(max(sum(w^2), 1e-12))``."""
    return w * torch.rsqrt(w.pow(2).sum(0, keepdim=True).clamp_min(1e-12))


class WeightNormLSTMCell(_TFLayoutCell):
    """``tf.contrib.rnn.WeightNormLSTMCell``: :class:`~rnnkit.rnn.LSTMCell` with weight
    normalisation (Salimans & Kingma 2016) of each input's block of the kernel.

    With ``norm``, ``W = concat([l2_normalize(kernel[:I], axis=0) * norm_0,
    l2_normalize(kernel[I:], axis=0) * norm_1])`` (the projection likewise, ``norm_0``);
    then ``i, j, f, o = split([x, h] @ W + bias, 4)``; ``c' = sigmoid(f + forget_bias (+
    w_f_diag * c)) * c + sigmoid(i (+ w_i_diag * c)) * act(j)`` (clipped by ``cell_clip``);
    ``h' = sigmoid(o (+ w_o_diag * c')) * act(c')`` (then ``@ projection``, clipped by
    ``proj_clip``).

    Args:
        num_units: ``H``.
        norm: normalise the weights (``False``: :class:`~rnnkit.rnn.LSTMCell`'s step).
        use_peepholes: diagonal peepholes ``w_{i,f,o}_diag [H]``.
        cell_clip, proj_clip: clip ``c`` / the projection to ``[-clip, clip]``.
        initializer: of every variable but ``bias`` (default glorot-uniform, TF's).
        num_proj: project the output to ``P``.
        forget_bias: added to ``f``.
        activation: default ``tanh``.

    Shapes: inputs ``[batch, I]``; state ``LSTMStateTuple(c [batch, H], h [batch, P or
    H])``; output ``[batch, P or H]``.  TF variables (``weight_norm_lstm_cell/wn_lstm_cell/``):
    ``kernel [I + (P or H), 4H]``, ``bias [4H]`` (zeros), ``norm_0``, ``norm_1 [4H]``,
    ``w_f_diag``, ``w_i_diag``, ``w_o_diag [H]``, ``projection/kernel [H, P]``,
    ``projection/norm_0 [P]``.
    """

    _fast_paths = ("project_inputs",)

    tf_default_name = "weight_norm_lstm_cell"

    def __init__(self, num_units: int, norm: bool = True, use_peepholes: bool = False,
                 cell_clip: float | None = None, initializer: Any = None,
                 num_proj: int | None = None, proj_clip: float | None = None,
                 forget_bias: float = 1, activation: Activation | None = None, reuse=None, *,
                 name: str | None = None, dtype: torch.dtype | None = None,
                 input_size: int | None = None):
        self._norm = _checks.as_flag("norm", norm)
        self._use_peepholes = _checks.as_flag("use_peepholes", use_peepholes)
        self._cell_clip = None if cell_clip is None else _checks.as_number("cell_clip",
                                                                           cell_clip)
        self._kernel_init = initializers.resolve("initializer", initializer)
        self._num_proj = None if num_proj is None else _checks.as_count("num_proj", num_proj)
        self._proj_clip = None if proj_clip is None else _checks.as_number("proj_clip",
                                                                           proj_clip)
        self._forget_bias = _checks.as_number("forget_bias", forget_bias)
        self._activation = _checks.as_function("activation", activation) or torch.tanh
        super().__init__(num_units, name, dtype, input_size, reuse=reuse)

    _S = "wn_lstm_cell/"

    def _shapes(self, input_depth):
        h, p = self._num_units, self._num_proj or self._num_units
        s = self._S
        out = {s + "kernel": (input_depth + p, 4 * h)}
        if self._norm:
            out.update({s + "norm_0": (4 * h,), s + "norm_1": (4 * h,)})
        out[s + "bias"] = (4 * h,)
        if self._use_peepholes:
            out.update({s + f"w_{g}_diag": (h,) for g in "fio"})
        if self._num_proj is not None:
            out[s + "projection/kernel"] = (h, self._num_proj)
            if self._norm:
                out[s + "projection/norm_0"] = (self._num_proj,)
        return out

    def _initializer(self, name):
        return 0.0 if name.endswith("/bias") else self._kernel_init

    def input_depth_from(self, params):
        k = params.get("wn_lstm_cell_kernel")
        return int(k.shape[0]) - (self._num_proj or self._num_units) if k is not None \
            and k.dim() == 2 else None

    @property
    def state_size(self):
        return LSTMStateTuple(self._num_units, self._num_proj or self._num_units)

    @property
    def output_size(self) -> int:
        return self._num_proj or self._num_units

    def _block(self, rows: slice, g: str) -> torch.Tensor:
        w = self.wn_lstm_cell_kernel[rows]
        return _l2_columns(w) * getattr(self, g) if self._norm else w

    def project_inputs(self, inputs):
        """``[..., I] -> [..., 4H]``: ``x @ W[:I] + bias``."""
        return inputs @ self._block(slice(None, self._input_size), "wn_lstm_cell_norm_0") \
            + self.wn_lstm_cell_bias

    def call_projected(self, projected, state):
        c, h = state
        sig, act = torch.sigmoid, self._activation
        z = projected + h @ self._block(slice(self._input_size, None), "wn_lstm_cell_norm_1")
        i, j, f, o = z.chunk(4, -1)
        if self._use_peepholes:
            new_c = c * sig(f + self._forget_bias + self.wn_lstm_cell_w_f_diag * c) \
                + sig(i + self.wn_lstm_cell_w_i_diag * c) * act(j)
        else:
            new_c = c * sig(f + self._forget_bias) + sig(i) * act(j)
        if self._cell_clip is not None:
            new_c = new_c.clamp(-self._cell_clip, self._cell_clip)
        if self._use_peepholes:
            new_h = sig(o + self.wn_lstm_cell_w_o_diag * new_c) * act(new_c)
        else:
            new_h = sig(o) * act(new_c)
        if self._num_proj is not None:
            w = self.wn_lstm_cell_projection_kernel
            if self._norm:
                w = _l2_columns(w) * self.wn_lstm_cell_projection_norm_0
            new_h = new_h @ w
            if self._proj_clip is not None:
                new_h = new_h.clamp(-self._proj_clip, self._proj_clip)
        return new_h, LSTMStateTuple(new_c, new_h)
