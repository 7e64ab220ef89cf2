"""Built-in cells: BasicRNNCell, BasicLSTMCell, LSTMCell, GRUCell, LayerNormBasicLSTMCell and
contrib's block cells.

Parameters are stored in PyTorch's layout (``weight_ih [gates*units, input]``,
``weight_hh [gates*units, state]``, LSTM gate order ``i, f, g, o``) so that the drivers can
hand them to PyTorch's fused kernels without copies.  The mathematics is TF 1.x's, including
``forget_bias``.  Each cell describes its TF variables (:meth:`tf_variables`: TF's fused
``[input + state, gates*units]`` kernels in gate order ``i, j, f, o``, and the Keras layouts
where TF 2 programs use them); they are initialised as TF initialises them, in TF's shapes:
``glorot_uniform`` kernels (or the ``initializer`` / ``kernel_initializer`` given), zero
biases (GRU gate bias 1.0).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit import _checks, initializers
from rnnkit.capture import GraphBindings
from rnnkit.compat import layout
from rnnkit.generators import SeededGenerators
from rnnkit.rnn.cell import LSTMStateTuple, RNNCell
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
Layout = dict[str, layout.TFVariable]


class _GatedCell(RNNCell):
    """Shared lazy build of ``weight_ih [G*H, I]``, ``weight_hh [G*H, S]``, ``bias [G*H]``."""

    _gates = 1
    step_methods = (*RNNCell.step_methods, "_project")

    def __init__(self, num_units: int, activation, name, dtype, input_size,
                 kernel_initializer: Any = None, bias_initializer: Any = None, **kwargs):
        super().__init__(name=name, dtype=_checks.as_float_dtype("dtype", dtype), **kwargs)
        self._num_units = _checks.as_count("num_units", num_units)
        self._activation: Activation = _checks.as_function("activation", activation) or torch.tanh
        self._kernel_init = initializers.resolve("initializer", kernel_initializer)
        self._bias_init = initializers.resolve("bias_initializer", bias_initializer)
        self._input_size = input_size
        self.declare_variables(*self._variable_names())
        if input_size is not None:
            self.build_for(_checks.as_count("input_size", input_size), dtype,
                           torch.device("cpu"))

    def _variable_names(self) -> tuple[str, ...]:
        """The parameters :meth:`build` creates."""
        return ("weight_ih", "weight_hh", "bias")

    @property
    def _recurrent_size(self) -> int:
        return self._num_units

    def _make(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """Size the declared parameters (zeros), then initialise them as TF does."""
        for name, shape in shapes.items():
            self.add_variable(name, shape, initializer=0.0)
        layout.initialize(self)

    def _gated_shapes(self, input_depth: int) -> dict[str, tuple[int, ...]]:
        g, h, s = self._gates, self._num_units, self._recurrent_size
        return {"weight_ih": (g * h, input_depth), "weight_hh": (g * h, s), "bias": (g * h,)}

    def build(self, inputs_shape: torch.Size) -> None:
        self._input_size = _checks.matrix_depth(type(self).__name__, inputs_shape)
        self._make(self._gated_shapes(self._input_size))

    def _build_from_kernel(self, shape: tuple[int, ...]) -> None:
        """Size the cell from TF's fused kernel ``[input + state, cols]``."""
        depth = shape[0] - self._recurrent_size
        if depth <= 0:
            raise ValueError(f"{self.tf_name}/kernel: {shape[0]} rows leave no room for inputs "
                             f"(the state takes {self._recurrent_size})")
        self.build_for(depth, self._build_dtype)

    def _build_from_input_kernel(self, shape: tuple[int, ...]) -> None:
        """Size the cell from a Keras kernel ``[input, cols]``."""
        self.build_for(shape[0], self._build_dtype)

    def _kernel(self, perm: np.ndarray | None, ih: str = "weight_ih", hh: str = "weight_hh",
                initializer: Any = None) -> layout.TFVariable:
        return layout.fused_kernel(lambda: getattr(self, ih), lambda: getattr(self, hh),
                                   f"{self.tf_name}/kernel", perm,
                                   initializer or self._kernel_init or "glorot_uniform",
                                   build=self._build_from_kernel)

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
        _check_input(self, inputs)
        return self.call_projected(self._project(inputs), state)

    @property
    def output_size(self) -> int:
        return self._num_units


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


def _check_input(cell: _GatedCell, inputs: Any) -> None:
    """One floating tensor ``[batch, input_size]`` per step (TF's cells take floats)."""
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{type(cell).__name__} takes one tensor [batch, {cell._input_size}] "
                        f"as inputs, received a {type(inputs).__name__}")
    if not inputs.is_floating_point():
        raise _checks.DTypeError(f"{type(cell).__name__} inputs must be floating-point (RNN "
                                 f"cells take floats), received dtype {inputs.dtype}")
    if inputs.dim() != 2 or inputs.shape[-1] != cell._input_size:
        raise ValueError(
            f"{type(cell).__name__} inputs must have shape [batch, {cell._input_size}], "
            f"received {tuple(inputs.shape)}"
        )


def _keras(available: Collection[str]) -> bool:
    """Do the variables being loaded use Keras's layout (``recurrent_kernel``)?"""
    return "recurrent_kernel" in available


class BasicRNNCell(_GatedCell):
    """``output = new_state = activation(W_ih x + W_hh h + b)``.

    Args:
        num_units: state and output size ``H``.
        activation: default ``torch.tanh``.
        input_size: give it to create parameters now instead of at the first call.

    Shapes: inputs ``[batch, I]``, state ``[batch, H]``, output ``[batch, H]``.
    TF variables: ``kernel [I + H, H]``, ``bias [H]`` (Keras ``SimpleRNNCell``: ``kernel
    [I, H]``, ``recurrent_kernel [H, H]``, ``bias [H]``).
    """

    _fast_paths = ("project_inputs",)

    tf_default_name = "basic_rnn_cell"

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
        _require_built(self)
        _require_activation(self, (torch.tanh, torch.relu, F.relu), "tanh or relu")
        mode = "rnn_tanh" if self._activation is torch.tanh else "rnn_relu"
        weights = (self.weight_ih, self.weight_hh, self.bias, _constant_bias(self, None, 0.0))
        return FusedForm(mode, self._input_size, self._num_units, 0, weights,
                         _split_flat_state, _flat_state)

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        """TF 1.x's ``kernel``, ``bias``; Keras's when ``recurrent_kernel`` is loaded."""
        bias = layout.param(lambda: self.bias, "bias", initializer=self._bias_init or 0.0)
        if _keras(available):
            return _keras_input_side(self, None) | {"bias": bias}
        return {"kernel": self._kernel(None), "bias": bias}


def _keras_input_side(cell: _GatedCell, perm: np.ndarray | None) -> Layout:
    """Keras's ``kernel [I, cols]`` and ``recurrent_kernel [H, cols]``."""
    return {"kernel": layout.param(lambda: cell.weight_ih, "kernel", transpose=True, perm=perm,
                                   initializer=cell._kernel_init or "glorot_uniform",
                                   build=cell._build_from_input_kernel),
            "recurrent_kernel": layout.param(lambda: cell.weight_hh, "recurrent_kernel",
                                             transpose=True, perm=perm,
                                             initializer="orthogonal")}


def _require_built(cell: RNNCell) -> None:
    if not cell.built:
        raise NotFusableError(f"{type(cell).__name__} is not built yet")


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
    ``[batch, 2H]``, output ``[batch, H]``.  TF variables: ``kernel [I + H, 4H]`` (gates
    ``i, j, f, o``), ``bias [4H]``; Keras ``LSTMCell``'s ``kernel``, ``recurrent_kernel``,
    ``bias`` load too (their bias without ``forget_bias``).
    """

    _fast_paths = ("project_inputs",)

    _gates = 4
    tf_default_name = "basic_lstm_cell"

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
        _initializer: Any = None,
    ):
        self._forget_bias = _checks.as_number("forget_bias", forget_bias)
        self._state_is_tuple = _checks.as_flag("state_is_tuple", state_is_tuple)
        super().__init__(num_units, activation, name, dtype, input_size, _initializer)

    @property
    def state_size(self):
        h = self._num_units
        return LSTMStateTuple(h, h) if self._state_is_tuple else 2 * h

    def forget_offset(self) -> torch.Tensor:
        """``[4H]`` vector with ``forget_bias`` in the forget-gate slot (PyTorch order)."""
        return _constant_bias(self, 1, self._forget_bias)

    def fused_form(self) -> FusedForm:
        """``nn.LSTM``'s kernel; ``forget_bias`` rides in the kernel's second bias vector."""
        _require_built(self)
        return self._lstm_form(0, ())

    def _lstm_form(self, proj_size: int, extra: tuple) -> FusedForm:
        _require_activation(self, (torch.tanh,), "tanh")
        weights = (self.weight_ih, self.weight_hh, self.bias, self.forget_offset(), *extra)
        return FusedForm("lstm", self._input_size, self._num_units, proj_size, weights,
                         self._to_kernel_state, self._from_kernel_state)

    def _to_kernel_state(self, state):
        c, h = self._unpack(state)
        return h, c

    def _from_kernel_state(self, h, c):
        return self._pack(c, h)

    def _project(self, inputs):
        return F.linear(inputs, self.weight_ih, self.bias + self.forget_offset())

    def _unpack(self, state) -> LSTMStateTuple:
        """``(c, h)`` of a state, tuple or concatenated."""
        if self._state_is_tuple:
            return state
        return LSTMStateTuple(*state.split(self._num_units, dim=-1))

    def _pack(self, c, h):
        return LSTMStateTuple(c, h) if self._state_is_tuple else torch.cat([c, h], dim=-1)

    def call_projected(self, projected, state):
        c, h = self._unpack(state)
        n = self._num_units
        # few, large kernels: one matmul-add, one sigmoid over all gates
        gates = torch.addmm(projected, h, self.weight_hh.t())
        act = self._activation
        if act is torch.tanh:
            s = torch.sigmoid(gates)
            i, f, o = s[:, :n], s[:, n:2 * n], s[:, 3 * n:]
            g = torch.tanh(gates[:, 2 * n:3 * n])
        else:
            i, f, g, o = gates.chunk(4, dim=-1)
            i, f, o, g = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o), act(g)
        new_c = c * f + i * g
        new_h = act(new_c) * o
        return new_h, self._pack(new_c, new_h)

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        """TF 1.x's ``kernel``, ``bias`` (gates ``i, j, f, o``); Keras's ``kernel``,
        ``recurrent_kernel``, ``bias`` (gates ``i, f, c, o``, no ``forget_bias`` in the bias)
        when ``recurrent_kernel`` is loaded."""
        if _keras(available):
            return _keras_input_side(self, None) | {"bias": self._keras_bias()}
        perm = layout.gate_perm(self._num_units)
        return {"kernel": self._kernel(perm),
                "bias": layout.param(lambda: self.bias, "bias", perm=perm, initializer=0.0)}

    def _keras_bias(self) -> layout.TFVariable:
        """Keras adds no forget bias: rnnkit's bias is Keras's minus ``forget_bias``."""
        base = layout.param(lambda: self.bias, "bias", initializer=0.0)

        def read() -> torch.Tensor:
            return base.read() + self.forget_offset().detach()

        def write(value: Any) -> list[torch.Tensor]:
            value = layout.as_value(value)
            if tuple(value.shape) != (4 * self._num_units,):
                raise ValueError(f"bias: expected shape ({4 * self._num_units},), received "
                                 f"{tuple(value.shape)}")
            return base.write(value.to(self.bias.dtype) - self.forget_offset().cpu())

        return base._replace(read=read if base.read is not None else None, write=write)


class LSTMCell(BasicLSTMCell):
    """TF 1.x ``LSTMCell``: optional peepholes, cell clipping and output projection.

    Args:
        num_units: ``H``.
        use_peepholes: diagonal peephole weights ``w_{i,f,o}_diag [H]``.
        cell_clip: clip ``c`` to ``[-cell_clip, cell_clip]`` (``0`` clips to zero, as TF).
        initializer: initializer of the kernel, peepholes and projection (TF's default
            ``glorot_uniform``; see :mod:`rnnkit.initializers`); biases start at zero.
        num_proj: project ``h`` to ``P`` units (``weight_proj [P, H]``).
        proj_clip: clip the projection to ``[-proj_clip, proj_clip]``.
        num_unit_shards, num_proj_shards: TF's variable partitioning (how TF split the
            kernel across parameter servers): accepted; rnnkit holds one tensor per variable
            and computes the same thing (a checkpoint's partitioned variables load whole).
        forget_bias, state_is_tuple, activation: as in :class:`BasicLSTMCell`.

    Shapes: state ``LSTMStateTuple(c [batch, H], h [batch, P or H])``; output
    ``[batch, P or H]``.  TF variables: ``kernel [I + P, 4H]``, ``bias [4H]``,
    ``w_f_diag``, ``w_i_diag``, ``w_o_diag [H]``, ``projection/kernel [H, P]``.
    """

    _fast_paths = ("project_inputs",)

    tf_default_name = "lstm_cell"

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
        self._cell_clip = _clip("cell_clip", cell_clip)
        self._proj_clip = _clip("proj_clip", proj_clip)
        for arg, shards in (("num_unit_shards", num_unit_shards),
                            ("num_proj_shards", num_proj_shards)):
            if shards is not None:
                _checks.as_count(arg, shards)
        self._use_peepholes = _checks.as_flag("use_peepholes", use_peepholes)
        self._num_proj = _checks.as_count("num_proj", num_proj) if num_proj is not None else None
        if proj_clip is not None and num_proj is None:
            raise ValueError("proj_clip needs num_proj")
        super().__init__(num_units, forget_bias, state_is_tuple, activation, reuse, name,
                         dtype, input_size=input_size, _initializer=initializer)

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
        self._input_size = _checks.matrix_depth(type(self).__name__, inputs_shape)
        shapes = self._gated_shapes(self._input_size)
        h = self._num_units
        if self._use_peepholes:
            shapes.update(w_f_diag=(h,), w_i_diag=(h,), w_o_diag=(h,))
        if self._num_proj is not None:
            shapes["weight_proj"] = (self._num_proj, h)
        self._make(shapes)

    def _unpack(self, state) -> LSTMStateTuple:
        if self._state_is_tuple:
            return state
        return LSTMStateTuple(*state.split([self._num_units, self._recurrent_size], dim=-1))

    def fused_form(self) -> FusedForm:
        """``nn.LSTM``'s kernel (``num_proj`` is its ``proj_size``); no peepholes or clipping."""
        _require_built(self)
        for flag, what in ((self._use_peepholes, "use_peepholes=True"),
                           (self._cell_clip is not None, f"cell_clip={self._cell_clip}"),
                           (self._proj_clip is not None, f"proj_clip={self._proj_clip}")):
            if flag:
                raise NotFusableError(f"{type(self).__name__} with {what} has no fused kernel")
        if self._num_proj is None:
            return self._lstm_form(0, ())
        return self._lstm_form(self._num_proj, (self.weight_proj,))

    def call_projected(self, projected, state):
        c, h = self._unpack(state)
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
        return new_h, self._pack(new_c, new_h)

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        """TF 1.x's ``kernel``, ``bias``, peepholes and ``projection/kernel``; Keras's
        ``LSTMCell`` layout (no peepholes or projection) when ``recurrent_kernel`` is
        loaded."""
        if _keras(available):
            if self._use_peepholes or self._num_proj is not None:
                raise ValueError(f"{self.tf_name}: a Keras LSTMCell has no peepholes or "
                                 "projection; load it into LSTMCell(use_peepholes=False, "
                                 "num_proj=None)")
            return super().tf_variables(available)
        out = super().tf_variables(available)
        init = self._kernel_init or "glorot_uniform"
        if self._use_peepholes:
            for d in ("w_f_diag", "w_i_diag", "w_o_diag"):
                out[d] = layout.param(lambda d=d: getattr(self, d), d, initializer=init)
        if self._num_proj is not None:
            out["projection/kernel"] = layout.param(lambda: self.weight_proj,
                                                    "projection/kernel", transpose=True,
                                                    initializer=init)
        return out


def _clip(name: str, value: Any) -> float | None:
    if value is None:
        return None
    value = _checks.as_number(name, value, low=0)
    return value


class GRUCell(_GatedCell):
    """Gated recurrent unit.

    ``reset_after=False`` (default) is TF 1.x's ``GRUCell``::

        r, u = sigmoid(W_g [x, h] + b_g)          # b_g starts at 1.0
        c    = activation(W_c [x, r * h] + b_c)
        h'   = u * h + (1 - u) * c

    ``reset_after=True`` is the cuDNN / Keras / ``nn.GRU`` variant (fused fast path)::

        c = activation(W_ic x + b_ic + r * (W_hc h + b_hc))

    Args:
        num_units: ``H``.
        activation: default ``torch.tanh``.
        kernel_initializer: TF's default ``glorot_uniform``, for both kernels.
        bias_initializer: default 1.0 for the gates' bias and 0 for the candidate's (TF
            1.x); ``reset_after=True``: zeros (Keras).

    Parameters (``reset_after=False``): ``gate_weight_ih [2H, I]``, ``gate_weight_hh [2H, H]``,
    ``gate_bias [2H]`` (order r, u), ``cand_weight_ih [H, I]``, ``cand_weight_hh [H, H]``,
    ``cand_bias [H]``: TF's ``gates/kernel [I + H, 2H]``, ``gates/bias``,
    ``candidate/kernel [I + H, H]``, ``candidate/bias``.  (``reset_after=True``): ``weight_ih
    [3H, I]``, ``weight_hh [3H, H]``, ``bias [3H]`` (input side), ``bias_hh [3H]``, order r,
    z, n as in ``nn.GRU``: Keras's ``kernel [I, 3H]``, ``recurrent_kernel [H, 3H]``, ``bias
    [2, 3H]`` (gates z, r, h; ``recurrent_kernel`` starts orthogonal, as in Keras).

    Shapes: inputs ``[batch, I]``, state and output ``[batch, H]``.
    """

    _fast_paths = ("project_inputs",)

    _gates = 3
    tf_default_name = "gru_cell"

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
        super().__init__(num_units, activation, name, dtype, input_size, kernel_initializer,
                         bias_initializer)

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
            self._make({**self._gated_shapes(i), "bias_hh": (3 * h,)})
            return
        self._make({"gate_weight_ih": (2 * h, i), "gate_weight_hh": (2 * h, h),
                    "gate_bias": (2 * h,), "cand_weight_ih": (h, i),
                    "cand_weight_hh": (h, h), "cand_bias": (h,)})

    def _build_from_kernel(self, shape: tuple[int, ...]) -> None:
        self.build_for(shape[0] - self._num_units, self._build_dtype)

    def fused_form(self) -> FusedForm:
        """``nn.GRU``'s kernel, for ``reset_after=True`` only."""
        _require_built(self)
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

    # -- TF layouts ------------------------------------------------------------------------
    #: TF 1.x GRUCell and contrib's GRUBlockCellV2 name the variables gates/kernel, ...;
    #: contrib's GRUBlockCell w_ru, b_ru, w_c, b_c.
    _TF1_NAMES = ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")
    _BLOCK_NAMES = ("w_ru", "b_ru", "w_c", "b_c")

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        """TF 1.x's ``gates/*`` and ``candidate/*`` (or contrib GRUBlockCell's ``w_ru``,
        ``b_ru``, ``w_c``, ``b_c``) for ``reset_after=False``; Keras's ``kernel``,
        ``recurrent_kernel``, ``bias`` for ``reset_after=True`` (or a Keras
        ``GRUCell(reset_after=False)``'s, converted into TF 1.x's formula)."""
        found = [n for n, marker in (("TF 1.x GRUCell", "gates/kernel"),
                                     ("Keras GRUCell", "recurrent_kernel"),
                                     ("contrib GRUBlockCell", "w_ru")) if marker in available]
        if len(found) > 1:
            raise ValueError(f"{self.tf_name}: the variables match several layouts "
                             f"({', '.join(found)})")
        keras = found == ["Keras GRUCell"]
        if self._reset_after:
            if found and not keras:
                raise ValueError(f"{self.tf_name}: {found[0]} variables need "
                                 "GRUCell(reset_after=False)")
            return self._keras_reset_after()
        if keras:
            return self._keras_reset_before()
        names = self._BLOCK_NAMES if found == ["contrib GRUBlockCell"] else self._TF1_NAMES
        gates_k, gates_b, cand_k, cand_b = names
        return {
            gates_k: self._kernel(None, "gate_weight_ih", "gate_weight_hh"),
            gates_b: layout.param(lambda: self.gate_bias, gates_b,
                                  initializer=self._bias_init or 1.0),
            cand_k: self._kernel(None, "cand_weight_ih", "cand_weight_hh"),
            cand_b: layout.param(lambda: self.cand_bias, cand_b,
                                 initializer=self._bias_init or 0.0),
        }

    def _keras_reset_after(self) -> Layout:
        """Keras ``GRUCell(reset_after=True)``: gates z, r, h -> ``nn.GRU``'s r, z, n; the
        bias ``[2, 3H]`` is the input and the recurrent bias."""
        h = self._num_units
        perm = np.concatenate([np.arange(h, 2 * h), np.arange(h), np.arange(2 * h, 3 * h)])
        out = _keras_input_side(self, perm)

        def read() -> torch.Tensor:
            return torch.stack([self.bias.detach(), self.bias_hh.detach()])[:, np.argsort(perm)]

        def write(value: Any) -> list[torch.Tensor]:
            b = layout.as_value(value)
            if tuple(b.shape) != (2, 3 * h):
                raise ValueError(f"bias: expected shape (2, {3 * h}), received "
                                 f"{tuple(b.shape)}")
            return [layout.assign(self.bias, b[0, perm], "bias[0]"),
                    layout.assign(self.bias_hh, b[1, perm], "bias[1]")]

        built = self.built
        out["bias"] = layout.TFVariable((2, 3 * h) if built else None, read if built else None,
                                        write, initializers.resolve(
                                            "bias_initializer", self._bias_init or 0.0))
        return out

    def _keras_reset_before(self) -> Layout:
        """A Keras ``GRUCell(reset_after=False)`` (gates z, r, h) is TF 1.x's formula:
        gates ``[r, u=z]``, candidate ``h``."""
        h = self._num_units

        def parts(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            z, r, c = a[..., :h], a[..., h:2 * h], a[..., 2 * h:]
            return torch.cat([r, z], -1), c

        def joined(g: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            r, z = g[..., :h], g[..., h:]
            return torch.cat([z, r, c], -1)

        def pair(gate: str, cand: str, what: str, transpose: bool, builds: bool):
            def get(name: str) -> torch.Tensor:
                t = getattr(self, name).detach()
                return t.t() if transpose else t

            def read() -> torch.Tensor:
                return joined(get(gate), get(cand))

            def write(value: Any) -> list[torch.Tensor]:
                v = layout.as_value(value)
                if builds and not self.built:
                    if v.dim() != 2:
                        raise ValueError(f"{what}: expected [input, {3 * h}], received "
                                         f"{tuple(v.shape)}")
                    self.build_for(v.shape[0], self._build_dtype)
                g, c = parts(v)
                g, c = (g.t(), c.t()) if transpose else (g, c)
                return [layout.assign(getattr(self, gate), g, what),
                        layout.assign(getattr(self, cand), c, what)]

            shape = tuple(read().shape) if self.built else None
            return layout.TFVariable(shape, read if self.built else None, write, builds=builds)

        return {"kernel": pair("gate_weight_ih", "cand_weight_ih", "kernel", True, True),
                "recurrent_kernel": pair("gate_weight_hh", "cand_weight_hh",
                                         "recurrent_kernel", True, False),
                "bias": pair("gate_bias", "cand_bias", "bias", False, False)}


class LSTMBlockCell(LSTMCell):
    """``tf.contrib.rnn.LSTMBlockCell``: TF's fused-op LSTM, the computation and variables
    (``lstm_cell/kernel``, ``bias``, ``w_*_diag``) of :class:`LSTMCell` without projection.

    Args:
        num_units: ``H``.
        forget_bias: added to the forget gate.
        cell_clip: clip ``c`` to ``[-cell_clip, cell_clip]``; ``None`` or a value <= 0
            (TF's default ``-1``) does not clip.
        use_peephole: diagonal peephole weights (TF's singular spelling).

    Shapes: state ``LSTMStateTuple(c [batch, H], h [batch, H])``; output ``[batch, H]``.
    """

    tf_default_name = "lstm_cell"

    def __init__(self, num_units: int, forget_bias: float = 1.0,
                 cell_clip: float | None = None, use_peephole: bool = False,
                 dtype: torch.dtype | None = None, reuse=None, name: str | None = None, *,
                 input_size: int | None = None):
        if cell_clip is not None and _checks.as_number("cell_clip", cell_clip) <= 0:
            cell_clip = None  # the block op clips only with a positive value
        super().__init__(num_units, use_peepholes=use_peephole, cell_clip=cell_clip,
                         forget_bias=forget_bias, reuse=reuse, name=name, dtype=dtype,
                         input_size=input_size)


class GRUBlockCell(GRUCell):
    """``tf.contrib.rnn.GRUBlockCell`` / ``GRUBlockCellV2``: TF's fused-op GRU, the
    computation of TF 1.x's :class:`GRUCell`.  Checkpoints of either name its variables its
    own way (``w_ru``, ``b_ru``, ``w_c``, ``b_c``; V2: ``gates/kernel``, ...): both load.

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


#: contrib ``layers.layer_norm``'s variance epsilon (what TF's LayerNorm cells call); 1e-3 in
#: float16, where 1e-12 is below the smallest representable value.
LAYER_NORM_EPSILON = 1e-12
LAYER_NORM_EPSILON_FLOAT16 = 1e-3


def layer_norm(x: torch.Tensor, gamma: torch.Tensor | None, beta: torch.Tensor | None,
               eps: float | None = None) -> torch.Tensor:
    """Layer normalisation over the last axis: ``(x - mean) / sqrt(var + eps) * gamma + beta``
    (biased variance; ``gamma`` / ``beta`` ``None``: left out).  ``eps`` ``None``: contrib
    ``layers.layer_norm``'s, 1e-12 (1e-3 for float16 inputs); Keras's ``LayerNormalization``
    passes its own.

    The mean is taken of ``x`` shifted by its first entry and shifted back, so that a row of
    equal entries has exactly that mean and a variance of zero, as TF's reductions give (a
    plain float32 mean of eight equal ``0.65`` differs from ``0.65`` by ``6e-8``, which a
    small epsilon blows up into a different result)."""
    if eps is None:
        eps = LAYER_NORM_EPSILON_FLOAT16 if x.dtype == torch.float16 else LAYER_NORM_EPSILON
    shift = x[..., :1]
    mean = shift + (x - shift).mean(-1, keepdim=True)
    var = (x - mean).pow(2).mean(-1, keepdim=True)
    y = (x - mean) * torch.rsqrt(var + eps)
    if gamma is not None:
        y = y * gamma
    return y + beta if beta is not None else y


def layer_norm_variables(cell: RNNCell) -> dict:
    """The TF variables of an LSTM's layer normalisations (contrib's ``LayerNormBasicLSTMCell``
    and ``LayerNormLSTMCell`` name them alike): ``{input,forget,transform,output}/{gamma,beta}``
    (the rows of ``cell.ln_gamma`` / ``cell.ln_beta [4, H]``) and ``state/{gamma,beta}``
    (``cell.state_gamma`` / ``cell.state_beta [H]``), starting at ``norm_gain`` /
    ``norm_shift``."""
    out = {}
    for row, gate in enumerate(("input", "forget", "transform", "output")):
        out[f"{gate}/gamma"] = layout.row_of(lambda: cell.ln_gamma, row, f"{gate}/gamma",
                                             cell._norm_gain)
        out[f"{gate}/beta"] = layout.row_of(lambda: cell.ln_beta, row, f"{gate}/beta",
                                            cell._norm_shift)
    out["state/gamma"] = layout.param(lambda: cell.state_gamma, "state/gamma",
                                      initializer=cell._norm_gain)
    out["state/beta"] = layout.param(lambda: cell.state_beta, "state/beta",
                                     initializer=cell._norm_shift)
    return out


class LayerNormBasicLSTMCell(BasicLSTMCell):
    """LSTM with layer normalisation and recurrent dropout (Ba et al. 2016; Semeniuta 2016).

    As TF 1.x contrib: each gate pre-activation is layer-normalised (``gamma`` starts at
    ``norm_gain``, ``beta`` at ``norm_shift``, epsilon 1e-12, 1e-3 in float16: contrib
    ``layers.layer_norm``'s), then ``c'`` is normalised again before the output; without
    ``layer_norm`` a plain bias is used.  Dropout with ``dropout_keep_prob`` applies to the
    candidate ``g``, in ``train()`` mode only.

    Parameters: ``weight_ih [4H, I]``, ``weight_hh [4H, H]``, ``ln_gamma``/``ln_beta [4, H]``
    (gate order i, f, g, o), ``state_gamma``/``state_beta [H]``; ``bias [4H]`` when
    ``layer_norm=False``.  TF variables: ``kernel``, ``{input,forget,transform,output,
    state}/{gamma,beta}`` (``bias`` without layer norm: TF gives it no initializer of its own,
    so it starts glorot-uniform, not zeros).  Shapes as :class:`BasicLSTMCell`.
    """

    tf_default_name = "layer_norm_basic_lstm_cell"

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
        shapes = self._gated_shapes(self._input_size)
        if self._layer_norm:
            del shapes["bias"]
            shapes.update(ln_gamma=(4, h), ln_beta=(4, h), state_gamma=(h,), state_beta=(h,))
        self._make(shapes)

    def _variable_names(self):
        if not self._layer_norm:
            return ("weight_ih", "weight_hh", "bias")
        return ("weight_ih", "weight_hh", "ln_gamma", "ln_beta", "state_gamma", "state_beta")

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
        _check_input(self, inputs)
        c, h = state
        z = F.linear(inputs, self.weight_ih) + F.linear(h, self.weight_hh)
        if self._layer_norm:
            z4 = layer_norm(z.unflatten(-1, (4, self._num_units)), self.ln_gamma, self.ln_beta)
            i, f, g, o = z4.unbind(-2)
        else:
            i, f, g, o = (z + self.bias).chunk(4, dim=-1)
        g = self._activation(g)
        if self.training and self._keep_prob < 1.0:
            g = (F.dropout(g, p=1.0 - self._keep_prob, training=True)
                 if self._random.seed is None else g * self._random.mask(g, self._keep_prob))
        new_c = c * torch.sigmoid(f + self._forget_bias) + torch.sigmoid(i) * g
        if self._layer_norm:
            new_c = layer_norm(new_c, self.state_gamma, self.state_beta)
        new_h = self._activation(new_c) * torch.sigmoid(o)
        return new_h, LSTMStateTuple(new_c, new_h)

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        perm = layout.gate_perm(self._num_units)
        out = {"kernel": self._kernel(perm)}
        if not self._layer_norm:
            # TF creates this bias without an initializer of its own: get_variable's default
            # (glorot-uniform over [4H]), or the enclosing scope's initializer
            out["bias"] = layout.param(lambda: self.bias, "bias", perm=perm,
                                       initializer="glorot_uniform")
            return out
        return {**out, **layer_norm_variables(self)}
