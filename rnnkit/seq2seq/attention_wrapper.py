"""AttentionWrapper: a cell that attends over a memory at every step.

State is :class:`AttentionWrapperState`; ``alignment_history`` (when enabled) is an
:class:`AlignmentHistory`, whose ``stack()`` gives ``[time, batch, memory_time]`` as TF's
TensorArray did.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from rnnkit import _checks
from rnnkit.layers import Dense
from rnnkit.rnn.cell import RNNCell, initial_state, require_cell
from rnnkit.seq2seq.attention import AttentionMechanism
from rnnkit.tensor_array import TensorArray

__all__ = ["AlignmentHistory", "AttentionWrapper", "AttentionWrapperState", "compute_attention"]


class AlignmentHistory(TensorArray):
    """Per-step alignments (TF's ``TensorArray``): ``write`` returns a new history,
    ``stack()`` returns ``[time, batch, memory_time]``.

    It is an opaque leaf for the drivers: they carry it through unchanged (no masking, no
    beam gathering); :class:`~rnnkit.seq2seq.BeamSearchDecoder` reorders it by the beam tree
    at the end.
    """

    __slots__ = ()


class AttentionWrapperState(NamedTuple):
    """State of an :class:`AttentionWrapper`.

    Attributes:
        cell_state: the wrapped cell's state.
        attention: ``[batch, attention_layer_size]`` attention emitted at the last step.
        time: scalar int64 tensor, steps taken.
        alignments: ``[batch, memory_time]`` (a tuple with several mechanisms).
        alignment_history: :class:`AlignmentHistory` (tuple of them with several
            mechanisms), or ``()`` when disabled.
        attention_state: the mechanisms' own states (their previous alignments).
    """

    cell_state: Any
    attention: torch.Tensor
    time: torch.Tensor
    alignments: Any
    alignment_history: Any
    attention_state: Any

    def clone(self, **kwargs) -> AttentionWrapperState:
        """Copy with some fields replaced (e.g. ``cell_state=encoder_state``)."""
        return self._replace(**kwargs)

    def attention_probabilities(self) -> torch.Tensor:
        """``[batch, memory_time]``: this step's alignments (their mean over several
        mechanisms), what a coverage penalty accumulates."""
        return _mean_alignments(self.alignments)

    @classmethod
    def check_state(cls, name: str, size: Any, state: Any, batch_size: int) -> None:
        """``state`` against an ``AttentionWrapper.state_size``: the step counter is a scalar,
        the alignment history an :class:`AlignmentHistory`, the rest ``[batch, ...]``."""
        _check_attention_state(name, size, state, batch_size, cls)


def _type_name(kind: type, other: type) -> str:
    """``kind``'s name, with its module when ``other`` is another type of that name (TF
    1.x's and tensorflow-addons' ``AttentionWrapperState``)."""
    if kind is not other and kind.__name__ == other.__name__:
        return f"{kind.__module__}.{kind.__qualname__}"
    return kind.__name__


def _mean_alignments(alignments: Any) -> torch.Tensor:
    if isinstance(alignments, (tuple, list)):
        return torch.stack(list(alignments)).mean(0)
    return alignments


def _check_attention_state(name: str, size: Any, state: Any, batch_size: int,
                           kind: type) -> None:
    if not isinstance(state, tuple) or len(state) != len(size):
        raise ValueError(f"{name} must be an {kind.__name__} ({len(size)} fields), received "
                         f"{type(state).__name__}")
    fields = dict(zip(size._fields, zip(size, state, strict=True), strict=True))
    for field, (sub_size, value) in fields.items():
        where = f"{name}.{field}"
        if field == "time":
            if not isinstance(value, torch.Tensor) or value.dim() != 0:
                raise ValueError(f"{where} must be a scalar tensor (steps taken), received "
                                 f"{_checks._describe(value)}")
        elif field == "alignment_history":
            histories = value if isinstance(value, tuple) else (value,)
            if sub_size == () and value == ():
                continue
            for h in histories:
                if not isinstance(h, TensorArray):
                    raise ValueError(f"{where} must hold AlignmentHistory arrays, received "
                                     f"{type(h).__name__}")
        else:
            _checks.state(where, sub_size, value, batch_size)


def compute_attention(attention_mechanism: AttentionMechanism, cell_output: torch.Tensor,
                      attention_state: Any, attention_layer: nn.Module | None
                      ) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """One mechanism's attention for one step: ``AttentionWrapper``'s default
    ``attention_fn``.

    Args:
        attention_mechanism: scores the memory with ``cell_output [batch, depth]`` as query.
        attention_state: the mechanism's previous state.
        attention_layer: applied to ``[cell_output, context]``, or ``None`` (the context is
            the attention).

    Returns:
        ``(attention [batch, attention_depth], alignments [batch, memory_time],
        next_attention_state)``.
    """
    alignments, next_state = attention_mechanism(cell_output, attention_state)
    context = torch.bmm(alignments[:, None, :], attention_mechanism.values)[:, 0]
    if attention_layer is None:
        return context, alignments, next_state
    return attention_layer(torch.cat([cell_output, context], -1)), alignments, next_state


def _concat_input(inputs, attention):
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 2:
        got = (f"shape {tuple(inputs.shape)}" if isinstance(inputs, torch.Tensor)
               else f"a {type(inputs).__name__}")
        raise ValueError("AttentionWrapper's default cell_input_fn concatenates inputs "
                         f"[batch, depth] with the attention, received {got}; pass "
                         "cell_input_fn= to combine other inputs")
    return torch.cat([inputs, attention], -1)


class AttentionWrapper(RNNCell):
    """Wraps ``cell`` with attention (``tf.contrib.seq2seq.AttentionWrapper``).

    At each step: ``cell_inputs = cell_input_fn(inputs, previous_attention)``; the cell runs;
    each mechanism scores the memory with the cell output as query; ``context = alignments @
    values``; ``attention = attention_layer([cell_output, context])`` (or the context itself
    when ``attention_layer_size`` is None).

    Args:
        cell: the :class:`RNNCell` to wrap.
        attention_mechanism: an :class:`AttentionMechanism` or a list of them.
        attention_layer_size: int (list with several mechanisms) or None.
        alignment_history: keep every step's alignments in the state.
        cell_input_fn: ``(inputs, attention) -> cell inputs``; default concatenation.
        output_attention: emit the attention (True) or the cell output (False).
        initial_cell_state: the cell state :meth:`zero_state` starts from.
        attention_layer: modules to use instead of ``attention_layer_size`` dense layers.
        attention_fn: ``(attention_mechanism, cell_output, attention_state,
            attention_layer) -> (attention, alignments, next_attention_state)`` replacing
            :func:`compute_attention` (TF 1.15's and tensorflow-addons' argument).
        dtype: the dtype of the attention layers made here (tensorflow-addons' Keras
            argument; by default the inputs' dtype at the first call).

    Shapes: inputs ``[batch, depth]``; output ``[batch, attention_layer_size]`` (or the
    cell's output size); memory batch must equal the decoder batch (beam search: see
    :meth:`tiled_for_beams`).  The attention layers exist from construction on (sized at the
    first call when the memory depth is not known yet).  TF variables: the cell's, each
    mechanism's (``bahdanau_attention/...``), ``attention_layer/kernel``.
    """

    tf_default_name = "attention_wrapper"
    #: The state this wrapper makes (tensorflow-addons' front uses its own five-field one).
    state_type: ClassVar[type] = AttentionWrapperState

    def __init__(
        self,
        cell: RNNCell,
        attention_mechanism: AttentionMechanism | Sequence[AttentionMechanism],
        attention_layer_size: int | Sequence[int] | None = None,
        alignment_history: bool = False,
        cell_input_fn: Callable | None = None,
        output_attention: bool = True,
        initial_cell_state: Any = None,
        name: str | None = None,
        attention_layer: nn.Module | Sequence[nn.Module] | None = None,
        attention_fn: Callable | None = None,
        *,
        dtype: torch.dtype | None = None,
    ):
        super().__init__(name=name, dtype=dtype)
        require_cell("cell", cell)
        self._is_multi = isinstance(attention_mechanism, (list, tuple))
        mechanisms = list(attention_mechanism) if self._is_multi else [attention_mechanism]
        if not mechanisms:
            raise ValueError("attention_mechanism must not be an empty list")
        for i, m in enumerate(mechanisms):
            if not isinstance(m, AttentionMechanism):
                raise TypeError(f"attention_mechanism[{i}] must be an AttentionMechanism, "
                                f"received {type(m).__name__}")
        if attention_layer_size is not None and attention_layer is not None:
            raise ValueError("give attention_layer_size or attention_layer, not both")
        self.cell = cell
        self.attention_mechanisms = nn.ModuleList(mechanisms)
        self._cell_input_fn = _checks.as_function("cell_input_fn", cell_input_fn) or _concat_input
        self._attention_fn = (_checks.as_function("attention_fn", attention_fn)
                              or compute_attention)
        self._output_attention = _checks.as_flag("output_attention", output_attention)
        self._alignment_history = _checks.as_flag("alignment_history", alignment_history)
        self._initial_cell_state = initial_cell_state
        self._layer_sizes: list[int] | None = None
        self.attention_layers: nn.ModuleList | None = None
        if attention_layer_size is not None:
            sizes = list(attention_layer_size) if isinstance(attention_layer_size, (list, tuple)) \
                else [attention_layer_size]
            if len(sizes) != len(mechanisms):
                raise ValueError(f"attention_layer_size must have one entry per mechanism "
                                 f"({len(mechanisms)}), received {len(sizes)}")
            self._layer_sizes = [_checks.as_count(f"attention_layer_size[{i}]", s)
                                 for i, s in enumerate(sizes)]
        elif attention_layer is not None:
            layers = list(attention_layer) if isinstance(attention_layer, (list, tuple)) \
                else [attention_layer]
            if len(layers) != len(mechanisms):
                raise ValueError(f"attention_layer must have one entry per mechanism "
                                 f"({len(mechanisms)}), received {len(layers)}")
            for i, layer in enumerate(layers):
                if not isinstance(layer, nn.Module):
                    raise TypeError(f"attention_layer[{i}] must be a torch.nn.Module, "
                                    f"received {type(layer).__name__}")
            self.attention_layers = nn.ModuleList(layers)
        if self._layer_sizes is not None:
            query = cell.output_size if isinstance(cell.output_size, int) else None
            self.attention_layers = nn.ModuleList(
                Dense(size, use_bias=False, name="attention_layer", dtype=dtype,
                      in_features=query + m.memory_depth
                      if query is not None and m.memory_depth is not None else None)
                for m, size in zip(mechanisms, self._layer_sizes, strict=True))
            for m, layer in zip(mechanisms, self.attention_layers, strict=True):
                if layer.in_features is not None and m._memory is not None:
                    layer.to(device=m._memory.device, dtype=dtype or m._memory.dtype)
        query_depth = cell.output_size if isinstance(cell.output_size, int) else None
        if query_depth is not None:
            for m in mechanisms:
                m.build_query_layer(query_depth)
        self.built = True

    @property
    def attention_layer_size(self) -> int:
        """Depth of the attention vector: the sum of the attention layers' sizes, or the
        memory depths when there are no attention layers."""
        if self._layer_sizes is not None:
            return sum(self._layer_sizes)
        if self.attention_layers is not None:
            return sum(self._out_features(m, layer) for m, layer in
                       zip(self.attention_mechanisms, self.attention_layers, strict=True))
        depths = [m.memory_depth for m in self.attention_mechanisms]
        if any(d is None for d in depths):
            self.attention_mechanisms[depths.index(None)]._require_memory()
        return sum(depths)

    def _item_or_tuple(self, items: list) -> Any:
        return tuple(items) if self._is_multi else items[0]

    @property
    def output_size(self) -> int:
        return self.attention_layer_size if self._output_attention else self.cell.output_size

    @property
    def state_size(self) -> AttentionWrapperState:
        sizes = [m.alignments_size for m in self.attention_mechanisms]
        return self._make_state(
            cell_state=self.cell.state_size,
            attention=self.attention_layer_size,
            time=torch.Size([]),
            alignments=self._item_or_tuple(sizes),
            alignment_history=self._item_or_tuple(sizes) if self._alignment_history else (),
            attention_state=self._item_or_tuple([m.state_size for m in
                                                 self.attention_mechanisms]),
        )

    def _out_features(self, mechanism: AttentionMechanism, layer: nn.Module) -> int:
        """The depth a user's attention layer emits: its ``out_features``, or what it returns
        for one row of ``[cell_output, context]``."""
        size = getattr(layer, "out_features", None)
        if isinstance(size, int):
            return size
        depth = self.cell.output_size
        if not isinstance(depth, int) or mechanism.memory_depth is None:
            mechanism._require_memory()
            raise ValueError("attention_layer: its output depth is unknown before the first "
                             "call (give a layer with out_features)")
        like = next((p for p in layer.parameters()
                     if not isinstance(p, nn.parameter.UninitializedTensorMixin)), None)
        with torch.no_grad():
            probe = torch.zeros(1, depth + mechanism.memory_depth,
                                dtype=like.dtype if like is not None else None,
                                device=like.device if like is not None else None)
            return int(layer(probe).shape[-1])

    def _make_state(self, **fields: Any) -> Any:
        """A state of :attr:`state_type` from the fields it has."""
        return self.state_type(**{k: v for k, v in fields.items()
                                  if k in self.state_type._fields})

    def zero_state(self, batch_size, dtype=None, device=None) -> AttentionWrapperState:
        """Initial state; ``cell_state`` is ``initial_cell_state`` when one was given."""
        first = self.attention_mechanisms[0]
        first._require_memory()
        dtype = _checks.as_dtype("dtype", dtype) or first._memory.dtype
        device = torch.device(device) if device is not None else first._memory.device
        for i, m in enumerate(self.attention_mechanisms):
            if m.batch_size != batch_size:
                raise ValueError(
                    f"zero_state(batch_size={batch_size}) but attention_mechanism[{i}] has "
                    f"memory for batch {m.batch_size}; with BeamSearchDecoder use "
                    f"tile_batch(memory, beam_width) and batch_size * beam_width")
        if self._initial_cell_state is not None:
            cell_state = self._initial_cell_state
            _checks.batch_of_state("initial_cell_state", cell_state, batch_size)
        else:
            cell_state = initial_state(self.cell, batch_size, dtype, device)
        alignments = [m.initial_alignments(batch_size, dtype) for m in self.attention_mechanisms]
        return self._make_state(
            cell_state=cell_state,
            attention=torch.zeros(batch_size, self.attention_layer_size, dtype=dtype,
                                  device=device),
            time=torch.zeros((), dtype=torch.long, device=device),
            alignments=self._item_or_tuple(alignments),
            alignment_history=self._item_or_tuple([AlignmentHistory() for _ in alignments])
            if self._alignment_history else (),
            attention_state=self._item_or_tuple(
                [m.initial_state(batch_size, dtype) for m in self.attention_mechanisms]),
        )

    def assert_state(self, name: str, state: Any, batch_size: int) -> None:
        if not isinstance(state, self.state_type):
            raise ValueError(f"{name} must be an {_type_name(self.state_type, type(state))}, "
                             f"received {_type_name(type(state), self.state_type)}")
        self.cell.assert_state(f"{name}.cell_state", state.cell_state, batch_size)
        _checks.state(name, self.state_size._replace(cell_state=None),
                      state._replace(cell_state=None), batch_size)

    def reorder_state(self, state: Any, indices: torch.Tensor) -> Any:
        reordered = super().reorder_state(state._replace(cell_state=None), indices)
        return reordered._replace(cell_state=self.cell.reorder_state(state.cell_state, indices))

    def tf_variables(self, available: Collection[str] = ()) -> dict:
        return {}

    def tf_children(self) -> list[tuple[str, nn.Module]]:
        out: list[tuple[str, nn.Module]] = [(self.cell.tf_name, self.cell)]
        counts: dict[str, int] = {}
        for m in self.attention_mechanisms:
            base = m.tf_name
            k = counts.get(base, 0)
            counts[base] = k + 1
            out.append((base + (f"_{k}" if k else ""), m))
        if self.attention_layers is not None:
            out += [("attention_layer" + (f"_{i}" if i else ""), layer)
                    for i, layer in enumerate(self.attention_layers)]
        return out

    # -- step -------------------------------------------------------------------------------
    def call(self, inputs, state: AttentionWrapperState):
        if not isinstance(state, self.state_type):
            raise TypeError(f"AttentionWrapper state must be an "
                            f"{_type_name(self.state_type, type(state))}, received "
                            f"{_type_name(type(state), self.state_type)}")
        cell_inputs = self._cell_input_fn(inputs, state.attention)
        cell_output, next_cell_state = self.cell.step(cell_inputs, state.cell_state)
        prev_states = state.attention_state if self._is_multi else (state.attention_state,)
        histories = state.alignment_history if self._is_multi else (state.alignment_history,)
        attentions, alignments, attention_states, new_histories = [], [], [], []
        for i, mechanism in enumerate(self.attention_mechanisms):
            layer = self.attention_layers[i] if self.attention_layers is not None else None
            attention, align, next_attn_state = self._attention_fn(
                mechanism, cell_output, prev_states[i], layer)
            attentions.append(attention)
            alignments.append(align)
            attention_states.append(next_attn_state)
            if self._alignment_history:
                new_histories.append(histories[i].write(len(histories[i]), align))
        attention = torch.cat(attentions, -1) if len(attentions) > 1 else attentions[0]
        next_state = self._make_state(
            cell_state=next_cell_state,
            attention=attention,
            time=state.time + 1 if hasattr(state, "time") else None,
            alignments=self._item_or_tuple(alignments),
            alignment_history=self._item_or_tuple(new_histories) if self._alignment_history
            else (),
            attention_state=self._item_or_tuple(attention_states),
        )
        return (attention if self._output_attention else cell_output), next_state

