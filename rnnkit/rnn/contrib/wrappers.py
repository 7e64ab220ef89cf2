"""contrib.rnn's wrappers: ``EmbeddingWrapper``, ``HighwayWrapper``, ``AttentionCellWrapper``."""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

import torch
import torch.nn.functional as F

from rnnkit import _checks, initializers, nest
from rnnkit.compat import layout
from rnnkit.rnn.cell import RNNCell, require_cell
from rnnkit.rnn.cells import (
    _check_input,
)
from rnnkit.rnn.contrib._layout import (
    Layout,
)
from rnnkit.rnn.wrappers import _Wrapper

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
