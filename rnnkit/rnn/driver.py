"""Drivers: dynamic_rnn, static_rnn, the bidirectional drivers and stacks, the state saver.

Semantics are TF 1.x's: with ``sequence_length``, entry ``b``'s outputs at
``t >= sequence_length[b]`` are zero and its final state is the state after step
``sequence_length[b] - 1`` (the initial state when the length is 0).  Padding values never
reach the cell's results (they are replaced by zeros before the cell sees them).

Each driver validates its arguments here, then makes one plan (:mod:`rnnkit.rnn.planner`:
which layers run on PyTorch's fused kernels, which on the step loop) and runs it.
``rnn.plan(...)`` returns the plan without running it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rnnkit import _checks, nest
from rnnkit._checks import Lengths
from rnnkit.rnn import planner
from rnnkit.rnn.cell import RNNCell, require_cell, start_sequence
from rnnkit.rnn.planner import Batch, Fused, Plan

__all__ = [
    "bidirectional_dynamic_rnn",
    "dynamic_rnn",
    "plan",
    "reverse_sequence",
    "stack_bidirectional_dynamic_rnn",
    "stack_bidirectional_rnn",
    "static_bidirectional_rnn",
    "static_rnn",
    "static_state_saving_rnn",
]


def _check_options(fused: Any, compile_step: Any, cuda_graph: Any, parallel_iterations: Any,
                   swap_memory: Any) -> tuple[Fused, bool, bool]:
    if isinstance(fused, np.bool_):
        fused = bool(fused)
    if not (fused is True or fused is False or fused == "auto"):
        raise ValueError(f'fused must be "auto", True or False, received {fused!r}')
    compile_step = _checks.as_flag("compile_step", compile_step)
    cuda_graph = _checks.as_flag("cuda_graph", cuda_graph)
    if cuda_graph and compile_step:
        raise ValueError("give cuda_graph=True or compile_step=True, not both")
    _checks.tf_loop_options(parallel_iterations, swap_memory)
    return (bool(fused) if fused != "auto" else fused), compile_step, cuda_graph


def _sequence_inputs(inputs: Any, time_major: bool) -> Any:
    """Driver inputs checked: a tensor ``[batch, max_time, ...]`` (``[max_time, batch,
    ...]`` if ``time_major``), an array of numbers, or a structure (tuple, list, dict,
    NamedTuple) of such tensors agreeing on batch, time and device, as TF's ``nest``.
    Integer inputs are for cells that take them (TF's built-in cells refuse them)."""
    layout = "[max_time, batch, depth]" if time_major else "[batch, max_time, depth]"
    leaves = nest.flatten(inputs) if nest.is_nested(inputs) else []
    if not any(isinstance(leaf, (torch.Tensor, np.ndarray)) for leaf in leaves):
        inputs = _checks.as_inputs("inputs", inputs)
        _checks.rank_at_least("inputs", inputs, 3, layout)
        return inputs
    checked = []
    for i, leaf in enumerate(leaves):
        name = f"inputs leaf {i}"
        leaf = _checks.as_inputs(name, leaf)
        _checks.rank_at_least(name, leaf, 3, layout)
        if checked and (leaf.shape[:2] != checked[0].shape[:2]
                        or leaf.device != checked[0].device):
            raise ValueError(
                f"inputs leaves must agree on {layout[:-8]}] and device: leaf 0 has shape "
                f"{tuple(checked[0].shape)} on {checked[0].device}, {name} has shape "
                f"{tuple(leaf.shape)} on {leaf.device}")
        checked.append(leaf)
    return nest.pack_sequence_as(inputs, checked)


def _batch(inputs: Any, sequence_length: Any, time_major: Any) -> Batch:
    time_major = _checks.as_flag("time_major", time_major)
    x = _sequence_inputs(inputs, time_major)
    first = nest.flatten(x)[0]
    total, rows = (first.shape[0], first.shape[1]) if time_major else \
        (first.shape[1], first.shape[0])
    lengths = None
    if sequence_length is not None:
        lengths = _checks.as_lengths("sequence_length", sequence_length, rows, total,
                                     torch.device("cpu"))
        if bool((lengths == total).all()):
            lengths = None  # full length everywhere: nothing to mask or pack
    return Batch(x, lengths, time_major)


def _initial(name: str, cell: RNNCell, state: Any, batch: Batch, dtype: Any) -> Any:
    """A user's initial state checked (numpy accepted), or ``None`` for zeros (``dtype``,
    when given, must then agree with float inputs)."""
    first = cell.dtype_reference(batch.x) if nest.is_nested(batch.x) else batch.first
    if state is None:
        if dtype is not None and first.is_floating_point() and dtype != first.dtype:
            raise _checks.DTypeError(f"dtype is {dtype} but inputs have dtype {first.dtype}")
        return None
    state = _checks.as_state(state, first)
    cell.assert_state(name, state, batch.batch)
    if first.is_floating_point():
        _checks.state_matches_inputs(name, state, first)
    return state


def _run_cell(cell: RNNCell, batch: Batch, state: Any, fused: Fused, compile_step: bool,
              cuda_graph: bool) -> tuple[Any, Any]:
    """One cell (a stack or a single cell) over ``batch``: its plan made and run."""
    leaves = planner.layers_of(cell)
    plan = planner.make_plan([(leaf,) for leaf in leaves], batch.x, fused, batch.time_major)
    states = [(s,) for s in planner.split_layers(cell, state)]
    out, finals = planner.run_plan(plan, batch, states, compile_step, cuda_graph)
    return out, planner.join_layers(cell, iter(f[0] for f in finals))


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
            a tensor or an array-like.  As in TF, a cell of your own may take steps of any
            rank (``[batch, max_time, height, width, channels]`` gives it ``[batch, height,
            width, channels]`` per step), integer steps, or a structure (tuple, list, dict,
            NamedTuple) of such tensors agreeing on batch and time, passed to it step by
            step in the same structure; those run on the step loop.
        sequence_length: ``[batch]`` ints in ``[0, max_time]`` (list, array or tensor),
            optional.
        initial_state: structure matching ``cell.state_size`` with ``[batch, ...]`` leaves
            (tensors or arrays); zeros when omitted.
        dtype: the zero state's dtype (TF needs it without ``initial_state``); checked
            against float inputs.
        parallel_iterations, swap_memory, scope: TF's while-loop settings, checked and
            unused.
        fused: ``"auto"`` (default) runs every layer whose fused form provably computes its
            step on PyTorch's fused kernels and the others on the step loop (results are
            the same); ``True`` requires the fused kernels and raises
            :class:`NotFusableError` (a ``ValueError``) naming why a layer cannot use them;
            ``False`` always runs the step loop.  ``rnn.plan(cell, inputs)`` shows the
            choice.
        compile_step: compile the per-step function of the step loop with ``torch.compile``
            (raises ``torch._dynamo.config.recompile_limit`` to ``COMPILE_RECOMPILE_LIMIT``).
        cuda_graph: on CUDA, capture the step loop of each layer that does not fuse (forward
            and backward) in a CUDA graph, cached per input shape and replayed
            (:mod:`rnnkit.rnn.graphs`); same results, far fewer kernel launches.  Where it
            cannot capture it warns and runs eagerly.

    Returns:
        ``(outputs, final_state)``: outputs ``[batch, max_time, output_size]`` (time-major if
        ``time_major``), zero past each length; ``final_state`` like ``cell.state_size``.
    """
    require_cell("cell", cell)
    fused, compile_step, cuda_graph = _check_options(fused, compile_step, cuda_graph,
                                                     parallel_iterations, swap_memory)
    dtype = _checks.as_dtype("dtype", dtype)
    batch = _batch(inputs, sequence_length, time_major)
    state = _initial("initial_state", cell, initial_state, batch, dtype)
    start_sequence(cell)
    return _run_cell(cell, batch, state, fused, compile_step, cuda_graph)


def plan(cells: RNNCell | tuple[RNNCell, RNNCell] | Sequence[tuple[RNNCell, RNNCell]],
         inputs: Any, *, fused: Fused = "auto", time_major: bool = False) -> Plan:
    """The plan a driver would run, without running it: ``print(rnn.plan(cell, inputs))``
    lists each layer, whether it runs on the fused kernels, and why not.

    ``cells``: the cell of :func:`dynamic_rnn`, the ``(cell_fw, cell_bw)`` pair of
    :func:`bidirectional_dynamic_rnn`, or the list of pairs of
    :func:`stack_bidirectional_dynamic_rnn`.  Cells not built yet are built for the inputs.
    """
    fused = _check_options(fused, False, False, None, False)[0]
    batch = _batch(inputs, None, time_major)
    if isinstance(cells, RNNCell):
        return planner.make_plan([(leaf,) for leaf in planner.layers_of(cells)], batch.x,
                                 fused, batch.time_major)
    if isinstance(cells, tuple) and len(cells) == 2 and all(isinstance(c, RNNCell)
                                                          for c in cells):
        return planner.make_plan([cells], batch.x, fused, batch.time_major,
                                 names=["the bidirectional pair"])
    pairs = [tuple(p) for p in cells]
    for i, p in enumerate(pairs):
        if len(p) != 2:
            raise ValueError(f"cells[{i}] must be a (cell_fw, cell_bw) pair")
        require_cell(f"cells[{i}][0]", p[0])
        require_cell(f"cells[{i}][1]", p[1])
    return planner.make_plan(pairs, batch.x, fused, batch.time_major)


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
    steps = []
    for i, x in enumerate(inputs):
        nest.assert_same_structure(inputs[0], x, what=f"inputs[{i}] (vs inputs[0])")
        leaves = []
        for leaf, ref in zip(nest.flatten(x), nest.flatten(inputs[0]), strict=True):
            leaf = _checks.as_inputs(f"inputs[{i}]", leaf)
            _checks.rank_at_least(f"inputs[{i}]", leaf, 2, "[batch, depth]")
            ref_shape = np.shape(ref) if not isinstance(ref, torch.Tensor) else ref.shape
            if tuple(leaf.shape) != tuple(ref_shape):
                raise ValueError(f"inputs[{i}] has shape {tuple(leaf.shape)}, inputs[0] has "
                                 f"{tuple(ref_shape)}")
            leaves.append(leaf)
        steps.append(nest.pack_sequence_as(x, leaves))
    return nest.map_structure(lambda *xs: torch.stack(xs), *steps)


def _unstacked_steps(outputs: Any) -> list[Any]:
    steps = nest.flatten(outputs)[0].shape[0]
    return [nest.map_structure(lambda o, t=t: o[t], outputs) for t in range(steps)]


def static_state_saving_rnn(cell: RNNCell, inputs: list[torch.Tensor], state_saver: Any,
                            state_name: str | tuple, sequence_length: Lengths = None,
                            scope: Any = None) -> tuple[list[Any], Any]:
    """``tf.nn.static_state_saving_rnn``: :func:`static_rnn` whose initial state is
    ``state_saver.state(name)`` and whose final state is handed to
    ``state_saver.save_state(name, value)`` (a truncated-BPTT sequence carried over
    batches).

    ``state_name`` is one name for a cell whose state is one tensor, else a structure of
    names matching ``cell.state_size`` (a name per tensor of the state).  Returns
    ``(outputs, final_state)`` as :func:`static_rnn`; the state is saved before they are
    returned.
    """
    require_cell("cell", cell)
    for method in ("state", "save_state"):
        if not callable(getattr(state_saver, method, None)):
            raise TypeError(f"state_saver must have a {method}() method, received "
                            f"{type(state_saver).__name__}")
    size = cell.state_size
    if nest.is_nested(size):
        if not nest.is_nested(state_name):
            raise ValueError(f"state_name must be a structure of names matching "
                             f"cell.state_size {size!r} (the state has several tensors), "
                             f"received {state_name!r}")
        nest.assert_same_structure(size, state_name, what="state_name (vs cell.state_size)")
    elif not isinstance(state_name, str):
        raise TypeError(f"state_name must be a str for a cell with one state tensor, "
                        f"received {state_name!r}")
    names = nest.flatten(state_name)
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"state_name must hold strings, received {state_name!r}")
    initial = nest.pack_sequence_as(size, [state_saver.state(n) for n in names]) \
        if nest.is_nested(size) else state_saver.state(state_name)
    outputs, state = static_rnn(cell, inputs, initial_state=initial,
                                sequence_length=sequence_length)
    for name, value in zip(names, nest.flatten(state), strict=True):
        state_saver.save_state(name, value)
    return outputs, state


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
        ``input``'s shape and dtype: for batch entry ``b``, the first ``seq_lengths[b]``
        steps in reverse order, the steps past the length unchanged.
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
    return planner.reverse_within_lengths(moved, lengths).movedim((0, 1),
                                                                  (seq_axis, batch_axis))


def _one_of(name: str, value: Any, old_name: str, old_value: Any) -> Any:
    if value is not None and old_value is not None:
        raise ValueError(f"give {name} or {old_name}, not both")
    return value if value is not None else old_value


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
    with the same fused kernel run as one bidirectional kernel call; a stack runs each
    direction through the whole stack (TF's semantics).  ``fused``, ``compile_step`` and
    ``cuda_graph`` as in :func:`dynamic_rnn`.

    Returns ``((out_fw, out_bw), (state_fw, state_bw))``, each output
    ``[batch, max_time, output_size]`` (time-major if ``time_major``).
    """
    require_cell("cell_fw", cell_fw)
    require_cell("cell_bw", cell_bw)
    fused, compile_step, cuda_graph = _check_options(fused, compile_step, cuda_graph,
                                                     parallel_iterations, swap_memory)
    dtype = _checks.as_dtype("dtype", dtype)
    batch = _batch(inputs, sequence_length, time_major)
    st_fw = _initial("initial_state_fw", cell_fw, initial_state_fw, batch, dtype)
    st_bw = _initial("initial_state_bw", cell_bw, initial_state_bw, batch, dtype)
    start_sequence(cell_fw)
    start_sequence(cell_bw)
    return _run_pair(cell_fw, cell_bw, batch, (st_fw, st_bw), fused, compile_step, cuda_graph)


def _run_pair(cell_fw, cell_bw, batch, states, fused, compile_step, cuda_graph):
    layer = (cell_fw, cell_bw)
    the_plan = planner.make_plan([layer], batch.x, fused, batch.time_major,
                                 names=["the bidirectional pair"])
    if the_plan.stages[0].forms is None:
        return planner.run_directions(the_plan.directions[0], layer, batch, states,
                                      compile_step, cuda_graph)
    out, finals = planner.run_plan(the_plan, batch, [states], compile_step, cuda_graph)
    fw_size, bw_size = (f.output_size for f in the_plan.stages[0].forms[0])
    out_fw, out_bw = out.split([fw_size, bw_size], -1)
    return (out_fw, out_bw), finals[0]


def static_bidirectional_rnn(
    cell_fw: RNNCell,
    cell_bw: RNNCell,
    inputs: list[torch.Tensor],
    initial_state_fw: Any = None,
    initial_state_bw: Any = None,
    dtype: torch.dtype | None = None,
    sequence_length: Lengths = None,
    scope: Any = None,
) -> tuple[list[Any], Any, Any]:
    """``tf.nn.static_bidirectional_rnn``: returns ``(outputs, state_fw, state_bw)`` with
    ``outputs`` a list (one per step) of the forward and backward outputs joined on axis 1
    (``[batch, fw_size + bw_size]``; each tensor of a structured output joined alike)."""
    (fw, bw), (sf, sb) = bidirectional_dynamic_rnn(
        cell_fw, cell_bw, _stacked_steps(inputs), sequence_length, initial_state_fw,
        initial_state_bw, dtype, time_major=True)
    joined = nest.map_structure(lambda a, b: torch.cat([a, b], 2), fw, bw)  # axis 1 per step
    return _unstacked_steps(joined), sf, sb


def _check_stack(cells_fw: Any, cells_bw: Any, initial_states_fw: Any,
                 initial_states_bw: Any) -> list[tuple[RNNCell, RNNCell]]:
    if not isinstance(cells_fw, (list, tuple)) or not cells_fw:
        raise ValueError("cells_fw must be a non-empty list of cells")
    if not isinstance(cells_bw, (list, tuple)) or not cells_bw:
        raise ValueError("cells_bw must be a non-empty list of cells")
    if len(cells_fw) != len(cells_bw):
        raise ValueError(
            f"cells_fw and cells_bw must have the same length, received {len(cells_fw)} and "
            f"{len(cells_bw)}")
    for name, states in (("initial_states_fw", initial_states_fw),
                         ("initial_states_bw", initial_states_bw)):
        if states is not None and (not isinstance(states, (list, tuple))
                                   or len(states) != len(cells_fw)):
            raise ValueError(f"{name} must be a list of {len(cells_fw)} states, received "
                             f"{type(states).__name__}"
                             + (f" of {len(states)}" if isinstance(states, (list, tuple))
                                else ""))
    for i, (cf, cb) in enumerate(zip(cells_fw, cells_bw, strict=True)):
        require_cell(f"cells_fw[{i}]", cf)
        require_cell(f"cells_bw[{i}]", cb)
    return list(zip(cells_fw, cells_bw, strict=True))


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
    """Stacked bidirectional layers; each layer reads the previous layer's forward and
    backward outputs joined on axis 2 (``tf.contrib.rnn.stack_bidirectional_dynamic_rnn``).

    Consecutive layers that are pairs of single cells with one fused kernel run as one
    multi-layer bidirectional kernel call on data packed once (``nn.LSTM(...,
    bidirectional=True)``'s computation); the others layer by layer.  ``fused``,
    ``compile_step`` and ``cuda_graph`` as in :func:`dynamic_rnn`.

    Returns ``(outputs [batch, time, fw + bw], states_fw, states_bw)``.
    """
    fused, compile_step, cuda_graph = _check_options(fused, compile_step, cuda_graph,
                                                     parallel_iterations, swap_memory)
    pairs = _check_stack(cells_fw, cells_bw, initial_states_fw, initial_states_bw)
    dtype = _checks.as_dtype("dtype", dtype)
    batch = _batch(inputs, sequence_length, time_major)
    states = []
    for i, (cf, cb) in enumerate(pairs):
        states.append((_initial(f"initial_states_fw[{i}]", cf, initial_states_fw[i]
                                if initial_states_fw else None, batch, dtype),
                       _initial(f"initial_states_bw[{i}]", cb, initial_states_bw[i]
                                if initial_states_bw else None, batch, dtype)))
        start_sequence(cf)
        start_sequence(cb)
    names = [f"layer {i} ({type(cf).__name__})" for i, (cf, _) in enumerate(pairs)]
    the_plan = planner.make_plan(pairs, batch.x, fused, batch.time_major, names=names)
    out, finals = planner.run_plan(the_plan, batch, states, compile_step, cuda_graph)
    return out, tuple(f[0] for f in finals), tuple(f[1] for f in finals)


def stack_bidirectional_rnn(
    cells_fw: list[RNNCell],
    cells_bw: list[RNNCell],
    inputs: list[torch.Tensor],
    initial_states_fw: list[Any] | None = None,
    initial_states_bw: list[Any] | None = None,
    dtype: torch.dtype | None = None,
    sequence_length: Lengths = None,
    scope: Any = None,
) -> tuple[list[torch.Tensor], tuple[Any, ...], tuple[Any, ...]]:
    """``tf.contrib.rnn.stack_bidirectional_rnn``: :func:`stack_bidirectional_dynamic_rnn`
    over a list of ``[batch, depth]`` steps.  Returns ``(outputs, states_fw, states_bw)``,
    ``outputs`` a list of ``[batch, fw + bw]``."""
    out, sf, sb = stack_bidirectional_dynamic_rnn(
        cells_fw, cells_bw, _stacked_steps(inputs), initial_states_fw, initial_states_bw,
        dtype, sequence_length, time_major=True)
    return _unstacked_steps(out), sf, sb
