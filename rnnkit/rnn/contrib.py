"""``tf.contrib.rnn``'s cells and wrappers beyond the core ones (the names in
``__all__``): ``EmbeddingWrapper``, ``HighwayWrapper``, LSTM variants (``LayerNormLSTMCell``,
``CoupledInputForgetGateLSTMCell``, ``GLSTMCell``, ``PhasedLSTMCell``, ``NASCell``,
``WeightNormLSTMCell``, the Indy cells), ``LayerNormBasicGRUCell`` (TF pull request
14578), the convolutional LSTMs (``ConvLSTMCell``,
``Conv1DLSTMCell``, ``Conv2DLSTMCell``, ``Conv3DLSTMCell``), ``AttentionCellWrapper``, other
recurrences (``SRUCell``, ``UGRNNCell``, ``IntersectionRNNCell``, ``IndRNNCell``,
``CFNCell``, ``MinimalRNNCell``),
``_Linear``, ``LSTMBlockFusedCell`` and the fused-RNN adaptors.

Each cell computes TF 1.15's equations and names its variables as TF does (its
``tf_variables``), so a TF checkpoint loads through :mod:`rnnkit.compat`.  Weights a cell
shares with :class:`~rnnkit.rnn.LSTMCell` are stored in PyTorch's layout as there; the
others are stored in TF's own layout (``kernel [input, cols]``).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit import _checks, initializers, nest
from rnnkit.compat import layout
from rnnkit.rnn.cell import LSTMStateTuple, RNNCell, require_cell
from rnnkit.rnn.cells import (
    LAYER_NORM_EPSILON,  # noqa: F401  (contrib layers.layer_norm's, re-exported)
    Activation,
    LSTMBlockCell,
    LSTMCell,
    _check_input,
    _require_built,
    layer_norm,
)
from rnnkit.rnn.fused import FusedForm, NotFusableError
from rnnkit.rnn.wrappers import _Wrapper

__all__ = [
    "AttentionCellWrapper",
    "CFNCell",
    "Conv1DLSTMCell",
    "Conv2DLSTMCell",
    "Conv3DLSTMCell",
    "ConvLSTMCell",
    "CoupledInputForgetGateLSTMCell",
    "EmbeddingWrapper",
    "FusedRNNCell",
    "FusedRNNCellAdaptor",
    "GLSTMCell",
    "HighwayWrapper",
    "IndRNNCell",
    "IndyGRUCell",
    "IndyLSTMCell",
    "IntersectionRNNCell",
    "LSTMBlockFusedCell",
    "LayerNormBasicGRUCell",
    "LayerNormLSTMCell",
    "MinimalRNNCell",
    "NASCell",
    "PhasedLSTMCell",
    "SRUCell",
    "TimeReversedFusedRNN",
    "UGRNNCell",
    "WeightNormLSTMCell",
    "_Linear",
]

Layout = dict[str, layout.TFVariable]



# -- _Linear ------------------------------------------------------------------------------------

class _Linear(nn.Module):
    """contrib's ``_Linear``: ``concat(args, 1) @ kernel (+ bias)``.

    Args:
        args: a ``[batch, n]`` tensor or a list of them (their depths fix ``kernel``'s rows),
            or the depths themselves (an int or a list of ints).
        output_size: the columns ``N``.
        build_bias: add ``bias [N]``.
        bias_initializer: default zeros.
        kernel_initializer: default ``glorot_uniform`` (TF's variable default); see
            :mod:`rnnkit.initializers`.

    Shapes: ``linear(args)`` with the same structure as ``args`` -> ``[batch, N]``.
    TF variables (in the scope where TF created it): ``kernel [sum(n), N]``, ``bias [N]``.
    """

    def __init__(self, args: Any, output_size: int, build_bias: bool,
                 bias_initializer: Any = None, kernel_initializer: Any = None, *,
                 dtype: torch.dtype | None = None, name: str | None = None):
        super().__init__()
        if args is None or (isinstance(args, (list, tuple)) and not args):
            raise ValueError("`args` must be specified")
        self._is_sequence = isinstance(args, (list, tuple))
        items = list(args) if self._is_sequence else [args]
        depths, like = [], None
        for i, a in enumerate(items):
            if isinstance(a, torch.Tensor):
                if a.dim() != 2:
                    raise ValueError(f"linear is expecting 2D arguments: args[{i}] has shape "
                                     f"{tuple(a.shape)}")
                depths.append(int(a.shape[1]))
                like = like if like is not None else a
            else:
                depths.append(_checks.as_count(f"args[{i}]", a))
        self._depths = tuple(depths)
        self._output_size = _checks.as_count("output_size", output_size)
        self._build_bias = _checks.as_flag("build_bias", build_bias)
        self._name = name
        if dtype is None:
            dtype = like.dtype if like is not None and like.is_floating_point() \
                else torch.get_default_dtype()
        device = like.device if like is not None else None
        shape = (sum(depths), self._output_size)
        k_init = initializers.resolve("kernel_initializer", kernel_initializer) \
            or initializers.glorot_uniform_initializer()
        self.kernel = nn.Parameter(k_init(shape, dtype).to(device))
        self.bias = None
        if self._build_bias:
            b_init = initializers.resolve("bias_initializer", bias_initializer) \
                or initializers.zeros_initializer()
            self.bias = nn.Parameter(b_init((self._output_size,), dtype).to(device))

    def forward(self, args: Any) -> torch.Tensor:
        """``concat(args, 1) @ kernel + bias``: ``[batch, sum(n)] -> [batch, N]``."""
        items = list(args) if self._is_sequence else [args]
        if len(items) != len(self._depths):
            raise ValueError(f"_Linear was made for {len(self._depths)} args, received "
                             f"{len(items)}")
        for i, (a, d) in enumerate(zip(items, self._depths, strict=True)):
            _checks.tensor(f"args[{i}]", a)
            if a.dim() != 2 or a.shape[1] != d:
                raise ValueError(f"args[{i}] must have shape [batch, {d}], received "
                                 f"{tuple(a.shape)}")
        x = items[0] if len(items) == 1 else torch.cat(items, 1)
        res = x @ self.kernel
        return res + self.bias if self.bias is not None else res

    @property
    def tf_name(self) -> str:
        """No scope of its own (TF creates the variables in the caller's scope) unless
        ``name=`` is given."""
        return self._name or ""

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        """``kernel [sum(n), N]`` and ``bias [N]``, stored as TF stores them."""
        out = {"kernel": layout.param(lambda: self.kernel, "kernel")}
        if self.bias is not None:
            out["bias"] = layout.param(lambda: self.bias, "bias")
        return out

    def tf_children(self) -> list:
        """None: a leaf of the scope tree."""
        return []


# -- EmbeddingWrapper -------------------------------------------------------------------------

class EmbeddingWrapper(_Wrapper):
    """``tf.contrib.rnn.EmbeddingWrapper``: looks integer ids up in an embedding matrix and
    runs ``cell`` on the embeddings.

    Args:
        cell: the cell run on the embeddings.
        embedding_classes: vocabulary size ``V``.
        embedding_size: embedding depth ``E``.
        initializer: of the embedding; TF's default ``uniform(-sqrt(3), sqrt(3))``
            (variance 1).

    Shapes: inputs ``[batch, 1]`` or ``[batch]`` integer ids (``dynamic_rnn`` inputs
    ``[batch, time, 1]``); state and output as ``cell``'s.  TF variables:
    ``embedding_wrapper/embedding [V, E]`` (in the state's dtype), the cell's below it.
    """

    tf_default_name = "embedding_wrapper"

    def __init__(self, cell: RNNCell, embedding_classes: int, embedding_size: int,
                 initializer: Any = None, reuse=None, *, name: str | None = None,
                 dtype: torch.dtype | None = None):
        super().__init__(cell, name=name)
        classes = _checks.as_int("embedding_classes", embedding_classes)
        size = _checks.as_int("embedding_size", embedding_size)
        if classes <= 0 or size <= 0:
            raise ValueError(f"Both embedding_classes and embedding_size must be > 0: "
                             f"{classes}, {size}.")
        self._embedding_classes, self._embedding_size = classes, size
        self._initializer = initializers.resolve("initializer", initializer)
        self._build_dtype = _checks.as_float_dtype("dtype", dtype)
        self.declare_variables("embedding")

    def build(self, inputs_shape):
        sqrt3 = math.sqrt(3)
        init = self._initializer or initializers.random_uniform_initializer(-sqrt3, sqrt3)
        # TF makes the embedding in the state's dtype: the wrapped cell's when it has one
        self._build_dtype = self._build_dtype or self.cell._build_dtype
        self.add_variable("embedding", [self._embedding_classes, self._embedding_size],
                          initializer=init)
        rows = inputs_shape[0] if len(inputs_shape) else 0
        self.cell.build_for(torch.Size([rows, self._embedding_size]), self._build_dtype,
                            self._build_device)

    def _check_call(self, inputs, state):
        inputs = _checks.as_inputs("inputs", inputs)
        _checks.integer("EmbeddingWrapper inputs (ids)", inputs)
        if inputs.dim() not in (1, 2) or (inputs.dim() == 2 and inputs.shape[1] != 1):
            raise ValueError(f"EmbeddingWrapper inputs must be ids [batch, 1] or [batch], "
                             f"received shape {tuple(inputs.shape)}")
        self.assert_state("state", state, inputs.shape[0])
        return inputs

    def call(self, inputs, state):
        if inputs.is_floating_point() or inputs.is_complex() or inputs.dtype == torch.bool:
            raise _checks.DTypeError(f"EmbeddingWrapper inputs must be integer ids, received "
                                     f"dtype {inputs.dtype}")
        ids = inputs.reshape(-1)
        embedded = F.embedding(ids.to(self.embedding.device), self.embedding)
        return self.cell.step(embedded, state)

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        init = self._initializer or initializers.random_uniform_initializer(
            -math.sqrt(3), math.sqrt(3))
        return {"embedding": layout.param(lambda: self.embedding, "embedding",
                                          initializer=init)}


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
        for row, gate in enumerate(("input", "forget", "transform", "output")):
            out[f"{gate}/gamma"] = layout.row_of(lambda: self.ln_gamma, row, f"{gate}/gamma",
                                                 self._norm_gain)
            out[f"{gate}/beta"] = layout.row_of(lambda: self.ln_beta, row, f"{gate}/beta",
                                                self._norm_shift)
        out["state/gamma"] = layout.param(lambda: self.state_gamma, "state/gamma",
                                          initializer=self._norm_gain)
        out["state/beta"] = layout.param(lambda: self.state_beta, "state/beta",
                                         initializer=self._norm_shift)
        return out


# -- cells stored in TF's layout ----------------------------------------------------------------

class _TFLayoutCell(RNNCell):
    """A cell whose variables are TF's own (``add_variable`` in :meth:`_shapes` order), each
    initialised as TF initialises it.  TF variables loaded into the unbuilt cell size it
    from the first whose shape depends on the input depth."""

    def __init__(self, num_units: int, name, dtype, input_size, **kwargs):
        super().__init__(name=name, dtype=_checks.as_float_dtype("dtype", dtype), **kwargs)
        self._num_units = _checks.as_count("num_units", num_units)
        self._input_size: int | None = None
        self.declare_variables(*self._shapes(1))
        if input_size is not None:
            self.build_for(_checks.as_count("input_size", input_size), dtype,
                           torch.device("cpu"))

    def _shapes(self, input_depth: int) -> dict[str, tuple[int, ...]]:
        """TF variable name -> shape, for inputs of ``input_depth``."""
        raise NotImplementedError

    def _initializer(self, name: str) -> Any:
        """TF's initializer of variable ``name`` (``None``: glorot-uniform)."""
        return None

    def build(self, inputs_shape):
        self._input_size = _checks.matrix_depth(type(self).__name__, inputs_shape)
        for name, shape in self._shapes(self._input_size).items():
            self.add_variable(name, shape, initializer=self._initializer(name))

    def input_depth_from(self, params):
        kernel = params.get("kernel")
        return int(kernel.shape[0]) if kernel is not None and kernel.dim() == 2 else None

    def call(self, inputs, state):
        _check_input(self, inputs)
        return self.call_projected(self.project_inputs(inputs), state)

    @property
    def output_size(self) -> int:
        return self._num_units

    def _depth_from(self, name: str, shape: tuple[int, ...]) -> int | None:
        """The input depth for which :meth:`_shapes` gives variable ``name`` the TF
        ``shape`` (``None``: its shape does not depend on the depth); a shape that fits no
        depth is refused by name."""
        try:
            one, two = self._shapes(1).get(name), self._shapes(2).get(name)
        except ValueError:  # a depth of 1 or 2 does not suit the cell (GLSTMCell's groups)
            return None
        if one is None or one == two:
            return None
        axis = next(i for i, (a, b) in enumerate(zip(one, two, strict=True)) if a != b)
        depth, rest = divmod(shape[axis] - one[axis], two[axis] - one[axis]) \
            if len(shape) == len(one) else (0, 1)
        depth += 1
        expected = self._shapes(depth).get(name) if depth >= 1 and not rest else None
        if expected != tuple(shape):
            raise ValueError(f"{self.tf_name}/{name}: the shape {tuple(shape)} fits no input "
                             f"depth (shape at depth I: {one} with I = 1)")
        return depth

    def _sized_on_write(self, name: str, var: layout.TFVariable) -> layout.TFVariable:
        """Unbuilt: writing a variable whose shape tells the input depth builds the cell
        first (TF's order: construct, restore, run)."""
        try:
            if self._depth_from(name, self._shapes(1)[name]) is None:
                return var
        except (KeyError, ValueError):
            return var

        def write(value: Any) -> list[torch.Tensor]:
            v = layout.as_value(value)
            if not self.built:
                self.build_for(self._depth_from(name, tuple(v.shape)), self._build_dtype)
            return super(_TFLayoutCell, self).tf_variables()[name].write(v)

        return var._replace(write=write, builds=True)

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        out = super().tf_variables(available)
        if not self.built:
            out = {n: self._sized_on_write(n, v) for n, v in out.items()}
        return {n: v._replace(initializer=initializers.resolve(
            n, self._initializer(n) if self._initializer(n) is not None else "glorot_uniform"))
            for n, v in out.items()}


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

def _hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """TF 1.15 Keras's piecewise-linear sigmoid: ``clip(0.2 * x + 0.5, 0, 1)``."""
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


#: The activations TF 1.15's ``keras.activations.get`` knows by name.
_KERAS_ACTIVATIONS: dict[str, Activation] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "relu": torch.relu,
    "elu": F.elu,
    "selu": F.selu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "softmax": lambda x: torch.softmax(x, -1),
    "exponential": torch.exp,
    "linear": lambda x: x,
}


def _keras_activation(name: str, value: Any) -> Activation:
    """``keras.activations.get``: a name from :data:`_KERAS_ACTIVATIONS`, a function, or
    ``None`` (linear, as Keras reads it); anything else refused naming ``name``."""
    if value is None:
        return _KERAS_ACTIVATIONS["linear"]
    if isinstance(value, str):
        fn = _KERAS_ACTIVATIONS.get(value.lower())
        if fn is None:
            raise ValueError(f"{name}: unknown activation {value!r}; known names: "
                             f"{sorted(_KERAS_ACTIVATIONS)}")
        return fn
    return _checks.as_function(name, value, optional=False)


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
        self._activation = _keras_activation("activation", activation)
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


# -- fused-RNN adaptors -----------------------------------------------------------------------

class FusedRNNCell(nn.Module):
    """contrib's ``FusedRNNCell``: a module run over a whole time-major sequence.

    ``fused(inputs, initial_state=None, dtype=None, sequence_length=None, scope=None)``
    with ``inputs [time, batch, depth]`` (or a list of ``time`` tensors ``[batch,
    depth]``) returns ``(outputs, final_state)``, ``outputs`` like ``inputs`` (a tensor
    ``[time, batch, output_size]`` or a list).
    """

    def forward(self, inputs, initial_state=None, dtype=None, sequence_length=None,
                scope=None):
        raise NotImplementedError


class FusedRNNCellAdaptor(FusedRNNCell):
    """``tf.contrib.rnn.FusedRNNCellAdaptor``: runs ``cell`` with ``dynamic_rnn(...,
    time_major=True)`` (``use_dynamic_rnn=True``) or ``static_rnn``.

    Shapes: inputs ``[time, batch, depth]`` or a list of ``[batch, depth]``; outputs the
    same kind, ``output_size`` deep.  TF variables: ``rnn/<cell's>`` (the drivers' scope).
    """

    def __init__(self, cell: RNNCell, use_dynamic_rnn: bool = False):
        super().__init__()
        self.cell = require_cell("cell", cell)
        self._use_dynamic_rnn = _checks.as_flag("use_dynamic_rnn", use_dynamic_rnn)

    @property
    def _cell(self) -> RNNCell:
        return self.cell

    def forward(self, inputs, initial_state=None, dtype=None, sequence_length=None,
                scope=None):
        from rnnkit.rnn.driver import dynamic_rnn, static_rnn

        is_list = isinstance(inputs, list)
        if self._use_dynamic_rnn:
            x = torch.stack([_checks.as_inputs(f"inputs[{i}]", a) for i, a in
                             enumerate(inputs)]) if is_list else inputs
            outputs, state = dynamic_rnn(self.cell, x, sequence_length=sequence_length,
                                         initial_state=initial_state, dtype=dtype,
                                         time_major=True, scope=scope)
            return (list(outputs.unbind(0)) if is_list else outputs), state
        steps = inputs if is_list else list(_checks.as_inputs("inputs", inputs).unbind(0))
        outputs, state = static_rnn(self.cell, steps, initial_state=initial_state,
                                    dtype=dtype, sequence_length=sequence_length, scope=scope)
        if not is_list:
            outputs = nest.map_structure(lambda *xs: torch.stack(xs), *outputs)
        return outputs, state

    @property
    def tf_name(self) -> str:
        """``"rnn"``: the scope of the driver it runs."""
        return "rnn"

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        """None of its own."""
        return {}

    def tf_children(self) -> list:
        """The cell, under its own name."""
        return [(self.cell.tf_name, self.cell)]


class TimeReversedFusedRNN(FusedRNNCell):
    """``tf.contrib.rnn.TimeReversedFusedRNN``: runs a :class:`FusedRNNCell` on the inputs
    reversed in time and reverses its outputs back (each sequence within its
    ``sequence_length``, as ``reverse_sequence``).

    Shapes: as the wrapped fused cell.  TF variables: the wrapped cell's.
    """

    def __init__(self, cell: FusedRNNCell):
        super().__init__()
        if not callable(cell):
            raise TypeError(f"cell must be a FusedRNNCell, received {type(cell).__name__}")
        self.cell = cell

    @property
    def _cell(self):
        return self.cell

    @staticmethod
    def _reverse(t: Any, lengths: Any) -> Any:
        from rnnkit.rnn.driver import reverse_sequence

        if isinstance(t, list):
            if lengths is not None:
                raise ValueError("TimeReversedFusedRNN: with sequence_length give the inputs "
                                 "as one [time, batch, depth] tensor (TF reverses a list "
                                 "whole, ignoring the lengths)")
            return list(reversed(t))
        if lengths is None:
            return nest.map_structure(lambda a: a.flip(0), t)
        return nest.map_structure(lambda a: reverse_sequence(a, lengths, 0, 1), t)

    def forward(self, inputs, initial_state=None, dtype=None, sequence_length=None,
                scope=None):
        inputs = inputs if isinstance(inputs, list) else _checks.as_inputs("inputs", inputs)
        outputs, state = self.cell(self._reverse(inputs, sequence_length),
                                   initial_state=initial_state, dtype=dtype,
                                   sequence_length=sequence_length, scope=scope)
        return self._reverse(outputs, sequence_length), state

    @property
    def tf_name(self) -> str:
        """The wrapped fused cell's (this adaptor adds no scope)."""
        inner = getattr(self.cell, "tf_name", "")
        return inner if isinstance(inner, str) else ""

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        """None of its own."""
        return {}

    def tf_children(self) -> list:
        """The wrapped fused cell, in this module's place."""
        return [("", self.cell)]



class LSTMBlockFusedCell(FusedRNNCell):
    """``tf.contrib.rnn.LSTMBlockFusedCell``: TF's ``BlockLSTM`` op, one LSTM over a whole
    time-major sequence.

    Per step, ``i, j, f, o = split([x, h] @ kernel + bias, 4)``; ``c' = sigmoid(f +
    forget_bias (+ w_f_diag * c)) * c + sigmoid(i (+ w_i_diag * c)) * tanh(j)``, clipped to
    ``[-cell_clip, cell_clip]`` when ``cell_clip > 0``; ``h' = sigmoid(o (+ w_o_diag * c'))
    * tanh(c')`` (:class:`~rnnkit.rnn.LSTMBlockCell`'s step).  Without peepholes or a clip it
    runs on PyTorch's fused LSTM kernel (cuDNN on a GPU), which computes the same.

    Args:
        num_units: ``H``.
        forget_bias: added to the forget gate.
        cell_clip: ``None`` or a value <= 0 (TF's ``-1``) does not clip.
        use_peephole: diagonal peephole weights ``w_i_diag``, ``w_f_diag``, ``w_o_diag``.
        dtype: the variables' dtype.
        name: the scope, default ``lstm_fused_cell``.

    ``fused(inputs, initial_state=None, dtype=None, sequence_length=None)``: inputs
    ``[time, batch, I]`` or a list of ``time`` tensors ``[batch, I]``; ``initial_state`` a
    pair ``(c, h)`` of ``[batch, H]`` (without it ``dtype`` is required, as in TF);
    ``sequence_length [batch]``.  Returns ``outputs`` like the inputs (``[time, batch, H]``,
    zero past each length) and ``LSTMStateTuple(c, h)`` at each sequence's length.
    TF variables (``lstm_fused_cell/``): ``kernel [I + H, 4H]``, ``bias [4H]`` (zeros),
    ``w_i_diag``, ``w_f_diag``, ``w_o_diag [H]``.
    """

    def __init__(self, num_units: int, forget_bias: float = 1.0,
                 cell_clip: float | None = None, use_peephole: bool = False, reuse=None,
                 dtype: torch.dtype | None = None, name: str = "lstm_fused_cell", *,
                 input_size: int | None = None):
        super().__init__()
        self._name = name
        self.cell = LSTMBlockCell(num_units, forget_bias=forget_bias, cell_clip=cell_clip,
                                  use_peephole=use_peephole, dtype=dtype, reuse=reuse,
                                  name=name, input_size=input_size)

    @property
    def num_units(self) -> int:
        """``H``, the output depth."""
        return self.cell.output_size

    def forward(self, inputs, initial_state=None, dtype=None, sequence_length=None,
                scope=None):
        """Run the LSTM over ``inputs [time, batch, I]`` (or a list of ``[batch, I]``):
        ``(outputs, LSTMStateTuple(c, h))``."""
        from rnnkit.rnn.driver import dynamic_rnn

        is_list = isinstance(inputs, list)
        x = torch.stack([_checks.as_inputs(f"inputs[{i}]", a) for i, a in
                         enumerate(inputs)]) if is_list else _checks.as_inputs("inputs", inputs)
        _checks.rank("inputs", x, 3, "[time, batch, depth]")
        if initial_state is None:
            if dtype is None:
                raise ValueError("Either initial_state or dtype needs to be specified")
        else:
            if not isinstance(initial_state, (tuple, list)) or len(initial_state) != 2:
                raise ValueError("Expecting initial_state to be a tuple with length 2 or None")
            initial_state = LSTMStateTuple(*initial_state)
        outputs, state = dynamic_rnn(self.cell, x, sequence_length=sequence_length,
                                     initial_state=initial_state, dtype=dtype,
                                     time_major=True)
        return (list(outputs.unbind(0)) if is_list else outputs), state

    @property
    def tf_name(self) -> str:
        """``name=`` (default ``lstm_fused_cell``)."""
        return self._name

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        """None besides its LSTM's (``kernel``, ``bias``, ``w_*_diag``, in this scope)."""
        return {}

    def tf_children(self) -> list:
        """The LSTM step it runs, in this module's scope."""
        return [("", self.cell)]


# -- CoupledInputForgetGateLSTMCell -------------------------------------------------------------

def _shard_rows(rows: int, shards: int, what: str) -> list[int]:
    """TF's ``_get_sharded_variable`` split of ``rows`` rows into ``shards`` pieces (the
    first ``rows % shards`` one row larger)."""
    if shards > rows:
        raise ValueError(f"Too many shards for {what}: {rows} rows, num_shards={shards}")
    unit, extra = divmod(rows, shards)
    return [unit + (1 if i < extra else 0) for i in range(shards)]


def _sharded(get, name: str, shards: int, initializer: Any) -> Layout:
    """The parameter ``get()`` as TF's sharded variables ``name_0 ... name_{n-1}`` (row
    blocks; ``name_0`` alone when ``shards == 1``, as TF names it)."""
    p = get()
    if not layout._built(p):
        return {f"{name}_{i}": layout.TFVariable(None, None, _unbuilt(f"{name}_{i}"),
                                                 initializers.resolve(name, initializer))
                for i in range(shards)}
    sizes = _shard_rows(int(p.shape[0]), shards, name)
    out, start = {}, 0
    for i, n in enumerate(sizes):
        def read(a=start, b=start + n):
            return get()[a:b].detach()

        def write(value, a=start, b=start + n, what=f"{name}_{i}"):
            return [layout.assign(get()[a:b], value, what)]

        out[f"{name}_{i}"] = layout.TFVariable((n, *p.shape[1:]), read, write,
                                               initializers.resolve(name, initializer))
        start += n
    return out


def _unbuilt(what: str):
    def write(value):
        raise ValueError(f"{what}: the cell is not built yet (call it once, or give "
                         "input_size=)")
    return write


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


# -- HighwayWrapper -----------------------------------------------------------------------------

class HighwayWrapper(_Wrapper):
    """``tf.contrib.rnn.HighwayWrapper``: a highway connection (Srivastava et al. 2015)
    around ``cell``: ``t = sigmoid(x @ carry_w + carry_b)``; ``output = x * t + y * (1 - t)``
    (``y`` the cell's output), or with ``couple_carry_transform_gates=False`` ``output =
    x * t + y * sigmoid(x @ transform_w + transform_b)``.

    Args:
        cell: its output must have the inputs' shape.
        couple_carry_transform_gates: use ``1 - carry`` as the transform gate.
        carry_bias_init: ``carry_b``'s initial value (``transform_b`` starts at its
            negative).

    Shapes: inputs and output ``[batch, D]``; state as ``cell``'s.  TF variables (in the
    scope where it is called, e.g. ``rnn/``: TF's wrapper opens none): ``carry_w [D, D]``,
    ``carry_b [D]``, ``transform_w [D, D]``, ``transform_b [D]``; the cell's under its
    own name.
    """

    def __init__(self, cell: RNNCell, couple_carry_transform_gates: bool = True,
                 carry_bias_init: float = 1.0):
        super().__init__(cell)
        self._couple = _checks.as_flag("couple_carry_transform_gates",
                                       couple_carry_transform_gates)
        self._carry_bias_init = _checks.as_number("carry_bias_init", carry_bias_init)
        self._input_size: int | None = None
        self.declare_variables(*self._names())

    def _names(self):
        return ("carry_w", "carry_b") if self._couple else \
            ("carry_w", "carry_b", "transform_w", "transform_b")

    def _initializer(self, name):
        return {"carry_b": self._carry_bias_init,
                "transform_b": -self._carry_bias_init}.get(name)

    def build(self, inputs_shape):
        depth = self._input_size = _checks.matrix_depth(type(self).__name__, inputs_shape)
        for name in self._names():
            shape = (depth, depth) if name.endswith("_w") else (depth,)
            self.add_variable(name, shape, initializer=self._initializer(name))
        self.cell.build_for(inputs_shape, self._build_dtype, self._build_device)

    def input_depth_from(self, params):
        w = params.get("carry_w")
        return int(w.shape[0]) if w is not None else None

    def call(self, inputs, state):
        _check_input(self, inputs)
        out, new_state = self.cell.step(inputs, state)
        if not isinstance(out, torch.Tensor) or out.shape != inputs.shape:
            raise ValueError(f"HighwayWrapper needs cell outputs shaped like its inputs "
                             f"{tuple(inputs.shape)}, received "
                             f"{tuple(out.shape) if isinstance(out, torch.Tensor) else out}")
        carry = torch.sigmoid(inputs @ self.carry_w + self.carry_b)
        if self._couple:
            transform = 1 - carry
        else:
            transform = torch.sigmoid(inputs @ self.transform_w + self.transform_b)
        return inputs * carry + out * transform, new_state

    @property
    def tf_name(self) -> str:
        """``""``: TF's wrapper creates its variables in the caller's scope."""
        return ""

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        out = RNNCell.tf_variables(self, available)
        return {n: v._replace(initializer=initializers.resolve(
            n, self._initializer(n) if self._initializer(n) is not None else "glorot_uniform"))
            for n, v in out.items()}


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


# -- ConvLSTMCell -------------------------------------------------------------------------------

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class ConvLSTMCell(RNNCell):
    """``tf.contrib.rnn.ConvLSTMCell`` (Shi et al. 2015): an LSTM whose products are
    ``SAME``-padded, stride-1 convolutions over the spatial axes.

    ``i, j, f, o = split(conv([x, h], kernel) + biases, 4, axis=-1)``; ``c' = sigmoid(f +
    forget_bias) * c + sigmoid(i) * tanh(j)``; ``h' = tanh(c') * sigmoid(o)``; the output is
    ``h'``, or ``concat([h', x], -1)`` with ``skip_connection``.

    Args:
        conv_ndims: 1, 2 or 3 spatial axes.
        input_shape: the per-step input shape without the batch, ``[*spatial, C]``
            (``conv_ndims + 1`` entries).
        output_channels: ``K``, the channels of ``c`` and ``h``.
        kernel_shape: the convolution window, ``conv_ndims`` ints.
        use_bias: add ``biases [4K]`` (zeros).
        skip_connection: concatenate the inputs to the output (``[*spatial, K + C]``).  The
            state's ``h`` stays ``[*spatial, K]`` (TF also puts the concatenation in the
            state, which its own ``state_size`` then contradicts from the second step on).
        forget_bias: added to ``f``.
        initializers: unused by TF; anything but ``None`` is refused.

    Shapes: inputs ``[batch, *spatial, C]`` (``dynamic_rnn``: ``[batch, time, *spatial,
    C]``); state ``LSTMStateTuple(c, h)``, each ``[batch, *spatial, K]``; output ``[batch,
    *spatial, K (+ C)]``.  TF variables (``conv_lstm_cell/``, ``conv_1d_lstm_cell/``, ...):
    ``kernel [*kernel_shape, C + K, 4K]`` (glorot-uniform), ``biases [4K]``; the input
    convolution of all steps is computed at once (``project_inputs``).
    """

    _fast_paths = ("project_inputs",)

    def __init__(self, conv_ndims: int, input_shape, output_channels: int, kernel_shape,
                 use_bias: bool = True, skip_connection: bool = False,
                 forget_bias: float = 1.0, initializers=None, name: str = "conv_lstm_cell",
                 *, dtype: torch.dtype | None = None):
        super().__init__(name=name, dtype=_checks.as_float_dtype("dtype", dtype))
        self._conv_ndims = _checks.as_count("conv_ndims", conv_ndims)
        if self._conv_ndims not in _CONV:
            raise ValueError(f"conv_ndims must be 1, 2 or 3, received {conv_ndims}")
        shape = [_checks.as_count(f"input_shape[{i}]", d) for i, d in enumerate(input_shape)]
        if len(shape) != self._conv_ndims + 1:
            raise ValueError(f"Invalid input_shape {list(input_shape)} for "
                             f"conv_ndims={conv_ndims}.")
        self._input_shape = shape
        self._output_channels = _checks.as_count("output_channels", output_channels)
        self._kernel_shape = [_checks.as_count(f"kernel_shape[{i}]", k)
                              for i, k in enumerate(kernel_shape)]
        if len(self._kernel_shape) != self._conv_ndims:
            raise ValueError(f"kernel_shape must have {self._conv_ndims} entries, received "
                             f"{list(kernel_shape)}")
        self._use_bias = _checks.as_flag("use_bias", use_bias)
        self._skip_connection = _checks.as_flag("skip_connection", skip_connection)
        self._forget_bias = _checks.as_number("forget_bias", forget_bias)
        if initializers is not None:
            raise ValueError("initializers is unused by TF's ConvLSTMCell; pass None (set "
                             "the initial values through compat.load_tf_variables)")
        self.declare_variables("kernel", *(("biases",) if self._use_bias else ()))

    @property
    def state_size(self):
        size = torch.Size(self._input_shape[:-1] + [self._output_channels])
        return LSTMStateTuple(size, size)

    @property
    def output_size(self):
        extra = self._input_shape[-1] if self._skip_connection else 0
        return torch.Size(self._input_shape[:-1] + [self._output_channels + extra])

    def build(self, inputs_shape):
        if list(inputs_shape[1:]) != self._input_shape:
            raise ValueError(f"{type(self).__name__} inputs must have shape [batch, "
                             f"{', '.join(map(str, self._input_shape))}], received "
                             f"{tuple(inputs_shape)}")
        k = self._output_channels
        self.add_variable("kernel", self._kernel_shape + [self._input_shape[-1] + k, 4 * k])
        if self._use_bias:
            self.add_variable("biases", (4 * k,), initializer=0.0)

    def input_depth_from(self, params):
        kernel = params.get("kernel")
        if kernel is None or kernel.dim() != self._conv_ndims + 2:
            return None
        return int(kernel.shape[-2]) - self._output_channels

    def build_for(self, inputs_shape, dtype=None, device=None):
        if isinstance(inputs_shape, int):  # an input depth (load_state_dict)
            inputs_shape = torch.Size([0, *self._input_shape[:-1], inputs_shape])
        super().build_for(inputs_shape, dtype, device)

    def _conv(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``SAME`` stride-1 convolution of ``[N, *spatial, C]`` with a TF kernel ``[*window,
        C, out]`` -> ``[N, *spatial, out]``."""
        n = self._conv_ndims
        w = weight.permute(n + 1, n, *range(n))
        pads: list[int] = []
        for k in reversed(self._kernel_shape):  # F.pad: last axis first; TF pads after more
            pads += [(k - 1) // 2, k - 1 - (k - 1) // 2]
        y = _CONV[n](F.pad(x.movedim(-1, 1), pads), w)
        return y.movedim(1, -1)

    def _check(self, inputs):
        if not isinstance(inputs, torch.Tensor) or list(inputs.shape[1:]) != self._input_shape:
            got = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs)
            raise ValueError(f"{type(self).__name__} inputs must have shape [batch, "
                             f"{', '.join(map(str, self._input_shape))}], received {got}")

    def project_inputs(self, inputs):
        """``[..., *spatial, C] -> [..., *spatial, 4K]``: the inputs' convolution (with
        ``biases``)."""
        lead = inputs.shape[:inputs.dim() - self._conv_ndims - 1]
        flat = inputs.reshape(-1, *inputs.shape[len(lead):])
        y = self._conv(flat, self.kernel[..., :self._input_shape[-1], :])
        if self._use_bias:
            y = y + self.biases
        return y.reshape(*lead, *y.shape[1:])

    def call(self, inputs, state):
        self._check(inputs)
        return self._step(self.project_inputs(inputs), state, inputs)

    def call_projected(self, projected, state):
        if self._skip_connection:
            raise NotImplementedError("skip_connection needs the inputs themselves")
        return self._step(projected, state, None)

    def hoists_inputs(self) -> bool:
        return not self._skip_connection and super().hoists_inputs()

    def _step(self, projected, state, inputs):
        c, h = state
        z = projected + self._conv(h, self.kernel[..., self._input_shape[-1]:, :])
        i, j, f, o = z.chunk(4, -1)
        new_c = torch.sigmoid(f + self._forget_bias) * c + torch.sigmoid(i) * torch.tanh(j)
        new_h = torch.tanh(new_c) * torch.sigmoid(o)
        out = torch.cat([new_h, inputs], -1) if self._skip_connection else new_h
        return out, LSTMStateTuple(new_c, new_h)


class Conv1DLSTMCell(ConvLSTMCell):
    """``tf.contrib.rnn.Conv1DLSTMCell``: :class:`ConvLSTMCell` with ``conv_ndims=1``
    (inputs ``[batch, width, C]``; scope ``conv_1d_lstm_cell``); the other arguments as
    there, by keyword."""

    def __init__(self, name: str = "conv_1d_lstm_cell", **kwargs):
        super().__init__(conv_ndims=1, name=name, **kwargs)


class Conv2DLSTMCell(ConvLSTMCell):
    """``tf.contrib.rnn.Conv2DLSTMCell``: :class:`ConvLSTMCell` with ``conv_ndims=2``
    (inputs ``[batch, height, width, C]``; scope ``conv_2d_lstm_cell``)."""

    def __init__(self, name: str = "conv_2d_lstm_cell", **kwargs):
        super().__init__(conv_ndims=2, name=name, **kwargs)


class Conv3DLSTMCell(ConvLSTMCell):
    """``tf.contrib.rnn.Conv3DLSTMCell``: :class:`ConvLSTMCell` with ``conv_ndims=3``
    (inputs ``[batch, depth, height, width, C]``; scope ``conv_3d_lstm_cell``)."""

    def __init__(self, name: str = "conv_3d_lstm_cell", **kwargs):
        super().__init__(conv_ndims=3, name=name, **kwargs)


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


# -- AttentionCellWrapper -----------------------------------------------------------------------

class AttentionCellWrapper(RNNCell):
    """``tf.contrib.rnn.AttentionCellWrapper`` (Cheng et al. 2016): ``cell`` attending over a
    window of its last ``attn_length`` outputs.

    With ``attn_states [batch, L, A]`` (the window) and ``attns [batch, A]``: ``x' = [x,
    attns] @ kernel + bias``; ``out, s' = cell(x', s)``; ``q = concat(flatten(s'))``;
    ``e_l = attn_v . tanh(attn_states_l @ attn_w + q @ attention/kernel +
    attention/bias)``; ``a = softmax(e)``; ``attns' = sum_l a_l attn_states_l``; ``output =
    [out, attns'] @ attn_output_projection/kernel + attn_output_projection/bias``; the
    window drops its oldest entry and appends ``output``.

    Args:
        cell: the wrapped cell (its state leaves ``[batch, n]``).
        attn_length: ``L`` (> 0).
        attn_size: ``A``, default ``cell.output_size``.
        attn_vec_size: ``V``, default ``A``.
        input_size: the depth of ``x'``, default the inputs' depth ``I``.
        state_is_tuple: ``False``: one concatenated state ``[batch, S + A + L*A]`` (the
            cell's state must then be one tensor).

    Shapes: inputs ``[batch, I]``; state ``(cell state, attns [batch, A], attn_states
    [batch, L*A])``; output ``[batch, A]``.  TF variables (``attention_cell_wrapper/``):
    ``kernel [I + A, input_size]``, ``bias``, ``attention/attn_w [1, 1, A, V]``,
    ``attention/attn_v [V]``, ``attention/kernel [S, V]``, ``attention/bias [V]``
    (``S`` the cell's whole state depth), ``attn_output_projection/kernel [cell output +
    A, A]``, ``attn_output_projection/bias [A]`` (biases zeros); the cell's under its own
    name.
    """

    _NAMES = ("kernel", "bias", "attention/attn_w", "attention/attn_v", "attention/kernel",
              "attention/bias", "attn_output_projection/kernel",
              "attn_output_projection/bias")

    def __init__(self, cell: RNNCell, attn_length: int, attn_size: int | None = None,
                 attn_vec_size: int | None = None, input_size: int | None = None,
                 state_is_tuple: bool = True, reuse=None, *, name: str | None = None):
        super().__init__(name=name, reuse=reuse)
        self.cell = require_cell("cell", cell)
        self._state_is_tuple = _checks.as_flag("state_is_tuple", state_is_tuple)
        if nest.is_nested(cell.state_size) and not self._state_is_tuple:
            raise ValueError("Cell returns tuple of states, but the flag state_is_tuple is "
                             f"not set. State size is: {cell.state_size}")
        if not isinstance(attn_length, int) or isinstance(attn_length, bool) \
                or attn_length <= 0:
            raise ValueError(f"attn_length should be greater than zero, got {attn_length}")
        self._attn_length = attn_length
        sizes = nest.flatten(cell.state_size)
        if not all(isinstance(s, int) for s in sizes) or not isinstance(cell.output_size, int):
            raise ValueError("AttentionCellWrapper needs a cell whose state and output are "
                             f"[batch, n] tensors, received state_size {cell.state_size} and "
                             f"output_size {cell.output_size}")
        self._cell_state_depth = sum(sizes)
        self._attn_size = cell.output_size if attn_size is None \
            else _checks.as_count("attn_size", attn_size)
        self._attn_vec_size = self._attn_size if attn_vec_size is None \
            else _checks.as_count("attn_vec_size", attn_vec_size)
        self._linear_size = None if input_size is None \
            else _checks.as_count("input_size", input_size)
        self.declare_variables(*self._NAMES)

    @property
    def wrapped_cell(self) -> RNNCell:
        """The cell inside."""
        return self.cell

    @property
    def state_size(self):
        size = (self.cell.state_size, self._attn_size, self._attn_size * self._attn_length)
        return size if self._state_is_tuple else sum(size)

    @property
    def output_size(self) -> int:
        return self._attn_size

    def _initializer(self, name):
        return 0.0 if name.endswith("bias") else None

    def build(self, inputs_shape):
        depth = _checks.matrix_depth(type(self).__name__, inputs_shape)
        self._input_size = depth
        a, v = self._attn_size, self._attn_vec_size
        shapes = {"kernel": (depth + a, self._linear_size or depth),
                  "bias": (self._linear_size or depth,),
                  "attention/attn_w": (1, 1, a, v), "attention/attn_v": (v,),
                  "attention/kernel": (self._cell_state_depth, v), "attention/bias": (v,),
                  "attn_output_projection/kernel": (self.cell.output_size + a, a),
                  "attn_output_projection/bias": (a,)}
        for n, s in shapes.items():
            self.add_variable(n, s, initializer=self._initializer(n))

    def input_depth_from(self, params):
        k = params.get("kernel")
        return int(k.shape[0]) - self._attn_size if k is not None and k.dim() == 2 else None

    def call(self, inputs, state):
        _check_input(self, inputs)
        if self._state_is_tuple:
            cell_state, attns, window = state
        else:
            s, a = self._cell_state_depth, self._attn_size
            cell_state, attns, window = state[:, :s], state[:, s:s + a], state[:, s + a:]
        window = window.reshape(-1, self._attn_length, self._attn_size)
        x = torch.cat([inputs, attns], 1) @ self.kernel + self.bias
        cell_out, new_cell_state = self.cell.step(x, cell_state)
        query = torch.cat(nest.flatten(new_cell_state), 1)
        features = window @ self.attention_attn_w[0, 0]                 # [B, L, V]
        y = query @ self.attention_kernel + self.attention_bias         # [B, V]
        scores = (torch.tanh(features + y[:, None]) * self.attention_attn_v).sum(-1)
        weights = torch.softmax(scores, -1)                              # [B, L]
        new_attns = (weights[..., None] * window).sum(1)                # [B, A]
        output = torch.cat([cell_out, new_attns], 1) @ self.attn_output_projection_kernel \
            + self.attn_output_projection_bias
        new_window = torch.cat([window[:, 1:], output[:, None]], 1).reshape(
            -1, self._attn_length * self._attn_size)
        new_state = (new_cell_state, new_attns, new_window)
        if not self._state_is_tuple:
            new_state = torch.cat(list(new_state), 1)
        return output, new_state

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        out = super().tf_variables(available)
        return {n: v._replace(initializer=initializers.resolve(
            n, self._initializer(n) if self._initializer(n) is not None else "glorot_uniform"))
            for n, v in out.items()}
