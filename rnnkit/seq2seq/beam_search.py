"""Beam search: BeamSearchDecoder, tile_batch, gather_tree and their state/output tuples.

Shapes: ``batch`` entries with ``beam_width`` hypotheses each.  The wrapped cell runs on
``[batch * beam_width, ...]`` (entries are repeated consecutively, as :func:`tile_batch`
makes them); the decoder state keeps them split as ``[batch, beam_width, ...]``.  Each step
is computed on the device with no host synchronisation; :func:`dynamic_decode` checks once
per step whether every hypothesis has finished.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from rnnkit import _checks, nest
from rnnkit.rnn.cell import RNNCell, require_cell
from rnnkit.seq2seq import decode_graphs
from rnnkit.seq2seq.decode_graphs import GraphBindings
from rnnkit.seq2seq.decoder import CellDecoder, Decoder
from rnnkit.seq2seq.helper import EmbeddingLookup
from rnnkit.tensor_array import TensorArray

__all__ = [
    "BeamSearchDecoder",
    "BeamSearchDecoderOutput",
    "BeamSearchDecoderState",
    "BeamSearchDecoderStateWithHistory",
    "FinalBeamSearchDecoderOutput",
    "gather_tree",
    "gather_tree_from_array",
    "length_penalty",
    "tile_batch",
]


class BeamSearchDecoderState(NamedTuple):
    """TF's beam search state.

    Attributes:
        cell_state: the cell's state, leaves ``[batch, beam, ...]``.
        log_probs: ``[batch, beam]`` total log-probability of each hypothesis.
        finished: ``[batch, beam]`` bool.
        lengths: ``[batch, beam]`` int64 hypothesis lengths (the end token counts).
        accumulated_attention_probs: ``[batch, beam, memory_time]`` summed alignments (only
            with a coverage penalty), else ``()``.
    """

    cell_state: Any
    log_probs: torch.Tensor
    finished: torch.Tensor
    lengths: torch.Tensor
    accumulated_attention_probs: Any


class BeamSearchDecoderStateWithHistory(NamedTuple):
    """The state with ``no_repeat_ngram_size`` (rnnkit's option): TF's five fields and
    ``token_history [batch, beam, time]`` int64, each hypothesis's tokens so far."""

    cell_state: Any
    log_probs: torch.Tensor
    finished: torch.Tensor
    lengths: torch.Tensor
    accumulated_attention_probs: Any
    token_history: torch.Tensor


class BeamSearchDecoderOutput(NamedTuple):
    """Per step: ``scores`` ``[batch, beam]`` float, ``predicted_ids`` and ``parent_ids``
    ``[batch, beam]`` int64 (stacked over time by :func:`dynamic_decode`)."""

    scores: torch.Tensor
    predicted_ids: torch.Tensor
    parent_ids: torch.Tensor


class FinalBeamSearchDecoderOutput(NamedTuple):
    """``predicted_ids``: ``[batch, time, beam]`` full hypotheses (``gather_tree`` applied),
    best first; ``beam_search_decoder_output``: the raw per-step outputs."""

    predicted_ids: torch.Tensor
    beam_search_decoder_output: BeamSearchDecoderOutput


def tile_batch(t: Any, multiplier: int) -> Any:
    """Repeat every batch entry ``multiplier`` times consecutively: ``[batch, ...]`` ->
    ``[batch * multiplier, ...]`` (entry ``b`` occupies rows ``b*m .. b*m+m-1``).

    Works on nested structures; ``None`` leaves stay ``None``.
    """
    multiplier = _checks.as_count("multiplier", multiplier)

    def tile(x):
        if not isinstance(x, torch.Tensor):
            try:
                x = torch.as_tensor(x)
            except (TypeError, ValueError, RuntimeError) as e:
                raise TypeError(f"tile_batch needs tensors or arrays, received "
                                f"{type(x).__name__}") from e
        if x.dim() == 0:
            raise ValueError("tile_batch needs tensors with a batch dimension, received a scalar")
        return x.repeat_interleave(multiplier, dim=0)

    return nest.map_structure(tile, t)


def gather_tree(
    step_ids: torch.Tensor,
    parent_ids: torch.Tensor,
    max_sequence_lengths: torch.Tensor,
    end_token: int,
) -> torch.Tensor:
    """Follow parent pointers back from the last step to recover each beam's full sequence.

    Args:
        step_ids: ``[max_time, batch, beam]`` token chosen at each step.
        parent_ids: ``[max_time, batch, beam]`` beam each token extends.  Only the parents
            on a traced path are read (steps past an entry's length, and step 0, may hold
            anything, e.g. TF's ``-1`` padding); a traced parent outside ``[0, beam)`` is
            an error naming where it is.
        max_sequence_lengths: ``[batch]`` steps to trace per entry (cut at ``max_time``).
        end_token: filler past ``max_sequence_lengths`` and after a hypothesis's first
            end token.

    Returns:
        ``[max_time, batch, beam]`` int64 token ids (on the inputs' device; CUDA inputs are
        traced on the host, one small kernel per step being mostly launch cost there).
    """
    if isinstance(step_ids, torch.Tensor) and step_ids.is_cuda:
        cpu = [t.cpu() if isinstance(t, torch.Tensor) else t
               for t in (step_ids, parent_ids, max_sequence_lengths)]
        return gather_tree(*cpu, end_token).to(step_ids.device)
    step_ids = _checks.as_ids("step_ids", step_ids)
    parent_ids = _checks.as_ids("parent_ids", parent_ids)
    end_token = _checks.as_int("end_token", end_token)
    _checks.rank("step_ids", step_ids, 3, "[max_time, batch, beam]")
    if parent_ids.shape != step_ids.shape:
        raise ValueError(f"parent_ids must have shape {tuple(step_ids.shape)}, received "
                         f"{tuple(parent_ids.shape)}")
    total, batch, beam = step_ids.shape
    lengths = _checks.as_lengths("max_sequence_lengths", max_sequence_lengths, batch, None,
                                 step_ids.device)
    out = torch.full_like(step_ids, end_token)
    ptr = torch.arange(beam, device=step_ids.device).expand(batch, beam)
    for t in range(total - 1, -1, -1):
        valid = (t < lengths)[:, None]
        out[t] = torch.where(valid, step_ids[t].gather(1, ptr), out[t])
        if t == 0:
            break  # step 0's parents lead nowhere
        parents = parent_ids[t].gather(1, ptr)
        bad = valid & ((parents < 0) | (parents >= beam))
        if bool(bad.any()):
            b, k = (int(i) for i in bad.nonzero()[0])
            raise ValueError(
                f"parent id parent_ids[{t}, {b}, {int(ptr[b, k])}] is {int(parents[b, k])}, "
                f"outside [0, {beam}) (followed from beam {k} of batch entry {b})")
        ptr = torch.where(valid, parents, ptr)
    is_end = out == end_token
    after_end = (is_end.long().cumsum(0) - is_end.long()) > 0
    return out.masked_fill(after_end, end_token)


def gather_tree_from_array(t: torch.Tensor, parent_ids: torch.Tensor,
                           sequence_length: torch.Tensor) -> torch.Tensor:
    """Reorder per-step beam values along the beam tree (tensorflow-addons'
    ``gather_tree_from_array``).

    Args:
        t: ``[max_time, batch, beam, ...]`` or ``[max_time, batch * beam, ...]`` values
            recorded at each step for each beam slot.
        parent_ids: ``[max_time, batch, beam]`` beam each step's token extends.
        sequence_length: ``[batch, beam]`` length of each final hypothesis.

    Returns:
        ``t``'s shape: entry ``[s, b, k]`` is the value of final hypothesis ``k``'s
        ancestor at step ``s``; at steps past a hypothesis's length the slot's own value.
    """
    parent_ids = _checks.as_ids("parent_ids", parent_ids)
    _checks.rank("parent_ids", parent_ids, 3, "[max_time, batch, beam]")
    total, batch, beam = parent_ids.shape
    t = _checks.tensor("t", t)
    merged = t.dim() >= 2 and t.shape[1] == batch * beam
    split = t.dim() >= 3 and tuple(t.shape[1:3]) == (batch, beam)
    if t.shape[:1] != (total,) or not (merged or split):
        raise ValueError(f"t must have shape [{total}, {batch}, {beam}, ...] or "
                         f"[{total}, {batch * beam}, ...] (parent_ids' [max_time, batch, "
                         f"beam]), received {tuple(t.shape)}")
    lengths = _checks.as_ids("sequence_length", sequence_length, parent_ids.device)
    if tuple(lengths.shape) != (batch, beam):
        raise ValueError(f"sequence_length must have shape {(batch, beam)}, received "
                         f"{tuple(lengths.shape)}")
    if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > total):
        raise ValueError(f"sequence_length values must lie in [0, {total}] (parent_ids' "
                         f"max_time), received min {int(lengths.min())} and max "
                         f"{int(lengths.max())}")
    slots = torch.arange(beam, device=parent_ids.device).expand(total, batch, beam)
    # the slots traced like tokens; beam + 1 is an "end token" that never occurs
    traced = gather_tree(slots, parent_ids, lengths.max(1).values, beam + 1)
    live = torch.arange(total, device=parent_ids.device)[:, None, None] < lengths[None]
    order = torch.where(live, traced, slots).to(t.device)
    flat = t.reshape(total, batch, beam, -1)
    return flat.gather(2, order[..., None].expand_as(flat)).reshape(t.shape)


def length_penalty(sequence_lengths: torch.Tensor, penalty_factor: float) -> torch.Tensor | float:
    """GNMT length penalty ``((5 + len) / 6) ** penalty_factor`` (Wu et al. 2016)."""
    if penalty_factor == 0:
        return 1.0
    return ((5.0 + sequence_lengths.to(torch.float32)) / 6.0) ** penalty_factor


def _end_row(vocab: int, end_token: int, dtype, device) -> torch.Tensor:
    """``[vocab]``: 0 at ``end_token``, the dtype's minimum elsewhere."""
    row = torch.full((vocab,), torch.finfo(dtype).min, dtype=dtype, device=device)
    row[end_token] = 0.0
    return row


def _mask_probs(probs: torch.Tensor, end_token: int, finished: torch.Tensor,
                end_row: torch.Tensor | None = None) -> torch.Tensor:
    """Finished hypotheses may only extend with ``end_token`` at no cost."""
    if end_row is None:
        end_row = _end_row(probs.shape[-1], end_token, probs.dtype, probs.device)
    return torch.where(finished[..., None], end_row, probs)


def _repeated_ngram_ends(history: torch.Tensor, n: int | torch.Tensor,
                         scores: torch.Tensor) -> torch.Tensor:
    """``scores``' shape ``[batch, beam, vocab]``, bool: the tokens that would repeat an
    ``n``-gram of ``history [batch, beam, time]`` (each hypothesis's tokens so far): token
    ``history[p]`` is banned when the ``n - 1`` tokens before position ``p`` are the last
    ``n - 1`` of the history (fairseq's rule; ``n = 1`` bans every token seen, ``n = 0``
    nothing).

    ``n`` may be an int64 scalar tensor: every shape then follows from ``history``'s alone
    (offsets ``1 .. time`` are compared; with an int only ``1 .. n - 1``), so one traced
    graph serves every ``n`` and every step, the first (``time = 0``) included."""
    time = history.shape[-1]
    span = time if torch.is_tensor(n) else min(n - 1, time)
    device = history.device
    pos = torch.arange(time, device=device)[:, None]  # p: where an earlier n-gram ends
    offset = torch.arange(1, span + 1, device=device)[None, :]  # d: 1 .. span
    before = pos - offset  # [time, span]: position of the d-th token before p
    earlier = history[..., before.clamp(min=0)]  # [batch, beam, time, span]
    latest = history[..., time - offset]  # [batch, beam, 1, span]: d-th from the end
    agree = (earlier == latest) & (before >= 0)
    match = (agree | (offset >= n)).all(-1)  # [batch, beam, time]
    if torch.is_tensor(n):
        match = match & (n > 0)
    counts = torch.zeros_like(scores, dtype=torch.float32)
    return counts.scatter_add(-1, history, match.to(torch.float32)) > 0


def _rows(state: Any) -> int | None:
    """Rows of the first tensor leaf with a batch dimension."""
    for leaf in nest.flatten(state):
        if isinstance(leaf, torch.Tensor) and leaf.dim() >= 1:
            return leaf.shape[0]
    return None


class BeamSearchDecoder(CellDecoder):
    """Beam search decoding (``tf.contrib.seq2seq.BeamSearchDecoder``).

    Args:
        cell: an :class:`RNNCell`.
        embedding: ``[vocab, dim]`` tensor or array, ``nn.Embedding`` or callable
            ``ids -> vectors``.
        start_tokens: ``[batch]`` ints.
        end_token: int.
        initial_state: the cell state for ``batch`` rows (tiled here) or, TF's way, already
            tiled to ``batch * beam_width`` rows with :func:`tile_batch`.  Attention memory
            may likewise be bound at ``batch`` rows (each step attends it tiled) or tiled.
        beam_width: hypotheses kept per entry.
        output_layer: optional module mapping cell outputs to vocabulary logits.
        length_penalty_weight: length penalty exponent ``alpha`` (0 disables it).
        coverage_penalty_weight: GNMT coverage penalty weight (needs a cell whose state
            holds attention: an ``AttentionWrapper``, alone or inside stacks and wrappers).
        reorder_tensor_arrays: reorder the per-step histories of the final cell state
            (alignment histories) along the beams' ancestry, as TF.
        min_length: the end token is impossible at the first ``min_length`` steps (each
            hypothesis has at least ``min_length`` tokens before its end token).
        no_repeat_ngram_size: ``n > 0`` forbids a hypothesis to repeat any ``n``-gram of its
            own generated tokens (fairseq's rule; the start token is not counted).  The
            state is then a :class:`BeamSearchDecoderStateWithHistory`.
        length_normalization: how ``length_penalty_weight`` divides the log-probability:
            ``"gnmt"`` (TF's, ``((5 + len) / 6) ** alpha``) or ``"average"`` (``len ** alpha``:
            with ``alpha = 1`` the mean log-probability per token, as fairseq and OpenNMT).
        output_all_scores: each step's ``scores`` output holds the score of every token
            extending every hypothesis, ``[batch, beam, vocab]`` (tensorflow-addons'
            option; the scores the hypotheses were chosen by), instead of the chosen
            hypotheses' scores ``[batch, beam]``.

    The search asks the cell only through its search hooks (:meth:`RNNCell.reorder_state`,
    :meth:`RNNCell.tiled_for_beams`, :meth:`RNNCell.attention_probabilities`), which wrappers
    and stacks pass on: a cell or mechanism of your own takes part by implementing them.

    Use with :func:`dynamic_decode` (``maximum_iterations`` recommended).  Its outputs are a
    :class:`FinalBeamSearchDecoderOutput` with ``predicted_ids [batch, time, beam]``, best
    hypothesis first; the lengths it returns are the hypotheses' ``[batch, beam]``.
    """

    def __init__(
        self,
        cell: RNNCell,
        embedding: Any,
        start_tokens: Any,
        end_token: int,
        initial_state: Any,
        beam_width: int,
        output_layer=None,
        length_penalty_weight: float = 0.0,
        coverage_penalty_weight: float = 0.0,
        reorder_tensor_arrays: bool = True,
        *,
        min_length: int = 0,
        no_repeat_ngram_size: int = 0,
        length_normalization: str = "gnmt",
        output_all_scores: bool = False,
    ):
        require_cell("cell", cell)
        beam_width = _checks.as_count("beam_width", beam_width)
        self.cell = cell
        self.output_layer = _checks.as_function("output_layer", output_layer)
        self._embedding_fn = EmbeddingLookup(embedding)
        self._vocab = self._embedding_fn.vocab_size
        initial_state = _checks.as_state(initial_state)
        device = nest.flatten(initial_state)[0].device
        self._start_tokens = _checks.as_ids("start_tokens", start_tokens, device)
        if self._start_tokens.dim() != 1:
            raise ValueError(f"start_tokens must be a vector [batch], received shape "
                             f"{tuple(self._start_tokens.shape)}")
        end_token = _checks.as_int("end_token", end_token)
        self._embedding_fn.check_ids("start_tokens", self._start_tokens)
        self._embedding_fn.check_ids("end_token", end_token)
        self._end_token = end_token
        self._batch = self._start_tokens.shape[0]
        self._beam = beam_width
        self._lp = _checks.as_number("length_penalty_weight", length_penalty_weight, low=0)
        self._cp = _checks.as_number("coverage_penalty_weight", coverage_penalty_weight, low=0)
        min_length = _checks.as_count("min_length", min_length, minimum=0)
        no_repeat_ngram_size = _checks.as_count("no_repeat_ngram_size", no_repeat_ngram_size,
                                                minimum=0)
        if length_normalization not in ("gnmt", "average"):
            raise ValueError(f'length_normalization must be "gnmt" or "average", received '
                             f"{length_normalization!r}")
        self._min_length = min_length
        self._ngram = no_repeat_ngram_size
        self._history = no_repeat_ngram_size > 0  # the state keeps the tokens so far
        self._normalization = length_normalization
        self._reorder = _checks.as_flag("reorder_tensor_arrays", reorder_tensor_arrays)
        self._all_scores = _checks.as_flag("output_all_scores", output_all_scores)
        rows = self._batch * beam_width
        given = _rows(initial_state)
        if given == self._batch and beam_width > 1:  # the encoder's batch: tile it here
            tile = torch.arange(self._batch, device=device).repeat_interleave(beam_width)
            initial_state = cell.reorder_state(initial_state, tile)
        elif given != rows:
            raise ValueError(
                f"initial_state has {given} rows; BeamSearchDecoder takes the encoder's "
                f"batch ({self._batch} rows, len(start_tokens)) or the state tiled for the "
                f"beams ({self._batch} * {beam_width} = {rows} rows, tile_batch)")
        cell.assert_state("initial_state", initial_state, rows)
        self._initial_cell_state = nest.map_structure(self._split, initial_state)
        self._masks: tuple[torch.Tensor, torch.Tensor] | None = None
        self._start_inputs = self._start_embedded()

    def _start_embedded(self) -> torch.Tensor:
        start = self._embedding_fn(self._start_tokens)  # [batch, dim]
        return start[:, None].expand(self._batch, self._beam, *start.shape[1:])

    def for_loop(self) -> Decoder:
        if not self._keeps_contract(BeamSearchDecoder):
            return self
        lookup = self._embedding_fn.projected(self.cell)
        if lookup is None:
            return self
        fast = copy.copy(self)
        fast._embedding_fn, fast._projected = lookup, True
        fast._start_inputs = fast._start_embedded()
        return fast

    # -- shapes ------------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self._batch

    @property
    def beam_width(self) -> int:
        """Hypotheses kept per batch entry."""
        return self._beam

    @property
    def tracks_own_finished(self) -> bool:
        return True

    @property
    def reorders_rows(self) -> bool:
        return True

    @property
    def output_size(self) -> BeamSearchDecoderOutput:
        k = torch.Size([self._beam])
        scores = torch.Size([self._beam, self._logits_width()]) if self._all_scores else k
        return BeamSearchDecoderOutput(scores, k, k)

    def _logits_width(self) -> int:
        """The vocabulary the logits span (for ``output_all_scores``' output size)."""
        if self.output_layer is None and isinstance(self.cell.output_size, int):
            return self.cell.output_size
        width = getattr(self.output_layer, "out_features", None)
        if isinstance(width, int):
            return width
        if self._vocab is not None:
            return self._vocab
        raise ValueError("output_all_scores: the vocabulary size is unknown before the first "
                         "step (give an output_layer with out_features or an embedding table)")

    @property
    def output_dtype(self) -> BeamSearchDecoderOutput:
        dtype = nest.flatten(self._initial_cell_state)[0].dtype
        return BeamSearchDecoderOutput(dtype, torch.int64, torch.int64)

    def _split(self, t: Any) -> Any:
        """``[batch * beam, ...]`` -> ``[batch, beam, ...]``; scalars and opaque leaves (an
        ``AlignmentHistory``) pass through."""
        if not isinstance(t, torch.Tensor) or t.dim() == 0:
            return t
        return t.reshape(self._batch, self._beam, *t.shape[1:])

    def _merge(self, t: Any) -> Any:
        if not isinstance(t, torch.Tensor) or t.dim() < 2:
            return t
        return t.reshape(self._batch * self._beam, *t.shape[2:])

    def _attention_probs(self, merged_state: Any) -> torch.Tensor:
        probs = self.cell.attention_probabilities(merged_state)
        if probs is None:
            raise ValueError("coverage_penalty_weight needs a cell whose state holds attention "
                             "(an AttentionWrapper, alone or in a stack or wrapper); "
                             f"{type(self.cell).__name__}'s holds none")
        return self._split(probs)

    # -- decoding ----------------------------------------------------------------------------
    def graph_bindings(self) -> GraphBindings:
        return decode_graphs.combine(
            GraphBindings(key=(self._beam, self._end_token, self._lp, self._cp,
                               self._min_length, self._ngram, self._normalization,
                               self._all_scores, self._projected)),
            self._embedding_fn.graph_bindings(),
            decode_graphs.module_bindings(self.cell))

    def initialize(self, name=None):
        self._masks = None  # made at the first step (from the logits' width)
        device = self._start_tokens.device
        dtype = nest.flatten(self._initial_cell_state)[0].dtype
        first = torch.zeros(self._batch, self._beam, dtype=torch.bool, device=device)
        first[:, 0] = True
        finished = ~first
        log_probs = torch.full((self._batch, self._beam), float("-inf"), dtype=dtype,
                               device=device).masked_fill(first, 0.0)
        acc = ()
        if self._cp > 0:
            acc = self._attention_probs(nest.map_structure(self._merge,
                                                           self._initial_cell_state))
        fields = dict(cell_state=self._initial_cell_state, log_probs=log_probs,
                      finished=finished,
                      lengths=torch.zeros(self._batch, self._beam, dtype=torch.long,
                                          device=device),
                      accumulated_attention_probs=acc)
        if self._history:
            state = BeamSearchDecoderStateWithHistory(
                **fields, token_history=torch.zeros(self._batch, self._beam, 0,
                                                    dtype=torch.long, device=device))
        else:
            state = BeamSearchDecoderState(**fields)
        return finished, self._start_inputs, state

    def step(self, time, inputs, state, name=None):
        batch, beam, end = self._batch, self._beam, self._end_token
        cell_state = nest.map_structure(self._merge, state.cell_state)
        cell_inputs = nest.map_structure(self._merge, inputs)
        with self.cell.tiled_for_beams(batch, beam):  # memory bound at the encoder's batch
            cell_out, next_cell_state = self._cell_step(cell_inputs, cell_state)
        if self.output_layer is not None:
            cell_out = self.output_layer(cell_out)
        logits = cell_out.reshape(batch, beam, -1)
        vocab = logits.shape[-1]
        if self._masks is None or self._masks[0].shape[0] != vocab:
            if self._vocab is not None and vocab > self._vocab:
                raise ValueError(f"the decoder emits {vocab} logits but the embedding holds "
                                 f"only {self._vocab} ids")
            if not 0 <= end < vocab:
                raise ValueError(f"end_token {end} is outside the {vocab} logits")
            not_end = torch.ones(vocab, dtype=torch.long, device=logits.device)
            not_end[end] = 0
            self._masks = (_end_row(vocab, end, logits.dtype, logits.device), not_end)
        end_row, not_end = self._masks

        prev_finished = state.finished
        not_finished = ~prev_finished
        step_log_probs = _mask_probs(F.log_softmax(logits, dim=-1), end, prev_finished, end_row)
        step_log_probs = self._constrain(step_log_probs, state, not_finished, not_end)
        total = state.log_probs[..., None] + step_log_probs
        new_lengths = state.lengths[..., None] + not_end * not_finished.long()[..., None]
        scores = total / self._length_penalty(new_lengths) if self._lp else total

        acc = None
        if self._cp > 0:
            probs = self._attention_probs(next_cell_state)
            acc = state.accumulated_attention_probs + probs * not_finished[..., None]
            scores = scores + self._coverage_penalty(acc, prev_finished)[..., None]

        next_scores, word_indices = torch.topk(scores.reshape(batch, -1), k=beam, dim=-1)
        next_log_probs = total.reshape(batch, -1).gather(1, word_indices)
        next_word_ids = word_indices % vocab
        next_beam_ids = torch.div(word_indices, vocab, rounding_mode="floor")

        parent_finished = prev_finished.gather(1, next_beam_ids)
        next_finished = parent_finished | (next_word_ids == end)
        next_len = state.lengths.gather(1, next_beam_ids) + (~parent_finished).long()

        def gather_beams(t: torch.Tensor) -> torch.Tensor:  # t: [batch, beam, ...]
            idx = next_beam_ids.view(batch, beam, *([1] * (t.dim() - 2))).expand_as(t)
            return t.gather(1, idx)

        rows = (next_beam_ids + torch.arange(batch, device=next_beam_ids.device)[:, None]
                * beam).reshape(-1)
        next_cell_state = nest.map_structure(
            self._split, self.cell.reorder_state(next_cell_state, rows))
        fields = dict(cell_state=next_cell_state, log_probs=next_log_probs,
                      finished=next_finished, lengths=next_len,
                      accumulated_attention_probs=gather_beams(acc) if acc is not None
                      else ())
        if self._history:
            history = torch.cat([gather_beams(state.token_history), next_word_ids[..., None]],
                                -1)
            next_state = BeamSearchDecoderStateWithHistory(**fields, token_history=history)
        else:
            next_state = BeamSearchDecoderState(**fields)
        output = BeamSearchDecoderOutput(scores if self._all_scores else next_scores,
                                         next_word_ids, next_beam_ids)
        next_inputs = self._embedding_fn(next_word_ids)
        return output, next_state, next_inputs, next_finished

    def _length_penalty(self, lengths: torch.Tensor) -> torch.Tensor:
        if self._normalization == "average":
            return lengths.clamp(min=1).to(torch.float32) ** self._lp
        return length_penalty(lengths, self._lp)

    def _constrain(self, step_log_probs: torch.Tensor, state, not_finished: torch.Tensor,
                   not_end: torch.Tensor) -> torch.Tensor:
        """``min_length`` and ``no_repeat_ngram_size`` on running hypotheses, computed on the
        device from the state alone (no step counter: a running hypothesis's length is the
        number of steps taken).  Either may be an int or an int64 scalar tensor (an
        exported decode feeds them); a value of 0 turns it off."""
        banned = None
        if torch.is_tensor(self._min_length) or self._min_length:
            short = state.lengths < self._min_length  # [batch, beam]
            banned = short[..., None] & (not_end == 0)  # the end token
        if self._history:
            hits = _repeated_ngram_ends(state.token_history, self._ngram, step_log_probs)
            banned = hits if banned is None else banned | hits
        if banned is None:
            return step_log_probs
        return step_log_probs.masked_fill(banned & not_finished[..., None], float("-inf"))

    def _coverage_penalty(self, acc: torch.Tensor, finished: torch.Tensor) -> torch.Tensor:
        """GNMT's coverage penalty ``weight * sum_j log(min(acc_j, 1))`` ``[batch, beam]``,
        on finished hypotheses only.  As TF, memory positions never attended (padding past
        ``memory_sequence_length``, accumulated probability 0) count as 1, not ``log 0``."""
        acc = torch.where(acc == 0, torch.ones_like(acc), acc)
        coverage = torch.log(torch.clamp(acc, max=1.0)).sum(-1)
        return torch.where(finished, self._cp * coverage, torch.zeros_like(coverage))

    def finalize(self, outputs: BeamSearchDecoderOutput, final_state, sequence_lengths):
        """Trace the beams back (``outputs`` are time-major ``[time, batch, beam]``)."""
        max_lengths = final_state.lengths.max(dim=1).values
        predicted = gather_tree(outputs.predicted_ids, outputs.parent_ids, max_lengths,
                                self._end_token)
        if self._reorder:
            final_state = final_state._replace(cell_state=nest.map_structure(
                lambda t: _reorder_history(t, outputs.parent_ids, final_state.lengths),
                final_state.cell_state))
        return FinalBeamSearchDecoderOutput(predicted, outputs), final_state

    def final_sequence_lengths(self, final_state, sequence_lengths):
        """The hypotheses' own lengths ``[batch, beam]`` (they are reordered every step)."""
        return final_state.lengths


def _reorder_history(leaf: Any, parent_ids: torch.Tensor, lengths: torch.Tensor) -> Any:
    """A per-step history (a ``TensorArray`` such as an alignment history) reordered along
    the beam tree as TF's ``reorder_tensor_arrays`` does (:func:`gather_tree_from_array`
    with the final hypotheses' lengths)."""
    if not isinstance(leaf, TensorArray) or len(leaf) == 0:
        return leaf
    return type(leaf).of(tuple(gather_tree_from_array(leaf.stack(), parent_ids,
                                                      lengths).unbind(0)))
