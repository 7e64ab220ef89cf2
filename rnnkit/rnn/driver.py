"""Drivers: dynamic_rnn, static_rnn, bidirectional_dynamic_rnn, stack_bidirectional_dynamic_rnn.

Semantics are TF 1.x's: with ``sequence_length``, entry ``b``'s outputs at
``t >= sequence_length[b]`` are zero and its final state is the state after step
``sequence_length[b] - 1`` (the initial state when the length is 0).  Padding values never
reach the cell's results (they are replaced by zeros before the cell sees them).

Execution, fastest first:

1. a cell is split into its :meth:`~RNNCell.sequential_layers` (a ``MultiRNNCell``'s cells;
   exact for a stack: layer ``k`` at step ``t`` only needs layer ``k-1`` at ``t`` and itself
   at ``t-1``);
2. consecutive layers that describe a :meth:`~RNNCell.fused_form` run on PyTorch's fused
   kernels (:mod:`rnnkit.rnn.fused`): one multi-layer call per run of same-sized layers,
   a ragged batch packed once for all of them;
3. a layer implementing ``project_inputs``/``call_projected`` has its input-side matrix
   product computed for all steps at once, then loops over time;
4. any other layer is called step by step.  ``compile_step=True`` compiles the step with
   ``torch.compile``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import torch

from rnnkit import _checks, nest
from rnnkit._checks import Lengths
from rnnkit.masking import select_rows
from rnnkit.rnn.cell import RNNCell, start_sequence
from rnnkit.rnn.fused import NotFusableError, PackPlan, check_form, run_layers
from rnnkit.rnn.graphs import graphed_loop

__all__ = [
    "bidirectional_dynamic_rnn",
    "dynamic_rnn",
    "reverse_sequence",
    "static_bidirectional_rnn",
    "static_rnn",
    "stack_bidirectional_dynamic_rnn",
]


def _require_cell(name: str, cell: Any) -> RNNCell:
    if not isinstance(cell, RNNCell):
        raise TypeError(f"{name} must be an rnnkit RNNCell, received {type(cell).__name__}")
    return cell


def check_state(name: str, cell: RNNCell, state: Any, batch_size: int) -> None:
    """``state`` must match ``cell.state_size`` in structure, batch and depth."""
    cell.assert_state(name, state, batch_size)


def _zeros_like_output(cell: RNNCell, time: int, batch: int, like: torch.Tensor) -> Any:
    def zeros(size):
        dims = (size,) if isinstance(size, int) else tuple(size)
        return like.new_zeros((time, batch, *dims))

    return nest.map_structure(zeros, cell.output_size)


#: ``compile_step`` needs one compiled graph per cell instance, grad mode and shape, and
#: dynamo counts them per code object (all instances of a class share ``call``); past its
#: default limit of 8 it silently runs the step eagerly.  The driver raises the limit to this.
COMPILE_RECOMPILE_LIMIT = 64


def _compiled_step(cell: RNNCell, projected: bool):
    key = "_rnnkit_compiled_projected" if projected else "_rnnkit_compiled_call"
    fn = cell.__dict__.get(key)
    if fn is None:
        import torch._dynamo

        config = torch._dynamo.config
        if getattr(config, "recompile_limit", COMPILE_RECOMPILE_LIMIT) < COMPILE_RECOMPILE_LIMIT:
            config.recompile_limit = COMPILE_RECOMPILE_LIMIT
        fn = torch.compile(cell.call_projected if projected else cell.call, dynamic=False)
        object.__setattr__(cell, key, fn)
    return fn


def _first(x: Any) -> torch.Tensor:
    """The first tensor of driver inputs (a tensor or a structure of tensors)."""
    return nest.flatten(x)[0]


def _fusable(x: Any) -> bool:
    """Can inputs ``x`` go to the fused kernels: one tensor ``[batch, time, depth]``?"""
    return isinstance(x, torch.Tensor) and x.dim() == 3


def _loop(cell: RNNCell, x: Any, state: Any, lengths, compile_step: bool, steps: int):
    """Generic time loop over time-major ``x [time, batch, ...]`` (or a structure of such
    tensors); ``steps`` is ``max(lengths)`` (known on the host), the steps actually run."""
    first = _first(x)
    total, batch = first.shape[0], first.shape[1]
    if steps == 0:
        return _zeros_like_output(cell, total, batch, first), state
    nested = not isinstance(x, torch.Tensor)
    cell.maybe_build(nest.map_structure(lambda a: a[0], x))
    live = nest.map_structure(lambda a: a[:steps], x)
    hoist = not nested and x.dim() == 3 and cell.hoists_inputs()  # steps [batch, depth]
    projected = cell.project_inputs(live) if hoist else None
    if projected is not None:
        seq = projected.unbind(0)
        step = _compiled_step(cell, True) if compile_step else cell.call_projected
    else:
        seq = ([nest.map_structure(lambda a, t=t: a[t], live) for t in range(steps)] if nested
               else live.unbind(0))
        step = _compiled_step(cell, False) if compile_step else cell.call
    masks = None
    if lengths is not None:
        t_idx = torch.arange(steps, device=lengths.device)
        masks = (t_idx[:, None] < lengths[None, :]).unbind(0)
    outputs = []
    for t in range(steps):
        out, new_state = step(seq[t], state)
        if masks is not None:
            out = select_rows(masks[t], out, 0.0)
            new_state = select_rows(masks[t], new_state, state)
        outputs.append(out)
        state = new_state
    stacked = nest.map_structure(lambda *xs: torch.stack(xs), *outputs)
    if steps < total:
        pad = _zeros_like_output(cell, total - steps, batch, first)
        stacked = nest.map_structure(lambda a, b: torch.cat([a, b.to(a.dtype)]), stacked, pad)
    return stacked, state


Fused = bool | Literal["auto"]


def _check_loop_options(compile_step: Any, cuda_graph: Any) -> tuple[bool, bool]:
    compile_step = _checks.as_flag("compile_step", compile_step)
    cuda_graph = _checks.as_flag("cuda_graph", cuda_graph)
    if cuda_graph and compile_step:
        raise ValueError("give cuda_graph=True or compile_step=True, not both")
    return compile_step, cuda_graph


def _check_fused(fused: Any) -> Fused:
    if fused is True or fused is False or fused == "auto":
        return fused
    raise ValueError(f'fused must be "auto", True or False, received {fused!r}')


def _leaves(cell: RNNCell) -> list[RNNCell]:
    layers = cell.sequential_layers()
    if len(layers) == 1 and layers[0] is cell:
        return [cell]
    return [leaf for layer in layers for leaf in _leaves(layer)]


def _split_leaves(cell: RNNCell, state: Any) -> list[Any]:
    layers = cell.sequential_layers()
    if len(layers) == 1 and layers[0] is cell:
        return [state]
    parts = cell.split_state(state)
    return [s for layer, st in zip(layers, parts, strict=True) for s in _split_leaves(layer, st)]


def _join_leaves(cell: RNNCell, finals: Iterator[Any]) -> Any:
    layers = cell.sequential_layers()
    if len(layers) == 1 and layers[0] is cell:
        return next(finals)
    return cell.join_state([_join_leaves(layer, finals) for layer in layers])


def _layer_name(cell: RNNCell, leaf: RNNCell, index: int, count: int) -> str:
    return type(cell).__name__ if count == 1 else f"layer {index} ({type(leaf).__name__})"


def _forms(cell: RNNCell, leaves: list[RNNCell], depth: int, like: torch.Tensor,
           fused: Fused, start: int = 0) -> list:
    """Build each layer from ``start`` on (in order, at its input depth) and ask it for its
    fused form.

    Returns one :class:`FusedForm` or ``None`` (step loop) per layer (``None`` before
    ``start``).  With ``fused=True`` a layer that cannot fuse raises
    :class:`NotFusableError` naming the layer and why.
    """
    forms: list = [None] * start
    for i, leaf in enumerate(leaves[start:], start):
        if not leaf.built and depth is not None:
            leaf.maybe_build(like.new_zeros(1, depth))
        form = None
        if fused is not False and leaf.built:
            try:
                form = check_form(leaf.fused_form(), type(leaf).__name__)
            except NotFusableError as e:
                if fused is True:
                    where = _layer_name(cell, leaf, i, len(leaves))
                    raise NotFusableError(f"fused=True: {where} cannot run on the fused "
                                          f"kernels: {e}") from None
        if form is not None and depth is not None and form.input_size != depth:
            where = _layer_name(cell, leaf, i, len(leaves))
            raise ValueError(f"{where} expects inputs of depth {form.input_size}, received "
                             f"depth {depth}")
        forms.append(form)
        out = leaf.output_size
        depth = out if isinstance(out, int) else None
    return forms


class _Prepared:
    """Validated driver inputs: ``x`` (a tensor or a structure of tensors) in the caller's
    layout, lengths on the CPU."""

    def __init__(self, x: Any, lengths: torch.Tensor | None, time_major: bool):
        self.x = x
        self.lengths = lengths  # None: every entry has full length
        self.time_major = time_major
        self._plan: PackPlan | None = None
        self._device_lengths: torch.Tensor | None = None

    @property
    def first(self) -> torch.Tensor:
        return _first(self.x)

    @property
    def max_time(self) -> int:
        return self.first.shape[0 if self.time_major else 1]

    @property
    def batch(self) -> int:
        return self.first.shape[1 if self.time_major else 0]

    def plan(self) -> PackPlan | None:
        if self.lengths is None:
            return None
        if self._plan is None:
            self._plan = PackPlan(self.lengths, self.max_time, not self.time_major,
                                  self.first.device)
        return self._plan

    def steps(self) -> int:
        """Steps any entry runs: ``max(sequence_length)`` (read on the host, no sync)."""
        if self.lengths is None:
            return self.max_time
        return int(self.lengths.max()) if self.lengths.numel() else 0

    def device_lengths(self) -> torch.Tensor | None:
        if self.lengths is None:
            return None
        if self._device_lengths is None:
            self._device_lengths = self.lengths.to(self.first.device, non_blocking=True)
        return self._device_lengths


def _graph_run(cell, x, state, lengths, steps):
    """The step loop as :func:`rnnkit.rnn.graphs.graphed_loop` captures it."""
    return _loop(cell, x, state, lengths, False, steps)


def _loop_layer(cell, x, state, prep: _Prepared, compile_step: bool, cuda_graph: bool):
    """One layer on the step loop; ``x`` and the result in the caller's layout."""
    tm = x if prep.time_major else nest.map_structure(lambda a: a.transpose(0, 1), x)
    lengths = prep.device_lengths()
    if lengths is not None:  # the cell never sees padding (NaN there must not leak)
        valid = torch.arange(prep.max_time, device=lengths.device)[:, None] < lengths[None, :]
        tm = nest.map_structure(
            lambda a: torch.where(valid.view(*valid.shape, *[1] * (a.dim() - 2)), a, 0.0), tm)
    steps = prep.steps()
    result = None
    if cuda_graph and steps > 0:
        cell.maybe_build(nest.map_structure(lambda a: a[0], tm))
        result = graphed_loop(cell, tm, state, lengths, steps, _graph_run)
    out, final = result if result is not None else _loop(cell, tm, state, lengths,
                                                         compile_step, steps)
    if not prep.time_major:
        out = nest.map_structure(lambda o: o.transpose(0, 1), out)
    return out, final


def _run(cell: RNNCell, prep: _Prepared, state: Any, fused: Fused, compile_step: bool,
         cuda_graph: bool = False):
    """Run ``cell`` layer by layer: consecutive fused layers in shared kernel calls on data
    packed once, the rest on the step loop.  ``state`` ``None`` means zeros."""
    leaves = _leaves(cell)
    states = [None] * len(leaves) if state is None else _split_leaves(cell, state)
    x = prep.x
    if fused is True and not _fusable(x):
        raise NotFusableError("fused=True needs inputs of one tensor [batch, time, depth]; "
                              f"received {_describe_inputs(x)}")
    forms: list | None = None  # decided once the data has the fused kernels' layout
    finals: list[Any] = []
    i = 0
    while i < len(leaves):
        if forms is None and _fusable(x) and prep.max_time > 0:
            forms = _forms(cell, leaves, x.shape[-1], x, fused, start=i)
        if forms is None or forms[i] is None or not _fusable(x):
            leaf, st = leaves[i], states[i]
            like = _first(x)
            _checks.params_match_inputs(_layer_name(cell, leaf, i, len(leaves)), leaf, like)
            if st is None:
                st = leaf.zero_state(prep.batch, like.dtype, like.device)
            x, final = _loop_layer(leaf, x, st, prep, compile_step, cuda_graph)
            finals.append(final)
            i += 1
            continue
        j = i
        while j < len(leaves) and forms[j] is not None:
            _checks.params_match_inputs(_layer_name(cell, leaves[j], j, len(leaves)),
                                        forms[j].weights, x)
            j += 1
        x, run_finals = run_layers([(f,) for f in forms[i:j]], x,
                                   [(s,) for s in states[i:j]], prep.plan(), not prep.time_major)
        finals.extend(f[0] for f in run_finals)
        i = j
    return x, _join_leaves(cell, iter(finals))


def _prepare(cell, inputs, sequence_length, initial_state, dtype, time_major, prefix=""):
    _require_cell(f"{prefix}cell", cell)
    time_major = _checks.as_flag("time_major", time_major)
    inputs = _sequence_inputs(inputs, time_major)
    first = _first(inputs)
    dtype = _checks.as_dtype("dtype", dtype)
    if dtype is not None and initial_state is None and dtype != first.dtype:
        raise TypeError(f"dtype is {dtype} but inputs have dtype {first.dtype}")
    total, batch = (first.shape[0], first.shape[1]) if time_major else \
        (first.shape[1], first.shape[0])
    lengths = None
    if sequence_length is not None:
        lengths = _checks.as_lengths("sequence_length", sequence_length, batch, total,
                                     torch.device("cpu"))
        if bool((lengths == total).all()):
            lengths = None  # full length everywhere: nothing to mask or pack
    if initial_state is not None:
        check_state(f"{prefix}initial_state", cell, initial_state, batch)
        _checks.state_matches_inputs(f"{prefix}initial_state", initial_state, first)
    return _Prepared(inputs, lengths, time_major), initial_state


def _sequence_inputs(inputs: Any, time_major: bool) -> Any:
    """Driver inputs checked: a float tensor ``[batch, max_time, ...]`` (``[max_time, batch,
    ...]`` if ``time_major``), an array of numbers, or a structure (tuple, list, dict,
    NamedTuple) of such tensors agreeing on batch, time and device, as TF's ``nest``."""
    layout = "[max_time, batch, depth]" if time_major else "[batch, max_time, depth]"
    leaves = nest.flatten(inputs) if nest.is_nested(inputs) else []
    if not any(isinstance(leaf, (torch.Tensor, np.ndarray)) for leaf in leaves):
        inputs = _checks.as_inputs("inputs", inputs)
        _checks.rank_at_least("inputs", inputs, 3, layout)
        _checks.floating("inputs", inputs)
        return inputs
    checked = []
    for i, leaf in enumerate(leaves):
        name = f"inputs leaf {i}"
        leaf = _checks.as_inputs(name, leaf)
        _checks.rank_at_least(name, leaf, 3, layout)
        _checks.floating(name, leaf)
        if checked and (leaf.shape[:2] != checked[0].shape[:2]
                        or leaf.device != checked[0].device):
            raise ValueError(
                f"inputs leaves must agree on {layout[:-8]}] and device: leaf 0 has shape "
                f"{tuple(checked[0].shape)} on {checked[0].device}, {name} has shape "
                f"{tuple(leaf.shape)} on {leaf.device}")
        checked.append(leaf)
    return nest.pack_sequence_as(inputs, checked)


def _describe_inputs(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"shape {tuple(x.shape)}"
    return f"a {type(x).__name__} of {len(nest.flatten(x))} tensors"


def dynamic_rnn(
    cell: RNNCell,
    inputs: torch.Tensor,
    sequence_length: Lengths = None,
    initial_state: Any = None,
    dtype: torch.dtype | None = None,
    parallel_iterations: int | None = None,
    swap_memory: bool = False,
    time_major: bool = False,
    scope: Any = None,
    *,
    fused: Fused = "auto",
    compile_step: bool = False,
    cuda_graph: bool = False,
) -> tuple[Any, Any]:
    """Run ``cell`` over ``inputs`` (``tf.nn.dynamic_rnn``).

    Args:
        cell: an :class:`RNNCell`.
        inputs: ``[batch, max_time, depth]`` (``[max_time, batch, depth]`` if ``time_major``);
            a tensor or an array-like of floats.  As in TF, a cell of your own may take steps
            of any rank (``[batch, max_time, height, width, channels]`` gives it
            ``[batch, height, width, channels]`` per step) or a structure (tuple, list, dict,
            NamedTuple) of such tensors agreeing on batch and time, passed to it step by
            step in the same structure; those run on the step loop.
        sequence_length: ``[batch]`` ints in ``[0, max_time]`` (list, array or tensor),
            optional.
        initial_state: structure matching ``cell.state_size`` with ``[batch, ...]`` leaves;
            zeros when omitted.
        dtype: checked against ``inputs.dtype`` when given (TF needs it; here it is optional).
        parallel_iterations, swap_memory, scope: accepted for TF compatibility, unused.
        fused: ``"auto"`` (default) runs every layer that describes a fused form
            (:meth:`RNNCell.fused_form`) on PyTorch's fused kernels and the others on the step
            loop (results are the same); ``True`` requires the fused kernels and raises
            :class:`NotFusableError` (a ``ValueError``) naming why a layer cannot use them;
            ``False`` always runs the step loop.
        compile_step: compile the per-step function of the step loop with ``torch.compile``
            (raises ``torch._dynamo.config.recompile_limit`` to ``COMPILE_RECOMPILE_LIMIT``).
        cuda_graph: on CUDA, capture the step loop of each layer that does not fuse (forward
            and backward) in a CUDA graph, cached per input shape and replayed
            (:mod:`rnnkit.rnn.graphs`); same results, far fewer kernel launches.  Attention
            memory (what modules declare in ``graph_bindings()``) is an input of the graph.
            Where it cannot capture (CPU tensors, a step that reads a value on the host or
            a tensor that is neither a parameter, a buffer nor declared), it warns and runs
            eagerly.

    Returns:
        ``(outputs, final_state)``: outputs ``[batch, max_time, output_size]`` (time-major if
        ``time_major``), zero past each length; ``final_state`` like ``cell.state_size``.
    """
    fused = _check_fused(fused)
    compile_step, cuda_graph = _check_loop_options(compile_step, cuda_graph)
    _checks.tf_loop_options(parallel_iterations, swap_memory)
    prep, state = _prepare(cell, inputs, sequence_length, initial_state, dtype, time_major)
    start_sequence(cell)
    return _run(cell, prep, state, fused, compile_step, cuda_graph)


def static_rnn(
    cell: RNNCell,
    inputs: list[torch.Tensor],
    initial_state: Any = None,
    dtype: torch.dtype | None = None,
    sequence_length: Lengths = None,
    scope: Any = None,
) -> tuple[list[Any], Any]:
    """``tf.nn.static_rnn``: ``inputs`` is a list of ``[batch, depth]`` tensors (or of
    structures of ``[batch, ...]`` tensors), one per step.

    Returns ``(outputs, final_state)`` with ``outputs`` a list of ``[batch, output_size]``
    (one per step, structured like ``cell.output_size``).
    """
    outputs, state = dynamic_rnn(cell, _stacked_steps(inputs), sequence_length,
                                 initial_state, dtype, time_major=True)
    return _unstacked_steps(outputs), state


def _stacked_steps(inputs: Any) -> Any:
    """A static RNN's list of per-step inputs as time-major tensors ``[time, batch, ...]``."""
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise TypeError("inputs must be a non-empty list of [batch, depth] tensors (one per "
                        f"step), received {type(inputs).__name__}")
    for i, x in enumerate(inputs):
        nest.assert_same_structure(inputs[0], x, what=f"inputs[{i}] (vs inputs[0])")
        for leaf, ref in zip(nest.flatten(x), nest.flatten(inputs[0]), strict=True):
            _checks.tensor(f"inputs[{i}]", leaf)
            _checks.rank_at_least(f"inputs[{i}]", leaf, 2, "[batch, depth]")
            if leaf.shape != ref.shape:
                raise ValueError(f"inputs[{i}] has shape {tuple(leaf.shape)}, inputs[0] has "
                                 f"{tuple(ref.shape)}")
    return nest.map_structure(lambda *xs: torch.stack(xs), *inputs)


def _unstacked_steps(outputs: Any) -> list[Any]:
    steps = _first(outputs).shape[0]
    return [nest.map_structure(lambda o, t=t: o[t], outputs) for t in range(steps)]


def reverse_sequence(
    input: Any,
    seq_lengths: Lengths,
    seq_axis: int | None = None,
    batch_axis: int | None = None,
    name: str | None = None,
    seq_dim: int | None = None,
    batch_dim: int | None = None,
) -> torch.Tensor:
    """Reverse each sequence within its own length (``tf.reverse_sequence``).

    Args:
        input: a tensor (or array) with a batch axis and a time axis, e.g.
            ``[batch, time, depth]``.
        seq_lengths: ``[batch]`` ints in ``[0, input.shape[seq_axis]]``; ``None`` reverses
            every sequence whole.
        seq_axis: the time axis (required; negative counts from the end).  TF 1.x's
            ``seq_dim`` is accepted in its place.
        batch_axis: the batch axis, 0 by default (``batch_dim`` in TF 1.x).

    Returns:
        ``input``'s shape: for batch entry ``b``, the first ``seq_lengths[b]`` steps in
        reverse order, the steps past the length unchanged.
    """
    seq_axis = _one_of("seq_axis", seq_axis, "seq_dim", seq_dim)
    batch_axis = _one_of("batch_axis", batch_axis, "batch_dim", batch_dim)
    if seq_axis is None:
        raise ValueError("seq_axis must be given (the time axis of input)")
    x = _checks.as_inputs("input", input)
    if x.dim() < 2:
        raise ValueError(f"input must have a batch and a time axis, received shape "
                         f"{tuple(x.shape)}")
    seq_axis = _checks.as_axis("seq_axis", seq_axis, x.dim())
    batch_axis = _checks.as_axis("batch_axis", 0 if batch_axis is None else batch_axis,
                                 x.dim())
    if seq_axis == batch_axis:
        raise ValueError(f"seq_axis and batch_axis must differ, both are {seq_axis}")
    lengths = None if seq_lengths is None else _checks.as_lengths(
        "seq_lengths", seq_lengths, x.shape[batch_axis], x.shape[seq_axis], x.device)
    moved = x.movedim((seq_axis, batch_axis), (0, 1))  # [time, batch, ...]
    return _reverse_within_lengths(moved, lengths).movedim((0, 1), (seq_axis, batch_axis))


def _one_of(name: str, value: Any, old_name: str, old_value: Any) -> Any:
    if value is not None and old_value is not None:
        raise ValueError(f"give {name} or {old_name}, not both")
    return value if value is not None else old_value


def _reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """``x [time, batch, ...]`` with each entry's first ``lengths[b]`` steps reversed."""
    if lengths is None:
        return x.flip(0)
    t = torch.arange(x.shape[0], device=x.device)[:, None]
    lens = lengths.to(x.device)[None, :]
    idx = torch.where(t < lens, lens - 1 - t, t)  # [time, batch]
    idx = idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, idx)


def _reverse_in_layout(x: torch.Tensor, lengths: torch.Tensor | None,
                       time_major: bool) -> torch.Tensor:
    """The drivers' reversal: ``x`` in the caller's layout, lengths already checked."""
    if time_major:
        return _reverse_within_lengths(x, lengths)
    return _reverse_within_lengths(x.transpose(0, 1), lengths).transpose(0, 1)


def _pair_forms(cell_fw: RNNCell, cell_bw: RNNCell, depth: int, prep: _Prepared,
                fused: Fused):
    """The two forms when the pair can run as one bidirectional kernel call, else None."""
    if fused is False or prep.max_time == 0:
        return None
    if _leaves(cell_fw) != [cell_fw] or _leaves(cell_bw) != [cell_bw]:
        return None  # stacks run each direction through the whole stack (TF's semantics)
    try:
        ffw = _forms(cell_fw, [cell_fw], depth, prep.x, "auto")[0]
        fbw = _forms(cell_bw, [cell_bw], depth, prep.x, "auto")[0]
    except ValueError:
        return None  # let the per-direction drivers report it
    if ffw is None or fbw is None or ffw.kernel_key() != fbw.kernel_key():
        return None
    return ffw, fbw


def bidirectional_dynamic_rnn(
    cell_fw: RNNCell,
    cell_bw: RNNCell,
    inputs: torch.Tensor,
    sequence_length: Lengths = None,
    initial_state_fw: Any = None,
    initial_state_bw: Any = None,
    dtype: torch.dtype | None = None,
    parallel_iterations: int | None = None,
    swap_memory: bool = False,
    time_major: bool = False,
    scope: Any = None,
    *,
    fused: Fused = "auto",
    compile_step: bool = False,
    cuda_graph: bool = False,
) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """Forward and backward RNNs over ``inputs`` (``tf.nn.bidirectional_dynamic_rnn``).

    The backward cell reads each sequence reversed within its own length; its outputs are
    reversed back so that ``out_bw[:, t]`` aligns with ``inputs[:, t]``.  Two single cells
    with the same fused kernel run as one bidirectional kernel call; ``fused``,
    ``compile_step`` and ``cuda_graph`` (for layers on the step loop) as in
    :func:`dynamic_rnn`.

    Returns ``((out_fw, out_bw), (state_fw, state_bw))``, each output
    ``[batch, max_time, output_size]`` (time-major if ``time_major``).
    """
    fused = _check_fused(fused)
    compile_step, cuda_graph = _check_loop_options(compile_step, cuda_graph)
    _checks.tf_loop_options(parallel_iterations, swap_memory)
    prep, st_fw = _prepare(cell_fw, inputs, sequence_length, initial_state_fw, dtype,
                           time_major, prefix="fw ")
    _, st_bw = _prepare(cell_bw, inputs, sequence_length, initial_state_bw, dtype,
                        time_major, prefix="bw ")
    start_sequence(cell_fw)
    start_sequence(cell_bw)
    pair = _pair_forms(cell_fw, cell_bw, prep.x.shape[-1], prep, fused) if _fusable(prep.x) \
        else None
    if pair is not None:
        _checks.params_match_inputs("cell_fw", pair[0].weights, prep.x)
        _checks.params_match_inputs("cell_bw", pair[1].weights, prep.x)
        out, finals = run_layers([pair], prep.x, [(st_fw, st_bw)], prep.plan(), not time_major)
        out_fw, out_bw = out.split([pair[0].output_size, pair[1].output_size], -1)
        return (out_fw, out_bw), (finals[0][0], finals[0][1])
    out_fw, fin_fw = _run(cell_fw, prep, st_fw, fused, compile_step, cuda_graph)
    lengths = prep.device_lengths()
    rev = _Prepared(nest.map_structure(lambda a: _reverse_in_layout(a, lengths, time_major),
                                       prep.x), prep.lengths, time_major)
    out_bw, fin_bw = _run(cell_bw, rev, st_bw, fused, compile_step, cuda_graph)
    out_bw = nest.map_structure(lambda o: _reverse_in_layout(o, lengths, time_major), out_bw)
    return (out_fw, out_bw), (fin_fw, fin_bw)


def static_bidirectional_rnn(
    cell_fw: RNNCell,
    cell_bw: RNNCell,
    inputs: list[torch.Tensor],
    initial_state_fw: Any = None,
    initial_state_bw: Any = None,
    dtype: torch.dtype | None = None,
    sequence_length: Lengths = None,
    scope: Any = None,
) -> tuple[list[torch.Tensor], Any, Any]:
    """``tf.nn.static_bidirectional_rnn``: returns ``(outputs, state_fw, state_bw)`` with
    ``outputs`` a list of ``[batch, fw_size + bw_size]``."""
    (fw, bw), (sf, sb) = bidirectional_dynamic_rnn(
        cell_fw, cell_bw, _stacked_steps(inputs), sequence_length, initial_state_fw,
        initial_state_bw, dtype, time_major=True)
    return list(torch.cat([fw, bw], -1).unbind(0)), sf, sb


def stack_bidirectional_dynamic_rnn(
    cells_fw: list[RNNCell],
    cells_bw: list[RNNCell],
    inputs: torch.Tensor,
    initial_states_fw: list[Any] | None = None,
    initial_states_bw: list[Any] | None = None,
    dtype: torch.dtype | None = None,
    sequence_length: Lengths = None,
    parallel_iterations: int | None = None,
    time_major: bool = False,
    scope: Any = None,
    swap_memory: bool = False,
    *,
    fused: Fused = "auto",
    compile_step: bool = False,
    cuda_graph: bool = False,
) -> tuple[torch.Tensor, tuple[Any, ...], tuple[Any, ...]]:
    """Stacked bidirectional layers; each layer reads the previous layer's concatenated
    ``[fw, bw]`` outputs (``tf.contrib.rnn.stack_bidirectional_dynamic_rnn``).

    When every layer is a pair of single cells with one fused kernel, the whole stack runs
    as one multi-layer bidirectional kernel call on data packed once (``nn.LSTM(...,
    bidirectional=True)``'s computation); otherwise layer by layer.  ``fused``,
    ``compile_step`` and ``cuda_graph`` as in :func:`dynamic_rnn`.

    ``parallel_iterations``, ``swap_memory`` and ``scope`` are accepted for TF
    compatibility and unused.

    Returns ``(outputs [batch, time, fw + bw], states_fw, states_bw)``.
    """
    fused = _check_fused(fused)
    compile_step, cuda_graph = _check_loop_options(compile_step, cuda_graph)
    _checks.tf_loop_options(parallel_iterations, swap_memory)
    if not cells_fw or not cells_bw:
        raise ValueError("cells_fw and cells_bw must be non-empty lists")
    if len(cells_fw) != len(cells_bw):
        raise ValueError(
            f"cells_fw and cells_bw must have the same length, received {len(cells_fw)} and "
            f"{len(cells_bw)}"
        )
    for name, states in (("initial_states_fw", initial_states_fw),
                         ("initial_states_bw", initial_states_bw)):
        if states is not None and len(states) != len(cells_fw):
            raise ValueError(f"{name} must have {len(cells_fw)} entries, received {len(states)}")
    fast = _stack_bidirectional_fused(cells_fw, cells_bw, inputs, initial_states_fw,
                                      initial_states_bw, dtype, sequence_length, time_major,
                                      fused)
    if fast is not None:
        return fast
    x, states_fw, states_bw = inputs, [], []
    for i, (cf, cb) in enumerate(zip(cells_fw, cells_bw, strict=True)):
        (of, ob), (sf, sb) = bidirectional_dynamic_rnn(
            cf, cb, x, sequence_length,
            initial_states_fw[i] if initial_states_fw else None,
            initial_states_bw[i] if initial_states_bw else None,
            dtype, time_major=time_major, fused=fused, compile_step=compile_step,
            cuda_graph=cuda_graph)
        x = torch.cat([of, ob], -1)
        states_fw.append(sf)
        states_bw.append(sb)
    return x, tuple(states_fw), tuple(states_bw)


def _stack_bidirectional_fused(cells_fw, cells_bw, inputs, initial_states_fw, initial_states_bw,
                               dtype, sequence_length, time_major, fused):
    """The whole stack in fused calls on data packed once, or ``None`` if a layer can't."""
    if fused is False:
        return None
    prep = None
    layers, states = [], []
    depth = 0
    for i, (cf, cb) in enumerate(zip(cells_fw, cells_bw, strict=True)):
        init_f = initial_states_fw[i] if initial_states_fw else None
        init_b = initial_states_bw[i] if initial_states_bw else None
        if prep is None:
            prep, sf = _prepare(cf, inputs, sequence_length, init_f, dtype, time_major,
                                prefix=f"layer {i} fw ")
            _, sb = _prepare(cb, inputs, sequence_length, init_b, dtype, time_major,
                             prefix=f"layer {i} bw ")
            if not _fusable(prep.x):
                return None
            depth = prep.x.shape[-1]
        else:
            batch = prep.x.shape[1] if time_major else prep.x.shape[0]
            sf = _initial(cf, init_f, batch, prep.x, f"initial_states_fw[{i}]")
            sb = _initial(cb, init_b, batch, prep.x, f"initial_states_bw[{i}]")
        pair = _pair_forms(cf, cb, depth, prep, fused)
        if pair is None:
            return None
        layers.append(pair)
        states.append((sf, sb))
        depth = pair[0].output_size + pair[1].output_size
    for i, (ffw, fbw) in enumerate(layers):
        _checks.params_match_inputs(f"cells_fw[{i}]", ffw.weights, prep.x)
        _checks.params_match_inputs(f"cells_bw[{i}]", fbw.weights, prep.x)
    out, finals = run_layers(layers, prep.x, states, prep.plan(), not time_major)
    return out, tuple(f[0] for f in finals), tuple(f[1] for f in finals)


def _initial(cell, initial_state, batch, like, name):
    if initial_state is None:
        return None
    check_state(name, cell, initial_state, batch)
    _checks.state_matches_inputs(name, initial_state, like)
    return initial_state
