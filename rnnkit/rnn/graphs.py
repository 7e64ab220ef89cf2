"""CUDA graphs for cells on the step loop: ``dynamic_rnn(..., cuda_graph=True)``.

A user-written cell runs one small kernel after another; on a GPU the launches, not the
arithmetic, set the pace.  Here the whole step loop of one layer, forward and backward, is
captured once per input shape with :func:`torch.cuda.make_graphed_callables` and replayed
afterwards: same outputs and gradients as eager, a fraction of the launches.

What a captured loop reads (:mod:`rnnkit.capture`):

* its inputs, the lengths and the initial state, copied into the graph's buffers per call;
* the cell's parameters and buffers, in place (an optimizer step is seen by the next replay;
  moving the cell, which gives them new storage, makes the next call capture again);
* per-call tensors that modules inside the cell declare in ``graph_bindings()`` (an
  attention mechanism's memory): they become inputs of the graph too, so each call attends
  its own memory, and gradients reach it;
* nothing else: the first capture of a configuration is preceded by a watched forward run,
  and a loop that reads any other tensor, reads a value on the host or draws from its own
  generator runs eagerly after a warning naming the reason.  That run also makes the
  parameters a cell sizes at its first call, so a capture never records an initialisation.

Each run of the loop starts a new sequence (:func:`rnnkit.rnn.start_sequence`), so
variational dropout masks and attention keys are made inside the graph, anew at each replay.
An alignment history in the state (``AttentionWrapper(alignment_history=True)``) leaves the
graph stacked, ``[steps, batch, memory_time]``, and is rebuilt from it; a history that
already holds steps (a state carried over from an earlier call) runs eagerly.

A captured loop is keyed by the input shape, dtype, the number of steps actually run
(``max(sequence_length)``), which inputs need gradients, whether autograd records, the
autocast mode, the train/eval mode of every module in the cell and the shapes of the bound
tensors; the lengths themselves are a graph input, so batches of the same longest length
share a graph.  Each graph pins its static input and output buffers and its memory pool
(about the activations of one forward+backward of that shape); each cell keeps the
:data:`rnnkit.graph_engine.MAX_GRAPHS_PER_CELL` most recently used graphs and releases older ones.

A graph's backward reads the activations its forward left in that memory, so a graph is
not replayed while its latest call still waits for its backward: chunks of one sequence
run before a single backward, or one encoder run over several inputs, get copies of the
graph (:data:`MAX_COPIES_PER_SHAPE` at most; a call beyond them runs eagerly after a
warning).  A call counts as done once its backward has run, so a graph that was
backpropagated with ``retain_graph=True`` must not be backpropagated again after the
next call of the same shape.

This module is a client of :mod:`rnnkit.graph_engine` (backends, the per-cell cache, the
bound slots, CPU emulation for the tests with ``graph_engine.EMULATE_ON_CPU``: the watched
run and the cache are the same, a forward-only graph is emulated by recording ops and
replaying them on the same tensors, a forward+backward graph with the static memory of
:func:`torch.cuda.make_graphed_callables`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

from rnnkit import graph_engine, nest
from rnnkit.capture import (
    NotCapturable,
    Watch,
    describe,
    in_place_reads,
    module_bindings,
    module_storages,
    moved,
    storage,
)

__all__ = ["MAX_COPIES_PER_SHAPE", "graphed_loop"]

#: Copies of one graph for calls waiting for their backward at the same time (chunks of a
#: sequence, one encoder over several inputs); a call beyond them runs eagerly.
MAX_COPIES_PER_SHAPE = 4

_CALL = "dynamic_rnn(cuda_graph=True)"


def _is_history(leaf: Any) -> bool:
    """A per-step history leaf of a state (``AlignmentHistory``): not a tensor, it grows by
    one entry per step."""
    return not isinstance(leaf, torch.Tensor) and callable(getattr(leaf, "map", None))


def _history_from(empty: Any, stacked: torch.Tensor) -> Any:
    """``empty`` (a history leaf without entries) with the rows of ``stacked`` written."""
    history = empty
    for i, row in enumerate(stacked.unbind(0)):
        history = history.write(i, row)
    return history


class _Loop(nn.Module):
    """The step loop of one cell as a module over tensors only (what capture needs).

    Arguments: ``x``, the lengths (ragged only), the state's tensor leaves, then the bound
    tensors (the non-``None`` values of ``slots``, set on their owners for the run).  Results:
    the outputs' leaves and the final state's, a history leaf stacked into one tensor
    ``[steps, ...]``.  Its parameters are the cell's (what
    :func:`torch.cuda.make_graphed_callables` differentiates); the cell itself is held
    weakly, so the graphs cached on the cell do not keep it alive."""

    def __init__(self, cell: nn.Module, run: Callable, state: Any, steps: int,
                 ragged: bool, slots: tuple, present: list[bool]):
        super().__init__()
        self._cell = weakref.ref(cell)
        self.weights = nn.ParameterList()  # the cell's, set once the watched run sized them
        self._run = run
        # empty histories stay as they are; tensors are replaced by the graph's inputs
        self._structure = nest.map_structure(lambda x: x if _is_history(x) else 0, state)
        self._n_state = sum(not _is_history(x) for x in nest.flatten(state))
        self._steps = steps
        self._ragged = ragged
        self._slots = slots
        self._present = present

    @property
    def cell(self) -> nn.Module:
        cell = self._cell()
        if cell is None:  # pragma: no cover - the cache lives on the cell
            raise RuntimeError("the cell of this captured loop was freed")
        return cell

    def forward(self, x, *rest):
        from rnnkit.rnn.cell import start_sequence

        rest = list(rest)
        lengths = rest.pop(0) if self._ragged else None
        tensors = iter(rest[: self._n_state])
        state = nest.map_structure(lambda x: x if _is_history(x) else next(tensors),
                                   self._structure)
        bound = iter(rest[self._n_state:])
        values = [next(bound) if present else None for present in self._present]
        with graph_engine.bound(self._slots, values):
            cell = self.cell
            start_sequence(cell)  # masks and attention keys made inside the graph
            out, final = self._run(cell, x, state, lengths, self._steps)
        return (*nest.flatten(out),
                *(x.stack() if _is_history(x) else x for x in nest.flatten(final)))


class _Pending:
    """Whether a graph's latest call still waits for its backward (which reads the
    activations that the graph's next call would overwrite)."""

    def __init__(self) -> None:
        self._node: weakref.ref | None = None

    def watch(self, outputs: tuple) -> None:
        """After a call with autograd: wait for the backward of ``outputs``' node."""
        node = next((o.grad_fn for o in outputs if o.grad_fn is not None), None)
        if node is not None:
            self._node = weakref.ref(node)
            node.register_hook(lambda *_: self._done())

    def _done(self) -> None:
        self._node = None

    @property
    def busy(self) -> bool:
        """The node is alive (its outputs are used) and its backward has not run."""
        return self._node is not None and self._node() is not None


class _Graph(NamedTuple):
    """A captured loop and the parameters and buffers it reads in place (with their
    addresses at capture: a moved one means the graph reads stale memory)."""

    run: Callable
    reads: list[tuple[torch.Tensor, int]]
    pending: _Pending


def why_not_graphable(cell: nn.Module, x: torch.Tensor, state: Any) -> str | None:
    """A reason the loop cannot be captured here, or ``None``."""
    if not isinstance(x, torch.Tensor):
        return "the inputs are a structure of tensors (captured graphs take one tensor)"
    backend = graph_engine.backend_for(x.device, "the inputs")
    if isinstance(backend, str):
        return backend
    leaves = nest.flatten(state)
    if any(_is_history(t) and len(t) for t in leaves):
        return "the state holds an alignment history that already holds steps"
    if not all(_is_history(t) or (isinstance(t, torch.Tensor) and t.device == x.device)
               for t in leaves):
        return "the state holds something other than tensors on the inputs' device"
    if any(True for _ in cell.buffers() if _.requires_grad):
        return "the cell has buffers that require gradients"
    return None


def _bound_values(cell: nn.Module) -> tuple[tuple, tuple, list]:
    """``(key, slots, values)`` of what the cell's modules declare in ``graph_bindings()``."""
    bindings = module_bindings(cell)
    values = [getattr(o, n) for o, n in bindings.slots]
    for (owner, name), v in zip(bindings.slots, values, strict=True):
        if v is not None and not isinstance(v, torch.Tensor):
            raise NotCapturable(f"{type(owner).__name__}.{name} is bound as "
                                f"{type(v).__name__}; dynamic_rnn graphs bind tensors only")
    return bindings.key, bindings.slots, values


def _watched_run(loop: _Loop, sample: tuple, tape: list | None = None) -> Any:
    """Run ``loop`` once without autograd, every op checked (:class:`rnnkit.capture.Watch`):
    raises :class:`NotCapturable` where a graph of it would be wrong."""
    allowed = module_storages([loop.cell]) | {storage(t) for t in sample if t.numel()}
    with torch.no_grad(), Watch(allowed, [], sample[0].is_cuda, tape):
        return loop(*sample)


def _capture_forward(loop: _Loop, sample: tuple, backend: graph_engine.Backend) -> Callable:
    """Forward-only capture (autograd off): replay copies the arguments in, clones out."""
    static_in = tuple(t.clone() for t in sample)
    with backend.warm():
        for _ in range(2):  # warm up: allocator, handles, lazy initialisation
            with torch.no_grad():
                loop(*static_in)
    run, static_out = backend.capture(lambda tape: _watched_run(loop, static_in, tape))

    def replay(*args):
        for buf, a in zip(static_in, args, strict=True):
            buf.copy_(a)
        run()
        return tuple(o.clone() for o in static_out)

    return replay


def _capture(loop: _Loop, sample: tuple, grad: bool) -> Callable:
    backend = graph_engine.backend_for(sample[0].device)
    rng = torch.get_rng_state()
    try:
        _watched_run(loop, sample)
        loop.weights = nn.ParameterList(list(loop.cell.parameters()))
        if grad:
            return backend.graphed(loop, sample)
        return _capture_forward(loop, sample, backend)
    finally:
        if not sample[0].is_cuda:
            torch.set_rng_state(rng)  # emulated capturing draws nothing; replays do


def graphed_loop(cell: nn.Module, x: torch.Tensor, state: Any, lengths: torch.Tensor | None,
                 steps: int, run: Callable) -> tuple[Any, Any] | None:
    """Run ``run(cell, x, state, lengths, steps) -> (outputs, final_state)`` through a cached
    CUDA graph of it; ``None`` (after a warning naming why) when it cannot be captured.
    ``run`` must not hold a reference to ``cell`` (the graphs are cached on the cell).
    A graph reads the cell's parameters and buffers in place; moving them (``.to()``)
    makes the next call capture again.

    ``x`` is time-major ``[time, batch, depth]``; outputs as ``run`` returns them (cloned out
    of the graph's static buffers, so they stay valid after the next replay).
    """
    reason = why_not_graphable(cell, x, state)
    if reason is None:
        try:
            bind_key, slots, values = _bound_values(cell)
        except NotCapturable as e:
            reason = str(e)
    if reason is not None:
        graph_engine.warn_eager(_CALL, reason)
        return None
    leaves = [t for t in nest.flatten(state) if not _is_history(t)]
    bound = [v for v in values if v is not None]
    grad = torch.is_grad_enabled()
    key = (tuple(x.shape), x.dtype, x.device, steps, lengths is not None, grad,
           x.requires_grad, tuple((tuple(t.shape), t.dtype, t.requires_grad) for t in leaves),
           tuple(_is_history(t) for t in nest.flatten(state)),
           bind_key, tuple(describe(v) for v in values),
           tuple(m.training for m in cell.modules()),
           torch.is_autocast_enabled(x.device.type), torch.get_autocast_dtype(x.device.type))
    cache = graph_engine.cache(cell, "dynamic_rnn")
    for copy in range(MAX_COPIES_PER_SHAPE):  # the first copy not waiting for a backward
        entry = cache.get((key, copy))
        if entry is False:
            return None
        if entry is not None and moved(entry.reads):
            entry = None  # the cell was moved (.to(), .half().float(), ...): capture it again
        if entry is None or not entry.pending.busy:
            break
    else:
        graph_engine.warn_eager(_CALL, f"{MAX_COPIES_PER_SHAPE} earlier calls of this shape "
                                "are still waiting for their backward")
        return None
    key = (key, copy)
    if entry is None:
        loop = _Loop(cell, run, state, steps, lengths is not None, slots,
                     [v is not None for v in values])
        sample = tuple(t.detach().clone().requires_grad_(t.requires_grad and t.is_floating_point())
                       for t in (x, *((lengths,) if lengths is not None else ()), *leaves,
                                 *bound))
        try:
            entry = _Graph(_capture(loop, sample, grad), in_place_reads([cell]), _Pending())
        except Exception as e:  # capture refuses host syncs, CPU tensors, ...
            why = str(e) if isinstance(e, NotCapturable) else f"{type(e).__name__}: {e}"
            graph_engine.warn_eager(_CALL, f"the step loop cannot be captured ({why})")
            graph_engine.store(cache, key, False)
            return None
        graph_engine.store(cache, key, entry)
    graph_engine.touch(cache, key)
    flat = entry.run(x, *((lengths,) if lengths is not None else ()), *leaves, *bound)
    if grad:
        entry.pending.watch(flat)
        flat = tuple(o.clone() for o in flat)  # out of the static buffers
    n_out = len(nest.flatten(cell.output_size))
    outputs = nest.pack_sequence_as(cell.output_size, list(flat[:n_out]))
    finals = iter(flat[n_out:])
    final = nest.map_structure(
        lambda x: _history_from(x, next(finals)) if _is_history(x) else next(finals), state)
    return outputs, final
