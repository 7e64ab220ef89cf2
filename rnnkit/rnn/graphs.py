"""CUDA graphs for cells on the step loop: ``dynamic_rnn(..., cuda_graph=True)``.

A user-written cell runs one small kernel after another; on a GPU the launches, not the
arithmetic, set the pace.  Here the whole step loop of one layer, forward and backward, is
captured once per input shape with :func:`torch.cuda.make_graphed_callables` and replayed
afterwards: same outputs and gradients as eager, a fraction of the launches.

A captured loop is keyed by the input shape, dtype, the number of steps actually run
(``max(sequence_length)``), which inputs need gradients and whether autograd records; the
lengths themselves are a graph input, so batches of the same longest length share a graph.
Each graph pins its static input and output buffers and its memory pool (about the
activations of one forward+backward of that shape); each cell keeps the
:data:`MAX_GRAPHS_PER_CELL` most recently used graphs and releases older ones.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from rnnkit import nest

__all__ = ["MAX_GRAPHS_PER_CELL", "graphed_loop"]

#: Captured graphs kept per cell (least recently used released first).
MAX_GRAPHS_PER_CELL = 8


class _Loop(nn.Module):
    """The step loop of one cell as a module over tensors only (what capture needs)."""

    def __init__(self, cell: nn.Module, run: Callable, structure: Any, steps: int,
                 ragged: bool):
        super().__init__()
        self.cell = cell
        self._run = run
        self._structure = structure
        self._steps = steps
        self._ragged = ragged

    def forward(self, x, *rest):
        lengths = rest[0] if self._ragged else None
        leaves = rest[1:] if self._ragged else rest
        state = nest.pack_sequence_as(self._structure, list(leaves))
        out, final = self._run(x, state, lengths, self._steps)
        return (*nest.flatten(out), *nest.flatten(final))


def why_not_graphable(cell: nn.Module, x: torch.Tensor, state: Any) -> str | None:
    """A reason the loop cannot be captured here, or ``None``."""
    if not x.is_cuda:
        return "the inputs are not on a CUDA device"
    if not torch.cuda.is_available():
        return "CUDA is not available"
    leaves = nest.flatten(state)
    if not all(isinstance(t, torch.Tensor) and t.is_cuda for t in leaves):
        return "the state holds something other than CUDA tensors"
    if any(True for _ in cell.buffers() if _.requires_grad):
        return "the cell has buffers that require gradients"
    return None


def _capture_forward(loop: nn.Module, sample: tuple) -> Callable:
    """Forward-only capture (autograd off): replay copies the arguments in, clones out."""
    static_in = tuple(t.clone() for t in sample)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):  # warm up: allocator, handles, lazy initialisation
            loop(*static_in)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = loop(*static_in)

    def replay(*args):
        for buf, a in zip(static_in, args, strict=True):
            buf.copy_(a)
        graph.replay()
        return tuple(o.clone() for o in static_out)

    return replay


def graphed_loop(cell: nn.Module, x: torch.Tensor, state: Any, lengths: torch.Tensor | None,
                 steps: int, run: Callable) -> tuple[Any, Any] | None:
    """Run ``run(x, state, lengths, steps) -> (outputs, final_state)`` through a cached CUDA
    graph of it; ``None`` (after a warning naming why) when it cannot be captured.

    ``x`` is time-major ``[time, batch, depth]``; outputs as ``run`` returns them (cloned out
    of the graph's static buffers, so they stay valid after the next replay).
    """
    reason = why_not_graphable(cell, x, state)
    if reason is not None:
        warnings.warn(f"dynamic_rnn(cuda_graph=True): running eagerly, {reason}",
                      stacklevel=4)
        return None
    leaves = nest.flatten(state)
    grad = torch.is_grad_enabled()
    key = (tuple(x.shape), x.dtype, x.device, steps, lengths is not None, grad,
           x.requires_grad, tuple((tuple(t.shape), t.dtype, t.requires_grad) for t in leaves))
    cache: OrderedDict = cell.__dict__.setdefault("_rnnkit_cuda_graphs", OrderedDict())
    entry = cache.get(key)
    if entry is False:
        return None
    if entry is None:
        structure = nest.map_structure(lambda _: 0, state)
        loop = _Loop(cell, run, structure, steps, lengths is not None)
        sample = (x.detach().clone().requires_grad_(x.requires_grad),
                  *((lengths.clone(),) if lengths is not None else ()),
                  *(t.detach().clone().requires_grad_(t.requires_grad) for t in leaves))
        try:
            if grad:
                entry = torch.cuda.make_graphed_callables(loop, sample)
            else:
                entry = _capture_forward(loop, sample)
        except Exception as e:  # capture refuses host syncs, CPU tensors, ...
            warnings.warn(f"dynamic_rnn(cuda_graph=True): running eagerly, the step loop "
                          f"cannot be captured ({type(e).__name__}: {e})", stacklevel=4)
            cache[key] = False
            return None
        cache[key] = entry
        while len(cache) > MAX_GRAPHS_PER_CELL:
            cache.popitem(last=False)
    cache.move_to_end(key)
    flat = entry(x, *((lengths,) if lengths is not None else ()), *leaves)
    if grad:
        flat = tuple(o.clone() for o in flat)  # out of the static buffers
    n_out = len(nest.flatten(cell.output_size))
    outputs = nest.pack_sequence_as(cell.output_size, list(flat[:n_out]))
    final = nest.pack_sequence_as(state, list(flat[n_out:]))
    return outputs, final
