"""Cell wrappers: MultiRNNCell, projections, dropout, residual connections, device placement.

Wrappers that create no variables (``DropoutWrapper``, ``ResidualWrapper``,
``DeviceWrapper``) add no name to the parameters' ``state_dict`` keys and no TF scope, as in
TF: a training model built with dropout and an inference model built without it save and
load the same keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from typing import Any

import torch
from torch import nn

from rnnkit import _checks, nest
from rnnkit.capture import GraphBindings
from rnnkit.generators import SeededGenerators
from rnnkit.layers import Dense
from rnnkit.rnn.cell import LSTMStateTuple, RNNCell, initial_state, require_cell
from rnnkit.rnn.fused import FusedForm, NotFusableError

__all__ = [
    "DeviceWrapper",
    "DropoutWrapper",
    "InputProjectionWrapper",
    "MultiRNNCell",
    "OutputProjectionWrapper",
    "ResidualWrapper",
]


class MultiRNNCell(RNNCell):
    """Stack of cells run in sequence at each step (``tf.nn.rnn_cell.MultiRNNCell``).

    State: a tuple with one entry per layer (``state_is_tuple=True``), or, with
    ``state_is_tuple=False``, the layers' (flat) states concatenated on the last axis.
    Output: the last layer's output ``[batch, cells[-1].output_size]``.  The layers are
    ``cells`` (TF's ``_cells``); TF variables ``cell_<i>/<layer's name>/...``.
    """

    tf_default_name = "multi_rnn_cell"

    def __init__(self, cells: Sequence[RNNCell], state_is_tuple: bool = True, name=None):
        super().__init__(name=name)
        cells = list(cells)
        if not cells:
            raise ValueError("MultiRNNCell needs at least one cell, received an empty list")
        for i, c in enumerate(cells):
            require_cell(f"cells[{i}]", c)
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
    def _cells(self) -> list[RNNCell]:
        """TF's name for the layers (what TF programs' subclasses read)."""
        return list(self.cells)

    @property
    def state_size(self):
        sizes = tuple(c.state_size for c in self.cells)
        return sizes if self._state_is_tuple else sum(sizes)

    @property
    def output_size(self):
        return self.cells[-1].output_size

    def zero_state(self, batch_size, dtype=None, device=None):
        states = tuple(initial_state(c, batch_size, dtype, device) for c in self.cells)
        return states if self._state_is_tuple else torch.cat(states, dim=-1)

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
        first = self.cells[0]
        first.maybe_build(inputs.reshape(-1, inputs.shape[-1])[:1])
        return first.project_inputs(inputs) if first.hoists_inputs() else None

    def call_projected(self, projected, state):
        states = self.split_state(state)
        x, first = self.cells[0].call_projected(projected, states[0])
        new_states = [first]
        for cell, s in zip(self.cells[1:], states[1:], strict=True):
            x, ns = cell.step(x, s)
            new_states.append(ns)
        return x, self.join_state(new_states)

    def reorder_state(self, state, indices):
        return self.join_state([c.reorder_state(s, indices)
                                for c, s in zip(self.cells, self.split_state(state),
                                                strict=True)])

    def tf_variables(self, available: Collection[str] = ()) -> dict:
        return {}

    def tf_children(self) -> list[tuple[str, nn.Module]]:
        return [(f"cell_{i}/{c.tf_name}", c) for i, c in enumerate(self.cells)]


class _Wrapper(RNNCell):
    """A cell around one other cell: state and sizes are the wrapped cell's by default."""

    def __init__(self, cell: RNNCell, name=None):
        super().__init__(name=name)
        self.cell = require_cell("cell", cell)

    @property
    def wrapped_cell(self) -> RNNCell:
        """The cell inside (TF's ``wrapped_cell``)."""
        return self.cell

    @property
    def _cell(self) -> RNNCell:
        return self.cell

    @property
    def state_size(self):
        return self.cell.state_size

    @property
    def output_size(self):
        return self.cell.output_size

    def zero_state(self, batch_size, dtype=None, device=None):
        return initial_state(self.cell, batch_size, dtype, device)

    def assert_state(self, name, state, batch_size):
        self.cell.assert_state(name, state, batch_size)

    def reorder_state(self, state, indices):
        return self.cell.reorder_state(state, indices)

    def tf_variables(self, available: Collection[str] = ()) -> dict:
        return {}

    def tf_children(self) -> list[tuple[str, nn.Module]]:
        return [(self.cell.tf_name, self.cell)]


_INNER = "cell."


class _Transparent(_Wrapper):
    """A wrapper that creates no variables: it takes no place in TF's scopes and its
    parameters' ``state_dict`` keys are the wrapped cell's (no ``cell.`` segment)."""

    def __init__(self, cell: RNNCell, name=None):
        super().__init__(cell, name=name)
        self._register_state_dict_hook(_drop_inner_prefix)
        self._register_load_state_dict_pre_hook(_add_inner_prefix, with_module=True)

    @property
    def tf_name(self) -> str:
        return self.cell.tf_name

    def tf_children(self) -> list[tuple[str, nn.Module]]:
        return [("", self.cell)]

    def input_depth_from(self, params):
        return None


def _drop_inner_prefix(module, destination, prefix, local_metadata):
    inner = prefix + _INNER
    for key in [k for k in destination if k.startswith(inner)]:
        destination[prefix + key[len(inner):]] = destination.pop(key)
    return destination


def _add_inner_prefix(module, state_dict, prefix, local_metadata, strict, missing_keys,
                      unexpected_keys, error_msgs):
    own = {name for name, _ in module.named_parameters(recurse=False)} | \
        {name for name, _ in module.named_buffers(recurse=False)}
    for key in [k for k in state_dict if k.startswith(prefix)]:
        rest = key[len(prefix):]
        if rest.split(".")[0] in own or rest.startswith(_INNER):
            continue
        state_dict[prefix + _INNER + rest] = state_dict.pop(key)


class OutputProjectionWrapper(_Wrapper):
    """Adds a dense layer on the cell's output (``[batch, output_size]``).

    TF variables: ``kernel [cell_output, output_size]`` (glorot-uniform), ``bias``
    (zeros), the cell's below them."""

    tf_default_name = "output_projection_wrapper"

    def __init__(self, cell: RNNCell, output_size: int, activation=None, reuse=None, name=None):
        super().__init__(cell, name=name)
        output_size = _checks.as_count("output_size", output_size)
        if nest.is_nested(cell.output_size):
            raise ValueError("OutputProjectionWrapper needs a cell with a flat output_size")
        self._output_size = output_size
        self._activation = _checks.as_function("activation", activation)
        self.projection = Dense(output_size)
        if cell.built:
            self.projection.build(cell.output_size, cell._param_dtype(), cell._param_device())
            self.built = True

    def build(self, inputs_shape):
        self.projection.build(self.cell.output_size, self._build_dtype, self._build_device)

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
        return self.cell.project_inputs(inputs) if self.cell.hoists_inputs() else None

    def call_projected(self, projected, state):
        out, new_state = self.cell.call_projected(projected, state)
        return self._project(out), new_state

    def tf_variables(self, available: Collection[str] = ()) -> dict:
        return self.projection.tf_variables(available)


class InputProjectionWrapper(_Wrapper):
    """Adds a dense layer (``num_proj`` units) on the inputs before the cell.

    TF variables: ``kernel [input_depth, num_proj]``, ``bias``, the cell's below them."""

    tf_default_name = "input_projection_wrapper"

    def __init__(self, cell: RNNCell, num_proj: int, activation=None, input_size=None,
                 reuse=None, name=None):
        super().__init__(cell, name=name)
        self._num_proj = _checks.as_count("num_proj", num_proj)
        self._activation = _checks.as_function("activation", activation)
        self.projection = Dense(self._num_proj)
        if input_size is not None:
            self.projection.build(_checks.as_count("input_size", input_size))
            self.built = True

    def build(self, inputs_shape):
        self.projection.build(_checks.matrix_depth("InputProjectionWrapper", inputs_shape),
                              self._build_dtype, self._build_device)

    def call(self, inputs, state):
        depth = self.projection.in_features
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

    def tf_variables(self, available: Collection[str] = ()) -> dict:
        return self.projection.tf_variables(available)


def _check_keep_prob(name: str, p: float) -> float:
    return _checks.as_number(name, p, low=0, low_open=True, high=1)


def _default_state_filter(substate) -> Any:
    # As TF: never drop the LSTM memory c, drop everything else.
    if isinstance(substate, LSTMStateTuple):
        return LSTMStateTuple(c=False, h=True)
    return True


class DropoutWrapper(_Transparent):
    """Dropout on a cell's inputs, outputs and next state; active only in ``train()`` mode.

    Keep probabilities are TF's (``keep_prob = 1 - p``); kept values are scaled by
    ``1 / keep_prob``.  ``state_keep_prob`` drops every state tensor except the LSTM
    memory ``c`` (TF's default filter; ``dropout_state_filter_visitor`` changes it).

    With ``variational_recurrent=True`` one mask per tensor is drawn at a sequence's first
    step and reused at every step (Gal & Ghahramani 2016): as in TF, one ``[1, depth]`` mask
    shared by the batch (``per_sequence_masks=True``: one per batch entry).  The drivers
    start a new sequence at each call; code that steps the cell by hand calls
    :func:`rnnkit.rnn.start_sequence` between sequences.  ``input_size`` and ``dtype`` (which
    TF needs to shape its masks) are checked against the inputs when given.  With ``seed``,
    masks come from the wrapper's own generator (one per device, each seeded with ``seed``):
    the same masks on a device whatever PyTorch's global random state.
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
        *,
        per_sequence_masks: bool = False,
    ):
        super().__init__(cell, name=name)
        self._input_keep = _check_keep_prob("input_keep_prob", input_keep_prob)
        self._output_keep = _check_keep_prob("output_keep_prob", output_keep_prob)
        self._state_keep = _check_keep_prob("state_keep_prob", state_keep_prob)
        self._variational = _checks.as_flag("variational_recurrent", variational_recurrent)
        self._per_sequence = _checks.as_flag("per_sequence_masks", per_sequence_masks)
        self._input_size = input_size
        self._dtype = _checks.as_dtype("dtype", dtype)
        self._filter = (_checks.as_function("dropout_state_filter_visitor",
                                            dropout_state_filter_visitor)
                        or _default_state_filter)
        self._random = SeededGenerators(seed)
        self._masks: dict[str, Any] = {}
        self.built = cell.built

    def build(self, inputs_shape):
        # the wrapped cell reads inputs of the same depth: build it now, so that its fused
        # form is known before the first step
        self.cell.build_for(inputs_shape, self._build_dtype, self._build_device)

    def start_sequence(self) -> None:
        """A new sequence: variational masks are drawn again."""
        self._masks = {}

    def _active(self) -> bool:
        return self.training and min(self._input_keep, self._output_keep,
                                     self._state_keep) < 1.0

    def fused_form(self) -> FusedForm:
        """The wrapped cell's form while dropout is inactive (``eval()`` or keep probs 1)."""
        if self._active():
            raise NotFusableError("DropoutWrapper is active (train mode, keep probability < 1)")
        reason = self.cell.fast_path("fused_form")
        if reason is not None:
            raise NotFusableError(reason)
        return self.cell.fused_form()

    def graph_bindings(self) -> GraphBindings:
        """Masks are drawn inside a CUDA graph from PyTorch's default generator; a seeded
        wrapper's own generator cannot be replayed there (:mod:`rnnkit.capture`)."""
        if self._active():
            self._random.refuse_graphs("DropoutWrapper(seed=...) draws its masks")
        return GraphBindings()

    def _mask(self, key: str, like: torch.Tensor, keep: float) -> torch.Tensor:
        if not self._variational:
            return self._random.mask(like, keep)
        shape = like.shape if self._per_sequence else (1, *like.shape[1:])
        mask = self._masks.get(key)
        if mask is None or mask.shape[1:] != like.shape[1:] or (
                self._per_sequence and mask.shape != like.shape):
            mask = self._masks[key] = self._random.mask(like.new_empty(shape), keep)
        return mask

    def _check_inputs(self, inputs: Any) -> None:
        if self._dtype is not None:
            for leaf in nest.flatten(inputs):
                if leaf.is_floating_point() and leaf.dtype != self._dtype:
                    raise _checks.DTypeError(f"DropoutWrapper(dtype={self._dtype}) received "
                                             f"inputs of dtype {leaf.dtype}")
        if self._input_size is not None:
            sizes = nest.flatten(self._input_size)
            leaves = nest.flatten(inputs)
            depths = [leaf.shape[-1] for leaf in leaves]
            want = [s if isinstance(s, int) else tuple(s)[-1] for s in sizes]
            if depths != want:
                raise ValueError(f"DropoutWrapper(input_size={self._input_size!r}) received "
                                 f"inputs of depth {depths if len(depths) > 1 else depths[0]}")

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
        if self._input_size is not None or self._dtype is not None:
            self._check_inputs(inputs)
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


class ResidualWrapper(_Transparent):
    """``output = residual_fn(inputs, cell_output)``, default ``inputs + cell_output``."""

    def __init__(self, cell: RNNCell, residual_fn: Callable | None = None, name=None):
        super().__init__(cell, name=name)
        self._residual_fn = _checks.as_function("residual_fn", residual_fn)
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


def _torch_device(device: Any) -> torch.device:
    """A TF device string (``"/gpu:1"``, ``"/device:CPU:0"``, ``"/job:w/task:0/gpu:0"``) or a
    PyTorch one, as a ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"device must be a str or a torch.device, received {device!r}")
    found = re.search(r"(?:device:)?(cpu|gpu|cuda)(?::(\d+))?\s*$", device, re.IGNORECASE)
    if device.startswith("/") or found and not device.startswith(("cpu", "cuda")):
        if found is None:
            raise ValueError(f"device {device!r} names no CPU or GPU")
        kind = "cpu" if found.group(1).lower() == "cpu" else "cuda"
        index = found.group(2)
        return torch.device(kind if kind == "cpu" else f"cuda:{index or 0}")
    return torch.device(device)


class DeviceWrapper(_Transparent):
    """Runs the cell on ``device`` (``tf.nn.rnn_cell.DeviceWrapper``): the cell's parameters
    are moved there, and its inputs and state are moved there at each step; its outputs and
    next state stay there (the next layer, or the caller, moves them on).  TF's device
    strings (``"/gpu:1"``, ``"/device:CPU:0"``) and PyTorch's are accepted.  The drivers
    move a whole sequence at once."""

    def __init__(self, cell: RNNCell, device: Any):
        super().__init__(cell)
        self._device = _torch_device(device)
        self.cell.to(self._device)
        self.built = cell.built

    @property
    def device(self) -> torch.device:
        """Where the cell runs."""
        return self._device

    def placement(self) -> torch.device:
        """The device the wrapped cell's state is made on (what ``zero_state`` uses)."""
        return self._device

    def zero_state(self, batch_size, dtype=None, device=None):
        return initial_state(self.cell, batch_size, dtype, self._device)

    def build(self, inputs_shape):
        self.cell.build_for(inputs_shape, self._build_dtype, self._device)

    def fused_form(self) -> FusedForm:
        reason = self.cell.fast_path("fused_form")
        if reason is not None:
            raise NotFusableError(reason)
        return self.cell.fused_form()

    def call(self, inputs, state):
        move = _mover(self._device)
        return self.cell.step(nest.map_structure(move, inputs), nest.map_structure(move, state))


def _mover(device: torch.device) -> Callable[[Any], Any]:
    return lambda x: x.to(device) if isinstance(x, torch.Tensor) else x
