"""The step loop: one cell over time-major inputs, one step at a time.

Exact TF semantics for ragged batches: entry ``b``'s outputs at ``t >= lengths[b]`` are
zero and its state stops at its last valid step (:func:`rnnkit.masking.select_rows`, one
primitive for every driver and decoder).  Only ``max(lengths)`` steps run.

The cell's step runs as the cell defines it (:meth:`RNNCell.step`: a TF ``__call__``
override too).  Where the cell's :meth:`~RNNCell.fast_path` allows, its input projection is
computed for all steps at once (``project_inputs``) and the loop runs ``call_projected``.
``compile_step`` compiles the step with ``torch.compile``.
"""

from __future__ import annotations

from typing import Any

import torch

from rnnkit import nest
from rnnkit.masking import select_rows, sequence_mask
from rnnkit.rnn.cell import RNNCell, zeros_for

__all__ = ["COMPILE_RECOMPILE_LIMIT", "DEFAULT_MAXIMUM_ITERATIONS", "step_loop"]

#: The most steps a loop whose length the user's code decides runs without an explicit
#: bound (``raw_rnn``'s ``loop_fn``, ``dynamic_decode`` without ``maximum_iterations``):
#: past it they raise instead of running forever.
DEFAULT_MAXIMUM_ITERATIONS = 1000

#: ``compile_step`` needs one compiled graph per cell instance, grad mode and shape, and
#: dynamo counts them per code object (all instances of a class share ``step``); past its
#: default limit of 8 it silently runs the step eagerly.  The loop raises the limit to this.
COMPILE_RECOMPILE_LIMIT = 64


def _compiled(cell: RNNCell, projected: bool):
    key = "_rnnkit_compiled_projected" if projected else "_rnnkit_compiled_step"
    fn = cell.__dict__.get(key)
    if fn is None:
        import torch._dynamo

        config = torch._dynamo.config
        if getattr(config, "recompile_limit", COMPILE_RECOMPILE_LIMIT) < COMPILE_RECOMPILE_LIMIT:
            config.recompile_limit = COMPILE_RECOMPILE_LIMIT
        fn = torch.compile(cell.call_projected if projected else cell.step, dynamic=False)
        object.__setattr__(cell, key, fn)
    return fn


def step_loop(cell: RNNCell, x: Any, state: Any, lengths: torch.Tensor | None,
              compile_step: bool, steps: int) -> tuple[Any, Any]:
    """Run ``cell`` over time-major ``x [time, batch, ...]`` (or a structure of such
    tensors) from ``state``.

    Args:
        lengths: ``[batch]`` int64 on ``x``'s device, or ``None`` (every entry full length).
        steps: ``max(lengths)`` (known on the host): the steps actually run.

    Returns:
        ``(outputs [time, batch, ...] like cell.output_size, final_state)``.
    """
    first = nest.flatten(x)[0]
    total, batch = first.shape[0], first.shape[1]
    dtype = first.dtype if first.is_floating_point() else torch.get_default_dtype()
    if steps == 0:
        return zeros_for(cell.output_size, (total, batch), dtype, first.device), state
    nested = not isinstance(x, torch.Tensor)
    cell.maybe_build(nest.map_structure(lambda a: a[0], x))
    live = nest.map_structure(lambda a: a[:steps], x)
    hoist = not nested and x.dim() == 3 and x.is_floating_point() and cell.hoists_inputs()
    projected = cell.project_inputs(live) if hoist else None
    if projected is not None:
        seq = projected.unbind(0)
        step = _compiled(cell, True) if compile_step else cell.call_projected
    else:
        seq = ([nest.map_structure(lambda a, t=t: a[t], live) for t in range(steps)] if nested
               else live.unbind(0))
        step = _compiled(cell, False) if compile_step else cell.step
    masks = None if lengths is None else sequence_mask(lengths, steps, time_major=True).unbind(0)
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
        stacked = nest.map_structure(
            lambda a: torch.cat([a, a.new_zeros((total - steps, *a.shape[1:]))]), stacked)
    return stacked, state
