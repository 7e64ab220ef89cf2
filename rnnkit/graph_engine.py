"""The one CUDA-graph engine: where graphs are captured, replayed, cached and emulated.

Two loops run from CUDA graphs, and both are clients of this module:

* :mod:`rnnkit.rnn.graphs`: the step loop of ``dynamic_rnn(..., cuda_graph=True)``
  (forward-only graphs, and forward+backward ones for training);
* :mod:`rnnkit.seq2seq.decode_graphs`: chunks of decode steps of
  ``dynamic_decode(..., cuda_graph=True)``.

What they share lives here, once:

* a :class:`Backend` per device: :class:`CudaBackend` (CUDA graphs, a side stream for the
  eager warm-up, a memory pool) or :class:`EmulatedBackend` (:data:`EMULATE_ON_CPU`: recorded
  CPU ops replayed in place, with a graph's semantics, so the tests check the machinery
  without a GPU);  :func:`backend_for` picks one or says why there is none;
* the per-cell cache (:func:`cache`): each client keeps its graphs on the cell they run,
  the :data:`MAX_GRAPHS_PER_CELL` most recently used, and releases older ones;
* :func:`bound`: the slot swap that points a module's per-call attributes (attention memory,
  teacher-forcing inputs, generators) at the graph's private copies while it is captured;
* :func:`warn_eager`: the one warning a user sees when a call runs eagerly, naming why.

The rules of what a captured region may read are in :mod:`rnnkit.capture`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from rnnkit.capture import replay_tape

__all__ = [
    "EMULATE_ON_CPU",
    "MAX_GRAPHS_PER_CELL",
    "Backend",
    "CudaBackend",
    "EmulatedBackend",
    "backend_for",
    "bound",
    "cache",
    "warn_eager",
]

#: Captured graphs kept per cell and per client (least recently used released first).
MAX_GRAPHS_PER_CELL = 8

#: Tests only: run the machinery on CPU tensors, graphs emulated (see the module docstring).
EMULATE_ON_CPU = False


class Backend:
    """How graphs are made on one device (the interface both backends implement)."""

    #: the region runs on CUDA (a CPU tensor read there would be copied in once)
    cuda: bool = False

    def warm(self) -> contextlib.AbstractContextManager:
        """A block that runs eagerly where the captures will run (the side stream on CUDA):
        lazily made library state (handles, workspaces) is made there."""
        raise NotImplementedError

    def capture(self, fn: Callable[[list | None], Any],
                generators: Sequence[torch.Generator] = ()) -> tuple[Callable[[], None], Any]:
        """Capture ``fn(tape)`` once; returns ``(replay, result)``: ``replay()`` runs the
        captured work again on the same tensors, rewriting ``result`` in place.  ``fn`` gets
        a list to record ops into when emulated (pass it to :class:`rnnkit.capture.Watch`),
        ``None`` on CUDA.  ``generators`` are drawn from inside and advance at each replay."""
        raise NotImplementedError

    def graphed(self, module: nn.Module, sample: tuple) -> nn.Module:
        """``module`` (over tensors only) with forward and backward captured for inputs
        shaped like ``sample`` (:func:`torch.cuda.make_graphed_callables`' semantics: one
        static memory, so a backward reads the activations of the latest call)."""
        raise NotImplementedError


_STREAMS: dict[torch.device, torch.cuda.Stream] = {}


class CudaBackend(Backend):
    """CUDA graphs on ``device``; the graphs this backend captures share one memory pool."""

    cuda = True

    def __init__(self, device: torch.device):
        self.device = device
        if device not in _STREAMS:
            _STREAMS[device] = torch.cuda.Stream(device)
        self.stream = _STREAMS[device]
        self.pool = torch.cuda.graph_pool_handle()

    @contextlib.contextmanager
    def warm(self) -> Iterator[None]:
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        try:
            with torch.cuda.stream(self.stream):
                yield
        finally:
            current.wait_stream(self.stream)

    def capture(self, fn, generators=()):
        graph = torch.cuda.CUDAGraph()
        for g in generators:
            graph.register_generator_state(g)
        with torch.cuda.graph(graph, pool=self.pool, stream=self.stream,
                              capture_error_mode="thread_local"):
            result = fn(None)
        return graph.replay, result

    def graphed(self, module, sample):
        return torch.cuda.make_graphed_callables(module, sample, allow_unused_input=True)


class EmulatedBackend(Backend):
    """:data:`EMULATE_ON_CPU`: ops recorded once and replayed on the same CPU tensors."""

    cuda = False

    @contextlib.contextmanager
    def warm(self) -> Iterator[None]:
        yield

    def capture(self, fn, generators=()):
        tape: list = []
        rng = torch.get_rng_state()  # capturing does not draw; replaying does
        try:
            result = fn(tape)
        finally:
            torch.set_rng_state(rng)
        return (lambda: replay_tape(tape)), result

    def graphed(self, module, sample):
        params = tuple(module.parameters())
        static_in = tuple(t.detach().clone().requires_grad_(t.requires_grad) for t in sample)
        run = module.forward
        latest: list[torch.Tensor] = []

        class Replay(torch.autograd.Function):
            @staticmethod
            def forward(ctx, *args):
                with torch.no_grad():
                    for buf, a in zip(static_in, args, strict=False):
                        buf.copy_(a)
                with torch.enable_grad():
                    latest[:] = run(*static_in)  # the one static memory, overwritten
                return tuple(o.detach() for o in latest)

            @staticmethod
            @torch.autograd.function.once_differentiable
            def backward(ctx, *grads):
                used = [(o, g) for o, g in zip(latest, grads, strict=True) if o.requires_grad]
                surface = [t for t in static_in if t.requires_grad] + list(params)
                found = iter(torch.autograd.grad([o for o, _ in used], surface,
                                                 [g for _, g in used], retain_graph=True,
                                                 allow_unused=True))
                ins = [next(found) if t.requires_grad else None for t in static_in]
                return (*ins, *found)

        module.forward = lambda *args: Replay.apply(*args, *params)
        return module


def backend_for(device: torch.device, what: str = "the tensors") -> Backend | str:
    """The backend for ``what`` on ``device``, or a sentence saying why graphs cannot run
    there (``"<what> are not on a CUDA device"``, ``"CUDA is not available"``)."""
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return "CUDA is not available"
        return CudaBackend(device)
    if EMULATE_ON_CPU and device.type == "cpu":
        return EmulatedBackend()
    return f"{what} are not on a CUDA device"


def cache(cell: nn.Module, client: str) -> OrderedDict:
    """The graphs ``client`` keeps on ``cell``, least recently used first.  Use
    :func:`touch` after a lookup and :func:`store` to add one (it releases the oldest beyond
    :data:`MAX_GRAPHS_PER_CELL`)."""
    caches = cell.__dict__.setdefault("_rnnkit_graphs", {})
    return caches.setdefault(client, OrderedDict())


def store(graphs: OrderedDict, key: Any, entry: Any) -> None:
    """Keep ``entry`` under ``key`` as the most recently used; release the oldest."""
    graphs[key] = entry
    graphs.move_to_end(key)
    while len(graphs) > MAX_GRAPHS_PER_CELL:
        graphs.popitem(last=False)


def touch(graphs: OrderedDict, key: Any) -> None:
    """Mark ``key`` the most recently used."""
    graphs.move_to_end(key)


@contextlib.contextmanager
def bound(slots: Sequence[tuple[Any, str]], values: Sequence[Any]) -> Iterator[None]:
    """Within the block, attribute ``name`` of each ``(owner, name)`` in ``slots`` holds the
    matching entry of ``values``; the previous values come back afterwards, also on error."""
    saved = [getattr(o, n) for o, n in slots]
    try:
        for (owner, name), value in zip(slots, values, strict=True):
            setattr(owner, name, value)
        yield
    finally:
        for (owner, name), value in zip(slots, saved, strict=True):
            setattr(owner, name, value)


def warn_eager(call: str, reason: str, stacklevel: int = 5) -> None:
    """The warning of a call that runs eagerly: ``"<call>: running eagerly, <reason>"``."""
    warnings.warn(f"{call}: running eagerly, {reason}", stacklevel=stacklevel)
