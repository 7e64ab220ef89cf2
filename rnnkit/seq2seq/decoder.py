"""Decoder interface, BasicDecoder and dynamic_decode."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from rnnkit import _checks, nest
from rnnkit.rnn.cell import RNNCell, start_sequence
from rnnkit.seq2seq.helper import (
    GreedyEmbeddingHelper,
    Helper,
    SampleEmbeddingHelper,
    projected_embedding,
)

__all__ = [
    "CHECK_FINISHED_EVERY_CUDA",
    "DEFAULT_MAXIMUM_ITERATIONS",
    "BasicDecoder",
    "BasicDecoderOutput",
    "Decoder",
    "dynamic_decode",
]

#: Without ``maximum_iterations``, :func:`dynamic_decode` raises after this many steps if some
#: entry has still not finished (TF would loop forever).  Helpers that know their length
#: (``TrainingHelper``) are never cut by it.
DEFAULT_MAXIMUM_ITERATIONS = 1000


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
    (outputs, next_state, next_inputs, finished)``; optionally
    ``finalize(outputs, final_state, sequence_lengths) -> (outputs, final_state)`` (time-major
    outputs) and ``tracks_own_finished``.
    """

    @property
    def batch_size(self) -> int:
        raise NotImplementedError

    @property
    def output_size(self) -> Any:
        raise NotImplementedError

    @property
    def output_dtype(self) -> Any:
        raise NotImplementedError

    def initialize(self, name=None):
        raise NotImplementedError

    def step(self, time, inputs, state, name=None):
        raise NotImplementedError

    def finalize(self, outputs, final_state, sequence_lengths):
        raise NotImplementedError

    @property
    def tracks_own_finished(self) -> bool:
        """True when ``step`` already keeps finished entries finished (beam search)."""
        return False

    def max_steps(self) -> int | None:
        """An upper bound on the number of steps, when known."""
        return None


class BasicDecoder(Decoder):
    """Cell + helper (+ optional output layer), one step at a time (``BasicDecoder``).

    Args:
        cell: an :class:`RNNCell`.
        helper: a :class:`Helper`.
        initial_state: structure matching ``cell.state_size``, ``[batch, ...]`` leaves.
        output_layer: optional module applied to the cell output (e.g. ``nn.Linear``).

    Step outputs are :class:`BasicDecoderOutput` ``(rnn_output [batch, output_size],
    sample_id [batch])``.
    """

    def __init__(self, cell: RNNCell, helper: Helper, initial_state: Any, output_layer=None):
        if not isinstance(cell, RNNCell):
            raise TypeError(f"cell must be an rnnkit RNNCell, received {type(cell).__name__}")
        if not isinstance(helper, Helper):
            raise TypeError(f"helper must be a Helper, received {type(helper).__name__}")
        if output_layer is not None and not callable(output_layer):
            raise TypeError(f"output_layer must be callable, received "
                            f"{type(output_layer).__name__}")
        self.cell = cell
        self.helper = helper
        self.initial_state = initial_state
        self.output_layer = output_layer
        self._table: torch.Tensor | None = None  # projected embedding rows (greedy/sample)
        self._prev_ids: torch.Tensor | None = None

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

    def initialize(self, name=None):
        finished, first_inputs = self.helper.initialize()
        self.cell.assert_state("initial_state", self.initial_state, finished.shape[0])
        # Greedy / sampling decodes feed embedding rows of the sampled ids: gather rows of
        # the cell's input projection of the table instead of projecting at every step.
        self._table = None
        if type(self.helper) in (GreedyEmbeddingHelper, SampleEmbeddingHelper):
            self._table = projected_embedding(self.cell, self.helper.embedding)
            self._prev_ids = self.helper.start_tokens
        return finished, first_inputs, self.initial_state

    def step(self, time, inputs, state, name=None):
        if self._table is not None:
            cell_outputs, cell_state = self.cell.call_projected(self._table[self._prev_ids],
                                                                state)
        else:
            cell_outputs, cell_state = self.cell.step(inputs, state)
        if self.output_layer is not None:
            cell_outputs = self.output_layer(cell_outputs)
        sample_ids = self.helper.sample(time=time, outputs=cell_outputs, state=cell_state)
        finished, next_inputs, next_state = self.helper.next_inputs(
            time=time, outputs=cell_outputs, state=cell_state, sample_ids=sample_ids)
        if self._table is not None:
            self._prev_ids = sample_ids
        return BasicDecoderOutput(cell_outputs, sample_ids), next_state, next_inputs, finished


def _empty_outputs(decoder: Decoder, batch: int, like: torch.Tensor) -> Any:
    def empty(size, dtype):
        dims = (size,) if isinstance(size, int) else tuple(size)
        return torch.zeros((0, batch, *dims), dtype=dtype, device=like.device)

    return nest.map_structure(empty, decoder.output_size, decoder.output_dtype)


def _default_check_every(device: torch.device) -> int:
    """Reading "all finished" costs a host synchronisation on a GPU, nothing on a CPU."""
    return CHECK_FINISHED_EVERY_CUDA if device.type == "cuda" else 1


#: Default ``check_finished_every`` on CUDA: the decode reads "all finished" every this
#: many steps (a host synchronisation each) and runs at most this many - 1 steps past the
#: end, whose results are dropped.
CHECK_FINISHED_EVERY_CUDA = 8


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
) -> tuple[Any, Any, torch.Tensor]:
    """Run ``decoder`` until every entry is finished (``tf.contrib.seq2seq.dynamic_decode``).

    Args:
        decoder: a :class:`Decoder`.
        output_time_major: return ``[time, batch, ...]`` outputs instead of ``[batch, time,
            ...]``.
        impute_finished: entries already finished emit zero outputs and keep their state.
        maximum_iterations: stop after this many steps (entries still running are marked
            finished).  Without it, a decode that runs :data:`DEFAULT_MAXIMUM_ITERATIONS`
            steps with entries still running raises ``RuntimeError``.
        check_finished_every: read "every entry finished" on the host only every this many
            steps (each read is a host synchronisation on a GPU).  Steps run past the end
            are dropped: outputs, final state and lengths are exactly those of checking
            every step.  Default: 1 on CPU, :data:`CHECK_FINISHED_EVERY_CUDA` on CUDA.

    Returns:
        ``(final_outputs, final_state, final_sequence_lengths)``; ``final_sequence_lengths``
        is ``[batch]`` int64, the step at which each entry finished plus one; for a decoder
        that tracks its own finished flags and carries ``state.lengths`` (beam search), those
        lengths ``[batch, beam]``.
    """
    if not isinstance(decoder, Decoder):
        raise TypeError(f"decoder must be a Decoder, received {type(decoder).__name__}")
    if maximum_iterations is not None:
        maximum_iterations = _checks.as_int("maximum_iterations", maximum_iterations)
        if maximum_iterations < 0:
            raise ValueError(f"maximum_iterations must be >= 0, received {maximum_iterations}")
    cell = getattr(decoder, "cell", None)
    if isinstance(cell, torch.nn.Module):
        start_sequence(cell)

    finished, inputs, state = decoder.initialize()
    finished = _checks.as_flags("finished (from decoder.initialize)", finished)
    every = (_default_check_every(finished.device) if check_finished_every is None
             else _checks.as_int("check_finished_every", check_finished_every))
    if every < 1:
        raise ValueError(f"check_finished_every must be >= 1, received {every}")
    if maximum_iterations is not None and maximum_iterations == 0:
        finished = torch.ones_like(finished)
    lengths = torch.zeros(finished.shape, dtype=torch.long, device=finished.device)
    bound = maximum_iterations
    natural = decoder.max_steps()
    outputs: list[Any] = []
    # after each step: (all finished?, state, lengths); the loop may run past the end
    trail: list[tuple[torch.Tensor, Any, torch.Tensor]] = []
    zero_outputs = None
    time = 0
    done_at_start = finished.all()
    while True:
        if time % every == 0 and bool(trail[-1][0] if trail else done_at_start):
            break
        if bound is not None and time >= bound:
            break
        if bound is None and natural is None and time >= DEFAULT_MAXIMUM_ITERATIONS:
            if bool(trail[-1][0] if trail else done_at_start):
                break
            raise RuntimeError(
                f"dynamic_decode ran {DEFAULT_MAXIMUM_ITERATIONS} steps and some entries have "
                "not finished; pass maximum_iterations= to bound the decode (or raise "
                "rnnkit.seq2seq.decoder.DEFAULT_MAXIMUM_ITERATIONS)"
            )
        step_out, step_state, next_inputs, step_finished = decoder.step(time, inputs, state)
        if not isinstance(step_finished, torch.Tensor):
            step_finished = _checks.as_flags("finished (from decoder.step)", step_finished,
                                             finished.shape, finished.device)
        if decoder.tracks_own_finished:
            next_finished = step_finished
        else:
            next_finished = step_finished | finished
        own_lengths = getattr(step_state, "lengths", None) if decoder.tracks_own_finished else None
        if own_lengths is not None:
            # beam search reorders hypotheses: its state carries their lengths
            lengths = own_lengths
        else:
            lengths = torch.where(finished, lengths, torch.full_like(lengths, time + 1))
        if time == 0:
            nest.assert_same_structure(state, step_state, what="decoder step state")
        if maximum_iterations is not None and time + 1 >= maximum_iterations:
            next_finished = torch.ones_like(next_finished)
        if impute_finished:
            if zero_outputs is None:
                zero_outputs = nest.map_structure(torch.zeros_like, step_out)
            step_out = nest.map_structure(
                lambda out, zero, done=finished: torch.where(_bcast(done, out), zero, out),
                step_out, zero_outputs)
            step_state = nest.map_structure(
                lambda new, cur, done=finished: new
                if not isinstance(new, torch.Tensor) or new.dim() == 0
                else torch.where(_bcast(done, new), cur, new),
                step_state, state)
        outputs.append(step_out)
        state, inputs, finished = step_state, next_inputs, next_finished
        trail.append((finished.all(), state, lengths))
        if len(trail) > every:
            trail.pop(0)  # older entries can no longer be the end
        time += 1

    if every > 1 and trail:  # drop the steps run after every entry had finished
        done = torch.stack([t[0] for t in trail]).tolist()
        first = next((i for i, d in enumerate(done) if d), len(done) - 1)
        extra = len(done) - 1 - first
        if extra:
            outputs = outputs[: len(outputs) - extra]
            _, state, lengths = trail[first]
    if outputs:
        final_outputs = nest.map_structure(lambda *xs: torch.stack(xs), *outputs)
    else:
        final_outputs = _empty_outputs(decoder, finished.shape[0], finished)
    try:
        final_outputs, state = decoder.finalize(final_outputs, state, lengths)
    except NotImplementedError:
        pass
    if not output_time_major:
        final_outputs = nest.map_structure(
            lambda x: x.transpose(0, 1) if x.dim() >= 2 else x, final_outputs)
    return final_outputs, state, lengths


def _bcast(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``[batch]`` (or ``[batch, beam]``) mask viewed to broadcast against ``like``."""
    if like.shape[: mask.dim()] != mask.shape:
        # a [batch * beam, ...] leaf against a [batch, beam] mask
        mask = mask.reshape(-1)
    return mask.view(*mask.shape, *([1] * (like.dim() - mask.dim())))
