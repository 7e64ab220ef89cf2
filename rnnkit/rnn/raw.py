"""``raw_rnn``: TF 1.x's loop-function driver (``tf.nn.raw_rnn``).

``dynamic_rnn`` reads its inputs from a tensor; ``raw_rnn`` asks a ``loop_fn`` for each next
input, so the input at step ``t + 1`` can depend on the output at step ``t`` (a decoder
feeding back its own predictions, TF 1.x's way before ``tf.contrib.seq2seq``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from rnnkit import _checks, nest
from rnnkit.masking import select_rows
from rnnkit.rnn.cell import RNNCell, require_cell, start_sequence, zeros_for
from rnnkit.rnn.loop import DEFAULT_MAXIMUM_ITERATIONS
from rnnkit.tensor_array import TensorArray

__all__ = ["raw_rnn"]


def raw_rnn(cell: RNNCell, loop_fn: Callable, parallel_iterations: int | None = None,
            swap_memory: bool = False, scope: Any = None, *,
            maximum_iterations: int | None = None) -> tuple[Any, Any, Any]:
    """Run ``cell`` with inputs that ``loop_fn`` chooses step by step (``tf.nn.raw_rnn``).

    ``loop_fn(time, cell_output, cell_state, loop_state) -> (finished, next_input,
    next_cell_state, emit_output, next_loop_state)``:

    * at ``time == 0`` it is called with ``cell_output``, ``cell_state`` and ``loop_state``
      ``None`` and returns the initial state as ``next_cell_state``, the first input, and
      as ``emit_output`` the structure of what will be emitted (``None``: the cell's
      outputs; or tensors whose shapes, without the batch, and dtypes size the emits);
    * afterwards ``time`` is the step just run plus one, ``cell_output`` and ``cell_state``
      its results; it returns what to emit for that step (usually ``cell_output``);
      ``next_loop_state`` ``None`` keeps the previous loop state.

    ``finished`` is a ``[batch]`` bool tensor.  An entry once finished emits zeros and
    keeps its state; the loop ends when every entry is finished.

    Args:
        cell: an :class:`RNNCell`.
        loop_fn: the function above.
        parallel_iterations, swap_memory, scope: accepted for TF compatibility, unused.
        maximum_iterations: the most steps to run (rnnkit's; TF's loop had no bound): a
            ``loop_fn`` that has not finished every entry by then raises a ``RuntimeError``
            naming the bound.  Default :data:`DEFAULT_MAXIMUM_ITERATIONS` (1000), as
            ``dynamic_decode``'s.

    Returns:
        ``(emit_ta, final_state, final_loop_state)``: ``emit_ta`` a :class:`TensorArray`
        (or a structure of them, like the emit structure) whose ``stack()`` is
        ``[time, batch, ...]``; ``final_loop_state`` ``None`` when ``loop_fn`` kept none.
    """
    require_cell("cell", cell)
    loop_fn = _checks.as_function("loop_fn", loop_fn, optional=False)
    _checks.tf_loop_options(parallel_iterations, swap_memory)
    bound = (DEFAULT_MAXIMUM_ITERATIONS if maximum_iterations is None
             else _checks.as_count("maximum_iterations", maximum_iterations, minimum=0))
    finished, next_input, state, emit_structure, loop_state = _returned(
        loop_fn(0, None, None, None), 0)
    if state is None:
        raise ValueError("loop_fn(0, None, None, None) must return the initial cell state as "
                         "its third value")
    first = nest.flatten(next_input)[0]
    batch = first.shape[0]
    finished = _checks.as_flags("loop_fn's finished", finished, (batch,), first.device)
    cell.assert_state("loop_fn's initial cell state", state, batch)
    kept_loop_state = loop_state is not None
    zero_emit = _zero_emit(cell, emit_structure, batch, state)
    emits: list[Any] = []
    start_sequence(cell)
    time = 0
    while not bool(finished.all()):
        if time >= bound:
            raise RuntimeError(f"raw_rnn: loop_fn did not finish every entry within "
                             f"maximum_iterations={bound} steps (pass maximum_iterations= for "
                             "a longer loop)")
        output, cell_state = cell(next_input, state)
        (next_finished, new_input, next_state, emit, next_loop_state) = _returned(
            loop_fn(time + 1, output, cell_state, loop_state), time + 1)
        nest.assert_same_structure(next_input, new_input, what="loop_fn's next_input")
        nest.assert_same_structure(zero_emit, emit, what="loop_fn's emit_output")
        _check_emit(emit, zero_emit, time + 1)
        cell.assert_state("loop_fn's next_cell_state", next_state, batch)
        live = ~finished
        emits.append(select_rows(live, emit, zero_emit))
        state = select_rows(live, next_state, state)
        if next_loop_state is not None:
            loop_state = next_loop_state
        finished = finished | _checks.as_flags("loop_fn's finished", next_finished, (batch,),
                                               first.device)
        next_input = new_input
        time += 1
    leaves = nest.flatten(zero_emit)
    columns = [TensorArray.of([nest.flatten(e)[i] for e in emits], element=zero)
               for i, zero in enumerate(leaves)]
    emit_ta = nest.pack_sequence_as(zero_emit, columns)
    return emit_ta, state, loop_state if kept_loop_state else None


def _returned(value: Any, time: int) -> tuple:
    if not isinstance(value, tuple) or len(value) != 5:
        raise TypeError(f"loop_fn(time={time}, ...) must return (finished, next_input, "
                        f"next_cell_state, emit_output, next_loop_state), received "
                        f"{type(value).__name__}"
                        + (f" of length {len(value)}" if isinstance(value, tuple) else ""))
    return value


def _check_emit(emit: Any, zero_emit: Any, time: int) -> None:
    """Each emitted tensor has the shape the emit structure declared (``[batch, ...]``):
    nothing is broadcast into it."""
    for i, (e, z) in enumerate(zip(nest.flatten(emit), nest.flatten(zero_emit), strict=True)):
        if not isinstance(e, torch.Tensor) or tuple(e.shape) != tuple(z.shape):
            got = tuple(e.shape) if isinstance(e, torch.Tensor) else type(e).__name__
            raise ValueError(
                f"loop_fn(time={time}, ...)'s emit_output leaf {i} has shape {got}, but the "
                f"emit structure given at time 0 makes it {tuple(z.shape)} [batch, ...]: give "
                "the emit structure's tensors without the batch dimension (TF's rule)")


def _zero_emit(cell: RNNCell, emit_structure: Any, batch: int, state: Any) -> Any:
    """Zeros ``[batch, ...]`` shaped like what is emitted: the cell's outputs, or the
    tensors (per-entry shapes and dtypes) ``loop_fn`` gave at time 0."""
    like = nest.flatten(state)[0]
    if emit_structure is None:
        return zeros_for(cell.output_size, (batch,), like.dtype, like.device)

    def from_tensor(t):
        t = _checks.tensor("loop_fn's emit structure", t)
        return torch.zeros((batch, *t.shape), dtype=t.dtype, device=like.device)

    return nest.map_structure(from_tensor, emit_structure)
