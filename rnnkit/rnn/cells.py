"""Built-in cells: BasicRNNCell, BasicLSTMCell, LSTMCell, GRUCell, LayerNormBasicLSTMCell.

Parameters are stored in PyTorch's layout (``weight_ih [gates*units, input]``,
``weight_hh [gates*units, state]``, LSTM gate order ``i, f, g, o``) so that the drivers can
hand them to PyTorch's fused kernels without copies.  The mathematics is TF 1.x's, including
``forget_bias``; :func:`rnnkit.compat.load_tf_variables` converts TF's fused
``[input + state, gates*units]`` kernels (gate order ``i, j, f, o``) into this layout.
Initialisation follows TF: ``glorot_uniform`` over the fused kernel, zero biases (GRU gate
bias 1.0).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from rnnkit import _checks
from rnnkit.capture import GraphBindings
from rnnkit.generators import SeededGenerators
from rnnkit.rnn.cell import LSTMStateTuple, RNNCell, glorot_uniform_
from rnnkit.rnn.fused import FusedForm, NotFusableError

__all__ = [
    "BasicLSTMCell",
    "BasicRNNCell",
    "GRUBlockCell",
    "GRUBlockCellV2",
    "GRUCell",
    "LSTMBlockCell",
    "LSTMCell",
    "LayerNormBasicLSTMCell",
]

Activation = Callable[[torch.Tensor], torch.Tensor]


class _GatedCell(RNNCell):
    """Shared lazy-build of ``weight_ih [G*H, I]``, ``weight_hh [G*H, S]``, ``bias [G*H]``."""

    _gates = 1

    def __init__(self, num_units: int, activation, name, dtype, input_size, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        self._num_units = _checks.as_count("num_units", num_units)
        self._activation: Activation = _checks.as_function("activation", activation) or torch.tanh
        self._input_size = input_size
        if input_size is not None:
            self._input_size = _checks.as_count("input_size", input_size)
            self._build_device = torch.device("cpu")
            self.build(torch.Size([0, self._input_size]))
            self.built = True
        else:  # shapes fixed at the first call, objects now: an optimizer may come first
            self.declare_variables(*self._variable_names())

    def _variable_names(self) -> tuple[str, ...]:
        """The parameters :meth:`build` creates."""
        return ("weight_ih", "weight_hh", "bias")

    @property
    def _recurrent_size(self) -> int:
        return self._num_units

    def _make_weights(self, input_depth: int, bias: bool = True) -> None:
        g, h, s = self._gates, self._num_units, self._recurrent_size
        self.weight_ih = self.add_variable("weight_ih", (g * h, input_depth), initializer=0.0)
        self.weight_hh = self.add_variable("weight_hh", (g * h, s), initializer=0.0)
        glorot_uniform_(self.weight_ih.data, fan_in=input_depth + s, fan_out=g * h)
        glorot_uniform_(self.weight_hh.data, fan_in=input_depth + s, fan_out=g * h)
        if bias:
            self.bias = self.add_variable("bias", (g * h,), initializer=0.0)

    def build(self, inputs_shape: torch.Size) -> None:
        self._input_size = _checks.matrix_depth(type(self).__name__, inputs_shape)
        self._make_weights(self._input_size)

    def input_depth_from(self, params: dict[str, torch.Tensor]) -> int | None:
        weight = params.get("weight_ih", params.get("gate_weight_ih"))  # [gates * H, input]
        return int(weight.shape[-1]) if weight is not None and weight.dim() == 2 else None

    def project_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """``[..., I] -> [..., G*H]``: the input-side product for any leading shape."""
        if inputs.dim() < 2 or inputs.shape[-1] != self._input_size:
            raise ValueError(
                f"{type(self).__name__} inputs must have shape [batch, {self._input_size}], "
                f"received {tuple(inputs.shape[-2:])} per step")
        return self._project(inputs)

    def _project(self, inputs: torch.Tensor) -> torch.Tensor:
        return F.linear(inputs, self.weight_ih, self.bias)

    def call(self, inputs: torch.Tensor, state):
        _check_input_depth(self, inputs)
        return self.call_projected(self._project(inputs), state)

    @property
    def output_size(self) -> int:
        return self._num_units


def _require_own_math(cell: RNNCell, base: type) -> None:
    """A subclass that changes the step's mathematics must define its own fused form."""
    if not cell.built:
        raise NotFusableError(f"{type(cell).__name__} is not built yet")
    for name in ("call", "call_projected", "project_inputs", "_project"):
        if getattr(type(cell), name) is not getattr(base, name):
            raise NotFusableError(
                f"{type(cell).__name__} overrides {name}(), so {base.__name__}'s fused form "
                f"may not compute the same thing; define fused_form() to opt in")


def _require_activation(cell: RNNCell, allowed: tuple, names: str) -> None:
    act = cell._activation
    if not any(act is a for a in allowed):
        raise NotFusableError(
            f"{type(cell).__name__} has activation {getattr(act, '__name__', act)!r}; the "
            f"fused kernel computes {names} only")


def _constant_bias(cell: RNNCell, slot: int | None, value: float) -> torch.Tensor:
    """The kernel's second bias vector ``[G*H]``: zeros, ``value`` in gate ``slot``.

    A non-persistent buffer of the cell (not in its ``state_dict``; it moves with the cell
    and a CUDA graph may read it in place), re-made when the weights change device or dtype.
    """
    ref = cell.weight_ih
    off = cell._buffers.get("_constant_bias_cache")
    if off is None or off.device != ref.device or off.dtype != ref.dtype:
        h = cell._num_units
        off = torch.zeros(cell._gates * h, dtype=ref.dtype, device=ref.device)
        if slot is not None:
            off[slot * h : (slot + 1) * h] = value
        cell.register_buffer("_constant_bias_cache", off, persistent=False)
    return off


def _flat_state(h: torch.Tensor, c: torch.Tensor | None):
    return h


def _split_flat_state(state):
    return state, None


def _check_input_depth(cell: _GatedCell, inputs: torch.Tensor) -> None:
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{type(cell).__name__} takes one tensor [batch, {cell._input_size}] "
                        f"as inputs, received a {type(inputs).__name__}")
    if inputs.dim() != 2 or inputs.shape[-1] != cell._input_size:
        raise ValueError(
            f"{type(cell).__name__} inputs must have shape [batch, {cell._input_size}], "
            f"received {tuple(inputs.shape)}"
        )


class BasicRNNCell(_GatedCell):
    """``output = new_state = activation(W_ih x + W_hh h + b)``.

    Args:
        num_units: state and output size ``H``.
        activation: default ``torch.tanh``.
        input_size: give it to create parameters now instead of at the first call.

    Shapes: inputs ``[batch, I]``, state ``[batch, H]``, output ``[batch, H]``.
    """

    def __init__(
        self,
        num_units: int,
        activation: Activation | None = None,
        reuse=None,
        name: str | None = None,
        dtype: torch.dtype | None = None,
        *,
        input_size: int | None = None,
    ):
        super().__init__(num_units, activation, name, dtype, input_size)

    @property
    def state_size(self) -> int:
        return self._num_units

    def call_projected(self, projected, state):
        out = self._activation(projected + F.linear(state, self.weight_hh))
        return out, out

    def fused_form(self) -> FusedForm:
        _require_own_math(self, BasicRNNCell)
        _require_activation(self, (torch.tanh, torch.relu, F.relu), "tanh or relu")
        mode = "rnn_tanh" if self._activation is torch.tanh else "rnn_relu"
        weights = (self.weight_ih, self.weight_hh, self.bias, _constant_bias(self, None, 0.0))
        return FusedForm(mode, self._input_size, self._num_units, 0, weights,
                         _split_flat_state, _flat_state)


class BasicLSTMCell(_GatedCell):
    """TF 1.x ``BasicLSTMCell`` (no peepholes, no clipping, no projection).

    ``c' = c * sigmoid(f + forget_bias) + sigmoid(i) * activation(g)``,
    ``h' = activation(c') * sigmoid(o)``.

    Args:
        num_units: ``H``.
        forget_bias: added to the forget gate pre-activation (not stored in ``bias``).
        state_is_tuple: state is ``LSTMStateTuple(c, h)``; else ``cat([c, h], -1)``.
        activation: default ``torch.tanh``.

    Shapes: inputs ``[batch, I]``, state ``LSTMStateTuple([batch, H], [batch, H])`` or
    ``[batch, 2H]``, output ``[batch, H]``.
    """

    _gates = 4

    def __init__(
        self,
        num_units: int,
        forget_bias: float = 1.0,
        state_is_tuple: bool = True,
        activation: Activation | None = None,
        reuse=None,
        name: str | None = None,
        dtype: torch.dtype | None = None,
        *,
        input_size: int | None = None,
    ):
        self._forget_bias = _checks.as_number("forget_bias", forget_bias)
        self._state_is_tuple = _checks.as_flag("state_is_tuple", state_is_tuple)
        super().__init__(num_units, activation, name, dtype, input_size)

    @property
    def state_size(self):
        h = self._num_units
        return LSTMStateTuple(h, h) if self._state_is_tuple else 2 * h

    def forget_offset(self) -> torch.Tensor:
        """``[4H]`` vector with ``forget_bias`` in the forget-gate slot (PyTorch order)."""
        return _constant_bias(self, 1, self._forget_bias)

    def fused_form(self) -> FusedForm:
        """``nn.LSTM``'s kernel; ``forget_bias`` rides in the kernel's second bias vector."""
        _require_own_math(self, BasicLSTMCell)
        return self._lstm_form(0, ())

    def _lstm_form(self, proj_size: int, extra: tuple) -> FusedForm:
        _require_activation(self, (torch.tanh,), "tanh")
        weights = (self.weight_ih, self.weight_hh, self.bias, self.forget_offset(), *extra)
        return FusedForm("lstm", self._input_size, self._num_units, proj_size, weights,
                         self._fused_split, self._fused_join)

    def _fused_split(self, state):
        c, h = self._split_state(state)
        return h, c

    def _fused_join(self, h, c):
        return self._pack_state(c, h)

    def _project(self, inputs):
        return F.linear(inputs, self.weight_ih, self.bias + self.forget_offset())

    def _split_state(self, state):
        if self._state_is_tuple:
            return state
        return LSTMStateTuple(*state.split(self._num_units, dim=-1))

    def _pack_state(self, c, h):
        return LSTMStateTuple(c, h) if self._state_is_tuple else torch.cat([c, h], dim=-1)

    def call_projected(self, projected, state):
        c, h = self._split_state(state)
        n = self._num_units
        # few, large kernels: one matmul-add, one sigmoid over all gates
        gates = torch.addmm(projected, h, self.weight_hh.t())
        i, f, _, o = torch.sigmoid(gates).chunk(4, dim=-1)
        g = self._activation(gates[:, 2 * n : 3 * n])
        new_c = torch.addcmul(f * c, i, g)
        new_h = o * self._activation(new_c)
        return new_h, self._pack_state(new_c, new_h)


class LSTMCell(BasicLSTMCell):
    """TF 1.x ``LSTMCell``: optional peepholes, cell clipping and output projection.

    Args:
        num_units: ``H``.
        use_peepholes: diagonal peephole weights ``w_i_diag``, ``w_f_diag``, ``w_o_diag``.
        cell_clip: clip ``c`` to ``[-cell_clip, cell_clip]`` after each step.
        num_proj: project ``h`` to ``P`` units with ``weight_proj [P, H]`` (no bias).
        proj_clip: clip the projected ``h`` to ``[-proj_clip, proj_clip]``.
        forget_bias, state_is_tuple, activation: as in :class:`BasicLSTMCell`.

    Shapes: state ``LSTMStateTuple(c [batch, H], h [batch, P or H])``; output
    ``[batch, P or H]``.
    """

    def __init__(
        self,
        num_units: int,
        use_peepholes: bool = False,
        cell_clip: float | None = None,
        initializer=None,
        num_proj: int | None = None,
        proj_clip: float | None = None,
        num_unit_shards=None,
        num_proj_shards=None,
        forget_bias: float = 1.0,
        state_is_tuple: bool = True,
        activation: Activation | None = None,
        reuse=None,
        name: str | None = None,
        dtype: torch.dtype | None = None,
        *,
        input_size: int | None = None,
    ):
        for arg, clip in (("cell_clip", cell_clip), ("proj_clip", proj_clip)):
            if clip is not None and not _checks.as_number(arg, clip) > 0:
                raise ValueError(f"{arg} must be a positive number or None, received {clip!r}")
        self._use_peepholes = _checks.as_flag("use_peepholes", use_peepholes)
        self._cell_clip = cell_clip
        self._num_proj = _checks.as_count("num_proj", num_proj) if num_proj is not None else None
        self._proj_clip = proj_clip
        if proj_clip is not None and num_proj is None:
            raise ValueError("proj_clip needs num_proj")
        super().__init__(
            num_units, forget_bias, state_is_tuple, activation, reuse, name, dtype,
            input_size=input_size,
        )

    @property
    def _recurrent_size(self) -> int:
        return self._num_proj or self._num_units

    def _variable_names(self):
        names = super()._variable_names()
        if self._use_peepholes:
            names += ("w_f_diag", "w_i_diag", "w_o_diag")
        return names + (("weight_proj",) if self._num_proj is not None else ())

    @property
    def state_size(self):
        h, p = self._num_units, self._recurrent_size
        return LSTMStateTuple(h, p) if self._state_is_tuple else h + p

    @property
    def output_size(self) -> int:
        return self._recurrent_size

    def build(self, inputs_shape):
        super().build(inputs_shape)
        h = self._num_units
        if self._use_peepholes:
            self.w_f_diag = self.add_variable("w_f_diag", (h,))
            self.w_i_diag = self.add_variable("w_i_diag", (h,))
            self.w_o_diag = self.add_variable("w_o_diag", (h,))
        if self._num_proj is not None:
            self.weight_proj = self.add_variable("weight_proj", (self._num_proj, h))

    def _split_state(self, state):
        if self._state_is_tuple:
            return state
        return LSTMStateTuple(*state.split([self._num_units, self._recurrent_size], dim=-1))

    def fused_form(self) -> FusedForm:
        """``nn.LSTM``'s kernel (``num_proj`` is its ``proj_size``); no peepholes or clipping."""
        _require_own_math(self, LSTMCell)
        for flag, what in ((self._use_peepholes, "use_peepholes=True"),
                           (self._cell_clip is not None, f"cell_clip={self._cell_clip}"),
                           (self._proj_clip is not None, f"proj_clip={self._proj_clip}")):
            if flag:
                raise NotFusableError(f"LSTMCell with {what} has no fused kernel")
        if self._num_proj is None:
            return self._lstm_form(0, ())
        return self._lstm_form(self._num_proj, (self.weight_proj,))

    def call_projected(self, projected, state):
        c, h = self._split_state(state)
        gates = projected + F.linear(h, self.weight_hh)
        i, f, g, o = gates.chunk(4, dim=-1)
        if self._use_peepholes:
            i = i + self.w_i_diag * c
            f = f + self.w_f_diag * c
        new_c = c * torch.sigmoid(f) + torch.sigmoid(i) * self._activation(g)
        if self._cell_clip is not None:
            new_c = new_c.clamp(-self._cell_clip, self._cell_clip)
        if self._use_peepholes:
            o = o + self.w_o_diag * new_c
        new_h = torch.sigmoid(o) * self._activation(new_c)
        if self._num_proj is not None:
            new_h = F.linear(new_h, self.weight_proj)
            if self._proj_clip is not None:
                new_h = new_h.clamp(-self._proj_clip, self._proj_clip)
        return new_h, self._pack_state(new_c, new_h)


class GRUCell(_GatedCell):
    """Gated recurrent unit.

    ``reset_after=False`` (default) is TF 1.x's ``GRUCell``::

        r, u = sigmoid(W_g [x, h] + b_g)          # b_g starts at 1.0
        c    = activation(W_c [x, r * h] + b_c)
        h'   = u * h + (1 - u) * c

    ``reset_after=True`` is the cuDNN / Keras / ``nn.GRU`` variant (fused fast path)::

        c = activation(W_ic x + b_ic + r * (W_hc h + b_hc))

    Parameters (``reset_after=False``): ``gate_weight_ih [2H, I]``, ``gate_weight_hh [2H, H]``,
    ``gate_bias [2H]`` (order r, u), ``cand_weight_ih [H, I]``, ``cand_weight_hh [H, H]``,
    ``cand_bias [H]``.  (``reset_after=True``): ``weight_ih [3H, I]``, ``weight_hh [3H, H]``,
    ``bias [3H]`` (input side), ``bias_hh [3H]``, order r, z, n as in ``nn.GRU``.

    Shapes: inputs ``[batch, I]``, state and output ``[batch, H]``.
    """

    _gates = 3

    def __init__(
        self,
        num_units: int,
        activation: Activation | None = None,
        reuse=None,
        kernel_initializer=None,
        bias_initializer=None,
        name: str | None = None,
        dtype: torch.dtype | None = None,
        *,
        reset_after: bool = False,
        input_size: int | None = None,
    ):
        self._reset_after = _checks.as_flag("reset_after", reset_after)
        super().__init__(num_units, activation, name, dtype, input_size)

    @property
    def reset_after(self) -> bool:
        """True for the cuDNN / Keras variant (reset applied after the recurrent matmul)."""
        return self._reset_after

    def _variable_names(self):
        if self._reset_after:
            return ("weight_ih", "weight_hh", "bias", "bias_hh")
        return ("gate_weight_ih", "gate_weight_hh", "gate_bias", "cand_weight_ih",
                "cand_weight_hh", "cand_bias")

    @property
    def state_size(self) -> int:
        return self._num_units

    def build(self, inputs_shape):
        self._input_size = i = _checks.matrix_depth(type(self).__name__, inputs_shape)
        h = self._num_units
        if self._reset_after:
            self._make_weights(i)
            self.bias_hh = self.add_variable("bias_hh", (3 * h,), initializer=0.0)
            with torch.no_grad():
                self.bias[: 2 * h] = 1.0
            return
        self.gate_weight_ih = self.add_variable("gate_weight_ih", (2 * h, i), initializer=0.0)
        self.gate_weight_hh = self.add_variable("gate_weight_hh", (2 * h, h), initializer=0.0)
        self.gate_bias = self.add_variable("gate_bias", (2 * h,), initializer=1.0)
        self.cand_weight_ih = self.add_variable("cand_weight_ih", (h, i), initializer=0.0)
        self.cand_weight_hh = self.add_variable("cand_weight_hh", (h, h), initializer=0.0)
        self.cand_bias = self.add_variable("cand_bias", (h,), initializer=0.0)
        for w, fan_out in ((self.gate_weight_ih, 2 * h), (self.gate_weight_hh, 2 * h),
                           (self.cand_weight_ih, h), (self.cand_weight_hh, h)):
            glorot_uniform_(w.data, fan_in=i + h, fan_out=fan_out)

    def fused_form(self) -> FusedForm:
        """``nn.GRU``'s kernel, for ``reset_after=True`` only."""
        _require_own_math(self, GRUCell)
        if not self._reset_after:
            raise NotFusableError(
                "GRUCell(reset_after=False) (TF 1.x's formula) has no fused kernel; "
                "reset_after=True is the cuDNN variant")
        _require_activation(self, (torch.tanh,), "tanh")
        weights = (self.weight_ih, self.weight_hh, self.bias, self.bias_hh)
        return FusedForm("gru", self._input_size, self._num_units, 0, weights,
                         _split_flat_state, _flat_state)

    def _project(self, inputs):
        if self._reset_after:
            return F.linear(inputs, self.weight_ih, self.bias)
        w = torch.cat([self.gate_weight_ih, self.cand_weight_ih], 0)
        b = torch.cat([self.gate_bias, self.cand_bias], 0)
        return F.linear(inputs, w, b)

    def call_projected(self, projected, state):
        h = self._num_units
        if self._reset_after:
            hh = F.linear(state, self.weight_hh, self.bias_hh)
            r, z = torch.sigmoid(projected[..., : 2 * h] + hh[..., : 2 * h]).chunk(2, dim=-1)
            n = self._activation(projected[..., 2 * h :] + r * hh[..., 2 * h :])
            new_h = (1 - z) * n + z * state
            return new_h, new_h
        gates = torch.sigmoid(projected[..., : 2 * h] + F.linear(state, self.gate_weight_hh))
        r, u = gates.chunk(2, dim=-1)
        c = self._activation(projected[..., 2 * h :] + F.linear(r * state, self.cand_weight_hh))
        new_h = u * state + (1 - u) * c
        return new_h, new_h


class LSTMBlockCell(LSTMCell):
    """``tf.contrib.rnn.LSTMBlockCell``: TF's fused-op LSTM, the computation and variables
    (``lstm_cell/kernel``, ``bias``, ``w_*_diag``) of :class:`LSTMCell` without projection.

    Args:
        num_units: ``H``.
        forget_bias: added to the forget gate.
        cell_clip: clip ``c`` to ``[-cell_clip, cell_clip]``; ``None`` or a negative value
            (TF's ``-1``) does not clip.
        use_peephole: diagonal peephole weights (TF's singular spelling).

    Shapes: state ``LSTMStateTuple(c [batch, H], h [batch, H])``; output ``[batch, H]``.
    """

    def __init__(self, num_units: int, forget_bias: float = 1.0,
                 cell_clip: float | None = None, use_peephole: bool = False,
                 dtype: torch.dtype | None = None, reuse=None, name: str | None = None, *,
                 input_size: int | None = None):
        if cell_clip is not None and _checks.as_number("cell_clip", cell_clip) < 0:
            cell_clip = None
        super().__init__(num_units, use_peepholes=use_peephole, cell_clip=cell_clip,
                         forget_bias=forget_bias, reuse=reuse, name=name, dtype=dtype,
                         input_size=input_size)


class GRUBlockCell(GRUCell):
    """``tf.contrib.rnn.GRUBlockCell`` / ``GRUBlockCellV2``: TF's fused-op GRU, the
    computation of TF 1.x's :class:`GRUCell`.  Checkpoints of either name its variables its
    own way (``w_ru``, ``b_ru``, ``w_c``, ``b_c``; V2: ``gates/kernel``, ...):
    :mod:`rnnkit.compat` loads both.

    Args:
        num_units: ``H`` (``cell_size`` is TF's older name for it).

    Shapes: state and output ``[batch, H]``.
    """

    def __init__(self, num_units: int | None = None, cell_size: int | None = None, reuse=None,
                 name: str | None = None, *, input_size: int | None = None):
        if (num_units is None) == (cell_size is None):
            raise ValueError("give num_units (or TF's older cell_size), exactly one of them")
        super().__init__(num_units if num_units is not None else cell_size, reuse=reuse,
                         name=name, input_size=input_size)


#: ``tf.contrib.rnn.GRUBlockCellV2``: :class:`GRUBlockCell` (they differ only in their
#: checkpoints' variable names, which loading tells apart).
GRUBlockCellV2 = GRUBlockCell


class LayerNormBasicLSTMCell(BasicLSTMCell):
    """LSTM with layer normalisation and recurrent dropout (Ba et al. 2016; Semeniuta 2016).

    As TF 1.x contrib: each gate pre-activation is layer-normalised (``gamma`` starts at
    ``norm_gain``, ``beta`` at ``norm_shift``, epsilon 1e-12), then ``c'`` is normalised
    again before the output; without ``layer_norm`` a plain bias is used.  Dropout with
    ``dropout_keep_prob`` applies to the candidate ``g``, in ``train()`` mode only.

    Parameters: ``weight_ih [4H, I]``, ``weight_hh [4H, H]``, ``ln_gamma``/``ln_beta [4, H]``
    (gate order i, f, g, o), ``state_gamma``/``state_beta [H]``; ``bias [4H]`` when
    ``layer_norm=False``.  Shapes as :class:`BasicLSTMCell`.
    """

    def __init__(
        self,
        num_units: int,
        forget_bias: float = 1.0,
        input_size: int | None = None,
        activation: Activation | None = None,
        layer_norm: bool = True,
        norm_gain: float = 1.0,
        norm_shift: float = 0.0,
        dropout_keep_prob: float = 1.0,
        dropout_prob_seed: int | None = None,
        reuse=None,
        name: str | None = None,
        dtype: torch.dtype | None = None,
    ):
        self._layer_norm = _checks.as_flag("layer_norm", layer_norm)
        self._norm_gain = _checks.as_number("norm_gain", norm_gain)
        self._norm_shift = _checks.as_number("norm_shift", norm_shift)
        self._keep_prob = _checks.as_number("dropout_keep_prob", dropout_keep_prob,
                                            low=0, low_open=True, high=1)
        self._random = SeededGenerators(dropout_prob_seed, "dropout_prob_seed")
        super().__init__(
            num_units, forget_bias, True, activation, reuse, name, dtype, input_size=input_size
        )

    def build(self, inputs_shape):
        self._input_size = _checks.matrix_depth(type(self).__name__, inputs_shape)
        h = self._num_units
        self._make_weights(self._input_size, bias=not self._layer_norm)
        if self._layer_norm:
            self.ln_gamma = self.add_variable("ln_gamma", (4, h), initializer=self._norm_gain)
            self.ln_beta = self.add_variable("ln_beta", (4, h), initializer=self._norm_shift)
            self.state_gamma = self.add_variable("state_gamma", (h,), initializer=self._norm_gain)
            self.state_beta = self.add_variable("state_beta", (h,), initializer=self._norm_shift)

    def _variable_names(self):
        if not self._layer_norm:
            return ("weight_ih", "weight_hh", "bias")
        return ("weight_ih", "weight_hh", "ln_gamma", "ln_beta", "state_gamma", "state_beta")

    @staticmethod
    def _norm(x, gamma, beta):
        mean = x.mean(-1, keepdim=True)
        var = (x - mean).pow(2).mean(-1, keepdim=True)
        return (x - mean) * torch.rsqrt(var + 1e-12) * gamma + beta

    def project_inputs(self, inputs):
        return None  # normalisation acts on the sum of both sides: nothing to hoist

    def fused_form(self) -> FusedForm:
        raise NotFusableError("LayerNormBasicLSTMCell (layer normalisation) has no fused kernel")

    def graph_bindings(self) -> GraphBindings:
        """Nothing per call; a seeded dropout in ``train()`` mode cannot be graphed."""
        if self.training and self._keep_prob < 1.0:
            self._random.refuse_graphs(
                "LayerNormBasicLSTMCell(dropout_prob_seed=...) draws its dropout")
        return GraphBindings()

    def call(self, inputs, state):
        _check_input_depth(self, inputs)
        c, h = state
        z = F.linear(inputs, self.weight_ih) + F.linear(h, self.weight_hh)
        if self._layer_norm:
            z4 = self._norm(z.unflatten(-1, (4, self._num_units)), self.ln_gamma, self.ln_beta)
            i, f, g, o = z4.unbind(-2)
        else:
            i, f, g, o = (z + self.bias).chunk(4, dim=-1)
        g = self._activation(g)
        if self.training and self._keep_prob < 1.0:
            g = (F.dropout(g, p=1.0 - self._keep_prob, training=True)
                 if self._random.seed is None else g * self._random.mask(g, self._keep_prob))
        new_c = c * torch.sigmoid(f + self._forget_bias) + torch.sigmoid(i) * g
        if self._layer_norm:
            new_c = self._norm(new_c, self.state_gamma, self.state_beta)
        new_h = self._activation(new_c) * torch.sigmoid(o)
        return new_h, LSTMStateTuple(new_c, new_h)

