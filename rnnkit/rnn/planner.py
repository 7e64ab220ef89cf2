"""The planner: how a driver runs cells over a sequence, and the run of a plan.

Every driver (``dynamic_rnn``, ``static_rnn``, the bidirectional drivers and stacks) makes
one :class:`Plan` and runs it.  A plan is a list of layers, each one cell per direction
(``(cell,)``, or ``(cell_fw, cell_bw)``), grouped into stages:

* **fused** stages: consecutive layers whose cells describe a :meth:`RNNCell.fused_form`
  run on PyTorch's fused kernels (:func:`rnnkit.rnn.fused.run_layers`: one multi-layer call
  per run of same-sized layers, a ragged batch packed once for all of them);
* **stepped** stages: one layer on the step loop (:mod:`rnnkit.rnn.loop`); a bidirectional
  layer whose cells cannot fuse runs each direction with a plan of its own.

A cell is split into layers (:meth:`~RNNCell.sequential_layers`) and fused only where its
:meth:`~RNNCell.fast_path` holds: a subclass that overrides the step (``__call__``,
``forward``, ``call``, ...) below the class that provides the fast path runs as written.
``print(rnn.plan(cell, inputs))`` shows what runs fused and why the rest does not.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal, NamedTuple

import torch

from rnnkit import nest
from rnnkit.masking import zero_padding
from rnnkit.rnn.cell import RNNCell, initial_state
from rnnkit.rnn.fused import FusedForm, NotFusableError, PackPlan, check_form, run_layers
from rnnkit.rnn.graphs import graphed_loop
from rnnkit.rnn.loop import step_loop

__all__ = ["Plan", "Stage", "join_layers", "layers_of", "make_plan", "run_plan",
           "split_layers"]

Fused = bool | Literal["auto"]


# -- a cell's layers ---------------------------------------------------------------------------

def _splits(cell: RNNCell) -> list[RNNCell] | None:
    """The layers ``cell`` runs as, when it is a stack whose fast path holds."""
    layers = cell.sequential_layers()
    if len(layers) == 1 and layers[0] is cell:
        return None
    if cell.fast_path("sequential_layers") is not None:
        return None
    return layers


def layers_of(cell: RNNCell) -> list[RNNCell]:
    """The leaf cells ``cell`` runs as, in order (itself unless it is a stack)."""
    parts = _splits(cell)
    return [cell] if parts is None else [leaf for p in parts for leaf in layers_of(p)]


def split_layers(cell: RNNCell, state: Any) -> list[Any]:
    """``state`` of ``cell`` as the states of :func:`layers_of` (``None``: zeros)."""
    parts = _splits(cell)
    if parts is None:
        return [state]
    if state is None:
        return [None] * len(layers_of(cell))
    sub = cell.split_state(state)
    return [s for p, st in zip(parts, sub, strict=True) for s in split_layers(p, st)]


def join_layers(cell: RNNCell, finals: Iterator[Any]) -> Any:
    """Inverse of :func:`split_layers`."""
    parts = _splits(cell)
    if parts is None:
        return next(finals)
    return cell.join_state([join_layers(p, finals) for p in parts])


# -- plans -------------------------------------------------------------------------------------

class Stage(NamedTuple):
    """Layers ``start .. stop - 1`` of a plan, fused (``forms``: per layer, one
    :class:`FusedForm` per direction) or one layer stepped (``forms`` ``None``; ``why``
    says why it does not fuse)."""

    start: int
    stop: int
    forms: tuple[tuple[FusedForm, ...], ...] | None
    why: str
    device: torch.device | None


class Plan:
    """What a driver runs: ``layers`` (one cell per direction each) in ``stages``.

    A stepped bidirectional layer holds a plan per direction in ``directions[i]``.
    ``print(plan)`` lists the stages.
    """

    def __init__(self, layers: list[tuple[RNNCell, ...]], stages: list[Stage],
                 directions: dict[int, tuple[Plan, Plan]], inputs: str):
        self.layers = layers
        self.stages = stages
        self.directions = directions
        self.inputs = inputs

    @property
    def fused_layers(self) -> int:
        """Layers that run on the fused kernels (in this plan, not its directions')."""
        return sum(s.stop - s.start for s in self.stages if s.forms is not None)

    def lines(self, indent: str = "") -> list[str]:
        """One line per layer (and direction): what runs it, fused or stepped, and why
        (what ``print(plan)`` shows)."""
        out = []
        for stage in self.stages:
            for i in range(stage.start, stage.stop):
                names = " / ".join(type(c).__name__ for c in self.layers[i])
                if stage.forms is not None:
                    forms = stage.forms[i - stage.start]
                    kind = forms[0].mode + (" bidirectional" if len(forms) == 2 else "")
                    span = (f"layers {stage.start}-{stage.stop - 1}" if stage.stop - stage.start
                            > 1 else f"layer {stage.start}")
                    what = f"fused ({kind} kernel; {span} packed once)"
                else:
                    what = f"step loop: {stage.why}"
                where = f" on {stage.device}" if stage.device is not None else ""
                out.append(f"{indent}layer {i}  {names}: {what}{where}")
                if i in self.directions:
                    for label, sub in zip(("forward", "backward"), self.directions[i],
                                          strict=True):
                        out.append(f"{indent}  {label}:")
                        out.extend(sub.lines(indent + "    "))
        return out

    def __str__(self) -> str:
        return "\n".join([f"plan for inputs {self.inputs}:", *self.lines("  ")])

    __repr__ = __str__


def _placement(cell: RNNCell) -> torch.device | None:
    """Where a layer runs when it says so (``DeviceWrapper``); else where its data is."""
    where = getattr(cell, "placement", None)
    return where() if callable(where) else None


def _form(cell: RNNCell) -> FusedForm | str:
    """The cell's fused form, or why it has none."""
    if not cell.built:
        return f"{type(cell).__name__} is not built yet (its input is not [batch, time, depth])"
    reason = cell.fast_path("fused_form")
    if reason is not None:
        return reason
    try:
        return check_form(cell.fused_form(), type(cell).__name__)
    except NotFusableError as e:
        return str(e)


def _describe(x: Any, time_major: bool) -> str:
    if isinstance(x, torch.Tensor):
        names = "[max_time, batch, depth]" if time_major else "[batch, max_time, depth]"
        return f"{tuple(x.shape)} {names if x.dim() == 3 else ''}".rstrip()
    return f"a {type(x).__name__} of {len(nest.flatten(x))} tensors"


def make_plan(layers: Sequence[tuple[RNNCell, ...]], x: Any, fused: Fused,
              time_major: bool = False, names: Sequence[str] | None = None) -> Plan:
    """Plan ``layers`` over inputs ``x`` (in the caller's layout), building each cell at
    its input depth on the way.

    With ``fused=True`` a layer that cannot fuse raises :class:`NotFusableError` naming the
    layer and why; ``fused=False`` steps every layer.
    """
    first = nest.flatten(x)[0]
    fusable = isinstance(x, torch.Tensor) and x.dim() == 3 and x.is_floating_point()
    if fused is True and not fusable:
        raise NotFusableError("fused=True needs inputs of one float tensor [batch, time, "
                              f"depth]; received {_describe(x, time_major)}")
    depth: int | None = x.shape[-1] if fusable else None
    dtype = first.dtype if first.is_floating_point() else None
    per_layer: list[tuple[FusedForm, ...] | str] = []
    directions: dict[int, tuple[Plan, Plan]] = {}
    for i, cells in enumerate(layers):
        where = names[i] if names else (type(cells[0]).__name__ if len(layers) == 1
                                       else f"layer {i} ({type(cells[0]).__name__})")
        leafs = [layers_of(c) for c in cells]
        single = all(len(ls) == 1 for ls in leafs)
        verdict: tuple[FusedForm, ...] | str
        if depth is None:
            verdict = "its inputs are not one float tensor [batch, time, depth]"
        elif not single:
            verdict = "each direction is a stack, run through its own plan"
        else:
            for c in cells:
                c.build_for(depth, dtype, first.device)
            forms = [_form(c) for c in cells]
            reasons = [f for f in forms if isinstance(f, str)]
            if fused is False:
                verdict = "fused=False"
            elif reasons:
                verdict = reasons[0]
            elif len({f.kernel_key() for f in forms}) > 1:
                verdict = "the forward and backward cells use different kernels"
            else:
                for f in forms:
                    if f.input_size != depth:
                        raise ValueError(f"{where} expects inputs of depth {f.input_size}, "
                                         f"received depth {depth}")
                verdict = tuple(forms)
        if isinstance(verdict, str) and fused is True:
            raise NotFusableError(f"fused=True: {where} cannot run on the fused kernels: "
                                  f"{verdict}")
        per_layer.append(verdict)
        if len(cells) == 2 and isinstance(verdict, str):
            directions[i] = tuple(
                make_plan([(leaf,) for leaf in ls], _like(x, depth), "auto" if fused is True
                          else fused, time_major) for ls in leafs)
        outs = [c.output_size for c in cells]
        # a layer with flat outputs hands the next one [batch, time, depth] again
        depth = sum(outs) if all(isinstance(o, int) for o in outs) else None
    return Plan(list(layers), _stages(list(layers), per_layer), directions,
                _describe(x, time_major))


def _like(x: Any, depth: int | None) -> Any:
    """A stand-in for the inputs of a direction's plan (only the shape's depth matters)."""
    if depth is None or not isinstance(x, torch.Tensor):
        return x
    return x.new_empty((*x.shape[:-1], depth)) if x.shape[-1] != depth else x


def _stages(layers: list[tuple[RNNCell, ...]],
            per_layer: list[tuple[FusedForm, ...] | str]) -> list[Stage]:
    stages: list[Stage] = []
    for i, verdict in enumerate(per_layer):
        device = _placement(layers[i][0])
        if isinstance(verdict, str):
            stages.append(Stage(i, i + 1, None, verdict, device))
            continue
        last = stages[-1] if stages else None
        if last is not None and last.forms is not None and last.device == device:
            stages[-1] = last._replace(stop=i + 1, forms=(*last.forms, verdict))
        else:
            stages.append(Stage(i, i + 1, (verdict,), "", device))
    return stages


# -- running a plan ----------------------------------------------------------------------------

class Batch:
    """Validated driver inputs: ``x`` (a tensor or a structure of tensors) in the caller's
    layout; lengths on the CPU (``None``: every entry has full length)."""

    def __init__(self, x: Any, lengths: torch.Tensor | None, time_major: bool):
        self.x = x
        self.lengths = lengths
        self.time_major = time_major
        self._packs: dict[torch.device, PackPlan] = {}
        self._device_lengths: dict[torch.device, torch.Tensor] = {}

    @property
    def first(self) -> torch.Tensor:
        return nest.flatten(self.x)[0]

    @property
    def max_time(self) -> int:
        return self.first.shape[0 if self.time_major else 1]

    @property
    def batch(self) -> int:
        return self.first.shape[1 if self.time_major else 0]

    def pack(self, device: torch.device) -> PackPlan | None:
        """The packing of the ragged batch for data on ``device`` (made once per device)."""
        if self.lengths is None:
            return None
        if device not in self._packs:
            self._packs[device] = PackPlan(self.lengths, self.max_time, not self.time_major,
                                           device)
        return self._packs[device]

    def steps(self) -> int:
        """Steps any entry runs: ``max(sequence_length)`` (read on the host, no sync)."""
        if self.lengths is None:
            return self.max_time
        return int(self.lengths.max()) if self.lengths.numel() else 0

    def lengths_on(self, device: torch.device) -> torch.Tensor | None:
        if self.lengths is None:
            return None
        if device not in self._device_lengths:
            self._device_lengths[device] = self.lengths.to(device, non_blocking=True)
        return self._device_lengths[device]

    def with_inputs(self, x: Any) -> Batch:
        """The same lengths and layout, other inputs (a direction reversed, a next layer)."""
        other = Batch(x, self.lengths, self.time_major)
        other._packs, other._device_lengths = self._packs, self._device_lengths
        return other


def _to(value: Any, device: torch.device | None) -> Any:
    if device is None:
        return value
    return nest.map_structure(
        lambda t: t.to(device) if isinstance(t, torch.Tensor) else t, value)


def run_plan(plan: Plan, batch: Batch, states: list[tuple[Any, ...]], compile_step: bool,
             cuda_graph: bool) -> tuple[Any, list[tuple[Any, ...]]]:
    """Run ``plan`` over ``batch`` from ``states`` (per layer, per direction; ``None``:
    zeros).  Returns the last layer's outputs (a bidirectional layer's two directions
    side by side on axis 2, as TF's stacks join them) and the final states in the same
    nesting as ``states``."""
    x = batch.x
    finals: list[tuple[Any, ...]] = []
    for stage in plan.stages:
        x = _to(x, stage.device)
        data = batch.with_inputs(x)
        device = nest.flatten(x)[0].device
        if stage.forms is not None:
            own = [tuple(_to(s, stage.device) for s in states[i])
                   for i in range(stage.start, stage.stop)]
            _check_forms(plan, stage, x)
            x, run_finals = run_layers(list(stage.forms), x, own, data.pack(device),
                                       not batch.time_major)
            finals.extend(tuple(f) for f in run_finals)
            continue
        i = stage.start
        cells = plan.layers[i]
        if len(cells) == 1:
            x, final = _step_layer(cells[0], data, states[i][0], compile_step, cuda_graph,
                                   _layer_name(plan, i))
            finals.append((final,))
            continue
        (out_fw, out_bw), (fin_fw, fin_bw) = run_directions(
            plan.directions[i], cells, data, states[i], compile_step, cuda_graph)
        x = nest.map_structure(lambda a, b: torch.cat([a, b], 2), out_fw, out_bw)
        finals.append((fin_fw, fin_bw))
    return x, finals


def run_directions(plans: tuple[Plan, Plan], cells: tuple[RNNCell, RNNCell], batch: Batch,
                   states: tuple[Any, Any], compile_step: bool, cuda_graph: bool
                   ) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """A bidirectional layer direction by direction: the backward cell reads each sequence
    reversed within its own length, and its outputs are reversed back."""
    results = []
    for plan, cell, state, backward in zip(plans, cells, states, (False, True), strict=True):
        x = batch.x
        if backward:
            x = nest.map_structure(lambda a: reverse_in_layout(
                a, batch.lengths_on(a.device), batch.time_major), x)
        layer_states = [(s,) for s in split_layers(cell, state)]
        out, finals = run_plan(plan, batch.with_inputs(x), layer_states, compile_step,
                               cuda_graph)
        if backward:
            out = nest.map_structure(lambda a: reverse_in_layout(
                a, batch.lengths_on(a.device), batch.time_major), out)
        results.append((out, join_layers(cell, iter(f[0] for f in finals))))
    (out_fw, fin_fw), (out_bw, fin_bw) = results
    return (out_fw, out_bw), (fin_fw, fin_bw)


def _layer_name(plan: Plan, i: int) -> str:
    cells = plan.layers[i]
    if len(plan.layers) == 1:
        return type(cells[0]).__name__
    return f"layer {i} ({type(cells[0]).__name__})"


def _check_forms(plan: Plan, stage: Stage, x: torch.Tensor) -> None:
    from rnnkit import _checks

    for k, forms in enumerate(stage.forms):
        for d, form in enumerate(forms):
            side = ("", " (forward)", " (backward)")[len(forms) - 1 + d] if len(forms) == 2 \
                else ""
            _checks.params_match_inputs(_layer_name(plan, stage.start + k) + side,
                                        form.weights, x)


def _step_layer(cell: RNNCell, batch: Batch, state: Any, compile_step: bool,
                cuda_graph: bool, name: str) -> tuple[Any, Any]:
    """One layer on the step loop; inputs and outputs in the caller's layout."""
    from rnnkit import _checks

    x = batch.x
    like = cell.dtype_reference(x) if nest.is_nested(x) else x
    if _placement(cell) is None:
        _checks.params_match_inputs(name, cell, like)
    if state is None:
        state = initial_state(cell, batch.batch,
                              like.dtype if like.is_floating_point() else None, like.device)
    tm = x if batch.time_major else nest.map_structure(lambda a: a.transpose(0, 1), x)
    lengths = batch.lengths_on(like.device)
    if lengths is not None:  # the cell never sees padding (NaN there must not leak)
        valid = torch.arange(batch.max_time, device=like.device)[:, None] < lengths[None, :]
        tm = nest.map_structure(lambda a: zero_padding(a, valid), tm)
    steps = batch.steps()
    result = None
    if cuda_graph and steps > 0:
        cell.maybe_build(nest.map_structure(lambda a: a[0], tm))
        result = graphed_loop(cell, tm, state, lengths, steps, _graph_run)
    out, final = result if result is not None else step_loop(cell, tm, state, lengths,
                                                             compile_step, steps)
    if not batch.time_major:
        out = nest.map_structure(lambda o: o.transpose(0, 1), out)
    return out, final


def _graph_run(cell, x, state, lengths, steps):
    """The step loop as :func:`rnnkit.rnn.graphs.graphed_loop` captures it."""
    return step_loop(cell, x, state, lengths, False, steps)


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """``x [time, batch, ...]`` with each entry's first ``lengths[b]`` steps reversed."""
    if lengths is None:
        return x.flip(0)
    t = torch.arange(x.shape[0], device=x.device)[:, None]
    lens = lengths.to(x.device)[None, :]
    idx = torch.where(t < lens, lens - 1 - t, t)  # [time, batch]
    idx = idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, idx)


def reverse_in_layout(x: torch.Tensor, lengths: torch.Tensor | None,
                      time_major: bool) -> torch.Tensor:
    """The drivers' reversal: ``x`` in the caller's layout, lengths already checked."""
    if time_major:
        return reverse_within_lengths(x, lengths)
    return reverse_within_lengths(x.transpose(0, 1), lengths).transpose(0, 1)
