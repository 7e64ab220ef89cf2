"""CUDA graphs for decoding: ``dynamic_decode(..., cuda_graph=True)``.

A decode step is a few dozen small kernels; on a GPU their launches, not the arithmetic,
set the pace.  Here the steps are captured in CUDA graphs once per decoder configuration and
replayed afterwards.

How:

* The decode runs in chunks of ``check_finished_every`` steps (the points where
  :func:`~rnnkit.seq2seq.dynamic_decode` reads "all finished" on the host).  Chunk ``c`` is
  captured as its own graph whose inputs are the outputs of chunk ``c - 1``, so everything
  a step decides in Python from ``time`` (``min_length``, the n-gram history, growing
  alignment histories, teacher-forcing indices) is simply baked into its chunk.  Chunks
  are captured when a decode first gets that far, and share one memory pool.
* What a step reads besides the loop state is declared by the decoder, its helper and the
  cell's modules as :class:`GraphBindings`: the Python configuration the steps bake in (a
  key) and the attributes holding per-decode tensors (attention memory, teacher-forcing
  inputs, the projected embedding table, sampling generators).  While a chunk is captured
  those attributes point at private copies; before each replay the current values are
  copied into them (generators: their state, copied back afterwards, so a seeded sampler
  draws exactly what it draws eagerly).  The user's tensors are never written.
* While capturing, every op is watched: a step that reads a tensor value on the host,
  reads a tensor nobody declared (not a parameter, buffer, binding or the loop state), or
  draws from an undeclared generator cannot be captured; the decode then runs eagerly after
  a warning naming the reason.  Parameters are read in place: an optimizer step or
  ``load_state_dict`` is seen by the next replay; moving a module (new storage) drops the
  graphs.
* The first graphed decode on a device in a process runs eagerly on the capture stream
  (library handles and workspaces are made there, not inside a capture); from then on a
  new configuration is captured at its first decode and replayed at the next ones.

Graphs are kept per cell, the :data:`MAX_DECODE_GRAPHS_PER_CELL` most recently used.  Each
pins the private copies of its bindings and a memory pool holding every step's outputs and
states up to the longest decode it has run (about the memory of one eager decode of that
shape, kept between calls).

Setting :data:`EMULATE_ON_CPU` replays recorded CPU ops in place of CUDA graphs, with a
graph's semantics (the same tensors re-read, Python values baked): the tests use it to check
the binding logic on machines without a GPU.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from rnnkit import nest

__all__ = [
    "EMULATE_ON_CPU",
    "MAX_DECODE_GRAPHS_PER_CELL",
    "GraphBindings",
    "NotCapturable",
    "module_bindings",
]

#: Captured decode configurations kept per cell (least recently used released first).
MAX_DECODE_GRAPHS_PER_CELL = 8

#: Tests only: emulate CUDA graphs on the CPU by recording ops and replaying them in place.
EMULATE_ON_CPU = False


class NotCapturable(Exception):
    """A decode step cannot be captured in a CUDA graph; the message says why."""


class GraphBindings(NamedTuple):
    """What a graph of decode steps depends on besides the loop state.

    Returned by ``graph_bindings()`` of decoders, helpers and modules inside the cell.  A
    user helper opts in to graphs by returning one: every tensor its ``sample`` /
    ``next_inputs`` read that is not a parameter, buffer or part of the loop state must sit
    in a declared slot, and every Python value they depend on in the key.

    Attributes:
        key: hashable Python configuration the steps bake in (end token, beam width,
            penalties, sampling filters, ...).  Shapes of the bound values are added by the
            graph machinery.
        slots: ``(owner, attribute)`` pairs naming per-decode values the steps read: tensors
            (or nested structures of them), ``None`` or a ``torch.Generator``.
    """

    key: tuple = ()
    slots: tuple = ()


def combine(*parts: GraphBindings) -> GraphBindings:
    """One :class:`GraphBindings` from several (keys concatenated, slots in order)."""
    return GraphBindings(key=tuple(p.key for p in parts),
                         slots=tuple(s for p in parts for s in p.slots))


def module_bindings(module: nn.Module) -> GraphBindings:
    """The bindings of every submodule of ``module`` that declares ``graph_bindings()``
    (attention mechanisms: their memory)."""
    parts = [m.graph_bindings() for m in module.modules()
             if m is not module and callable(getattr(m, "graph_bindings", None))]
    return combine(*parts)


# -- values held in slots and loop state -------------------------------------------------------

def _tensors(leaf: Any) -> list[torch.Tensor]:
    """The tensors inside one leaf (a tensor, or an ``AlignmentHistory``-like container
    with ``map``)."""
    if isinstance(leaf, torch.Tensor):
        return [leaf]
    if callable(getattr(leaf, "map", None)):
        found: list[torch.Tensor] = []
        leaf.map(lambda t: found.append(t) or t)
        return found
    return []


def _all_tensors(value: Any) -> list[torch.Tensor]:
    return [t for leaf in nest.flatten(value) for t in _tensors(leaf)]


def _describe(value: Any) -> Hashable:
    """Shapes, dtypes and structure: what a captured graph bakes in about a value."""
    if value is None:
        return None
    if isinstance(value, torch.Generator):
        return ("generator", str(value.device))
    out = []
    for leaf in nest.flatten(value):
        if isinstance(leaf, torch.Tensor):
            out.append((tuple(leaf.shape), leaf.dtype, str(leaf.device)))
        elif callable(getattr(leaf, "map", None)):
            out.append((type(leaf).__name__, tuple((tuple(t.shape), t.dtype)
                                                   for t in _tensors(leaf))))
        elif isinstance(leaf, (int, float, bool, str)) or leaf is None:
            out.append(leaf)
        else:
            out.append(type(leaf).__name__)
    return (str(nest.map_structure(lambda _: 0, value)), tuple(out))


def _clone(value: Any) -> Any:
    """A private copy: tensors cloned, generators forked, containers rebuilt."""
    if isinstance(value, torch.Generator):
        g = torch.Generator(device=value.device)
        g.set_state(value.get_state())
        return g

    def leaf(x):
        if isinstance(x, torch.Tensor):
            return x.clone()
        if callable(getattr(x, "map", None)):
            return x.map(torch.clone)
        return x

    return None if value is None else nest.map_structure(leaf, value)


def _copy_into(dst: Any, src: Any) -> None:
    """Copy the values of ``src`` into the tensors of ``dst`` (same description)."""
    if isinstance(dst, torch.Generator):
        dst.set_state(src.get_state())
        return
    for d, s in zip(_all_tensors(dst), _all_tensors(src), strict=True):
        if d is not s:
            d.copy_(s)


# -- watching a capture ------------------------------------------------------------------------

#: Ops that read a value on the host or make its shape depend on values.
_HOST_READS = {"_local_scalar_dense", "nonzero", "masked_select", "unique_dim",
               "_unique", "_unique2", "unique_consecutive", "equal", "is_nonzero"}


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


class _Watch(TorchDispatchMode):
    """Checks each op of a step being captured; records it when emulating a graph."""

    def __init__(self, allowed: set[int], generators: list[torch.Generator], cuda: bool,
                 tape: list | None):
        super().__init__()
        self.allowed = allowed
        self.produced: set[int] = set()
        self.generators = generators
        self.cuda = cuda
        self.tape = tape

    def _check(self, func, args, kwargs) -> None:
        name = func.overloadpacket.__name__
        if name in _HOST_READS:
            raise NotCapturable(f"a step reads a tensor value on the host (aten.{name})")
        if name == "lift_fresh":
            return  # a constant made in Python (torch.tensor(...))
        leaves, _ = tree_flatten((args, kwargs))
        for x in leaves:
            if isinstance(x, torch.Generator):
                # the dispatcher hands a fresh wrapper: compare what identifies a generator
                if not any(x.device == g.device and x.initial_seed() == g.initial_seed()
                           for g in self.generators):
                    raise NotCapturable("a step draws from a torch.Generator that is not "
                                        "declared in graph_bindings()")
            if not isinstance(x, torch.Tensor) or x.numel() == 0:
                continue
            if self.cuda and not x.is_cuda:
                if x.dim() == 0:
                    continue  # a scalar passed by value
                raise NotCapturable(f"a step copies a CPU tensor of shape {tuple(x.shape)} "
                                    "to the GPU")
            ptr = _storage(x)
            if ptr in self.produced or ptr in self.allowed:
                continue
            raise NotCapturable(
                f"a step reads a tensor of shape {tuple(x.shape)} ({x.dtype}) that is "
                "neither a parameter, a buffer, the loop state nor declared in "
                "graph_bindings(); its value would be frozen into the graph")

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self._check(func, args, kwargs)
        out = func(*args, **kwargs)
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.numel():
                self.produced.add(_storage(t))
        if self.tape is not None:
            self.tape.append((func, args, kwargs, out))
        return out


def _replay_tape(tape: list) -> None:
    """Run recorded ops again on the same tensors, writing results where they were."""
    for func, args, kwargs, out in tape:
        fresh = func(*args, **kwargs)
        for old, new in zip(tree_flatten(out)[0], tree_flatten(fresh)[0], strict=True):
            if (isinstance(old, torch.Tensor) and old.numel()
                    and _storage(old) != _storage(new)):
                old.copy_(new)


# -- backends ----------------------------------------------------------------------------------

class _CudaBackend:
    cuda = True

    def __init__(self, device: torch.device):
        self.device = device
        self.stream = _side_stream(device)
        self.pool = torch.cuda.graph_pool_handle()

    @contextlib.contextmanager
    def warm(self) -> Iterator[None]:
        """Run eagerly on the capture stream (lazy library state is made there)."""
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        try:
            with torch.cuda.stream(self.stream):
                yield
        finally:
            current.wait_stream(self.stream)

    def capture(self, fn: Callable, generators: list[torch.Generator]) -> tuple[Callable, Any]:
        graph = torch.cuda.CUDAGraph()
        for g in generators:
            graph.register_generator_state(g)
        with torch.cuda.graph(graph, pool=self.pool, stream=self.stream,
                              capture_error_mode="thread_local"):
            result = fn(None)
        return graph.replay, result


class _EmulatedBackend:
    cuda = False

    @contextlib.contextmanager
    def warm(self) -> Iterator[None]:
        yield

    def capture(self, fn: Callable, generators: list[torch.Generator]) -> tuple[Callable, Any]:
        tape: list = []
        rng = torch.get_rng_state()  # capturing does not draw; replaying does
        try:
            result = fn(tape)
        finally:
            torch.set_rng_state(rng)
        return (lambda: _replay_tape(tape)), result


_STREAMS: dict[torch.device, torch.cuda.Stream] = {}


def _side_stream(device: torch.device) -> torch.cuda.Stream:
    if device not in _STREAMS:
        _STREAMS[device] = torch.cuda.Stream(device)
    return _STREAMS[device]


# -- the cache ---------------------------------------------------------------------------------

class _Chunk(NamedTuple):
    time: int
    count: int
    replay: Callable
    result: tuple  # (outputs, trail, carry): static tensors, rewritten by each replay


#: Devices whose capture stream has run a decode eagerly (see the module docstring).
_WARMED: set[str] = set()


class _Entry:
    """The graphs of one decode configuration on one cell."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.failed: str | None = None
        self.backend: Any = None
        self.privates: list | None = None
        self.static_in: Any = None
        self.chunks: list[_Chunk] = []
        self.allowed: set[int] = set()
        self.params: list[tuple[torch.Tensor, int]] = []
        self.held: list = []  # the modules read in place (their ids are in the key)


def _modules_of(root: Any, depth: int = 4) -> list[nn.Module | nn.Parameter]:
    """Modules, and parameters outside modules, reachable from ``root`` through attributes
    and containers: what a graph reads in place."""
    found: dict[int, nn.Module | nn.Parameter] = {}
    seen: set[int] = set()

    def walk(x: Any, d: int) -> None:
        if id(x) in seen or d < 0:
            return
        seen.add(id(x))
        if isinstance(x, (nn.Module, nn.Parameter)):
            found[id(x)] = x
        elif isinstance(x, (list, tuple)):
            for y in x:
                walk(y, d - 1)
        elif isinstance(x, dict):
            for y in x.values():
                walk(y, d - 1)
        elif hasattr(x, "__dict__") and not isinstance(x, (torch.Tensor, type)):
            for y in vars(x).values():
                walk(y, d - 1)

    walk(root, depth)
    return list(found.values())


def _grad_modes() -> tuple:
    return (torch.is_grad_enabled(), torch.is_inference_mode_enabled(),
            torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda"),
            torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))


class GraphedSteps:
    """Runs chunks of decode steps through captured graphs (see the module docstring).

    Made by :func:`graphed_steps`; :func:`~rnnkit.seq2seq.dynamic_decode` calls
    :meth:`run` once per chunk and :meth:`release` on what it keeps.
    """

    def __init__(self, entry: _Entry, decoder: Any, steps: Any, bindings: GraphBindings,
                 held: list):
        self.entry = entry
        self.held = held
        self.decoder = decoder
        self.steps = steps
        self.slots = bindings.slots
        self.chunk = 0
        self.eager = False
        self.warmed = False
        values = [getattr(o, n) for o, n in self.slots]
        self.generators = [v for v in values if isinstance(v, torch.Generator)]
        if entry.privates is not None:
            for private, value in zip(entry.privates, values, strict=True):
                if value is not None:
                    _copy_into(private, value)

    # -- running ---------------------------------------------------------------------------
    def run(self, time: int, count: int, carry: Any) -> tuple[list, list, Any]:
        entry = self.entry
        if self.eager:
            return self.steps.run(time, count, carry)
        if entry.device not in _WARMED:
            with entry.backend.warm():
                result = self.steps.run(time, count, carry)
            self.warmed = True
            return result
        c = self.chunk
        if c == 0:
            if entry.static_in is None:
                entry.static_in = _clone(carry)
                entry.allowed |= {_storage(t) for t in _all_tensors(entry.static_in)
                                  if t.numel()}
            else:
                _copy_into(entry.static_in, carry)
            carry = entry.static_in
        if c < len(entry.chunks):
            chunk = entry.chunks[c]
            if (chunk.time, chunk.count) != (time, count):  # cannot happen: same key
                raise RuntimeError("decode graph chunks out of step")
        else:
            try:
                chunk = self._capture(time, count, carry)
            except Exception as e:  # noqa: BLE001 - any failure means: run eagerly
                reason = str(e) if isinstance(e, NotCapturable) else \
                    f"capture failed ({type(e).__name__}: {e})"
                _warn(reason)
                entry.failed = reason
                del entry.chunks[:]
                self.eager = True
                return self.steps.run(time, count, carry)
            entry.chunks.append(chunk)
        self._replay(chunk)
        self.chunk += 1
        return chunk.result

    def finish(self) -> None:
        """After the decode: the device's capture stream is warm if steps ran there."""
        if self.warmed:
            _WARMED.add(self.entry.device)

    def release(self, value: Any) -> Any:
        """``value`` detached from the graphs' static buffers (a copy when graphed)."""
        return value if self.eager or not self.entry.chunks else _clone(value)

    def _replay(self, chunk: _Chunk) -> None:
        privates = self._private_generators()
        for private, g in zip(privates, self.generators, strict=True):
            private.set_state(g.get_state())
        chunk.replay()
        for private, g in zip(privates, self.generators, strict=True):
            g.set_state(private.get_state())

    def _private_generators(self) -> list[torch.Generator]:
        return [p for p in self.entry.privates if isinstance(p, torch.Generator)]

    # -- capturing -------------------------------------------------------------------------
    def _capture(self, time: int, count: int, carry: Any) -> _Chunk:
        entry = self.entry
        if entry.privates is None:
            entry.privates = [_clone(getattr(o, n)) for o, n in self.slots]
            entry.allowed |= {_storage(t) for p in entry.privates for t in _all_tensors(p)
                              if t.numel()}
            # recorded at the first capture, not at the entry's creation: buffers such as a
            # cell's constant bias are made at its first call (the warm-up decode)
            for m in self.held:
                tensors = (m,) if isinstance(m, nn.Parameter) else (*m.parameters(),
                                                                    *m.buffers())
                for t in tensors:
                    entry.params.append((t, t.data_ptr()))
                    if t.numel():
                        entry.allowed.add(_storage(t))
        saved = [getattr(o, n) for o, n in self.slots]
        generators = self._private_generators()
        watch = _Watch(entry.allowed, generators, entry.backend.cuda, None)

        def run(tape):
            watch.tape = tape
            with torch.no_grad(), watch:
                return self.steps.run(time, count, carry)

        try:
            for (owner, name), private in zip(self.slots, entry.privates, strict=True):
                setattr(owner, name, private)
            replay, result = entry.backend.capture(run, generators)
        finally:
            for (owner, name), value in zip(self.slots, saved, strict=True):
                setattr(owner, name, value)
        entry.allowed |= watch.produced
        return _Chunk(time, count, replay, result)


def _warn(reason: str) -> None:
    warnings.warn(f"dynamic_decode(cuda_graph=True): decoding eagerly, {reason}",
                  stacklevel=4)


def graphed_steps(decoder: Any, steps: Any, carry: Any, config: tuple) -> GraphedSteps | None:
    """A :class:`GraphedSteps` for this decode, or ``None`` (after a warning naming why)
    when its steps cannot run from CUDA graphs.

    Args:
        decoder: the decoder (its ``cell`` keeps the graphs).
        steps: runs ``count`` steps eagerly: ``steps.run(time, count, carry)``.
        carry: the loop state at time 0.
        config: the driver's own configuration (chunk size, bounds, imputation).
    """
    first = _all_tensors(carry)
    device = first[0].device if first else torch.device("cpu")
    cell = getattr(decoder, "cell", None)
    reason = None
    if device.type == "cuda" and torch.cuda.is_available():
        backend: Any = _CudaBackend
    elif EMULATE_ON_CPU and device.type == "cpu":
        backend = _EmulatedBackend
    else:
        reason = "the decoder state is not on a CUDA device"
    if reason is None and not isinstance(cell, nn.Module):
        reason = f"{type(decoder).__name__} has no cell module to keep the graphs"
    held = _modules_of(decoder) if reason is None else []
    if reason is None and torch.is_grad_enabled() and any(
            p.requires_grad for m in held for p in m.parameters()):
        reason = ("autograd is recording (decode under torch.no_grad() or "
                  "torch.inference_mode())")
    bindings = None
    if reason is None:
        try:
            bindings = decoder.graph_bindings()
        except NotCapturable as e:
            reason = str(e)
    if reason is not None:
        _warn(reason)
        return None
    key = (type(decoder).__name__, bindings.key,
           tuple(_describe(getattr(o, n)) for o, n in bindings.slots),
           _describe(carry), config, _grad_modes(), str(device),
           tuple((id(m), tuple(x.training for x in m.modules())
                  if isinstance(m, nn.Module) else ()) for m in held))
    cache: OrderedDict = cell.__dict__.setdefault("_rnnkit_decode_graphs", OrderedDict())
    entry = cache.get(key)
    if entry is not None and any(t.data_ptr() != ptr for t, ptr in entry.params):
        entry = None  # a module moved: its parameters live elsewhere now
    if entry is None:
        entry = _Entry(str(device))
        entry.held = [m for m in held if m is not cell]  # (the cache lives on the cell)
        entry.backend = backend(device) if backend is _CudaBackend else backend()
        cache[key] = entry
        while len(cache) > MAX_DECODE_GRAPHS_PER_CELL:
            cache.popitem(last=False)
    cache.move_to_end(key)
    if entry.failed is not None:
        _warn(entry.failed)
        return None
    return GraphedSteps(entry, decoder, steps, bindings, held)
