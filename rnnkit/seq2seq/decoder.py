"""Decoder interface, BasicDecoder and dynamic_decode."""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import torch
from torch import nn

from rnnkit import _checks, nest
from rnnkit.masking import select_rows
from rnnkit.rnn import loop
from rnnkit.rnn.cell import RNNCell, overridden_below, require_cell, start_sequence, zeros_for
from rnnkit.seq2seq import decode_graphs
from rnnkit.seq2seq.decode_graphs import GraphBindings, NotCapturable
from rnnkit.seq2seq.helper import Helper

__all__ = [
    "CHECK_FINISHED_EVERY_CUDA",
    "BasicDecoder",
    "BasicDecoderOutput",
    "CellDecoder",
    "Decoder",
    "dynamic_decode",
]

class BasicDecoderOutput(NamedTuple):
    """One step (or, stacked, all steps) of a :class:`BasicDecoder`.

    Attributes:
        rnn_output: ``[batch, (time,) output_size]`` cell (or output-layer) outputs.
        sample_id: ``[batch, (time,)]`` sample ids from the helper.
    """

    rnn_output: Any
    sample_id: Any


class Decoder:
    """Interface for decoders driven by :func:`dynamic_decode` (``tf.contrib.seq2seq.Decoder``).

    Define ``batch_size``, ``output_size``, ``output_dtype``, ``initialize() ->
    (finished, first_inputs, initial_state)`` and ``step(time, inputs, state) ->
    (outputs, next_state, next_inputs, finished)``; optionally ``finalize(outputs,
    final_state, sequence_lengths) -> (outputs, final_state)`` (time-major outputs),
    ``final_sequence_lengths`` and ``tracks_own_finished``.  Keep the cell you step in
    ``self.cell`` (:attr:`cell`): :func:`dynamic_decode` starts a new sequence in it.
    """

    #: The cell the decoder steps (an ``nn.Module``), or ``None``.  :func:`dynamic_decode`
    #: tells it a new sequence begins (:func:`rnnkit.rnn.start_sequence`), and CUDA graphs
    #: of the steps are kept on it.
    cell: nn.Module | None = None

    @property
    def batch_size(self) -> int:
        """Sequences decoded (beam search: batch entries, each with ``beam_width``
        hypotheses)."""
        raise NotImplementedError

    @property
    def output_size(self) -> Any:
        """Per-row shape of each output field (a structure like the outputs)."""
        raise NotImplementedError

    @property
    def output_dtype(self) -> Any:
        """dtype of each output field (a structure like the outputs)."""
        raise NotImplementedError

    def initialize(self, name: str | None = None) -> tuple[torch.Tensor, Any, Any]:
        """``(finished [batch] bool, first_inputs, initial_state)``."""
        raise NotImplementedError

    def step(self, time: int, inputs: Any, state: Any,
             name: str | None = None) -> tuple[Any, Any, Any, torch.Tensor]:
        """``(outputs, next_state, next_inputs, finished [batch] bool)`` for step ``time``
        (an int); each output field is ``[batch, *output_size]``."""
        raise NotImplementedError

    def finalize(self, outputs: Any, final_state: Any,
                 sequence_lengths: torch.Tensor) -> tuple[Any, Any]:
        """``(outputs, final_state)`` from the stacked time-major ``outputs``
        (``[time, batch, ...]``) and ``sequence_lengths [batch]``; the default returns them
        unchanged."""
        return outputs, final_state

    def final_sequence_lengths(self, final_state: Any,
                               sequence_lengths: torch.Tensor) -> torch.Tensor:
        """What :func:`dynamic_decode` returns as the lengths: by default the step at which
        each entry finished plus one (a decoder that reorders its hypotheses, beam search,
        returns its own)."""
        return sequence_lengths

    @property
    def tracks_own_finished(self) -> bool:
        """True when ``step`` already keeps finished entries finished (beam search)."""
        return False

    @property
    def reorders_rows(self) -> bool:
        """True when ``step`` reorders the rows of its state (beam search follows its
        hypotheses): ``dynamic_decode(impute_finished=True)``, which keeps a finished row's
        previous state in place, would then hand it to another hypothesis, so it is
        refused."""
        return False

    def max_steps(self) -> int | None:
        """An upper bound on the number of steps, when known."""
        return None

    def for_loop(self) -> Decoder:
        """The decoder :func:`dynamic_decode` steps: this one (the built-in decoders may
        return an internal copy that computes the same steps faster, e.g. feeding rows of
        the cell's projected embedding table; their public ``step`` keeps TF's contract)."""
        return self

    def graph_bindings(self) -> GraphBindings:
        """What a CUDA graph of this decoder's steps depends on besides the loop state (see
        :mod:`rnnkit.seq2seq.decode_graphs`).  Decoders that cannot tell raise
        :class:`~rnnkit.seq2seq.decode_graphs.NotCapturable` (the default); their
        ``dynamic_decode(cuda_graph=True)`` runs eagerly.

        A decoder of your own opts in by returning a
        :class:`~rnnkit.seq2seq.GraphBindings` (its Python options in ``key``, the attributes
        holding per-decode tensors in ``slots``; combine with
        ``decode_graphs.module_bindings(cell)`` for attention memory) and by keeping its
        cell in :attr:`cell` (the graphs are cached there).  Its ``step`` must not depend on
        Python state it changes itself between steps."""
        raise NotCapturable(f"{type(self).__name__} does not declare graph_bindings()")


class CellDecoder(Decoder):
    """What rnnkit's decoders share: a cell stepped on the inputs, either as given or, on
    the internal fast path, as rows of its projected embedding table (one input path)."""

    _projected = False

    def _cell_step(self, inputs: Any, state: Any) -> tuple[Any, Any]:
        if self._projected:
            return self.cell.call_projected(inputs, state)
        return self.cell.step(inputs, state)

    def _keeps_contract(self, base: type) -> bool:
        """May :meth:`for_loop` replace this decoder by its fast copy?  Only while no
        subclass below ``base`` changes how it steps."""
        return not overridden_below(self, base, ("initialize", "step", "_cell_step"))


class BasicDecoder(CellDecoder):
    """Cell + helper (+ optional output layer), one step at a time (``BasicDecoder``).

    Args:
        cell: an :class:`RNNCell`.
        helper: a :class:`Helper`.
        initial_state: structure matching ``cell.state_size``, ``[batch, ...]`` leaves.
        output_layer: optional module applied to the cell output (e.g. ``nn.Linear``).

    Step outputs are :class:`BasicDecoderOutput` ``(rnn_output [batch, output_size],
    sample_id [batch])``; ``initialize`` and ``step`` return the helper's inputs, as TF.
    :func:`dynamic_decode` decodes a copy that feeds rows of the cell's projected embedding
    table when the cell hoists its input projection (same results, no input matmul per
    step).
    """

    def __init__(self, cell: RNNCell, helper: Helper, initial_state: Any, output_layer=None):
        require_cell("cell", cell)
        if not isinstance(helper, Helper):
            raise TypeError(f"helper must be a Helper, received {type(helper).__name__}")
        if output_layer is not None and not callable(output_layer):
            raise TypeError(f"output_layer must be callable, received "
                            f"{type(output_layer).__name__}")
        self.cell = cell
        self.helper = helper
        self.initial_state = _checks.as_state(initial_state)
        self.output_layer = output_layer

    @property
    def batch_size(self) -> int:
        return self.helper.batch_size

    @property
    def output_size(self) -> BasicDecoderOutput:
        size = self.cell.output_size
        if self.output_layer is not None:
            size = getattr(self.output_layer, "out_features", size)
        return BasicDecoderOutput(rnn_output=size, sample_id=self.helper.sample_ids_shape)

    @property
    def output_dtype(self) -> BasicDecoderOutput:
        dtype = nest.flatten(self.initial_state)[0].dtype
        return BasicDecoderOutput(dtype, self.helper.sample_ids_dtype)

    def max_steps(self) -> int | None:
        return self.helper.max_steps()

    def for_loop(self) -> Decoder:
        if not self._keeps_contract(BasicDecoder):
            return self
        view = self.helper.projected(self.cell)
        if view is None:
            return self
        fast = copy.copy(self)
        fast.helper, fast._projected = view, True
        return fast

    def initialize(self, name=None):
        finished, first_inputs = self.helper.initialize()
        self.cell.assert_state("initial_state", self.initial_state, finished.shape[0])
        return finished, first_inputs, self.initial_state

    def step(self, time, inputs, state, name=None):
        cell_outputs, cell_state = self._cell_step(inputs, state)
        if self.output_layer is not None:
            cell_outputs = self.output_layer(cell_outputs)
        sample_ids = self.helper.sample(time=time, outputs=cell_outputs, state=cell_state)
        finished, next_inputs, next_state = self.helper.next_inputs(
            time=time, outputs=cell_outputs, state=cell_state, sample_ids=sample_ids)
        return BasicDecoderOutput(cell_outputs, sample_ids), next_state, next_inputs, finished

    def graph_bindings(self) -> GraphBindings:
        return decode_graphs.combine(
            GraphBindings(key=(self._projected,)),
            self.helper.graph_bindings(), decode_graphs.module_bindings(self.cell))


def _empty_outputs(decoder: Decoder, batch: int, like: torch.Tensor) -> Any:
    return nest.map_structure(lambda size, dtype: zeros_for(size, (0, batch), dtype,
                                                            like.device),
                              decoder.output_size, decoder.output_dtype)


def _default_check_every(device: torch.device) -> int:
    """Reading "all finished" costs a host synchronisation on a GPU, nothing on a CPU."""
    return CHECK_FINISHED_EVERY_CUDA if device.type == "cuda" else 1


#: Default ``check_finished_every`` on CUDA: the decode reads "all finished" every this
#: many steps (a host synchronisation each) and runs at most this many - 1 steps past the
#: end, whose results are dropped.
CHECK_FINISHED_EVERY_CUDA = 8


class _Carry(NamedTuple):
    """The decode loop's state between steps."""

    finished: torch.Tensor  # [batch] (beam search: [batch, beam]) bool
    inputs: Any
    state: Any
    lengths: torch.Tensor  # like finished, int64


class _Steps:
    """Runs decode steps as :func:`dynamic_decode` defines them (eagerly)."""

    def __init__(self, decoder: Decoder, impute_finished: bool,
                 maximum_iterations: int | None):
        self.decoder = decoder
        self.impute_finished = impute_finished
        self.maximum_iterations = maximum_iterations

    def run(self, time: int, count: int, carry: _Carry) -> tuple[list, list, _Carry]:
        """Steps ``time .. time + count - 1``: their outputs, after each step ``(all
        finished?, state, lengths)``, and the carry after the last one."""
        decoder = self.decoder
        finished, inputs, state, lengths = carry
        outputs, trail = [], []
        for t in range(time, time + count):
            step_out, step_state, next_inputs, step_finished = decoder.step(t, inputs, state)
            if not isinstance(step_finished, torch.Tensor):
                step_finished = _checks.as_flags("finished (from decoder.step)", step_finished,
                                                 finished.shape, finished.device)
            next_finished = step_finished if decoder.tracks_own_finished \
                else step_finished | finished
            lengths = torch.where(finished, lengths, torch.full_like(lengths, t + 1))
            if t == 0:
                nest.assert_same_structure(state, step_state, what="decoder step state")
            if self.maximum_iterations is not None and t + 1 >= self.maximum_iterations:
                next_finished = torch.ones_like(next_finished)
            if self.impute_finished:  # finished entries: zero outputs, state kept
                running = ~finished
                step_out = select_rows(running, step_out, 0.0)
                step_state = select_rows(running, step_state, state)
            outputs.append(step_out)
            state, inputs, finished = step_state, next_inputs, next_finished
            trail.append((finished.all(), state, lengths))
        return outputs, trail, _Carry(finished, inputs, state, lengths)


def dynamic_decode(
    decoder: Decoder,
    output_time_major: bool = False,
    impute_finished: bool = False,
    maximum_iterations: int | None = None,
    parallel_iterations: int = 32,
    swap_memory: bool = False,
    scope: Any = None,
    *,
    check_finished_every: int | None = None,
    cuda_graph: bool = False,
) -> tuple[Any, Any, torch.Tensor]:
    """Run ``decoder`` until every entry is finished (``tf.contrib.seq2seq.dynamic_decode``).

    Args:
        decoder: a :class:`Decoder`.
        output_time_major: return ``[time, batch, ...]`` outputs instead of ``[batch, time,
            ...]``.
        impute_finished: entries already finished emit zero outputs and keep their state.
        maximum_iterations: stop after this many steps (entries still running are marked
            finished).  Without it, a decode that runs
            :data:`rnnkit.rnn.loop.DEFAULT_MAXIMUM_ITERATIONS` steps with entries still
            running raises ``RuntimeError``.
        check_finished_every: read "every entry finished" on the host only every this many
            steps (each read is a host synchronisation on a GPU).  Steps run past the end
            are dropped: outputs, final state and lengths are exactly those of checking
            every step.  Default: 1 on CPU, :data:`CHECK_FINISHED_EVERY_CUDA` on CUDA.
        cuda_graph: on CUDA, run the steps from CUDA graphs captured once per decoder
            configuration (:mod:`rnnkit.seq2seq.decode_graphs`): the first decode of a
            configuration runs eagerly, the second captures, later ones replay.  Needs
            autograd off (``torch.no_grad()``); results are those of the eager decode.  A
            decode that cannot be captured runs eagerly after a warning naming why.

    Returns:
        ``(final_outputs, final_state, final_sequence_lengths)``; ``final_sequence_lengths``
        is ``[batch]`` int64, the step at which each entry finished plus one, or what the
        decoder's :meth:`Decoder.final_sequence_lengths` says (beam search: its hypotheses'
        lengths ``[batch, beam]``).
    """
    if not isinstance(decoder, Decoder):
        raise TypeError(f"decoder must be a Decoder, received {type(decoder).__name__}")
    if maximum_iterations is not None:
        maximum_iterations = _checks.as_int("maximum_iterations", maximum_iterations)
        if maximum_iterations < 0:
            raise ValueError(f"maximum_iterations must be >= 0, received {maximum_iterations}")
    cuda_graph = _checks.as_flag("cuda_graph", cuda_graph)
    _checks.tf_loop_options(parallel_iterations, swap_memory)
    impute_finished = _checks.as_flag("impute_finished", impute_finished)
    if impute_finished and decoder.reorders_rows:
        raise ValueError(f"impute_finished=True: {type(decoder).__name__} reorders its "
                         "hypotheses between steps, so a finished row's state cannot be kept "
                         "in place (its outputs past the end are already the end token)")
    output_time_major = _checks.as_flag("output_time_major", output_time_major)
    if isinstance(decoder.cell, nn.Module):
        start_sequence(decoder.cell)
    decoder = decoder.for_loop()
    finished, inputs, state = decoder.initialize()
    finished = _checks.as_flags("finished (from decoder.initialize)", finished)
    every = (_default_check_every(finished.device) if check_finished_every is None
             else _checks.as_int("check_finished_every", check_finished_every))
    if every < 1:
        raise ValueError(f"check_finished_every must be >= 1, received {every}")
    if maximum_iterations is not None and maximum_iterations == 0:
        finished = torch.ones_like(finished)
    lengths = torch.zeros(finished.shape, dtype=torch.long, device=finished.device)
    carry = _Carry(finished, inputs, state, lengths)
    natural = decoder.max_steps()
    steps = _Steps(decoder, impute_finished, maximum_iterations)
    runner: Any = steps
    if cuda_graph:
        config = (every, impute_finished, maximum_iterations, natural)
        runner = decode_graphs.graphed_steps(decoder, steps, carry, config) or steps

    # chunks of `every` steps; "all finished" is read on the host after each chunk
    outputs: list[Any] = []
    trail: list[tuple[torch.Tensor, Any, torch.Tensor]] = []
    time = 0
    if not bool(finished.all()):
        while True:
            count = every
            if maximum_iterations is not None:
                count = min(count, maximum_iterations - time)
            elif natural is None:
                if time >= loop.DEFAULT_MAXIMUM_ITERATIONS:
                    raise RuntimeError(
                        f"dynamic_decode ran {loop.DEFAULT_MAXIMUM_ITERATIONS} steps and some "
                        "entries have not finished; pass maximum_iterations= to bound the "
                        "decode (or raise rnnkit.rnn.loop.DEFAULT_MAXIMUM_ITERATIONS)")
                count = min(count, loop.DEFAULT_MAXIMUM_ITERATIONS - time)
            if count <= 0:
                break
            chunk_outputs, trail, carry = runner.run(time, count, carry)
            outputs.extend(chunk_outputs)
            time += count
            if bool(trail[-1][0]):
                break
    state, lengths = carry.state, carry.lengths
    if trail:  # drop the steps run after every entry had finished
        done = torch.stack([t[0] for t in trail]).tolist()
        first = next((i for i, d in enumerate(done) if d), len(done) - 1)
        extra = len(done) - 1 - first
        if extra:
            outputs = outputs[: len(outputs) - extra]
        _, state, lengths = trail[first]
    if runner is not steps:
        runner.finish()
        state, lengths = runner.release((state, lengths))
    if outputs:
        final_outputs = nest.map_structure(lambda *xs: torch.stack(xs), *outputs)
    else:
        final_outputs = _empty_outputs(decoder, finished.shape[0], finished)
    final_outputs, state = decoder.finalize(final_outputs, state, lengths)
    lengths = decoder.final_sequence_lengths(state, lengths)
    if not output_time_major:
        final_outputs = nest.map_structure(
            lambda x: x.transpose(0, 1) if x.dim() >= 2 else x, final_outputs)
    return final_outputs, state, lengths

