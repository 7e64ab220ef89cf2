"""``tfa.seq2seq`` (tensorflow-addons 0.23) on rnnkit's TF 1.x machinery.

tensorflow-addons moved the per-batch tensors out of the constructors: a *sampler* is
configured when made and receives its tensors in ``initialize``, and a decoder is a layer
called with them.  Here each sampler builds the matching TF 1.x helper of
:mod:`rnnkit.seq2seq` when it is initialised and acts through it, and each decoder builds a
:class:`rnnkit.seq2seq.BasicDecoder` / :class:`rnnkit.seq2seq.BeamSearchDecoder` at the call
and runs :func:`rnnkit.seq2seq.dynamic_decode`; the results are those of the TF 1.x API.

::

    from rnnkit import rnn, tfa
    sampler = tfa.seq2seq.TrainingSampler()
    decoder = tfa.seq2seq.BasicDecoder(rnn.LSTMCell(512), sampler, output_layer=dense)
    outputs, state, lengths = decoder(inputs, initial_state=state0, sequence_length=lengths)

The attention wrapper's state is tfa's five-field :class:`AttentionWrapperState` (TF 1.x's
without ``time``); mechanisms mask scores with the dtype's minimum as tfa does.

Differences from tensorflow-addons: decoders and attention mechanisms are ``torch.nn``
modules; ``training=`` switches the cell's ``train()``/``eval()`` mode for the call (dropout
follows the mode); ids are int64; dtypes are ``torch`` dtypes; attention mechanisms take
``probability_fn`` as ``"softmax"``, ``"hardmax"`` or a function, and ``kernel_initializer``
as anything :func:`rnnkit.initializers.resolve` takes (Keras names, TF initializers,
``torch.nn.init``-style functions).
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from rnnkit import _checks, nest
from rnnkit import seq2seq as _tf1
from rnnkit.generators import SeededGenerators
from rnnkit.seq2seq import (
    AttentionMechanism,
    BasicDecoderOutput,
    BeamSearchDecoderOutput,
    BeamSearchDecoderState,
    Decoder,
    FinalBeamSearchDecoderOutput,
    SequenceLoss,
    gather_tree,
    hardmax,
    monotonic_attention,
    safe_cumprod,
    sequence_loss,
    tile_batch,
)
from rnnkit.seq2seq.attention_wrapper import _check_attention_state, _mean_alignments
from rnnkit.seq2seq.beam_search import gather_tree_from_array
from rnnkit.seq2seq.helper import Helper

__all__ = [
    "AttentionMechanism",
    "AttentionWrapper",
    "AttentionWrapperState",
    "BahdanauAttention",
    "BahdanauMonotonicAttention",
    "BaseDecoder",
    "BasicDecoder",
    "BasicDecoderOutput",
    "BeamSearchDecoder",
    "BeamSearchDecoderOutput",
    "BeamSearchDecoderState",
    "CustomSampler",
    "Decoder",
    "FinalBeamSearchDecoderOutput",
    "GreedyEmbeddingSampler",
    "InferenceSampler",
    "LuongAttention",
    "LuongMonotonicAttention",
    "SampleEmbeddingSampler",
    "Sampler",
    "ScheduledEmbeddingTrainingSampler",
    "ScheduledOutputTrainingSampler",
    "SequenceLoss",
    "TrainingSampler",
    "dynamic_decode",
    "gather_tree",
    "gather_tree_from_array",
    "hardmax",
    "monotonic_attention",
    "safe_cumprod",
    "sampler",
    "sequence_loss",
    "tile_batch",
]


# -- samplers ----------------------------------------------------------------------------------

class Sampler:
    """tfa's sampler: configured at construction, given its tensors by :meth:`initialize`
    (decoders call it), then sampling through the TF 1.x helper it built (:attr:`helper`).

    A sampler of your own subclasses it as in tfa, defining ``initialize(inputs,
    **kwargs)``, ``sample``, ``next_inputs``, ``batch_size``, ``sample_ids_shape`` and
    ``sample_ids_dtype``; decoders then call those.
    """

    helper: Helper | None = None

    def bind(self, inputs: Any, **kwargs: Any) -> Helper:
        """Build and keep the TF 1.x helper for these tensors (``initialize`` without
        running the helper's first step)."""
        self.helper = self._make_helper(inputs, **kwargs)
        return self.helper

    def _make_helper(self, inputs: Any, **kwargs: Any) -> Helper:
        return _OwnSampler(self, inputs, kwargs)  # the built-in samplers override this

    def initialize(self, inputs: Any, **kwargs: Any) -> tuple[torch.Tensor, Any]:
        """``(finished [batch] bool, first inputs)`` for these tensors."""
        return self.bind(inputs, **kwargs).initialize()

    def sample(self, time: int, outputs: Any, state: Any) -> torch.Tensor:
        """``sample_ids [batch, ...]`` for this step's ``outputs``."""
        return self._bound().sample(time, outputs, state)

    def next_inputs(self, time: int, outputs: Any, state: Any,
                    sample_ids: torch.Tensor) -> tuple[torch.Tensor, Any, Any]:
        """``(finished [batch], next_inputs, next_state)``."""
        return self._bound().next_inputs(time, outputs, state, sample_ids)

    @property
    def batch_size(self) -> int:
        """Rows of ``sample_ids`` (known after :meth:`initialize`)."""
        return self._bound().batch_size

    @property
    def sample_ids_shape(self) -> torch.Size:
        """Shape of one entry's ``sample_ids`` (``[]`` for ids)."""
        return self._bound().sample_ids_shape

    @property
    def sample_ids_dtype(self) -> torch.dtype:
        """dtype of ``sample_ids`` (int64 for ids)."""
        return self._bound().sample_ids_dtype

    def _bound(self) -> Helper:
        if self.helper is None:
            raise ValueError(f"{type(self).__name__} is used before initialize() was called "
                             "(a decoder calls it with the batch's tensors)")
        return self.helper


class _OwnSampler(Helper):
    """A tfa-style sampler subclass seen as a TF 1.x helper: its ``initialize`` gets the
    tensors the decoder was called with."""

    def __init__(self, sampler: Sampler, inputs: Any, kwargs: dict):
        _require_overrides(sampler, Sampler, ("initialize", "sample", "next_inputs",
                                              "batch_size", "sample_ids_shape",
                                              "sample_ids_dtype"))
        self.sampler, self.inputs, self.kwargs = sampler, inputs, kwargs

    @property
    def batch_size(self) -> int:
        return self.sampler.batch_size

    @property
    def sample_ids_shape(self) -> torch.Size:
        return torch.Size(self.sampler.sample_ids_shape)

    @property
    def sample_ids_dtype(self) -> torch.dtype:
        return self.sampler.sample_ids_dtype

    def initialize(self, name=None):
        return self.sampler.initialize(self.inputs, **self.kwargs)

    def sample(self, time, outputs, state, name=None):
        return self.sampler.sample(time, outputs, state)

    def next_inputs(self, time, outputs, state, sample_ids, name=None):
        return self.sampler.next_inputs(time, outputs, state, sample_ids)


def _require_overrides(obj: Any, base: type, names: tuple[str, ...]) -> None:
    """A tfa-style subclass of ``base`` must define ``names`` itself (the base's versions
    act through a TF 1.x object the subclass does not build)."""
    missing = [n for n in names if getattr(type(obj), n) is getattr(base, n)]
    if missing:
        raise NotImplementedError(f"{type(obj).__name__} must define {', '.join(missing)} "
                                  f"(tfa's {base.__name__} interface)")


def _lengths(inputs: Any, sequence_length: Any, mask: Any, time_major: bool) -> Any:
    """tfa's training samplers: lengths given, read from a right-padded mask, or full."""
    if sequence_length is not None and mask is not None:
        raise ValueError("give sequence_length or mask, not both")
    if sequence_length is not None:
        return sequence_length
    first = nest.flatten(inputs)[0]
    first = first if isinstance(first, torch.Tensor) else torch.as_tensor(first)
    batch, total = (first.shape[1], first.shape[0]) if time_major else first.shape[:2]
    if mask is None:
        return torch.full((batch,), total, dtype=torch.long)
    mask = mask if isinstance(mask, torch.Tensor) else torch.as_tensor(mask)
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor, received dtype {mask.dtype}")
    if mask.dim() != 2:
        raise ValueError(f"mask must have rank 2, received shape {tuple(mask.shape)}")
    mask = mask.t() if time_major else mask
    lengths = mask.sum(1)
    steps = torch.arange(mask.shape[1], device=mask.device)
    if not torch.equal(mask, steps[None, :] < lengths[:, None]):
        raise ValueError("mask must be right-padded: True for each sequence's steps, then "
                         "False")
    return lengths


class TrainingSampler(Sampler):
    """Teacher forcing (tfa's ``TrainingSampler``; :class:`rnnkit.seq2seq.TrainingHelper`).

    ``initialize(inputs [batch, time, ...], sequence_length=None, mask=None)``: lengths given,
    read from a right-padded bool ``mask [batch, time]``, or the full time for every entry.
    """

    def __init__(self, time_major: bool = False):
        self.time_major = _checks.as_flag("time_major", time_major)

    def _make_helper(self, inputs, sequence_length=None, mask=None):
        lengths = _lengths(inputs, sequence_length, mask, self.time_major)
        return _tf1.TrainingHelper(inputs, lengths, time_major=self.time_major)


class ScheduledEmbeddingTrainingSampler(TrainingSampler):
    """Scheduled sampling of embedded ids
    (:class:`rnnkit.seq2seq.ScheduledEmbeddingTrainingHelper`).

    ``initialize(inputs, sequence_length=None, mask=None, embedding=None)``; the embedding
    is a ``[vocab, dim]`` table or ``nn.Embedding``, ignored when ``embedding_fn`` was given.
    """

    def __init__(self, sampling_probability: Any, embedding_fn: Callable | None = None,
                 time_major: bool = False, seed: int | None = None,
                 scheduling_seed: int | None = None):
        super().__init__(time_major)
        self.sampling_probability = sampling_probability
        self.embedding_fn = _checks.as_function("embedding_fn", embedding_fn)
        self.seed = seed
        self.scheduling_seed = scheduling_seed

    def _make_helper(self, inputs, sequence_length=None, mask=None, embedding=None):
        embedding = self.embedding_fn or embedding
        if embedding is None:
            raise ValueError("ScheduledEmbeddingTrainingSampler needs embedding= at "
                             "initialize (or embedding_fn= at construction)")
        lengths = _lengths(inputs, sequence_length, mask, self.time_major)
        return _tf1.ScheduledEmbeddingTrainingHelper(
            inputs, lengths, embedding, self.sampling_probability, time_major=self.time_major,
            seed=self.seed, scheduling_seed=self.scheduling_seed)


class ScheduledOutputTrainingSampler(TrainingSampler):
    """Scheduled sampling of outputs (:class:`rnnkit.seq2seq.ScheduledOutputTrainingHelper`).

    ``initialize(inputs, sequence_length=None, mask=None, auxiliary_inputs=None)``.
    """

    def __init__(self, sampling_probability: Any, time_major: bool = False,
                 seed: int | None = None, next_inputs_fn: Callable | None = None):
        super().__init__(time_major)
        self.sampling_probability = sampling_probability
        self.seed = seed
        self.next_inputs_fn = _checks.as_function("next_inputs_fn", next_inputs_fn)

    def _make_helper(self, inputs, sequence_length=None, mask=None, auxiliary_inputs=None):
        lengths = _lengths(inputs, sequence_length, mask, self.time_major)
        return _tf1.ScheduledOutputTrainingHelper(
            inputs, lengths, self.sampling_probability, time_major=self.time_major,
            seed=self.seed, next_inputs_fn=self.next_inputs_fn,
            auxiliary_inputs=auxiliary_inputs)


class GreedyEmbeddingSampler(Sampler):
    """Greedy decoding (:class:`rnnkit.seq2seq.GreedyEmbeddingHelper`).

    ``initialize(embedding, start_tokens [batch], end_token)``; the embedding is ignored when
    ``embedding_fn`` was given.
    """

    def __init__(self, embedding_fn: Callable | None = None):
        self.embedding_fn = _checks.as_function("embedding_fn", embedding_fn)

    def _embedding(self, embedding: Any, start_tokens: Any) -> Any:
        if start_tokens is None:
            raise ValueError(f"{type(self).__name__}.initialize needs start_tokens")
        return self.embedding_fn or embedding

    def _make_helper(self, embedding, start_tokens=None, end_token=None):
        return _tf1.GreedyEmbeddingHelper(self._embedding(embedding, start_tokens),
                                          start_tokens, end_token)


class SampleEmbeddingSampler(GreedyEmbeddingSampler):
    """Sampling from the softmax (:class:`rnnkit.seq2seq.SampleEmbeddingHelper`)."""

    def __init__(self, embedding_fn: Callable | None = None,
                 softmax_temperature: float | None = None, seed: int | None = None):
        super().__init__(embedding_fn)
        self.softmax_temperature = softmax_temperature
        self.seed = seed

    def _make_helper(self, embedding, start_tokens=None, end_token=None):
        return _tf1.SampleEmbeddingHelper(self._embedding(embedding, start_tokens),
                                          start_tokens, end_token,
                                          softmax_temperature=self.softmax_temperature,
                                          seed=self.seed)


class InferenceSampler(Sampler):
    """Inference with your own sampling (:class:`rnnkit.seq2seq.InferenceHelper`);
    ``initialize(start_inputs [batch, ...])``."""

    def __init__(self, sample_fn: Callable, sample_shape: Any, sample_dtype: torch.dtype,
                 end_fn: Callable, next_inputs_fn: Callable | None = None):
        self.sample_fn = _checks.as_function("sample_fn", sample_fn, optional=False)
        self.sample_shape = sample_shape
        self.sample_dtype = sample_dtype
        self.end_fn = _checks.as_function("end_fn", end_fn, optional=False)
        self.next_inputs_fn = _checks.as_function("next_inputs_fn", next_inputs_fn)

    def _make_helper(self, start_inputs):
        return _tf1.InferenceHelper(self.sample_fn, self.sample_shape, self.sample_dtype,
                                    start_inputs, self.end_fn, self.next_inputs_fn)


class CustomSampler(Sampler):
    """A sampler from three functions (:class:`rnnkit.seq2seq.CustomHelper`):
    ``initialize_fn(inputs, **kwargs) -> (finished, first_inputs)``,
    ``sample_fn(time, outputs, state)`` and
    ``next_inputs_fn(time, outputs, state, sample_ids) -> (finished, next_inputs, state)``.
    """

    def __init__(self, initialize_fn: Callable, sample_fn: Callable, next_inputs_fn: Callable,
                 sample_ids_shape: Any = None, sample_ids_dtype: torch.dtype | None = None):
        self.initialize_fn = _checks.as_function("initialize_fn", initialize_fn,
                                                 optional=False)
        self.sample_fn = sample_fn
        self.next_inputs_fn = next_inputs_fn
        self.sample_ids_shape_given = sample_ids_shape
        self.sample_ids_dtype_given = sample_ids_dtype

    def _make_helper(self, inputs, **kwargs):
        return _tf1.CustomHelper(lambda: self.initialize_fn(inputs, **kwargs), self.sample_fn,
                                 self.next_inputs_fn, self.sample_ids_shape_given,
                                 self.sample_ids_dtype_given)


#: One generator stream per seed, as TF's op seeds: repeated calls with the same ``seed``
#: continue its stream.
_SEEDS: dict[int, SeededGenerators] = {}


def _sample_generator(seed: Any, device: torch.device) -> torch.Generator | None:
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    seed = _checks.as_int("seed", seed)
    return _SEEDS.setdefault(seed, SeededGenerators(seed)).on(device)


def _sample_shape(sample_shape: Any) -> torch.Size:
    return _checks.as_shape("sample_shape", sample_shape)


def categorical_sample(logits: Any, dtype: torch.dtype = torch.int64, sample_shape: Any = (),
                       seed: Any = None) -> torch.Tensor:
    """tfa's ``sampler.categorical_sample``: ids drawn from ``softmax(logits)``.

    Args:
        logits: ``[..., classes]`` floats.
        dtype: of the ids (tfa's default is int32; rnnkit's ids are int64).
        sample_shape: draws per distribution, prepended to the result's shape.
        seed: an int (one stream per seed, continued by later calls) or a
            ``torch.Generator``; ``None`` draws from PyTorch's generator.

    Returns:
        ``[*sample_shape, ...]`` ids in ``[0, classes)``.
    """
    logits = _checks.as_inputs("logits", logits)
    _checks.floating("logits", logits)
    _checks.rank_at_least("logits", logits, 1, "[..., classes]")
    shape = _sample_shape(sample_shape)
    n = max(1, shape.numel())
    flat = torch.softmax(logits.reshape(-1, logits.shape[-1]).float(), -1)
    draws = torch.multinomial(flat, n, replacement=True,
                              generator=_sample_generator(seed, logits.device))  # [rows, n]
    draws = draws.t()[: shape.numel()].reshape(*shape, *logits.shape[:-1])
    return draws.to(_checks.as_dtype("dtype", dtype))


def bernoulli_sample(probs: Any = None, logits: Any = None, dtype: torch.dtype = torch.int64,
                     sample_shape: Any = (), seed: Any = None) -> torch.Tensor:
    """tfa's ``sampler.bernoulli_sample``: 1 with probability ``probs`` (or
    ``sigmoid(logits)``), else 0.

    Args:
        probs / logits: ``[...]`` floats, one of them.
        dtype: of the draws (``torch.bool`` gives flags).
        sample_shape: draws per probability, prepended to the result's shape.
        seed: as :func:`categorical_sample`.

    Returns:
        ``[*sample_shape, ...]`` draws.
    """
    if (probs is None) == (logits is None):
        raise ValueError("bernoulli_sample takes probs or logits (one of them)")
    if probs is None:
        logits = _checks.as_inputs("logits", logits)
        _checks.floating("logits", logits)
        probs = torch.sigmoid(logits)
    else:
        probs = _checks.as_inputs("probs", probs)
        _checks.floating("probs", probs)
    shape = _sample_shape(sample_shape)
    uniform = torch.rand(*shape, *probs.shape, dtype=probs.dtype, device=probs.device,
                         generator=_sample_generator(seed, probs.device))
    return (uniform < probs).to(_checks.as_dtype("dtype", dtype))


#: tfa's ``tfa.seq2seq.sampler`` module path (``tfa.seq2seq.sampler.TrainingSampler()``).
sampler = types.SimpleNamespace(
    Sampler=Sampler, TrainingSampler=TrainingSampler,
    ScheduledEmbeddingTrainingSampler=ScheduledEmbeddingTrainingSampler,
    ScheduledOutputTrainingSampler=ScheduledOutputTrainingSampler,
    GreedyEmbeddingSampler=GreedyEmbeddingSampler, SampleEmbeddingSampler=SampleEmbeddingSampler,
    InferenceSampler=InferenceSampler, CustomSampler=CustomSampler,
    categorical_sample=categorical_sample, bernoulli_sample=bernoulli_sample)


# -- decoders ----------------------------------------------------------------------------------

@contextlib.contextmanager
def _mode(module: nn.Module | None, training: Any) -> Iterator[None]:
    """``training=True/False`` puts ``module`` in that mode for the call (None: as it is)."""
    if training is None or module is None:
        yield
        return
    training = _checks.as_flag("training", training)
    modes = [(m, m.training) for m in module.modules()]
    module.train(training)
    try:
        yield
    finally:
        for m, was in modes:
            m.training = was


class BaseDecoder(nn.Module):
    """tfa's decoder layer: decoding settings at construction, the batch's tensors at the
    call, ``decoder(inputs, initial_state=..., **kwargs) -> (outputs, state, lengths)``.

    The decoders here define :meth:`bind`, the TF 1.x decoder for those tensors;
    ``initialize``, ``step`` and ``finalize`` act through it, so a decoder can also be
    stepped by hand.  A decoder of your own subclasses it as in tfa instead, defining
    ``initialize(inputs, initial_state=None, **kwargs)``, ``step(time, inputs, state,
    training=None)``, ``batch_size``, ``output_size`` and ``output_dtype`` (and, if it
    needs them, ``finalize`` and ``tracks_own_finished``; without ``finalize`` the outputs
    are returned as the steps made them).

    ``dtype`` is the Keras layer's: the floating tensors of the call's first argument
    (``inputs``, or beam search's embedding) are cast to it, as Keras autocasts a layer's
    inputs.  After a call (or :meth:`initialize`) the decoder stays bound to the batch's
    tensors: ``output_size``, ``batch_size`` ... answer for them.
    """

    def __init__(self, output_time_major: bool = False, impute_finished: bool = False,
                 maximum_iterations: int | None = None, parallel_iterations: int = 32,
                 swap_memory: bool = False, name: str | None = None,
                 dtype: torch.dtype | None = None):
        super().__init__()
        self.output_time_major = _checks.as_flag("output_time_major", output_time_major)
        self.impute_finished = _checks.as_flag("impute_finished", impute_finished)
        self.maximum_iterations = maximum_iterations
        self.parallel_iterations = parallel_iterations
        self.swap_memory = swap_memory
        self.name = name
        self.dtype = _checks.as_dtype("dtype", dtype)
        self._bound: Decoder | None = None

    def _autocast(self, inputs: Any) -> Any:
        """``inputs`` with floating tensors cast to ``dtype`` (Keras's autocast)."""
        if self.dtype is None:
            return inputs
        return nest.map_structure(
            lambda x: x.to(self.dtype) if isinstance(x, torch.Tensor) and x.is_floating_point()
            else x, inputs)

    def forward(self, inputs: Any, initial_state: Any = None, training: bool | None = None,
                **kwargs: Any) -> tuple[Any, Any, torch.Tensor]:
        """Decode: ``(final_outputs, final_state, final_sequence_lengths)``."""
        return self._decode(inputs, training, dict(initial_state=initial_state, **kwargs))

    def _decode(self, inputs: Any, training: Any, init_kwargs: dict) -> tuple:
        return dynamic_decode(
            self, output_time_major=self.output_time_major,
            impute_finished=self.impute_finished, maximum_iterations=self.maximum_iterations,
            parallel_iterations=self.parallel_iterations, swap_memory=self.swap_memory,
            training=training, decoder_init_input=self._autocast(inputs),
            decoder_init_kwargs=init_kwargs)

    def bind(self, inputs: Any, initial_state: Any = None, **kwargs: Any) -> Decoder:
        """The TF 1.x decoder running this decoder on these tensors."""
        return _OwnDecoder(self, inputs, dict(initial_state=initial_state, **kwargs))

    def _bind(self, inputs: Any, **kwargs: Any) -> Decoder:
        """:meth:`bind`, kept as the decoder this layer answers for."""
        self._bound = self.bind(inputs, **kwargs)
        return self._bound

    def initialize(self, inputs: Any, initial_state: Any = None,
                   **kwargs: Any) -> tuple[torch.Tensor, Any, Any]:
        """``(finished, first_inputs, initial_state)`` for these tensors."""
        return self._bind(inputs, initial_state=initial_state, **kwargs).initialize()

    def step(self, time: int, inputs: Any, state: Any, training: bool | None = None):
        """``(outputs, next_state, next_inputs, finished)`` of one step."""
        with _mode(getattr(self, "cell", None), training):
            return self._decoder().step(time, inputs, state)

    def finalize(self, outputs: Any, final_state: Any, sequence_lengths: torch.Tensor):
        """The TF 1.x decoder's ``finalize``."""
        return self._decoder().finalize(outputs, final_state, sequence_lengths)

    @property
    def batch_size(self) -> int:
        """The batch of the tensors bound by :meth:`initialize`."""
        return self._decoder().batch_size

    @property
    def output_size(self) -> Any:
        """The step outputs' sizes without the batch (after :meth:`initialize`)."""
        return self._decoder().output_size

    @property
    def output_dtype(self) -> Any:
        """The step outputs' dtypes (after :meth:`initialize`)."""
        return self._decoder().output_dtype

    @property
    def tracks_own_finished(self) -> bool:
        """True for beam search (it reorders its hypotheses and their finished flags)."""
        return self._decoder().tracks_own_finished

    def _decoder(self) -> Decoder:
        if self._bound is None:
            raise ValueError(f"{type(self).__name__} is used before initialize() was called")
        return self._bound


class _OwnDecoder(Decoder):
    """A tfa-style decoder subclass seen as a TF 1.x decoder: its ``initialize`` gets the
    tensors it was called with."""

    def __init__(self, decoder: BaseDecoder, inputs: Any, kwargs: dict):
        _require_overrides(decoder, BaseDecoder, ("initialize", "step", "batch_size",
                                                  "output_size", "output_dtype"))
        self.decoder, self.inputs, self.kwargs = decoder, inputs, kwargs
        cell = getattr(decoder, "cell", None)
        if cell is not None:
            self.cell = cell

    @property
    def batch_size(self) -> int:
        return self.decoder.batch_size

    @property
    def output_size(self) -> Any:
        return self.decoder.output_size

    @property
    def output_dtype(self) -> Any:
        return self.decoder.output_dtype

    @property
    def tracks_own_finished(self) -> bool:
        own = type(self.decoder).tracks_own_finished
        return False if own is BaseDecoder.tracks_own_finished else self.decoder.tracks_own_finished

    def initialize(self, name=None):
        return self.decoder.initialize(self.inputs, **self.kwargs)

    def step(self, time, inputs, state, name=None):
        return self.decoder.step(time, inputs, state)

    def finalize(self, outputs, final_state, sequence_lengths):
        if type(self.decoder).finalize is BaseDecoder.finalize:
            return outputs, final_state  # tfa: a decoder without finalize keeps its outputs
        try:
            return self.decoder.finalize(outputs, final_state, sequence_lengths)
        except NotImplementedError:  # tfa's dynamic_decode reads this as "no finalize"
            return outputs, final_state


class BasicDecoder(BaseDecoder):
    """tfa's ``BasicDecoder(cell, sampler, output_layer=None, **kwargs)``.

    ``decoder(inputs, initial_state=state, **sampler_kwargs)``: ``inputs`` and the keyword
    arguments go to ``sampler.initialize`` (``sequence_length=`` / ``mask=`` for training
    samplers, ``start_tokens=`` / ``end_token=`` with an embedding for the embedding
    samplers); ``kwargs`` at construction are :class:`BaseDecoder`'s settings.  Outputs are
    :class:`BasicDecoderOutput` ``(rnn_output [batch, time, depth], sample_id [batch, time])``.
    """

    def __init__(self, cell: nn.Module, sampler: Sampler, output_layer: Callable | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        if not isinstance(sampler, Sampler):
            raise TypeError(f"sampler must be an rnnkit.tfa.seq2seq Sampler, received "
                            f"{type(sampler).__name__}")
        self.cell = cell
        self.sampler = sampler
        self.output_layer = output_layer

    def bind(self, inputs, initial_state=None, **kwargs):
        if initial_state is None:
            raise ValueError("BasicDecoder needs initial_state= (e.g. "
                             "cell.get_initial_state(batch_size=..., dtype=...))")
        helper = self.sampler.bind(inputs, **kwargs)
        return _tf1.BasicDecoder(self.cell, helper, initial_state, self.output_layer)


class BeamSearchDecoder(BaseDecoder):
    """tfa's ``BeamSearchDecoder(cell, beam_width, embedding_fn=None, output_layer=None,
    length_penalty_weight=0.0, coverage_penalty_weight=0.0, reorder_tensor_arrays=True,
    output_all_scores=False, **kwargs)``.

    ``decoder(embedding, start_tokens, end_token, initial_state)`` (positionally or by
    name, as tfa): an embedding given overrides ``embedding_fn``; without either the call
    is refused.  ``initial_state`` tiled with :func:`tile_batch` as tfa requires (or at the
    encoder's batch: rnnkit tiles it).
    Outputs are a :class:`FinalBeamSearchDecoderOutput` ``predicted_ids [batch, time,
    beam]``, best first.
    """

    def __init__(self, cell: nn.Module, beam_width: int, embedding_fn: Callable | None = None,
                 output_layer: Callable | None = None, length_penalty_weight: float = 0.0,
                 coverage_penalty_weight: float = 0.0, reorder_tensor_arrays: bool = True,
                 output_all_scores: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.cell = cell
        self.beam_width = _checks.as_count("beam_width", beam_width)
        self.embedding_fn = _checks.as_function("embedding_fn", embedding_fn)
        self.output_layer = output_layer
        self.length_penalty_weight = length_penalty_weight
        self.coverage_penalty_weight = coverage_penalty_weight
        self.reorder_tensor_arrays = reorder_tensor_arrays
        self.output_all_scores = output_all_scores

    def forward(self, embedding: Any, start_tokens: Any = None, end_token: Any = None,
                initial_state: Any = None, training: bool | None = None,
                **kwargs: Any) -> tuple[Any, Any, torch.Tensor]:
        """Decode: ``(FinalBeamSearchDecoderOutput, BeamSearchDecoderState, lengths)``."""
        return self._decode(embedding, training, dict(
            start_tokens=start_tokens, end_token=end_token, initial_state=initial_state,
            **kwargs))

    def initialize(self, embedding: Any, start_tokens: Any = None, end_token: Any = None,
                   initial_state: Any = None) -> tuple[torch.Tensor, Any, Any]:
        """tfa's ``initialize(embedding, start_tokens, end_token, initial_state)``:
        ``(finished, start_inputs, initial_state)``."""
        return self._bind(embedding, start_tokens=start_tokens, end_token=end_token,
                          initial_state=initial_state).initialize()

    def bind(self, embedding, start_tokens=None, end_token=None, initial_state=None):
        if embedding is None and self.embedding_fn is None:
            raise ValueError("BeamSearchDecoder needs an embedding: pass one when calling "
                             "the decoder or set embedding_fn in the constructor")
        for name, value in (("start_tokens", start_tokens), ("end_token", end_token),
                            ("initial_state", initial_state)):
            if value is None:
                raise ValueError(f"BeamSearchDecoder needs {name}=")
        return _tf1.BeamSearchDecoder(
            self.cell, embedding if embedding is not None else self.embedding_fn,
            start_tokens, end_token, initial_state,
            self.beam_width, output_layer=self.output_layer,
            length_penalty_weight=self.length_penalty_weight,
            coverage_penalty_weight=self.coverage_penalty_weight,
            reorder_tensor_arrays=self.reorder_tensor_arrays,
            output_all_scores=self.output_all_scores)


def dynamic_decode(decoder: BaseDecoder | Decoder, output_time_major: bool = False,
                   impute_finished: bool = False, maximum_iterations: int | None = None,
                   parallel_iterations: int = 32, swap_memory: bool = False,
                   training: bool | None = None, scope: Any = None,
                   enable_tflite_convertible: bool = False, *,
                   check_finished_every: int | None = None, cuda_graph: bool = False,
                   **kwargs: Any) -> tuple[Any, Any, torch.Tensor]:
    """tfa's ``dynamic_decode``: :func:`rnnkit.seq2seq.dynamic_decode` after binding a tfa
    decoder to ``decoder_init_input`` / ``decoder_init_kwargs`` (what a decoder's call
    passes).  ``training`` sets the cell's mode for the decode; ``enable_tflite_convertible``
    and ``scope`` are accepted and unused; ``check_finished_every`` and ``cuda_graph`` are
    rnnkit's.  Returns ``(final_outputs, final_state, final_sequence_lengths)``.
    """
    _checks.as_flag("enable_tflite_convertible", enable_tflite_convertible)
    init_input = kwargs.pop("decoder_init_input", None)
    init_kwargs = kwargs.pop("decoder_init_kwargs", None) or {}
    if kwargs:
        raise TypeError(f"dynamic_decode got unexpected keyword arguments {sorted(kwargs)}")
    if isinstance(decoder, BaseDecoder):
        bound = decoder._bind(init_input, **init_kwargs)
    elif isinstance(decoder, Decoder):
        bound = decoder
    else:
        raise TypeError(f"decoder must be a Decoder or a BaseDecoder, received "
                        f"{type(decoder).__name__}")
    with _mode(getattr(bound, "cell", None), training):
        return _tf1.dynamic_decode(
            bound, output_time_major=output_time_major, impute_finished=impute_finished,
            maximum_iterations=maximum_iterations, parallel_iterations=parallel_iterations,
            swap_memory=swap_memory, scope=scope, check_finished_every=check_finished_every,
            cuda_graph=cuda_graph)


# -- attention ---------------------------------------------------------------------------------

def _probability_fn(value: Any) -> Callable | None:
    """tfa names its probability functions: ``"softmax"`` (the default) or ``"hardmax"``."""
    if value == "softmax":
        return None  # the mechanisms' default
    if value == "hardmax":
        return hardmax
    if callable(value):
        return value
    raise ValueError(f'probability_fn must be "softmax", "hardmax" or a function, received '
                     f"{value!r}")


def _tfa_kwargs(cls_name: str, kwargs: dict) -> dict:
    """The keyword arguments a tfa mechanism passes on (its ``memory_layer=`` /
    ``query_layer=`` among them); TF 1.x's ``score_mask_value`` is refused: tfa masks with the
    dtype's minimum."""
    if "score_mask_value" in kwargs:
        raise TypeError(f"{cls_name} got score_mask_value: tensorflow-addons' mechanisms mask "
                        "scores with the dtype's minimum (TF 1.x's mechanisms in "
                        "rnnkit.seq2seq take score_mask_value)")
    return kwargs


class _KerasCall:
    """tfa's mechanisms are Keras layers: ``mechanism(memory_or_[memory, lengths],
    mask=None, setup_memory=True)`` binds memory (returning the processed memory ``values``);
    ``mechanism([query, state])`` or ``mechanism(query, state)`` scores it.

    Scores past the memory are masked with the score dtype's minimum, as tfa's
    ``_maybe_mask_score(score_mask_value=score.dtype.min)`` (TF 1.x masks with ``-inf``).
    """

    def mask_score(self, score: torch.Tensor) -> torch.Tensor:
        """``score [batch, memory_time]`` with ``finfo(score.dtype).min`` past each memory
        length."""
        mask = self.mask_for_rows(score.shape[0])
        if mask is None:
            return score
        return score.masked_fill(~mask, torch.finfo(score.dtype).min)

    def forward(self, inputs: Any, state: Any = None, mask: Any = None,
                setup_memory: bool = False) -> Any:
        """Bind memory (``setup_memory=True``) or attend: see the class docstring."""
        if not _checks.as_flag("setup_memory", setup_memory):
            return super().forward(inputs, state)
        if isinstance(inputs, (list, tuple)):
            if len(inputs) not in (1, 2):
                raise ValueError(f"setup_memory takes [memory] or [memory, "
                                 f"memory_sequence_length], received {len(inputs)} tensors")
            memory, lengths = inputs[0], (inputs[1] if len(inputs) == 2 else None)
        else:
            memory, lengths = inputs, None
        self.setup_memory(memory, lengths, memory_mask=mask)
        return self.values


class BahdanauAttention(_KerasCall, _tf1.BahdanauAttention):
    """tfa's ``BahdanauAttention(units, memory=None, memory_sequence_length=None,
    normalize=False, probability_fn="softmax", kernel_initializer="glorot_uniform", ...)``;
    memory can be bound later with :meth:`setup_memory`.  ``kernel_initializer``
    initialises ``attention_v`` (as tfa); ``memory_layer=`` / ``query_layer=`` replace the
    ``Dense`` layers made here."""

    def __init__(self, units: int, memory: Any = None, memory_sequence_length: Any = None,
                 normalize: bool = False, probability_fn: Any = "softmax",
                 kernel_initializer: Any = "glorot_uniform", dtype: Any = None,
                 name: str = "BahdanauAttention", **kwargs: Any):
        super().__init__(units, memory, memory_sequence_length, normalize=normalize,
                         probability_fn=_probability_fn(probability_fn), dtype=dtype,
                         name=name, kernel_initializer=kernel_initializer,
                         **_tfa_kwargs(type(self).__name__, kwargs))


class LuongAttention(_KerasCall, _tf1.LuongAttention):
    """tfa's ``LuongAttention(units, memory=None, memory_sequence_length=None, scale=False,
    probability_fn="softmax", ...)``."""

    def __init__(self, units: int, memory: Any = None, memory_sequence_length: Any = None,
                 scale: bool = False, probability_fn: Any = "softmax", dtype: Any = None,
                 name: str = "LuongAttention", **kwargs: Any):
        super().__init__(units, memory, memory_sequence_length, scale=scale,
                         probability_fn=_probability_fn(probability_fn), dtype=dtype,
                         name=name, **_tfa_kwargs(type(self).__name__, kwargs))


class BahdanauMonotonicAttention(_KerasCall, _tf1.BahdanauMonotonicAttention):
    """tfa's ``BahdanauMonotonicAttention(units, memory=None, memory_sequence_length=None,
    normalize=False, sigmoid_noise=0.0, sigmoid_noise_seed=None, score_bias_init=0.0,
    mode="parallel", kernel_initializer="glorot_uniform", ...)``."""

    def __init__(self, units: int, memory: Any = None, memory_sequence_length: Any = None,
                 normalize: bool = False, sigmoid_noise: float = 0.0,
                 sigmoid_noise_seed: int | None = None, score_bias_init: float = 0.0,
                 mode: str = "parallel", kernel_initializer: Any = "glorot_uniform",
                 dtype: Any = None, name: str = "BahdanauMonotonicAttention", **kwargs: Any):
        super().__init__(units, memory, memory_sequence_length, normalize=normalize,
                         sigmoid_noise=sigmoid_noise, sigmoid_noise_seed=sigmoid_noise_seed,
                         score_bias_init=score_bias_init, mode=mode, dtype=dtype, name=name,
                         kernel_initializer=kernel_initializer,
                         **_tfa_kwargs(type(self).__name__, kwargs))


class LuongMonotonicAttention(_KerasCall, _tf1.LuongMonotonicAttention):
    """tfa's ``LuongMonotonicAttention(units, memory=None, memory_sequence_length=None,
    scale=False, sigmoid_noise=0.0, sigmoid_noise_seed=None, score_bias_init=0.0,
    mode="parallel", ...)``."""

    def __init__(self, units: int, memory: Any = None, memory_sequence_length: Any = None,
                 scale: bool = False, sigmoid_noise: float = 0.0,
                 sigmoid_noise_seed: int | None = None, score_bias_init: float = 0.0,
                 mode: str = "parallel", dtype: Any = None,
                 name: str = "LuongMonotonicAttention", **kwargs: Any):
        super().__init__(units, memory, memory_sequence_length, scale=scale,
                         sigmoid_noise=sigmoid_noise, sigmoid_noise_seed=sigmoid_noise_seed,
                         score_bias_init=score_bias_init, mode=mode, dtype=dtype, name=name,
                         **_tfa_kwargs(type(self).__name__, kwargs))


# -- attention wrapper ---------------------------------------------------------------------------

class AttentionWrapperState(NamedTuple):
    """tfa's state of an :class:`AttentionWrapper`: TF 1.x's fields without ``time``.

    Attributes:
        cell_state: the wrapped cell's state.
        attention: ``[batch, attention_layer_size]`` attention emitted at the last step.
        alignments: ``[batch, memory_time]`` (a tuple with several mechanisms).
        alignment_history: :class:`rnnkit.seq2seq.AlignmentHistory` (tuple of them with
            several mechanisms), or ``()`` when disabled.
        attention_state: the mechanisms' own states (their previous alignments).
    """

    cell_state: Any
    attention: torch.Tensor
    alignments: Any
    alignment_history: Any
    attention_state: Any

    def clone(self, **kwargs: Any) -> AttentionWrapperState:
        """Copy with some fields replaced (``cell_state=encoder_state``); as tfa, a new
        tensor must have the shape of the one it replaces."""
        new = self._replace(**kwargs)

        def same_shape(old: Any, value: Any) -> Any:
            if (isinstance(old, torch.Tensor) and isinstance(value, torch.Tensor)
                    and old.shape != value.shape):
                raise ValueError(f"The shape of the AttentionWrapperState is expected to be "
                                 f"the same as the one to clone: {tuple(old.shape)}, "
                                 f"received {tuple(value.shape)}")
            return value

        return nest.map_structure(same_shape, self, new)

    def attention_probabilities(self) -> torch.Tensor:
        """``[batch, memory_time]``: this step's alignments (their mean over several
        mechanisms), what a coverage penalty accumulates."""
        return _mean_alignments(self.alignments)

    @classmethod
    def check_state(cls, name: str, size: Any, state: Any, batch_size: int) -> None:
        """``state`` against an ``AttentionWrapper.state_size``."""
        _check_attention_state(name, size, state, batch_size, cls)


class AttentionWrapper(_tf1.AttentionWrapper):
    """tfa's ``AttentionWrapper(cell, attention_mechanism, attention_layer_size=None,
    alignment_history=False, cell_input_fn=None, output_attention=True,
    initial_cell_state=None, name=None, attention_layer=None, attention_fn=None,
    dtype=None)``: :class:`rnnkit.seq2seq.AttentionWrapper` with tfa's five-field
    :class:`AttentionWrapperState`.

    ``dtype`` is the Keras layer's: the attention layers are made in it and floating inputs
    are cast to it at each step (Keras's autocast).  Beam search and coverage penalties
    reach its attention through the cells' search hooks, as for the TF 1.x wrapper.
    """

    state_type: ClassVar[type] = AttentionWrapperState

    def __init__(self, cell: nn.Module, attention_mechanism: Any,
                 attention_layer_size: Any = None, alignment_history: bool = False,
                 cell_input_fn: Callable | None = None, output_attention: bool = True,
                 initial_cell_state: Any = None, name: str | None = None,
                 attention_layer: Any = None, attention_fn: Callable | None = None,
                 dtype: torch.dtype | None = None):
        super().__init__(cell, attention_mechanism, attention_layer_size=attention_layer_size,
                         alignment_history=alignment_history, cell_input_fn=cell_input_fn,
                         output_attention=output_attention,
                         initial_cell_state=initial_cell_state, name=name,
                         attention_layer=attention_layer, attention_fn=attention_fn,
                         dtype=dtype)
        self._compute_dtype = _checks.as_dtype("dtype", dtype)

    def _autocast(self, inputs: Any) -> Any:
        if self._compute_dtype is None:
            return inputs
        return nest.map_structure(
            lambda x: x.to(self._compute_dtype)
            if isinstance(x, torch.Tensor) and x.is_floating_point() else x, inputs)

    def _check_call(self, inputs: Any, state: Any) -> Any:
        # ``wrapper(inputs, state)`` checks the inputs as Keras sees them: cast first
        return super()._check_call(self._autocast(inputs), state)

    def call(self, inputs: Any, state: AttentionWrapperState):
        return super().call(self._autocast(inputs), state)
