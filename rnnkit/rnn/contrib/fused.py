"""contrib.rnn's fused RNNs: ``FusedRNNCell``, ``FusedRNNCellAdaptor``,
``TimeReversedFusedRNN``, ``LSTMBlockFusedCell``."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import torch
from torch import nn

from rnnkit import _checks, nest
from rnnkit.rnn.cell import LSTMStateTuple, RNNCell, require_cell
from rnnkit.rnn.cells import (
    LSTMBlockCell,
)
from rnnkit.rnn.contrib._layout import (
    Layout,
)

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
