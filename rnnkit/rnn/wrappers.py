"""Cell wrappers: MultiRNNCell, projections, dropout, residual connections."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit import _checks, nest
from rnnkit.capture import GraphBindings
from rnnkit.generators import SeededGenerators
from rnnkit.rnn.cell import LSTMStateTuple, RNNCell, glorot_uniform_, start_sequence
from rnnkit.rnn.fused import FusedForm, NotFusableError

__all__ = [
    "DropoutWrapper",
    "InputProjectionWrapper",
    "MultiRNNCell",
    "OutputProjectionWrapper",
    "ResidualWrapper",
    "reset_dropout_masks",
]


def _require_cell(name: str, cell: Any) -> RNNCell:
    if not isinstance(cell, RNNCell):
        raise TypeError(f"{name} must be an rnnkit RNNCell, received {type(cell).__name__}")
    return cell


class MultiRNNCell(RNNCell):
    """Stack of cells run in sequence at each step (``tf.nn.rnn_cell.MultiRNNCell``).

    State: a tuple with one entry per layer (``state_is_tuple=True``), or, with
    ``state_is_tuple=False``, the layers' (flat) states concatenated on the last axis.
    Output: the last layer's output ``[batch, cells[-1].output_size]``.
    """

    def __init__(self, cells: Sequence[RNNCell], state_is_tuple: bool = True, name=None):
        super().__init__(name=name)
        cells = list(cells)
        if not cells:
            raise ValueError("MultiRNNCell needs at least one cell, received an empty list")
        for i, c in enumerate(cells):
            _require_cell(f"cells[{i}]", c)
        if len({id(c) for c in cells}) != len(cells):
            raise ValueError(
                "cells contains the same cell object more than once; create one cell per "
                "layer (e.g. [BasicLSTMCell(n) for _ in range(k)])"
            )
        self.cells = nn.ModuleList(cells)
        self._state_is_tuple = _checks.as_flag("state_is_tuple", state_is_tuple)
        if not self._state_is_tuple:
            for i, c in enumerate(cells):
                if nest.is_nested(c.state_size):
                    raise ValueError(
                        f"state_is_tuple=False needs flat cell states; cells[{i}] has "
                        f"state_size {c.state_size!r}"
                    )
        self.built = True

    @property
    def state_size(self):
        sizes = tuple(c.state_size for c in self.cells)
        return sizes if self._state_is_tuple else sum(sizes)

    @property
    def output_size(self):
        return self.cells[-1].output_size

    def zero_state(self, batch_size, dtype=None, device=None):
        states = tuple(c.zero_state(batch_size, dtype, device) for c in self.cells)
        return states if self._state_is_tuple else torch.cat(states, dim=-1)

    def assert_state(self, name, state, batch_size):
        for i, (cell, s) in enumerate(zip(self.cells, self.split_state(state), strict=True)):
            cell.assert_state(f"{name}[{i}]", s, batch_size)

    def split_state(self, state) -> tuple:
        """Per-layer states, whatever ``state_is_tuple``."""
        if self._state_is_tuple:
            if not isinstance(state, (tuple, list)) or len(state) != len(self.cells):
                raise ValueError(
                    f"MultiRNNCell state must be a tuple of {len(self.cells)} layer states, "
                    f"received {type(state).__name__}"
                    + (f" of length {len(state)}" if isinstance(state, (tuple, list)) else "")
                )
            return tuple(state)
        width = sum(c.state_size for c in self.cells)
        if not isinstance(state, torch.Tensor) or state.shape[-1] != width:
            shape = tuple(state.shape) if isinstance(state, torch.Tensor) else type(state).__name__
            raise ValueError(f"MultiRNNCell(state_is_tuple=False) state must have shape "
                             f"[batch, {width}] (the layers' states side by side), received "
                             f"{shape}")
        return tuple(state.split([c.state_size for c in self.cells], dim=-1))

    def join_state(self, states):
        return tuple(states) if self._state_is_tuple else torch.cat(list(states), dim=-1)

    def sequential_layers(self) -> list[RNNCell]:
        return list(self.cells)

    def call(self, inputs, state):
        x, new_states = inputs, []
        for cell, s in zip(self.cells, self.split_state(state), strict=True):
            x, ns = cell.step(x, s)
            new_states.append(ns)
        return x, self.join_state(new_states)

    def project_inputs(self, inputs):
        self.cells[0].maybe_build(inputs.reshape(-1, inputs.shape[-1])[:1])
        return self.cells[0].project_inputs(inputs)

    def call_projected(self, projected, state):
        states = self.split_state(state)
        x, first = self.cells[0].call_projected(projected, states[0])
        new_states = [first]
        for cell, s in zip(self.cells[1:], states[1:], strict=True):
            x, ns = cell.step(x, s)
            new_states.append(ns)
        return x, self.join_state(new_states)


class _Wrapper(RNNCell):
    """A cell around one other cell: state and sizes are the wrapped cell's by default."""

    def __init__(self, cell: RNNCell, name=None):
        super().__init__(name=name)
        self.cell = _require_cell("cell", cell)

    @property
    def state_size(self):
        return self.cell.state_size

    @property
    def output_size(self):
        return self.cell.output_size

    def zero_state(self, batch_size, dtype=None, device=None):
        return self.cell.zero_state(batch_size, dtype, device)

    def assert_state(self, name, state, batch_size):
        self.cell.assert_state(name, state, batch_size)


class _Linear(nn.Module):
    """TF ``_Linear``: ``kernel [in, out]`` stored as ``weight [out, in]``, zero bias."""

    def __init__(self, in_features: int, out_features: int, device=None, dtype=None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features, device=device,
                                               dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(out_features, device=device, dtype=dtype))
        glorot_uniform_(self.weight.data)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class OutputProjectionWrapper(_Wrapper):
    """Adds a dense layer on the cell's output (``[batch, output_size]``)."""

    def __init__(self, cell: RNNCell, output_size: int, activation=None, reuse=None, name=None):
        super().__init__(cell, name=name)
        output_size = _checks.as_count("output_size", output_size)
        if nest.is_nested(cell.output_size):
            raise ValueError("OutputProjectionWrapper needs a cell with a flat output_size")
        self._output_size = output_size
        self._activation = _checks.as_function("activation", activation)
        self.projection: _Linear | None = None
        if cell.built:
            self._make(cell._param_device(), cell._param_dtype())

    def _make(self, device, dtype):
        self.projection = _Linear(self.cell.output_size, self._output_size, device, dtype)
        self.built = True

    def build(self, inputs_shape):
        self._make(self._build_device, self._build_dtype)

    @property
    def output_size(self):
        return self._output_size

    def _project(self, out):
        out = self.projection(out)
        return self._activation(out) if self._activation is not None else out

    def call(self, inputs, state):
        out, new_state = self.cell.step(inputs, state)
        return self._project(out), new_state

    def project_inputs(self, inputs):
        self.cell.maybe_build(inputs[0] if inputs.dim() > 2 else inputs)
        return self.cell.project_inputs(inputs)

    def call_projected(self, projected, state):
        out, new_state = self.cell.call_projected(projected, state)
        return self._project(out), new_state


class InputProjectionWrapper(_Wrapper):
    """Adds a dense layer (``num_proj`` units) on the inputs before the cell."""

    def __init__(self, cell: RNNCell, num_proj: int, activation=None, input_size=None,
                 reuse=None, name=None):
        super().__init__(cell, name=name)
        num_proj = _checks.as_count("num_proj", num_proj)
        self._num_proj = num_proj
        self._activation = _checks.as_function("activation", activation)
        self.projection: _Linear | None = None
        if input_size is not None:
            self.projection = _Linear(_checks.as_count("input_size", input_size), num_proj)
            self.built = True

    def build(self, inputs_shape):
        self.projection = _Linear(_checks.matrix_depth("InputProjectionWrapper", inputs_shape),
                                  self._num_proj, self._build_device, self._build_dtype)

    def call(self, inputs, state):
        depth = self.projection.weight.shape[1]
        if not isinstance(inputs, torch.Tensor):
            raise TypeError(f"InputProjectionWrapper takes one tensor [batch, {depth}] as "
                            f"inputs, received a {type(inputs).__name__}")
        if inputs.dim() != 2 or inputs.shape[-1] != depth:
            raise ValueError(
                f"InputProjectionWrapper inputs must have shape [batch, {depth}], received "
                f"{tuple(inputs.shape)}"
            )
        x = self.projection(inputs)
        if self._activation is not None:
            x = self._activation(x)
        return self.cell.step(x, state)


def _check_keep_prob(name: str, p: float) -> float:
    return _checks.as_number(name, p, low=0, low_open=True, high=1)


def _default_state_filter(substate) -> Any:
    # As TF: never drop the LSTM memory c, drop everything else.
    if isinstance(substate, LSTMStateTuple):
        return LSTMStateTuple(c=False, h=True)
    return True


class DropoutWrapper(_Wrapper):
    """Dropout on a cell's inputs, outputs and next state; active only in ``train()`` mode.

    Keep probabilities are TF's (``keep_prob = 1 - p``); kept values are scaled by
    ``1 / keep_prob``.  ``state_keep_prob`` drops every state tensor except the LSTM
    memory ``c`` (TF's default filter).  With ``variational_recurrent=True`` one mask per
    sequence is drawn at its first step and reused at every step (Gal & Ghahramani 2016); the
    drivers start a new sequence at each call, and code that calls the cell by hand calls
    :func:`reset_dropout_masks` between sequences.  With ``seed``, masks come from the
    wrapper's own generator (one per device, each seeded with ``seed``): the same masks on a
    device whatever PyTorch's global random state.
    """

    def __init__(
        self,
        cell: RNNCell,
        input_keep_prob: float = 1.0,
        output_keep_prob: float = 1.0,
        state_keep_prob: float = 1.0,
        variational_recurrent: bool = False,
        input_size=None,
        dtype=None,
        seed: int | None = None,
        dropout_state_filter_visitor: Callable | None = None,
        name=None,
    ):
        super().__init__(cell, name=name)
        self._input_keep = _check_keep_prob("input_keep_prob", input_keep_prob)
        self._output_keep = _check_keep_prob("output_keep_prob", output_keep_prob)
        self._state_keep = _check_keep_prob("state_keep_prob", state_keep_prob)
        self._variational = _checks.as_flag("variational_recurrent", variational_recurrent)
        self._filter = dropout_state_filter_visitor or _default_state_filter
        self._random = SeededGenerators(seed)
        self._masks: dict[str, Any] = {}
        self.built = cell.built

    def build(self, inputs_shape):
        # the wrapped cell reads inputs of the same depth: build it now, so that its fused
        # form is known before the first step
        self.cell.maybe_build(nest.map_structure(
            lambda shape: torch.zeros(shape, device=self._build_device, dtype=self._build_dtype),
            inputs_shape))

    def reset_masks(self) -> None:
        """Forget the variational masks: the next step draws new ones."""
        self._masks = {}

    def start_sequence(self) -> None:
        """A new sequence: variational masks are drawn again."""
        self.reset_masks()

    def _active(self) -> bool:
        return self.training and min(self._input_keep, self._output_keep,
                                     self._state_keep) < 1.0

    def fused_form(self) -> FusedForm:
        """The wrapped cell's form while dropout is inactive (``eval()`` or keep probs 1)."""
        if self._active():
            raise NotFusableError("DropoutWrapper is active (train mode, keep probability < 1)")
        return self.cell.fused_form()

    def graph_bindings(self) -> GraphBindings:
        """Masks are drawn inside a CUDA graph from PyTorch's default generator; a seeded
        wrapper's own generator cannot be replayed there (:mod:`rnnkit.capture`)."""
        if self._active():
            self._random.refuse_graphs("DropoutWrapper(seed=...) draws its masks")
        return GraphBindings()

    def _mask(self, key: str, like: torch.Tensor, keep: float) -> torch.Tensor:
        if self._variational and key in self._masks and self._masks[key].shape == like.shape:
            return self._masks[key]
        mask = self._random.mask(like, keep)
        if self._variational:
            self._masks[key] = mask
        return mask

    def _drop(self, key: str, value, keep: float):
        if not self.training or keep >= 1.0:
            return value
        leaves = nest.flatten(value)
        out = [x * self._mask(f"{key}{i}", x, keep) for i, x in enumerate(leaves)]
        return nest.pack_sequence_as(value, out)

    def _drop_state(self, state):
        if not self.training or self._state_keep >= 1.0:
            return state
        flags = nest.flatten(_expand_filter(self._filter, state))
        leaves = nest.flatten(state)
        out = [
            x * self._mask(f"state{i}", x, self._state_keep) if keep else x
            for i, (x, keep) in enumerate(zip(leaves, flags, strict=True))
        ]
        return nest.pack_sequence_as(state, out)

    def call(self, inputs, state):
        inputs = self._drop("input", inputs, self._input_keep)
        out, new_state = self.cell.step(inputs, state)
        return self._drop("output", out, self._output_keep), self._drop_state(new_state)


def _expand_filter(visitor: Callable, state) -> Any:
    """Expand TF's ``dropout_state_filter_visitor`` into booleans shaped like ``state``.

    The visitor returns a bool for a tensor (drop it or not), ``False`` for a substructure
    to keep whole, ``True`` to look inside it, or a structure of bools.
    """
    verdict = visitor(state)
    if isinstance(state, torch.Tensor):
        return bool(verdict)
    if isinstance(verdict, bool):
        if not verdict:
            return nest.map_structure(lambda _: False, state)
        children = [_expand_filter(visitor, s) for s in state]
        return type(state)(*children) if hasattr(state, "_fields") else type(state)(children)
    return nest.map_structure(bool, verdict)


def reset_dropout_masks(module: nn.Module) -> None:
    """Start a new sequence in ``module`` (:func:`rnnkit.rnn.start_sequence`)."""
    start_sequence(module)


class ResidualWrapper(_Wrapper):
    """``output = residual_fn(inputs, cell_output)``, default ``inputs + cell_output``."""

    def __init__(self, cell: RNNCell, residual_fn: Callable | None = None, name=None):
        super().__init__(cell, name=name)
        self._residual_fn = residual_fn
        self.built = True

    def call(self, inputs, state):
        out, new_state = self.cell.step(inputs, state)
        if self._residual_fn is not None:
            return self._residual_fn(inputs, out), new_state

        def add(x, y):
            if x.shape != y.shape:
                raise ValueError(
                    f"ResidualWrapper needs inputs and cell outputs of equal shape, received "
                    f"inputs {tuple(x.shape)} and outputs {tuple(y.shape)}"
                )
            return x + y

        return nest.map_structure(add, inputs, out), new_state
