"""Drivers: dynamic_rnn, static_rnn, bidirectional_dynamic_rnn, stack_bidirectional_dynamic_rnn.

Semantics are TF 1.x's: with ``sequence_length``, entry ``b``'s outputs at
``t >= sequence_length[b]`` are zero and its final state is the state after step
``sequence_length[b] - 1`` (the initial state when the length is 0).  Padding values never
reach the cell's results (they are replaced by zeros before the cell sees them).

Execution, fastest first:

1. a ``MultiRNNCell`` runs layer by layer (exact for a stack: layer ``k`` at step ``t``
   only needs layer ``k-1`` at ``t`` and itself at ``t-1``);
2. a built-in cell that :func:`rnnkit.rnn.fused.fused_mode` accepts runs on PyTorch's fused
   kernel;
3. a cell implementing ``project_inputs``/``call_projected`` has its input-side matrix
   product computed for all steps at once, then loops over time;
4. any other cell is called step by step.  ``compile_step=True`` compiles the step with
   ``torch.compile``.
"""

from __future__ import annotations

from typing import Any

import torch

from rnnkit import _checks, nest
from rnnkit._checks import Lengths
from rnnkit.rnn.cell import RNNCell
from rnnkit.rnn.fused import fused_mode, run_fused
from rnnkit.rnn.wrappers import MultiRNNCell, reset_dropout_masks

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


def _where_valid(valid: torch.Tensor, new: Any, old: Any) -> Any:
    def pick(n, o):
        if not isinstance(n, torch.Tensor) or n.dim() == 0:
            return n  # scalars (a step counter) and opaque leaves (AlignmentHistory)
        return torch.where(valid.view(-1, *([1] * (n.dim() - 1))), n, o)

    return nest.map_structure(pick, new, old)


def _zero_outputs(valid: torch.Tensor, out: Any) -> Any:
    return nest.map_structure(
        lambda o: torch.where(valid.view(-1, *([1] * (o.dim() - 1))), o, 0.0), out
    )


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


def _loop(cell: RNNCell, x: torch.Tensor, state: Any, lengths, compile_step: bool):
    """Generic time loop over time-major ``x [time, batch, depth]``."""
    total, batch = x.shape[0], x.shape[1]
    steps = total if lengths is None else min(total, int(lengths.max()))
    if steps == 0:
        return _zeros_like_output(cell, total, batch, x), state
    cell.maybe_build(x[0])
    live = x[:steps]
    projected = cell.project_inputs(live)
    if projected is not None:
        seq = projected.unbind(0)
        step = _compiled_step(cell, True) if compile_step else cell.call_projected
    else:
        seq = live.unbind(0)
        step = _compiled_step(cell, False) if compile_step else cell.call
    masks = None
    if lengths is not None:
        t_idx = torch.arange(steps, device=lengths.device)
        masks = (t_idx[:, None] < lengths[None, :]).unbind(0)
    outputs = []
    for t in range(steps):
        out, new_state = step(seq[t], state)
        if masks is not None:
            out = _zero_outputs(masks[t], out)
            new_state = _where_valid(masks[t], new_state, state)
        outputs.append(out)
        state = new_state
    stacked = nest.map_structure(lambda *xs: torch.stack(xs), *outputs)
    if steps < total:
        pad = _zeros_like_output(cell, total - steps, batch, x)
        stacked = nest.map_structure(lambda a, b: torch.cat([a, b.to(a.dtype)]), stacked, pad)
    return stacked, state


def _run(cell: RNNCell, x: torch.Tensor, state: Any, lengths, fused: bool, compile_step: bool):
    if type(cell) is MultiRNNCell:
        finals = []
        for layer, layer_state in zip(cell.cells, cell.split_state(state), strict=True):
            x, final = _run(layer, x, layer_state, lengths, fused, compile_step)
            finals.append(final)
        return x, cell.join_state(finals)
    if x.shape[0] > 0:
        cell.maybe_build(x[0])
    depth = getattr(cell, "_input_size", None)
    if cell.built and depth is not None and x.shape[-1] != depth:
        raise ValueError(
            f"{type(cell).__name__} inputs must have shape [batch, {depth}], received "
            f"{(x.shape[1], x.shape[-1])} per step"
        )
    if fused and x.shape[0] > 0 and fused_mode(cell) is not None:
        return run_fused(cell, x, state, lengths)
    return _loop(cell, x, state, lengths, compile_step)


def _prepare(cell, inputs, sequence_length, initial_state, dtype, time_major, prefix=""):
    _require_cell(f"{prefix}cell", cell)
    _checks.tensor("inputs", inputs)
    _checks.rank("inputs", inputs, 3,
                 "[max_time, batch, depth]" if time_major else "[batch, max_time, depth]")
    _checks.floating("inputs", inputs)
    if dtype is not None and not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype, received {dtype!r}")
    if dtype is not None and initial_state is None and dtype != inputs.dtype:
        raise TypeError(f"dtype is {dtype} but inputs have dtype {inputs.dtype}")
    x = inputs if time_major else inputs.transpose(0, 1)
    total, batch = x.shape[0], x.shape[1]
    lengths = None
    if sequence_length is not None:
        lengths = _checks.as_lengths("sequence_length", sequence_length, batch, total, x.device)
        if bool((lengths == total).all()):
            lengths = None  # full length everywhere: nothing to mask
        else:
            valid = torch.arange(total, device=x.device)[:, None] < lengths[None, :]
            x = torch.where(valid[..., None], x, 0.0)
    if initial_state is None:
        state = cell.zero_state(batch, inputs.dtype, inputs.device)
    else:
        check_state(f"{prefix}initial_state", cell, initial_state, batch)
        state = initial_state
    return x, lengths, state


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
    fused: bool = True,
    compile_step: bool = False,
) -> tuple[Any, Any]:
    """Run ``cell`` over ``inputs`` (``tf.nn.dynamic_rnn``).

    Args:
        cell: an :class:`RNNCell`.
        inputs: ``[batch, max_time, depth]`` (``[max_time, batch, depth]`` if ``time_major``).
        sequence_length: ``[batch]`` ints in ``[0, max_time]`` (list or tensor), optional.
        initial_state: structure matching ``cell.state_size`` with ``[batch, ...]`` leaves;
            zeros when omitted.
        dtype: checked against ``inputs.dtype`` when given (TF needs it; here it is optional).
        parallel_iterations, swap_memory, scope: accepted for TF compatibility, unused.
        fused: allow PyTorch's fused kernels for built-in cells (results are identical).
        compile_step: compile the per-step function with ``torch.compile`` (raises
            ``torch._dynamo.config.recompile_limit`` to ``COMPILE_RECOMPILE_LIMIT``).

    Returns:
        ``(outputs, final_state)``: outputs ``[batch, max_time, output_size]`` (time-major if
        ``time_major``), zero past each length; ``final_state`` like ``cell.state_size``.
    """
    x, lengths, state = _prepare(cell, inputs, sequence_length, initial_state, dtype, time_major)
    reset_dropout_masks(cell)
    outputs, final = _run(cell, x, state, lengths, fused, compile_step)
    if not time_major:
        outputs = nest.map_structure(lambda o: o.transpose(0, 1), outputs)
    return outputs, final


def static_rnn(
    cell: RNNCell,
    inputs: list[torch.Tensor],
    initial_state: Any = None,
    dtype: torch.dtype | None = None,
    sequence_length: Lengths = None,
    scope: Any = None,
) -> tuple[list[Any], Any]:
    """``tf.nn.static_rnn``: ``inputs`` is a list of ``[batch, depth]`` tensors, one per step.

    Returns ``(outputs, final_state)`` with ``outputs`` a list of ``[batch, output_size]``.
    """
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise TypeError("inputs must be a non-empty list of [batch, depth] tensors")
    for i, x in enumerate(inputs):
        _checks.tensor(f"inputs[{i}]", x)
        _checks.rank(f"inputs[{i}]", x, 2, "[batch, depth]")
        if x.shape != inputs[0].shape:
            raise ValueError(
                f"inputs[{i}] has shape {tuple(x.shape)}, inputs[0] has {tuple(inputs[0].shape)}"
            )
    outputs, state = dynamic_rnn(cell, torch.stack(list(inputs)), sequence_length,
                                 initial_state, dtype, time_major=True)
    return list(outputs.unbind(0)), state


def reverse_sequence(x: torch.Tensor, lengths: torch.Tensor | None, time_axis: int) -> torch.Tensor:
    """Reverse each sequence within its own length along ``time_axis`` (batch on the other
    of axes 0/1), like ``tf.reverse_sequence``; positions past the length stay in place."""
    if lengths is None:
        return x.flip(time_axis)
    total = x.shape[time_axis]
    t = torch.arange(total, device=x.device)[:, None]
    lens = lengths.to(x.device)[None, :]
    idx = torch.where(t < lens, lens - 1 - t, t)  # [time, batch]
    if time_axis == 1:
        idx = idx.t()
    idx = idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(time_axis, idx)


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
    fused: bool = True,
) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """Forward and backward RNNs over ``inputs`` (``tf.nn.bidirectional_dynamic_rnn``).

    The backward cell reads each sequence reversed within its own length; its outputs are
    reversed back so that ``out_bw[:, t]`` aligns with ``inputs[:, t]``.

    Returns ``((out_fw, out_bw), (state_fw, state_bw))``, each output
    ``[batch, max_time, output_size]`` (time-major if ``time_major``).
    """
    _require_cell("cell_bw", cell_bw)
    out_fw, st_fw = dynamic_rnn(cell_fw, inputs, sequence_length, initial_state_fw, dtype,
                                time_major=time_major, fused=fused)
    time_axis = 0 if time_major else 1
    lengths = None
    if sequence_length is not None:
        lengths = _checks.as_lengths("sequence_length", sequence_length,
                                     inputs.shape[1 - time_axis], inputs.shape[time_axis],
                                     inputs.device)
    rev = reverse_sequence(inputs, lengths, time_axis)
    out_bw, st_bw = dynamic_rnn(cell_bw, rev, lengths, initial_state_bw, dtype,
                                time_major=time_major, fused=fused)
    out_bw = nest.map_structure(lambda o: reverse_sequence(o, lengths, time_axis), out_bw)
    return (out_fw, out_bw), (st_fw, st_bw)


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
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise TypeError("inputs must be a non-empty list of [batch, depth] tensors")
    (fw, bw), (sf, sb) = bidirectional_dynamic_rnn(
        cell_fw, cell_bw, torch.stack(list(inputs)), sequence_length, initial_state_fw,
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
) -> tuple[torch.Tensor, tuple[Any, ...], tuple[Any, ...]]:
    """Stacked bidirectional layers; each layer reads the previous layer's concatenated
    ``[fw, bw]`` outputs (``tf.contrib.rnn.stack_bidirectional_dynamic_rnn``).

    Returns ``(outputs [batch, time, fw + bw], states_fw, states_bw)``.
    """
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
    x, states_fw, states_bw = inputs, [], []
    for i, (cf, cb) in enumerate(zip(cells_fw, cells_bw, strict=True)):
        (of, ob), (sf, sb) = bidirectional_dynamic_rnn(
            cf, cb, x, sequence_length,
            initial_states_fw[i] if initial_states_fw else None,
            initial_states_bw[i] if initial_states_bw else None,
            dtype, time_major=time_major)
        x = torch.cat([of, ob], -1)
        states_fw.append(sf)
        states_bw.append(sb)
    return x, tuple(states_fw), tuple(states_bw)
