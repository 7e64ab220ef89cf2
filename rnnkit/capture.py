"""What a CUDA graph may read, and how rnnkit checks it while capturing.

A CUDA graph replays the kernels it recorded on the same memory: every tensor a captured
region reads is read again, at the same address, at each replay.  That is right for
parameters and buffers (read in place, so an optimizer step is seen) and for the graph's own
inputs and intermediate results; it is silently wrong for any other tensor (its value at
capture time, or whatever later lives at its address, would be read forever).

Both uses of graphs in rnnkit share what is here:

* :class:`GraphBindings`: what a module reads per call besides parameters, buffers and the
  loop state (an attention mechanism: its memory), declared by ``graph_bindings()``.  The
  graph machinery makes those values inputs of the graph: copied into the graph's own
  buffers before each replay.
* :class:`Watch`: a dispatch mode active while a region is captured (or probed): a read on the
  host, a read of a tensor nobody declared, or a draw from an undeclared generator raises
  :class:`NotCapturable`, and the caller runs eagerly after a warning naming the reason.
* :func:`replay_tape`: CPU emulation of a graph (recorded ops run again on the same tensors),
  which lets the tests check graph semantics on machines without a GPU.

Used by :mod:`rnnkit.rnn.graphs` (``dynamic_rnn(..., cuda_graph=True)``) and
:mod:`rnnkit.seq2seq.decode_graphs` (``dynamic_decode(..., cuda_graph=True)``).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from rnnkit import nest

__all__ = [
    "GraphBindings",
    "NotCapturable",
    "Watch",
    "clone",
    "combine",
    "copy_into",
    "describe",
    "in_place_reads",
    "module_bindings",
    "module_storages",
    "moved",
    "replay_tape",
    "storage",
    "tensors_of",
]


class NotCapturable(Exception):
    """A step cannot be captured in a CUDA graph; the message says why."""


class GraphBindings(NamedTuple):
    """What a graph of steps depends on besides parameters, buffers and the loop state.

    Returned by ``graph_bindings()`` of decoders, helpers and modules inside a cell.  A user
    helper or module opts in to graphs by returning one: every tensor its steps read that is
    not a parameter, buffer or part of the loop state must sit in a declared slot, and every
    Python value they depend on in the key.

    Attributes:
        key: hashable Python configuration the steps bake in (end token, beam width,
            penalties, sampling filters, ...).  Shapes of the bound values are added by the
            graph machinery.
        slots: ``(owner, attribute)`` pairs naming per-call values the steps read: tensors
            (or nested structures of them), ``None`` or a ``torch.Generator``.
    """

    key: tuple = ()
    slots: tuple = ()


def combine(*parts: GraphBindings) -> GraphBindings:
    """One :class:`GraphBindings` from several (keys concatenated, slots in order)."""
    return GraphBindings(key=tuple(p.key for p in parts),
                         slots=tuple(s for p in parts for s in p.slots))


def module_bindings(module: nn.Module) -> GraphBindings:
    """The bindings of ``module`` and every submodule that declares ``graph_bindings()``
    (attention mechanisms: their memory).  One that raises :class:`NotCapturable` makes the
    whole cell uncapturable."""
    parts = [m.graph_bindings() for m in module.modules()
             if callable(getattr(m, "graph_bindings", None))]
    return combine(*parts)


# -- values held in slots and loop state -------------------------------------------------------

def _leaf_tensors(leaf: Any) -> list[torch.Tensor]:
    """The tensors inside one leaf (a tensor, or an ``AlignmentHistory``-like container
    with ``map``)."""
    if isinstance(leaf, torch.Tensor):
        return [leaf]
    if callable(getattr(leaf, "map", None)):
        found: list[torch.Tensor] = []
        leaf.map(lambda t: found.append(t) or t)
        return found
    return []


def tensors_of(value: Any) -> list[torch.Tensor]:
    """Every tensor inside ``value`` (a nested structure), in order."""
    return [t for leaf in nest.flatten(value) for t in _leaf_tensors(leaf)]


def describe(value: Any) -> Hashable:
    """Shapes, dtypes, devices, ``requires_grad`` and structure: what a captured graph bakes
    in about a value."""
    if value is None:
        return None
    if isinstance(value, torch.Generator):
        return ("generator", str(value.device))
    out = []
    for leaf in nest.flatten(value):
        if isinstance(leaf, torch.Tensor):
            out.append((tuple(leaf.shape), leaf.dtype, str(leaf.device), leaf.requires_grad))
        elif callable(getattr(leaf, "map", None)):
            out.append((type(leaf).__name__, tuple((tuple(t.shape), t.dtype)
                                                   for t in _leaf_tensors(leaf))))
        elif isinstance(leaf, (int, float, bool, str)) or leaf is None:
            out.append(leaf)
        else:
            out.append(type(leaf).__name__)
    return (str(nest.map_structure(lambda _: 0, value)), tuple(out))


def clone(value: Any) -> Any:
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


def copy_into(dst: Any, src: Any) -> None:
    """Copy the values of ``src`` into the tensors of ``dst`` (same description)."""
    if isinstance(dst, torch.Generator):
        dst.set_state(src.get_state())
        return
    for d, s in zip(tensors_of(dst), tensors_of(src), strict=True):
        if d is not s:
            d.copy_(s)


def storage(t: torch.Tensor) -> int:
    """The address of ``t``'s storage: what a graph reads again at each replay."""
    return t.untyped_storage().data_ptr()


def _module_tensors(modules: Any) -> list[torch.Tensor]:
    return [t for m in modules
            for t in ((m,) if isinstance(m, torch.Tensor) else (*m.parameters(), *m.buffers()))]


def in_place_reads(modules: Any) -> list[tuple[torch.Tensor, int]]:
    """The parameters and buffers of ``modules`` (modules or bare parameters) with their
    addresses now: what a graph captured now reads in place."""
    return [(t, t.data_ptr()) for t in _module_tensors(modules)
            if not isinstance(t, nn.parameter.UninitializedTensorMixin)]


def moved(reads: list[tuple[torch.Tensor, int]]) -> bool:
    """Whether any of ``reads`` (from :func:`in_place_reads`) lives elsewhere now (a module
    moved with ``.to()``): a graph captured before would read stale memory."""
    return any(t.data_ptr() != ptr for t, ptr in reads)


def module_storages(modules: Any) -> set[int]:
    """Storages of the parameters and buffers of ``modules`` (modules or bare parameters):
    a graph reads them in place.  Parameters not sized yet (``UninitializedParameter``) have
    none; a run that sizes them makes their storage itself."""
    return {storage(t) for t in _module_tensors(modules)
            if not isinstance(t, nn.parameter.UninitializedTensorMixin) and t.numel()}


# -- watching a capture ------------------------------------------------------------------------

#: Ops that read a value on the host or make its shape depend on values.
HOST_READS = {"_local_scalar_dense", "nonzero", "masked_select", "unique_dim",
              "_unique", "_unique2", "unique_consecutive", "equal", "is_nonzero"}


class Watch(TorchDispatchMode):
    """Checks each op of a region being captured; records it when emulating a graph.

    Args:
        allowed: storages the region may read (parameters, buffers, the graph's inputs).
        generators: the generators it may draw from (besides the default one).
        cuda: the region runs on CUDA (a CPU tensor read there would be copied in once).
        tape: a list to record ``(op, args, kwargs, out)`` into, for :func:`replay_tape`.

    Storages the region produces itself are added to ``produced`` and may be read.
    """

    def __init__(self, allowed: set[int], generators: list[torch.Generator], cuda: bool,
                 tape: list | None = None):
        super().__init__()
        self.allowed = allowed
        self.produced: set[int] = set()
        self.generators = generators
        self.cuda = cuda
        self.tape = tape

    def _check(self, func, args, kwargs) -> None:
        name = func.overloadpacket.__name__
        if name in HOST_READS:
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
            ptr = storage(x)
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
                self.produced.add(storage(t))
        if self.tape is not None:
            self.tape.append((func, args, kwargs, out))
        return out


def replay_tape(tape: list) -> None:
    """Run recorded ops again on the same tensors, writing results where they were (a CUDA
    graph's replay, emulated on the CPU)."""
    for func, args, kwargs, out in tape:
        fresh = func(*args, **kwargs)
        for old, new in zip(tree_flatten(out)[0], tree_flatten(fresh)[0], strict=True):
            if isinstance(old, torch.Tensor) and old.numel() and storage(old) != storage(new):
                old.copy_(new)
