"""CUDA graphs for decoding: ``dynamic_decode(..., cuda_graph=True)``.

A decode step is a few dozen small kernels; on a GPU their launches, not the arithmetic,
set the pace.  Here the steps are captured in CUDA graphs once per decoder configuration and
replayed afterwards.

How:

* The decode runs in chunks of ``check_finished_every`` steps (the points where
  :func:`~rnnkit.seq2seq.dynamic_decode` reads "all finished" on the host).  Chunk ``c`` is
  captured as its own graph whose inputs are the outputs of chunk ``c - 1``, so everything
  a step decides in Python from ``time`` (the n-gram history's width, growing
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
  graphs.  These rules live in :mod:`rnnkit.capture`, shared with ``dynamic_rnn`` graphs.
* The first decode of each configuration runs eagerly, on the capture stream: parameters
  and layers sized at their first call are made there (a capture would record their
  initialisation and replay it), and so are library handles and workspaces.  The second
  decode captures its chunks (and replays them); later ones replay.

Graphs are kept per cell, the :data:`rnnkit.graph_engine.MAX_GRAPHS_PER_CELL` most recently
used.  Each
pins the private copies of its bindings and a memory pool holding every step's outputs and
states up to the longest decode it has run (about the memory of one eager decode of that
shape, kept between calls).

This module is a client of :mod:`rnnkit.graph_engine` (backends, the per-cell cache, the
bound slots); ``graph_engine.EMULATE_ON_CPU`` replays recorded CPU ops in place of CUDA
graphs, with a graph's semantics (the same tensors re-read, Python values baked): the tests
use it to check the binding logic on machines without a GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

from rnnkit import graph_engine
from rnnkit.capture import (
    GraphBindings,
    NotCapturable,
    Watch,
    clone,
    combine,
    copy_into,
    describe,
    in_place_reads,
    module_bindings,
    module_storages,
    moved,
    storage,
    tensors_of,
)

__all__ = ["GraphBindings", "NotCapturable", "combine", "module_bindings"]

_CALL = "dynamic_decode(cuda_graph=True)"


# -- the cache ---------------------------------------------------------------------------------

class _Chunk(NamedTuple):
    time: int
    count: int
    replay: Callable
    result: tuple  # (outputs, trail, carry): static tensors, rewritten by each replay


class _Entry:
    """The graphs of one decode configuration on one cell."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.warm = False  # a decode of this configuration has run eagerly (docstring)
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
        self.warming = False
        values = [getattr(o, n) for o, n in self.slots]
        self.generators = [v for v in values if isinstance(v, torch.Generator)]
        if entry.privates is not None:
            for private, value in zip(entry.privates, values, strict=True):
                if value is not None:
                    copy_into(private, value)

    # -- running ---------------------------------------------------------------------------
    def run(self, time: int, count: int, carry: Any) -> tuple[list, list, Any]:
        entry = self.entry
        if self.eager:
            return self.steps.run(time, count, carry)
        if not entry.warm:
            with entry.backend.warm():
                result = self.steps.run(time, count, carry)
            self.warming = True
            return result
        c = self.chunk
        if c == 0:
            if entry.static_in is None:
                entry.static_in = clone(carry)
                entry.allowed |= {storage(t) for t in tensors_of(entry.static_in)
                                  if t.numel()}
            else:
                copy_into(entry.static_in, carry)
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
        """After the decode: the configuration is warm if its steps ran eagerly."""
        if self.warming:
            self.entry.warm = True

    def release(self, value: Any) -> Any:
        """``value`` detached from the graphs' static buffers (a copy when graphed)."""
        return value if self.eager or not self.entry.chunks else clone(value)

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
            entry.privates = [clone(getattr(o, n)) for o, n in self.slots]
            entry.allowed |= {storage(t) for p in entry.privates for t in tensors_of(p)
                              if t.numel()}
            # recorded at the first capture, not at the entry's creation: parameters and
            # buffers sized at the first call are made by the warm-up decode
            entry.params = in_place_reads(self.held)
            entry.allowed |= module_storages(self.held)
        generators = self._private_generators()
        watch = Watch(entry.allowed, generators, entry.backend.cuda, None)

        def run(tape):
            watch.tape = tape
            with torch.no_grad(), watch:
                return self.steps.run(time, count, carry)

        with graph_engine.bound(self.slots, entry.privates):
            replay, result = entry.backend.capture(run, generators)
        entry.allowed |= watch.produced
        return _Chunk(time, count, replay, result)


def _warn(reason: str) -> None:
    graph_engine.warn_eager(_CALL, reason)


def graphed_steps(decoder: Any, steps: Any, carry: Any, config: tuple) -> GraphedSteps | None:
    """A :class:`GraphedSteps` for this decode, or ``None`` (after a warning naming why)
    when its steps cannot run from CUDA graphs.

    Args:
        decoder: the decoder (its ``cell`` keeps the graphs).
        steps: runs ``count`` steps eagerly: ``steps.run(time, count, carry)``.
        carry: the loop state at time 0.
        config: the driver's own configuration (chunk size, bounds, imputation).
    """
    first = tensors_of(carry)
    device = first[0].device if first else torch.device("cpu")
    cell = decoder.cell
    backend = graph_engine.backend_for(device, "the decoder state tensors")
    reason = backend if isinstance(backend, str) else None
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
           tuple(describe(getattr(o, n)) for o, n in bindings.slots),
           describe(carry), config, _grad_modes(), str(device),
           tuple((id(m), tuple(x.training for x in m.modules())
                  if isinstance(m, nn.Module) else ()) for m in held))
    cache = graph_engine.cache(cell, "dynamic_decode")
    entry = cache.get(key)
    if entry is not None and moved(entry.params):
        entry = None  # a module moved: its parameters live elsewhere now
    if entry is None:
        entry = _Entry(str(device))
        entry.held = [m for m in held if m is not cell]  # (the cache lives on the cell)
        entry.backend = backend
        graph_engine.store(cache, key, entry)
    graph_engine.touch(cache, key)
    if entry.failed is not None:
        _warn(entry.failed)
        return None
    return GraphedSteps(entry, decoder, steps, bindings, held)
