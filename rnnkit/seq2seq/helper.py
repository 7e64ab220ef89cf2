"""Helpers: how a decoder samples at each step and what it feeds to the next step.

``tf.contrib.seq2seq`` helpers with the same names and arguments.  A helper is a plain
object (not a module) made per batch; ``time`` is a Python int.

Shapes: ``batch_size`` entries; ``finished`` is ``[batch]`` bool; ``sample_ids`` is
``[batch, *sample_ids_shape]``; inputs are ``[batch, depth]``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit import _checks, nest
from rnnkit.generators import SeededGenerators
from rnnkit.rnn.cell import overridden_below
from rnnkit.seq2seq.decode_graphs import GraphBindings, NotCapturable, combine

__all__ = [
    "MAX_PROJECTED_TABLE_BYTES",
    "CustomHelper",
    "EmbeddingLookup",
    "GreedyEmbeddingHelper",
    "Helper",
    "InferenceHelper",
    "SampleEmbeddingHelper",
    "ScheduledEmbeddingTrainingHelper",
    "ScheduledOutputTrainingHelper",
    "TrainingHelper",
    "filter_logits",
    "sample_categorical",
]


class Helper:
    """Interface (``tf.contrib.seq2seq.Helper``).

    Subclasses define the properties ``batch_size``, ``sample_ids_shape``,
    ``sample_ids_dtype`` and the methods ``initialize() -> (finished, first_inputs)``,
    ``sample(time, outputs, state) -> sample_ids`` and
    ``next_inputs(time, outputs, state, sample_ids) -> (finished, next_inputs, next_state)``.
    Methods may take a trailing ``name=None`` as in TF; it is ignored.
    """

    @property
    def batch_size(self) -> int:
        """Rows of every tensor the helper returns."""
        raise NotImplementedError

    @property
    def sample_ids_shape(self) -> torch.Size:
        """Shape of one row's sample ids (``[]`` for token ids)."""
        raise NotImplementedError

    @property
    def sample_ids_dtype(self) -> torch.dtype:
        """dtype of the sample ids (``torch.int64`` for token ids)."""
        raise NotImplementedError

    def initialize(self, name: str | None = None) -> tuple[torch.Tensor, Any]:
        """``(finished [batch] bool, first_inputs [batch, depth])`` before the first step."""
        raise NotImplementedError

    def sample(self, time: int, outputs: torch.Tensor, state: Any,
               name: str | None = None) -> torch.Tensor:
        """``sample_ids [batch, *sample_ids_shape]`` from the cell's (projected) ``outputs
        [batch, output_depth]`` at step ``time`` (an int)."""
        raise NotImplementedError

    def next_inputs(self, time: int, outputs: torch.Tensor, state: Any,
                    sample_ids: torch.Tensor,
                    name: str | None = None) -> tuple[torch.Tensor, Any, Any]:
        """``(finished [batch] bool, next_inputs [batch, depth], next_state)`` after step
        ``time``; ``state`` is passed through unless the helper changes it.  Built-in
        helpers never read a tensor value on the host here (see ``dynamic_decode``)."""
        raise NotImplementedError

    def max_steps(self) -> int | None:
        """An upper bound on the decode length when the helper knows one (else ``None``)."""
        return None

    def projected(self, cell) -> Helper | None:
        """A copy of this helper that feeds rows of ``cell``'s projected embedding table
        (``cell.project_inputs`` of each embedding) instead of embeddings, or ``None`` when
        it has none.  :class:`~rnnkit.seq2seq.BasicDecoder` decodes with it internally (a
        gather instead of a matmul per step); this helper is not changed."""
        return None

    def graph_bindings(self) -> GraphBindings:
        """What a CUDA graph of this helper's steps depends on (see
        :mod:`rnnkit.seq2seq.decode_graphs`): the Python configuration the steps bake in
        and the attributes holding per-decode tensors.  Helpers that cannot tell raise
        :class:`~rnnkit.seq2seq.decode_graphs.NotCapturable` (the default)."""
        raise NotCapturable(f"{type(self).__name__} does not declare graph_bindings() (its "
                            "functions are opaque to rnnkit)")


class EmbeddingLookup:
    """``ids [...] -> vectors [..., dim]`` for an embedding argument: a ``[vocab, dim]``
    tensor or array, an ``nn.Embedding`` or a callable (the one place rnnkit tells these
    apart).

    The table lives in the ``table`` attribute, so a CUDA graph of the steps can rebind it
    (:meth:`graph_bindings`).  :meth:`projected` gives the lookup of a cell's projected
    table, which decoders use internally to skip the cell's input matmul at every step.
    """

    def __init__(self, embedding: Any, name: str = "embedding"):
        self.module: nn.Module | None = None
        self.fn: Callable | None = None
        self.table: torch.Tensor | None = None
        if isinstance(embedding, nn.Embedding):
            self.module = embedding
        elif isinstance(embedding, (torch.Tensor, np.ndarray)):
            table = _checks.as_inputs(name, embedding)
            _checks.rank(name, table, 2, "[vocab_size, embedding_dim]")
            _checks.floating(name, table)
            self.table = table
        elif callable(embedding):
            self.fn = embedding
        else:
            raise TypeError(
                f"{name} must be a [vocab, dim] tensor or array, an nn.Embedding or a "
                f"callable, received {type(embedding).__name__}")

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        if self.table is not None:
            return self.table[ids]
        return self.module(ids) if self.module is not None else self.fn(ids)

    @property
    def matrix(self) -> torch.Tensor | None:
        """The ``[vocab, dim]`` table (``None`` for a callable)."""
        return self.module.weight if self.module is not None else self.table

    @property
    def vocab_size(self) -> int | None:
        """Rows of the table (``None`` for a callable)."""
        m = self.matrix
        return None if m is None else m.shape[0]

    @property
    def device(self) -> torch.device | None:
        """The table's device (``None`` for a callable)."""
        m = self.matrix
        return None if m is None else m.device

    def check_ids(self, name: str, ids: Any) -> None:
        """``ids`` must lie in ``[0, vocab_size)`` when the vocabulary is known."""
        vocab = self.vocab_size
        if vocab is None:
            return
        t = torch.as_tensor(ids)
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= vocab):
            raise ValueError(f"{name} must lie in [0, {vocab}), received {t.tolist()}")

    def projected(self, cell: Any) -> EmbeddingLookup | None:
        """The lookup of ``cell.project_inputs(table)`` ``[vocab, projected]`` when the cell
        hoists its input projection and the table is small enough
        (:data:`MAX_PROJECTED_TABLE_BYTES`); else ``None``."""
        table = self.matrix
        if table is None or table.shape[0] == 0 or not cell.hoists_inputs():
            return None
        cell.maybe_build(table[:1])
        probe = cell.project_inputs(table[:1])
        if probe is None or probe.dim() != 2:
            return None
        if table.shape[0] * probe.shape[1] * probe.element_size() > MAX_PROJECTED_TABLE_BYTES:
            return None
        return EmbeddingLookup(cell.project_inputs(table))

    def graph_bindings(self) -> GraphBindings:
        """A graph of the steps rebinds the table unless it is a parameter (a parameter
        keeps its address); a callable is opaque."""
        if self.fn is not None:
            raise NotCapturable("the embedding is a callable, opaque to rnnkit (pass the "
                                "[vocab, dim] tensor or an nn.Embedding)")
        if self.table is not None and not isinstance(self.table, nn.Parameter):
            return GraphBindings(slots=((self, "table"),))
        return GraphBindings()


#: Largest projected embedding table (bytes) that decoders precompute.
MAX_PROJECTED_TABLE_BYTES = 64 << 20


def _time_slices(owner: Any, attribute: str) -> list:
    """``getattr(owner, attribute)`` (``[time, ...]`` leaves) as a list of per-time
    structures, made by ``unbind`` (``x[t]`` on a tensor that requires grad would make
    backward quadratic in time).  Cached until the attribute holds another object, so a
    CUDA graph capture that rebinds it slices the rebound value."""
    value = getattr(owner, attribute)
    cache = owner.__dict__.get("_time_slices", {})
    cached = cache.get(attribute)
    if cached is None or cached[0] is not value:
        per_leaf = [leaf.unbind(0) for leaf in nest.flatten(value)]
        slices = [nest.pack_sequence_as(value, [steps[t] for steps in per_leaf])
                  for t in range(len(per_leaf[0]))]
        cached = cache[attribute] = (value, slices)
        owner.__dict__["_time_slices"] = cache
    return cached[1]


def _time_major(name: str, inputs: Any, time_major: bool) -> Any:
    time_major = _checks.as_flag("time_major", time_major)
    if not nest.is_nested(inputs):
        inputs = _checks.as_inputs(name, inputs)  # numpy, as TF accepted
    for leaf in nest.flatten(inputs):
        _checks.tensor(name, leaf)
        if leaf.dim() < 3:
            raise ValueError(
                f"{name} must have rank >= 3 ([batch, time, depth]), received shape "
                f"{tuple(leaf.shape)}"
            )
    return inputs if time_major else nest.map_structure(lambda x: x.transpose(0, 1), inputs)


class TrainingHelper(Helper):
    """Teacher forcing: reads ``inputs[:, t]`` at step ``t`` (``TrainingHelper``).

    Args:
        inputs: ``[batch, time, depth]`` (``[time, batch, depth]`` if ``time_major``), or a
            structure of such tensors.
        sequence_length: ``[batch]`` ints in ``[0, time]``; entry ``b`` is finished after
            ``sequence_length[b]`` steps.

    ``sample`` is the argmax of the outputs (``int64``).
    """

    def __init__(self, inputs: Any, sequence_length: Any, time_major: bool = False, name=None):
        self._inputs = _time_major("inputs", inputs, time_major)
        first = nest.flatten(self._inputs)[0]
        self._max_time = first.shape[0]
        self._batch = first.shape[1]
        for leaf in nest.flatten(self._inputs):
            if leaf.shape[:2] != first.shape[:2]:
                raise ValueError("inputs leaves must agree on [batch, time]")
        self._sequence_length = _checks.as_lengths(
            "sequence_length", sequence_length, self._batch, self._max_time, first.device)
        self._zero_inputs = nest.map_structure(lambda x: x.new_zeros(x.shape[1:]), self._inputs)

    @property
    def inputs(self):
        """The inputs, time-major: ``[time, batch, depth]``."""
        return self._inputs

    @property
    def sequence_length(self) -> torch.Tensor:
        """``[batch]`` int64 lengths."""
        return self._sequence_length

    @property
    def batch_size(self) -> int:
        return self._batch

    @property
    def sample_ids_shape(self) -> torch.Size:
        return torch.Size([])

    @property
    def sample_ids_dtype(self) -> torch.dtype:
        return torch.int64

    def max_steps(self) -> int:
        return self._max_time

    def _inputs_at(self, t: int, finished: torch.Tensor) -> Any:
        # as TF: zeros once every entry is finished (decided on the device, no host sync)
        if t >= self._max_time:
            return self._zero_inputs
        done = finished.all()
        return nest.map_structure(lambda z, x: torch.where(done, z, x), self._zero_inputs,
                                  _time_slices(self, "_inputs")[t])

    def initialize(self, name=None):
        finished = self._sequence_length <= 0
        return finished, self._inputs_at(0, finished)

    def sample(self, time, outputs, state, name=None):
        return torch.argmax(outputs, dim=-1)

    def next_inputs(self, time, outputs, state, sample_ids, name=None):
        next_time = time + 1
        finished = next_time >= self._sequence_length
        return finished, self._inputs_at(next_time, finished), state

    def graph_bindings(self) -> GraphBindings:
        return GraphBindings(key=(type(self).__name__, self._max_time), slots=(
            (self, "_inputs"), (self, "_sequence_length"), (self, "_zero_inputs")))


class GreedyEmbeddingHelper(Helper):
    """Feeds back the embedding of the argmax (``GreedyEmbeddingHelper``).

    Args:
        embedding: ``[vocab, dim]`` tensor, ``nn.Embedding``, or callable ``ids -> vectors``.
        start_tokens: ``[batch]`` ints.
        end_token: int; an entry is finished once it samples it.  ``None``: never (bound
            the decode with ``maximum_iterations``), e.g. for free-running text generation.
    """

    def __init__(self, embedding: Any, start_tokens: Any, end_token: int | None):
        self._embedding_fn = EmbeddingLookup(embedding)
        self._vocab = self._embedding_fn.vocab_size
        self._start_tokens = _checks.as_ids("start_tokens", start_tokens,
                                            self._embedding_fn.device)
        if self._start_tokens.dim() != 1:
            raise ValueError(
                f"start_tokens must be a vector [batch], received shape "
                f"{tuple(self._start_tokens.shape)}"
            )
        self._embedding_fn.check_ids("start_tokens", self._start_tokens)
        if end_token is not None:
            end_token = _checks.as_int("end_token", end_token)
            self._embedding_fn.check_ids("end_token", end_token)
        self._end_token = end_token
        self._batch = self._start_tokens.shape[0]
        self._embedding = embedding
        self._start_inputs = self._embedding_fn(self._start_tokens)
        first = nest.flatten(self._start_inputs)[0]
        if self._embedding_fn.fn is not None and isinstance(first, torch.Tensor):
            # a function of ids: the vectors it returns say where the decode runs
            self._start_tokens = self._start_tokens.to(first.device)

    def projected(self, cell) -> Helper | None:
        if overridden_below(self, GreedyEmbeddingHelper, ("initialize", "next_inputs")):
            return None  # a subclass changes what is fed: feed it as written
        lookup = self._embedding_fn.projected(cell)
        if lookup is None:
            return None
        view = copy.copy(self)
        view._embedding_fn = lookup
        view._start_inputs = lookup(self._start_tokens)
        return view

    def graph_bindings(self) -> GraphBindings:
        return combine(GraphBindings(key=(type(self).__name__, self._end_token),
                                     slots=((self, "_start_inputs"),)),
                       self._embedding_fn.graph_bindings())

    @property
    def embedding(self) -> Any:
        """The embedding as given: a ``[vocab, dim]`` tensor, an ``nn.Embedding`` or a
        function of ids."""
        return self._embedding

    @property
    def start_tokens(self) -> torch.Tensor:
        """``[batch]`` int64 ids fed at the first step."""
        return self._start_tokens

    @property
    def batch_size(self) -> int:
        return self._batch

    @property
    def sample_ids_shape(self) -> torch.Size:
        return torch.Size([])

    @property
    def sample_ids_dtype(self) -> torch.dtype:
        return torch.int64

    def initialize(self, name=None):
        finished = torch.zeros(self._batch, dtype=torch.bool, device=self._start_tokens.device)
        return finished, self._start_inputs

    def _check_outputs(self, outputs) -> None:
        if not isinstance(outputs, torch.Tensor):
            raise TypeError(f"expected outputs to be a single tensor, received "
                            f"{type(outputs).__name__}")
        if self._vocab is not None and outputs.shape[-1] > self._vocab:
            raise ValueError(f"the decoder emits {outputs.shape[-1]} logits but the embedding "
                             f"holds only {self._vocab} ids")

    def sample(self, time, outputs, state, name=None):
        self._check_outputs(outputs)
        return torch.argmax(outputs, dim=-1)

    def next_inputs(self, time, outputs, state, sample_ids, name=None):
        # As TF: once every entry is finished, feed the start inputs (decided on the device).
        if self._end_token is None:
            finished = torch.zeros_like(sample_ids, dtype=torch.bool)
        else:
            finished = sample_ids == self._end_token
        embedded = self._embedding_fn(sample_ids)
        return finished, torch.where(finished.all(), self._start_inputs, embedded), state


class SampleEmbeddingHelper(GreedyEmbeddingHelper):
    """Samples from ``softmax(outputs / softmax_temperature)`` (``SampleEmbeddingHelper``).

    Each draw is the inverse CDF of the (filtered) softmax at one uniform (see
    :func:`sample_categorical`).  The uniforms come from PyTorch's generator: ``seed`` makes
    them reproducible (a private ``torch.Generator``), or from ``uniforms``: a ``[time,
    batch]`` tensor of values in ``[0, 1)``, step ``t`` reading row ``t``.  Uniforms computed
    outside PyTorch (e.g. :func:`rnnkit.generators.stable_uniforms`) give draws that code
    without PyTorch (an exported ONNX sampler) reproduces.  ``seed`` and ``uniforms`` are
    exclusive; with ``uniforms`` a decode may run at most ``time`` steps.
    """

    def __init__(self, embedding, start_tokens, end_token, softmax_temperature=None,
                 seed: int | None = None, *, top_k: int | None = None,
                 top_p: float | None = None, uniforms: Any = None):
        super().__init__(embedding, start_tokens, end_token)
        if softmax_temperature is not None:
            softmax_temperature = _checks.as_number("softmax_temperature", softmax_temperature,
                                                    low=0, low_open=True)
            if torch.tensor(softmax_temperature, dtype=torch.float32).item() == 0:
                raise ValueError(f"softmax_temperature must be a positive float32 (at least "
                                 f"{2.0 ** -149:.3g}), received {softmax_temperature!r}")
        self._temperature = softmax_temperature
        self._top_k, self._top_p = check_sampling_filters(top_k, top_p)
        if uniforms is not None and seed is not None:
            raise ValueError(f"give seed or uniforms, not both (received seed={seed!r} and "
                             "uniforms)")
        self._uniforms = None if uniforms is None else _check_uniforms(
            uniforms, self._batch, self._start_tokens.device)
        self._generator = _make_generator(seed, self._start_tokens.device)

    def graph_bindings(self) -> GraphBindings:
        base = super().graph_bindings()
        if self._uniforms is None:
            return GraphBindings(key=(*base.key, self._temperature, self._top_k, self._top_p),
                                 slots=(*base.slots, (self, "_generator")))
        return GraphBindings(key=(*base.key, self._temperature, self._top_k, self._top_p,
                                  "uniforms", tuple(self._uniforms.shape)),
                             slots=(*base.slots, (self, "_uniforms")))

    def sample(self, time, outputs, state, name=None):
        self._check_outputs(outputs)
        uniform = None
        if self._uniforms is not None:
            if time >= self._uniforms.shape[0]:
                raise ValueError(f"uniforms holds {self._uniforms.shape[0]} steps' draws; "
                                 f"step {time} needs one more row (give maximum_iterations "
                                 f"<= {self._uniforms.shape[0]})")
            uniform = self._uniforms[time]
        return sample_categorical(outputs, self._generator, self._temperature, self._top_k,
                                  self._top_p, uniform=uniform)


def _check_uniforms(uniforms: Any, batch: int, device) -> torch.Tensor:
    """``uniforms`` as a float64 ``[time, batch]`` tensor on ``device``, its values in
    ``[0, 1)`` (checked once, here)."""
    u = torch.as_tensor(uniforms)
    if not (u.dtype.is_floating_point and u.dim() == 2 and u.shape[1] == batch):
        raise ValueError(f"uniforms must be a floating [time, batch]=[time, {batch}] tensor, "
                         f"received {u.dtype} of shape {tuple(u.shape)}")
    u = u.to(device=device, dtype=torch.float64)
    if u.numel() and not bool(((u >= 0) & (u < 1)).all()):
        raise ValueError(f"uniforms must lie in [0, 1), received values in "
                         f"[{float(u.min())}, {float(u.max())}]")
    return u


def check_sampling_filters(top_k: Any, top_p: Any) -> tuple[int | None, float | None]:
    """``top_k`` a positive int, ``top_p`` a number in ``(0, 1]`` (or ``None``); returned as
    Python ``int`` / ``float``."""
    if top_k is not None:
        top_k = _checks.as_count("top_k", top_k)
    if top_p is not None:
        top_p = _checks.as_number("top_p", top_p, low=0, low_open=True, high=1)
    return top_k, top_p


_UNSAMPLABLE = ("cannot sample: a row of the logits holds NaN or no finite value "
                "(nothing to draw from)")


def sample_categorical(logits: torch.Tensor, generator: torch.Generator | None = None,
                       temperature: float | torch.Tensor | None = None,
                       top_k: int | torch.Tensor | None = None,
                       top_p: float | torch.Tensor | None = None, *,
                       uniform: torch.Tensor | None = None) -> torch.Tensor:
    """One id per row of ``logits [batch, vocab]`` drawn from ``softmax(logits /
    temperature)`` restricted by :func:`filter_logits`: int64 ``[batch]``.

    Every sampler draws here, by the inverse CDF: row ``b``'s id is the first whose
    cumulative probability (summed in float64) exceeds ``uniform[b]`` times the row's total,
    so a token of probability 0 is never drawn.  ``uniform``: float ``[batch]`` values in
    ``[0, 1)`` (not checked here: :class:`SampleEmbeddingHelper` checks its ``uniforms``
    once); ``None``: ``torch.rand`` from ``generator`` (PyTorch's default one when ``None``).
    The same uniforms give the same ids wherever this arithmetic is repeated (the exported
    char-RNN sampler repeats it in ONNX).

    The logits are shifted by their row maximum before the temperature divides them, so any
    temperature > 0 is exact (a tiny one picks the most likely token instead of
    overflowing); temperature 0 is the argmax (greedy).  ``temperature``, ``top_k`` and
    ``top_p`` may be 0-dim tensors (applied without reading them on the host, e.g. in a
    traced graph; see :func:`filter_logits`).  Logits with a row that has no distribution to
    draw from (a NaN, or every logit ``-inf``) are refused without reading the device: a
    ``ValueError`` on CPU tensors, a device-side assertion with the same message on a GPU
    (raised at the next synchronisation, as PyTorch's own checks are); not checked while
    tracing.
    """
    logits = logits.float()
    top = logits.amax(-1, keepdim=True)
    if not torch.jit.is_tracing():
        samplable = (torch.isfinite(top) & ~torch.isnan(logits).any(-1, keepdim=True)).all()
        try:
            torch._assert_async(samplable, _UNSAMPLABLE)
        except RuntimeError:  # CPU tensors: raised here, synchronously
            raise ValueError(_UNSAMPLABLE) from None
    greedy, raw = None, logits
    if isinstance(temperature, torch.Tensor):
        greedy = temperature <= 0
        logits = (logits - top) / torch.where(greedy, torch.ones_like(temperature),
                                              temperature)
    elif temperature is not None:
        if temperature == 0:
            return logits.argmax(-1)
        logits = (logits - top) / temperature
    probs = torch.softmax(filter_logits(logits, top_k, top_p), dim=-1)
    if uniform is None:
        uniform = torch.rand(logits.shape[:-1], generator=generator, dtype=torch.float64,
                             device=logits.device)
    elif uniform.shape != logits.shape[:-1]:
        raise ValueError(f"uniform must have shape {tuple(logits.shape[:-1])} (one value a "
                         f"row of the logits), received {tuple(uniform.shape)}")
    cdf = torch.cumsum(probs.double(), dim=-1)
    threshold = uniform.double().unsqueeze(-1) * cdf[..., -1:]
    # ids past the last are impossible: its cdf (the total) exceeds every threshold
    ids = (cdf[..., :-1] <= threshold).sum(-1)
    if greedy is not None:
        ids = torch.where(greedy, raw.argmax(-1), ids)
    return ids


def filter_logits(logits: torch.Tensor, top_k: int | torch.Tensor | None = None,
                  top_p: float | torch.Tensor | None = None) -> torch.Tensor:
    """Keep the sampling support of ``logits [..., vocab]``; the rest becomes ``-inf``.

    ``top_k``: the ``k`` largest logits (ties with the ``k``-th kept too).  ``top_p``
    (nucleus): the fewest most likely tokens whose probabilities sum to at least ``p``
    (the most likely token always stays).  Both given: ``top_k`` first.  All on the device.
    Either may be a 0-dim tensor, applied without reading it on the host (a traced graph
    takes it as an input): ``top_k`` < 1 or >= vocab and ``top_p`` >= 1 keep everything, as
    ``None`` does.
    """
    vocab = logits.shape[-1]
    if isinstance(top_k, torch.Tensor):
        k = torch.where(top_k < 1, torch.full_like(top_k, vocab), top_k.clamp(max=vocab))
        ranked = _ranked(logits)[0]
        kth = ranked.gather(-1, (k - 1).reshape(1).expand(*logits.shape[:-1], 1))
        logits = logits.masked_fill(logits < kth, float("-inf"))
    elif top_k is not None and top_k < vocab:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    tensor_p = isinstance(top_p, torch.Tensor)
    if tensor_p or (top_p is not None and top_p < 1.0):
        sorted_logits, order = _ranked(logits)
        probs = torch.softmax(sorted_logits, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs  # mass of the tokens ranked above
        # the most likely token stays, whatever p's float32 rounding
        drop_sorted = (before >= top_p) & (torch.arange(vocab, device=logits.device) > 0)
        if tensor_p:
            drop_sorted = drop_sorted & (top_p < 1.0)
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def _ranked(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``logits [..., vocab]`` sorted in descending order and the order: tied logits rank
    by id, lowest first (a stable sort; while tracing, ``topk`` of every logit, which ONNX's
    ``TopK`` ranks the same way; the exporter has no stable sort)."""
    if torch.jit.is_tracing():
        return torch.topk(logits, logits.shape[-1], dim=-1)
    return torch.sort(logits, dim=-1, descending=True, stable=True)


def _make_generator(seed: int | None, device: torch.device,
                    name: str = "seed") -> torch.Generator | None:
    """The helper's own generator on ``device`` (``None`` without a seed)."""
    return SeededGenerators(seed, name).on(device)


def _check_probability(name: str, p: Any, batch: int, device) -> torch.Tensor:
    p = torch.as_tensor(p, dtype=torch.float32, device=device)
    if p.dim() not in (0, 1) or (p.dim() == 1 and p.shape[0] != batch):
        raise ValueError(f"{name} must be a scalar or a [batch]=[{batch}] vector, received "
                         f"shape {tuple(p.shape)}")
    if p.numel() and (float(p.min()) < 0 or float(p.max()) > 1):
        raise ValueError(f"{name} must lie in [0, 1], received {p.tolist()}")
    return p.expand(batch)


class ScheduledEmbeddingTrainingHelper(TrainingHelper):
    """Teacher forcing, but with probability ``sampling_probability`` each entry feeds the
    embedding of a token sampled from its outputs instead (Bengio et al. 2015).

    ``sample`` returns ``-1`` where the ground truth is read.
    """

    def __init__(self, inputs, sequence_length, embedding, sampling_probability,
                 time_major: bool = False, seed: int | None = None, scheduling_seed=None,
                 name=None):
        super().__init__(inputs, sequence_length, time_major)
        self._embedding_fn = EmbeddingLookup(embedding)  # ids are sampled
        device = self._sequence_length.device
        self._sampling_probability = _check_probability(
            "sampling_probability", sampling_probability, self._batch, device)
        self._generator = _make_generator(seed, device)
        self._scheduling_generator = _make_generator(scheduling_seed, device, "scheduling_seed")

    def graph_bindings(self) -> GraphBindings:
        return combine(super().graph_bindings(), GraphBindings(slots=(
            (self, "_sampling_probability"), (self, "_generator"),
            (self, "_scheduling_generator"))), self._embedding_fn.graph_bindings())

    def sample(self, time, outputs, state, name=None):
        select = torch.bernoulli(self._sampling_probability,
                                 generator=self._scheduling_generator).bool()
        drawn = sample_categorical(outputs, self._generator)
        return torch.where(select, drawn, torch.full_like(drawn, -1))

    def next_inputs(self, time, outputs, state, sample_ids, name=None):
        finished, base, state = super().next_inputs(time, outputs, state, sample_ids)
        if time + 1 >= self._max_time:
            return finished, base, state
        vocab = self._embedding_fn.vocab_size
        if vocab is not None and outputs.shape[-1] > vocab:
            raise ValueError(f"the decoder emits {outputs.shape[-1]} logits but the embedding "
                             f"holds only {vocab} ids")
        sampling = (sample_ids > -1) & ~finished.all()  # as TF: inputs unchanged when all done
        embedded = self._embedding_fn(sample_ids.clamp(min=0))
        return finished, torch.where(sampling[:, None], embedded, base), state


class ScheduledOutputTrainingHelper(TrainingHelper):
    """Teacher forcing, but with probability ``sampling_probability`` each entry feeds its
    own output (through ``next_inputs_fn`` if given) instead of the ground truth.

    ``auxiliary_inputs`` (``[batch, time, aux_depth]``) are concatenated to both kinds of
    input.  ``sample`` returns ``[batch]`` ids: 1 where the output is fed back, else 0.
    """

    def __init__(self, inputs, sequence_length, sampling_probability, time_major=False,
                 seed=None, next_inputs_fn=None, auxiliary_inputs=None, name=None):
        self._aux = None
        if auxiliary_inputs is not None:
            aux_tm = _time_major("auxiliary_inputs", auxiliary_inputs, time_major)
            inputs_tm = _time_major("inputs", inputs, time_major)
            if aux_tm.shape[:2] != inputs_tm.shape[:2]:
                raise ValueError(
                    f"auxiliary_inputs must agree with inputs on [time, batch]: "
                    f"{tuple(aux_tm.shape[:2])} vs {tuple(inputs_tm.shape[:2])}")
            self._aux = aux_tm
            inputs = torch.cat([inputs_tm, aux_tm], -1)
            time_major = True
        super().__init__(inputs, sequence_length, time_major)
        self._sampling_probability = _check_probability(
            "sampling_probability", sampling_probability, self._batch,
            self._sequence_length.device)
        self._generator = _make_generator(seed, self._sequence_length.device)
        self._next_inputs_fn = next_inputs_fn

    def graph_bindings(self) -> GraphBindings:
        if self._next_inputs_fn is not None:
            raise NotCapturable("ScheduledOutputTrainingHelper's next_inputs_fn is opaque "
                                "to rnnkit")
        base = super().graph_bindings()
        return GraphBindings(key=base.key, slots=(
            *base.slots, (self, "_aux"), (self, "_sampling_probability"),
            (self, "_generator")))

    def sample(self, time, outputs, state, name=None):
        """``[batch]`` int64: 1 where the output is fed back, else 0 (TF's Bernoulli
        sample)."""
        return torch.bernoulli(self._sampling_probability, generator=self._generator).long()

    def next_inputs(self, time, outputs, state, sample_ids, name=None):
        finished, base, state = super().next_inputs(time, outputs, state, sample_ids)
        if time + 1 >= self._max_time:
            return finished, base, state
        sample_ids = sample_ids.bool() & ~finished.all()  # as TF: unchanged when all done
        fed = outputs if self._next_inputs_fn is None else self._next_inputs_fn(outputs)
        if self._aux is not None:
            fed = torch.cat([fed, _time_slices(self, "_aux")[time + 1]], -1)
        if fed.shape != base.shape:
            raise ValueError(
                f"fed-back outputs have shape {tuple(fed.shape)} but the inputs have "
                f"{tuple(base.shape)}; give next_inputs_fn to map outputs to inputs")
        return finished, torch.where(sample_ids[:, None], fed, base), state


class InferenceHelper(Helper):
    """Feeds back ``next_inputs_fn(sample_ids)`` (or the outputs themselves) with no
    embedding, e.g. for continuous outputs (``InferenceHelper``).

    Args:
        sample_fn: ``outputs -> sample_ids``.
        sample_shape / sample_dtype: shape (without batch) and dtype of the sample ids.
        start_inputs: ``[batch, depth]`` first inputs.
        end_fn: ``sample_ids -> finished [batch] bool``.
        next_inputs_fn: ``sample_ids -> next inputs``; default: the outputs.
    """

    def __init__(self, sample_fn, sample_shape, sample_dtype, start_inputs, end_fn,
                 next_inputs_fn=None):
        _checks.tensor("start_inputs", start_inputs)
        if start_inputs.dim() < 2:
            raise ValueError(f"start_inputs must be [batch, depth], received shape "
                             f"{tuple(start_inputs.shape)}")
        self._sample_fn = _checks.as_function("sample_fn", sample_fn, optional=False)
        self._sample_shape = _checks.as_shape("sample_shape", sample_shape)
        self._sample_dtype = _checks.as_dtype("sample_dtype", sample_dtype)
        self._start_inputs = start_inputs
        self._end_fn = _checks.as_function("end_fn", end_fn, optional=False)
        self._next_inputs_fn = _checks.as_function("next_inputs_fn", next_inputs_fn)
        self._batch = start_inputs.shape[0]

    @property
    def batch_size(self) -> int:
        return self._batch

    @property
    def sample_ids_shape(self) -> torch.Size:
        return self._sample_shape

    @property
    def sample_ids_dtype(self) -> torch.dtype:
        return self._sample_dtype

    def initialize(self, name=None):
        return (torch.zeros(self._batch, dtype=torch.bool, device=self._start_inputs.device),
                self._start_inputs)

    def sample(self, time, outputs, state, name=None):
        return self._sample_fn(outputs)

    def next_inputs(self, time, outputs, state, sample_ids, name=None):
        nxt = outputs if self._next_inputs_fn is None else self._next_inputs_fn(sample_ids)
        return self._end_fn(sample_ids), nxt, state


class CustomHelper(Helper):
    """A helper from three functions (``CustomHelper``).

    ``initialize_fn() -> (finished, next_inputs)``;
    ``sample_fn(time, outputs, state) -> sample_ids``;
    ``next_inputs_fn(time, outputs, state, sample_ids) -> (finished, next_inputs, next_state)``.
    ``batch_size`` is known after :meth:`initialize`.
    """

    def __init__(self, initialize_fn, sample_fn, next_inputs_fn, sample_ids_shape=None,
                 sample_ids_dtype=None):
        self._initialize_fn = _checks.as_function("initialize_fn", initialize_fn, optional=False)
        self._sample_fn = _checks.as_function("sample_fn", sample_fn, optional=False)
        self._next_inputs_fn = _checks.as_function("next_inputs_fn", next_inputs_fn,
                                                   optional=False)
        self._sample_ids_shape = _checks.as_shape(
            "sample_ids_shape", [] if sample_ids_shape is None else sample_ids_shape)
        self._sample_ids_dtype = (_checks.as_dtype("sample_ids_dtype", sample_ids_dtype)
                                  or torch.int64)
        self._batch: int | None = None

    @property
    def batch_size(self) -> int:
        if self._batch is None:
            raise ValueError("CustomHelper.batch_size is known only after initialize()")
        return self._batch

    @property
    def sample_ids_shape(self) -> torch.Size:
        return self._sample_ids_shape

    @property
    def sample_ids_dtype(self) -> torch.dtype:
        return self._sample_ids_dtype

    def initialize(self, name=None):
        finished, next_inputs = self._initialize_fn()
        self._batch = finished.shape[0]
        return finished, next_inputs

    def sample(self, time, outputs, state, name=None):
        return self._sample_fn(time=time, outputs=outputs, state=state)

    def next_inputs(self, time, outputs, state, sample_ids, name=None):
        return self._next_inputs_fn(time=time, outputs=outputs, state=state,
                                    sample_ids=sample_ids)
