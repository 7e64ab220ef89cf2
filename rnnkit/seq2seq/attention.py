"""Attention mechanisms: Bahdanau, Luong and their monotonic variants.

A mechanism holds a memory ``[batch, memory_time, memory_depth]`` (the encoder outputs) and,
called with a query ``[batch, query_depth]`` and its previous state, returns
``(alignments [batch, memory_time], next_state)``.  Positions past
``memory_sequence_length`` get exactly zero weight.  Parameters are created once; a new
batch of memory is bound with :meth:`AttentionMechanism.setup_memory`.

Parameter names follow TF: ``memory_layer`` (keys), ``query_layer``, ``attention_v``,
``attention_g``, ``attention_b``, ``attention_score_bias``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Collection, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit import _checks, initializers, nest
from rnnkit.capture import GraphBindings
from rnnkit.compat import layout
from rnnkit.generators import SeededGenerators
from rnnkit.layers import Dense

__all__ = [
    "AttentionMechanism",
    "BahdanauAttention",
    "BahdanauMonotonicAttention",
    "LuongAttention",
    "LuongMonotonicAttention",
    "hardmax",
    "monotonic_attention",
    "safe_cumprod",
]


def hardmax(logits: torch.Tensor, name: str | None = None) -> torch.Tensor:
    """One-hot of the argmax over the last axis: ``[..., n]`` -> ``[..., n]``."""
    return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)


def safe_cumprod(x: torch.Tensor, axis: int = 0, exclusive: bool = False,
                 reverse: bool = False, name: str | None = None) -> torch.Tensor:
    """Cumulative product along ``axis`` computed as ``exp(cumsum(log(clip(x, tiny, 1))))``
    so that its gradient stays finite (TF's ``safe_cumprod``, whose extra arguments are
    ``tf.cumprod``'s: the default axis is 0).

    Args:
        x: a float tensor of any shape; values are clipped to ``[tiny, 1]``.
        axis: the axis to multiply along (negative counts from the end).
        exclusive: shift by one: the first product is 1.
        reverse: multiply from the end of the axis backwards.

    Returns:
        A tensor of ``x``'s shape.
    """
    x = _checks.tensor("x", x)
    _checks.floating("x", x)
    axis = _checks.as_axis("axis", axis, max(x.dim(), 1))
    exclusive = _checks.as_flag("exclusive", exclusive)
    reverse = _checks.as_flag("reverse", reverse)
    tiny = torch.finfo(x.dtype).tiny
    logs = torch.log(x.clamp(tiny, 1.0))
    if x.dim() == 0 or x.shape[axis] == 0:
        return torch.ones_like(x) if exclusive else torch.exp(logs)
    if reverse:
        logs = logs.flip(axis)
    total = logs.cumsum(axis)
    if exclusive:  # shifted by one step (not ``total - logs``, which loses precision)
        n = total.shape[axis]
        total = torch.cat([torch.zeros_like(total.narrow(axis, 0, 1)),
                           total.narrow(axis, 0, n - 1)], axis)
    if reverse:
        total = total.flip(axis)
    return torch.exp(total)


def monotonic_attention(p_choose_i: torch.Tensor, previous_attention: torch.Tensor,
                        mode: str) -> torch.Tensor:
    """Expected monotonic alignment (Raffel et al. 2017).

    Args:
        p_choose_i: ``[batch, memory_time]`` probability of stopping at each position.
        previous_attention: ``[batch, memory_time]`` previous step's alignment.
        mode: ``'recursive'`` (exact, sequential over memory), ``'parallel'`` (cumprod /
            cumsum form, may be inexact when ``p_choose_i`` is near 1), or ``'hard'``
            (``p_choose_i`` must be 0/1; picks the first chosen position after the
            previous one).

    Returns:
        ``[batch, memory_time]`` alignments.
    """
    if p_choose_i.shape != previous_attention.shape:
        raise ValueError(f"p_choose_i {tuple(p_choose_i.shape)} and previous_attention "
                         f"{tuple(previous_attention.shape)} must have the same shape")
    if mode == "recursive":
        shifted = torch.cat([torch.ones_like(p_choose_i[:, :1]), 1 - p_choose_i[:, :-1]], 1)
        q, acc = [], torch.zeros_like(p_choose_i[:, 0])
        for j in range(p_choose_i.shape[1]):
            acc = shifted[:, j] * acc + previous_attention[:, j]
            q.append(acc)
        return p_choose_i * torch.stack(q, 1)
    if mode == "parallel":
        cumprod = safe_cumprod(1 - p_choose_i, axis=1, exclusive=True)
        return p_choose_i * cumprod * torch.cumsum(
            previous_attention / cumprod.clamp(1e-10, 1.0), dim=1)
    if mode == "hard":
        chosen = p_choose_i * torch.cumsum(previous_attention, dim=1)
        first = torch.cumprod(1 - chosen, dim=1)
        exclusive = torch.cat([torch.ones_like(first[:, :1]), first[:, :-1]], 1)
        return chosen * exclusive
    raise ValueError(f"mode must be 'recursive', 'parallel' or 'hard', received {mode!r}")


def _repeat_rows(t: torch.Tensor | None, multiplier: int) -> torch.Tensor | None:
    """Each row ``multiplier`` times, consecutively (:func:`tile_batch`'s order)."""
    return None if t is None else t.repeat_interleave(multiplier, dim=0)


class AttentionMechanism(nn.Module):
    """Base class: memory handling, masking and the ``probability_fn`` plumbing.

    Subclasses implement :meth:`score` (``query [batch, query_depth]`` ->
    ``score [batch, memory_time]``) or override :meth:`forward` entirely (TF's
    ``__call__``), returning ``(alignments, next_state)``.  They read the memory through
    ``keys`` and ``values`` only: within a beam search (:meth:`tiled_for_beams`) those show
    each entry's memory once per hypothesis, so a mechanism of your own works with beam
    search as written.

    Attributes after :meth:`setup_memory`: ``values`` (masked memory
    ``[batch, memory_time, memory_depth]``), ``keys`` (``memory_layer(values)``,
    ``[batch, memory_time, num_units]``), ``batch_size``, ``alignments_size``,
    ``memory_sequence_length``.

    ``keys`` are never stale: they are computed at their first use in each sequence (the
    drivers call :meth:`start_sequence`) and again whenever the memory layer's weights
    change (an optimizer step, ``load_state_dict``), so memory bound once, TF's way, and a
    plain training loop that rebinds it every batch both work.  The memory layer exists from
    construction on (sized by the first memory, or by ``memory_depth=``), so an optimizer
    made before the first batch trains it.

    Args (beside the subclasses'): ``memory_layer`` / ``query_layer``: modules to use
    instead of the ``Dense`` layers made here (tensorflow-addons' arguments);
    ``custom_key_value_fn``: ``(keys, values) -> (keys, values)`` applied to the processed
    memory (TF 1.15's argument); ``dtype``: the parameters' dtype (memory is cast to it);
    ``kernel_initializer``: the initializer of the memory and query layers.
    """

    tf_default_name: str = "attention_mechanism"

    def __init__(self, num_units: int, memory=None, memory_sequence_length=None,
                 probability_fn: Callable | None = None, score_mask_value: float | None = None,
                 use_memory_layer: bool = True, name: str | None = None,
                 memory_depth: int | None = None, *, dtype: torch.dtype | None = None,
                 memory_layer: nn.Module | None = None, query_layer: nn.Module | None = None,
                 custom_key_value_fn: Callable | None = None):
        super().__init__()
        self.num_units = _checks.as_count("num_units", num_units)
        self.tf_scope_name = name
        self._dtype = _checks.as_dtype("dtype", dtype)
        self._probability = (_checks.as_function("probability_fn", probability_fn)
                             or (lambda score: torch.softmax(score, dim=-1)))
        self.score_mask_value = float("-inf") if score_mask_value is None else \
            _checks.as_number("score_mask_value", score_mask_value, finite=False)
        self._custom_kv = _checks.as_function("custom_key_value_fn", custom_key_value_fn)
        for arg, layer in (("memory_layer", memory_layer), ("query_layer", query_layer)):
            if layer is not None and not callable(layer):
                raise TypeError(f"{arg} must be a module or a function, received "
                                f"{type(layer).__name__}")
        if memory_layer is None and use_memory_layer:
            memory_layer = Dense(self.num_units, use_bias=False, name="memory_layer",
                                 in_features=memory_depth, dtype=dtype)
        self.memory_layer = memory_layer
        self.query_layer = query_layer
        self._memory: torch.Tensor | None = None  # the masked memory bound
        self._mask: torch.Tensor | None = None
        self._lengths: torch.Tensor | None = None
        self._empty_rows: list[int] = []
        self._beams = 1  # rows per memory row within tiled_for_beams
        self._cache: dict[tuple, Any] = {}
        self._sequence = 0
        if memory is not None:
            self.setup_memory(memory, memory_sequence_length)
        elif memory_sequence_length is not None:
            warnings.warn("memory_sequence_length without memory is ignored (as "
                          "tensorflow-addons does); pass it with the memory to "
                          "setup_memory(memory, memory_sequence_length)", stacklevel=3)

    def _own_parameter(self, value: float | torch.Tensor) -> nn.Parameter:
        """A parameter of the mechanism's dtype, on the bound memory's device."""
        t = torch.as_tensor(value, dtype=self._dtype or torch.get_default_dtype())
        if self._memory is not None:
            t = t.to(device=self._memory.device, dtype=self._dtype or self._memory.dtype)
        return nn.Parameter(t)

    # -- memory ----------------------------------------------------------------------------
    def setup_memory(self, memory: Any, memory_sequence_length=None,
                     memory_mask: Any = None) -> None:
        """Bind a batch of memory ``[batch, memory_time, memory_depth]`` (a tensor or array).

        ``memory_sequence_length`` (``[batch]`` ints in ``[0, memory_time]``) or a boolean
        ``memory_mask [batch, memory_time]`` mark the valid positions; padding is zeroed in
        ``values`` and gets zero alignment (a row of length 0 has no position to attend:
        scoring it is an error, as in TF).  The first call sizes ``memory_layer`` (unless
        ``memory_depth=`` did); later calls must keep the memory depth.
        """
        memory = _checks.as_inputs("memory", memory, self._dtype)
        _checks.rank("memory", memory, 3, "[batch, memory_time, memory_depth]")
        _checks.floating("memory", memory)
        if self._dtype is not None:
            memory = memory.to(self._dtype)
        batch, max_time, depth = memory.shape
        if memory_sequence_length is not None and memory_mask is not None:
            raise ValueError("give memory_sequence_length or memory_mask, not both")
        mask = None
        lengths = None
        if memory_sequence_length is not None:
            lengths = _checks.as_lengths("memory_sequence_length", memory_sequence_length,
                                         batch, max_time, memory.device)
            mask = torch.arange(max_time, device=memory.device)[None, :] < lengths[:, None]
        elif memory_mask is not None:
            mask = _checks.as_flags("memory_mask", memory_mask, (batch, max_time),
                                    memory.device)
        layer = self.memory_layer
        if isinstance(layer, Dense):
            if layer.in_features is None:
                layer.build(depth, memory.dtype, memory.device)
            elif layer.in_features != depth:
                raise ValueError(f"memory depth changed: the memory layer expects "
                                 f"{layer.in_features}, received {depth}")
        # padding is replaced, never multiplied: NaN or inf there must not leak
        self._memory = memory if mask is None else torch.where(mask[..., None], memory, 0.0)
        self._mask = mask
        self._lengths = lengths
        # read on the host here (as_lengths checked the range there), not at every step
        # rows without a valid position: TF accepts them at setup (a beam search may carry
        # them); scoring one is refused (its softmax would be NaN)
        self._empty_rows = [] if mask is None else (~mask.any(1)).nonzero()[:, 0].tolist()
        self._cache = {}

    @property
    def values(self) -> torch.Tensor | None:
        """The masked memory ``[batch, memory_time, memory_depth]`` (after
        ``custom_key_value_fn``), each row repeated per hypothesis within a beam search."""
        if self._memory is None:
            return None
        return self._processed()[1]

    @property
    def keys(self) -> torch.Tensor | None:
        """``memory_layer(values)`` ``[batch, memory_time, num_units]``, computed for the
        current sequence and the memory layer's current weights."""
        if self._memory is None:
            return None
        return self._processed()[0]

    @property
    def memory_sequence_length(self) -> torch.Tensor | None:
        """``[batch]`` lengths of the bound memory (``None`` without)."""
        return _repeat_rows(self._lengths, self._beams) if self._beams > 1 else self._lengths

    def _processed(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(keys, values)`` for the bound memory, cached per sequence, weights and beam
        multiplier."""
        layer = self.memory_layer
        params = tuple((p._version, p.data_ptr()) for p in layer.parameters()) \
            if isinstance(layer, nn.Module) else ()
        stamp = (id(self._memory), self._sequence, torch.is_grad_enabled(), params,
                 self._beams)
        found = self._cache.get(stamp)
        if found is None:
            if len(self._cache) >= 4:  # as bound and tiled for a beam search, per grad mode
                self._cache.pop(next(iter(self._cache)))
            values = _repeat_rows(self._memory, self._beams) if self._beams > 1 \
                else self._memory  # tiled first: the keys TF's tile_batch(memory) gives
            keys = layer(values) if layer is not None else values
            if self._custom_kv is not None:
                keys, values = self._custom_kv(keys, values)
            found = (keys, values)
            self._cache[stamp] = found
        return found

    @contextlib.contextmanager
    def tiled_for_beams(self, batch_size: int, multiplier: int) -> Iterator[None]:
        """Within the block, memory bound for ``batch_size`` rows serves ``batch_size *
        multiplier`` queries, each entry's rows consecutive (:func:`tile_batch`'s order):
        ``keys``, ``values``, the mask and the lengths repeat each row ``multiplier`` times.
        Memory already bound at ``batch_size * multiplier`` rows (tiled TF's way) is used as
        it is."""
        saved = self._beams
        if (self._memory is not None and multiplier > 1 and saved == 1
                and self._memory.shape[0] == batch_size):
            self._beams = multiplier
        try:
            yield
        finally:
            self._beams = saved

    def mask_for_rows(self, rows: int) -> torch.Tensor | None:
        """The valid-position mask ``[rows, memory_time]`` (``None`` without lengths)."""
        if self._mask is None:
            return None
        return _repeat_rows(self._mask, self._beams) if self._beams > 1 else self._mask

    def graph_bindings(self) -> GraphBindings:
        """A CUDA graph of decode steps reads the memory bound here: its values, mask and
        lengths are rebound per decode (the keys are computed inside the graph)."""
        return GraphBindings(key=(type(self).__name__, self._beams), slots=(
            (self, "_memory"), (self, "_mask"), (self, "_lengths")))

    def start_sequence(self) -> None:
        """A new sequence begins: ``keys`` are computed afresh at their next use."""
        self._sequence += 1

    def _require_memory(self) -> None:
        if self._memory is None:
            raise ValueError(f"{type(self).__name__} has no memory: pass memory= or call "
                             "setup_memory(memory, memory_sequence_length) first")

    @property
    def memory_depth(self) -> int | None:
        """Depth of the values (known once memory is bound or ``memory_depth=`` was
        given)."""
        if self._memory is not None:
            return self.values.shape[-1] if self._custom_kv is not None else \
                self._memory.shape[-1]
        layer = self.memory_layer
        return getattr(layer, "in_features", None) if self._custom_kv is None else None

    @property
    def batch_size(self) -> int:
        """Rows the memory serves (each entry's hypotheses within a beam search)."""
        self._require_memory()
        return self._memory.shape[0] * self._beams

    @property
    def alignments_size(self) -> int:
        """``memory_time``: the length of each row of alignments."""
        self._require_memory()
        return self._memory.shape[1]

    @property
    def state_size(self) -> int:
        """Size of the mechanism's state (its previous alignments): ``alignments_size``."""
        return self.alignments_size

    def build_query_layer(self, query_depth: int) -> None:
        """Size parameters that depend on the query depth (called by AttentionWrapper)."""
        layer = self.query_layer
        if isinstance(layer, Dense) and layer.in_features is None:
            like = self._memory
            layer.build(query_depth, like.dtype if like is not None else self._dtype,
                        like.device if like is not None else None)

    # -- scoring ---------------------------------------------------------------------------
    def score(self, query: torch.Tensor, state: Any) -> torch.Tensor:
        """Unnormalised ``score [batch, memory_time]`` of ``query [batch, query_depth]``
        against ``keys``; ``state`` is the previous alignments (monotonic attention)."""
        raise NotImplementedError

    def mask_score(self, score: torch.Tensor) -> torch.Tensor:
        """``score [batch, memory_time]`` with ``score_mask_value`` past each memory
        length."""
        mask = self.mask_for_rows(score.shape[0])
        if mask is None:
            return score
        return score.masked_fill(~mask, self.score_mask_value)

    def probability_fn(self, score: torch.Tensor, state: Any) -> torch.Tensor:
        """Alignments ``[batch, memory_time]`` from ``score`` (masked first), with the
        ``probability_fn`` given at construction (softmax by default)."""
        return self._probability(self.mask_score(score))

    def forward(self, query: Any, state: Any = None) -> tuple[torch.Tensor, Any]:
        """``(alignments [batch, memory_time], next_state)`` for ``query [batch, depth]``.

        Called as TF 1.x does, ``mechanism(query, state)``, or as tensorflow-addons does,
        ``mechanism([query, state])``.
        """
        if state is None and isinstance(query, (list, tuple)) and len(query) == 2:
            query, state = query
        self._require_memory()
        query = _checks.as_inputs("query", query, self._memory.dtype)
        if state is not None:  # previous alignments as a numpy array, as TF took them
            state = nest.map_structure(
                lambda s: _checks.as_inputs("state", s, self._memory.dtype), state)
        if query.shape[0] != self.batch_size:
            raise ValueError(
                f"query has batch size {query.shape[0]} but the memory has {self.batch_size}; "
                "with BeamSearchDecoder, tile the memory (and its lengths) with "
                "tile_batch(memory, beam_width)")
        if self._empty_rows:
            raise ValueError(f"rows {self._empty_rows} of the memory bound have no valid "
                             "position (memory_sequence_length 0 or an all-False memory_mask); "
                             "a row with no memory cannot be attended")
        alignments = self.probability_fn(self.score(query, state), state)
        return alignments, alignments

    def initial_alignments(self, batch_size: int, dtype: torch.dtype | None = None):
        """Zeros ``[batch_size, memory_time]``."""
        self._require_memory()
        return torch.zeros(batch_size, self.alignments_size, dtype=dtype or self._memory.dtype,
                           device=self._memory.device)

    def initial_state(self, batch_size: int, dtype: torch.dtype | None = None):
        """The mechanism's state before the first step: :meth:`initial_alignments`."""
        return self.initial_alignments(batch_size, dtype)

    # -- TF layout -------------------------------------------------------------------------
    @property
    def tf_name(self) -> str:
        """TF's scope name: ``name=`` or the class's (``bahdanau_attention``, ...)."""
        return self.tf_scope_name or type(self).tf_default_name

    def tf_variables(self, available: Collection[str] = ()) -> dict[str, layout.TFVariable]:
        """The mechanism's own variables (``attention_v``, ``attention_g``, ``attention_b``,
        ``attention_score_bias``); its layers are children."""
        out = {}
        for name in ("attention_v", "attention_g", "attention_b", "attention_score_bias"):
            if isinstance(getattr(self, name, None), nn.Parameter):
                out[name] = layout.param(lambda n=name: getattr(self, n), name,
                                         initializer=self._initial_values().get(name))
        return out

    def _initial_values(self) -> dict[str, Any]:
        """TF's initial value of each own variable."""
        return {}

    def tf_children(self) -> list[tuple[str, nn.Module]]:
        """The layers below the mechanism in TF's scope tree (``memory_layer``,
        ``query_layer``), with their relative scopes."""
        return [(name, layer) for name, layer in (("memory_layer", self.memory_layer),
                                                  ("query_layer", self.query_layer))
                if isinstance(layer, nn.Module)]


class BahdanauAttention(AttentionMechanism):
    """Additive attention (Bahdanau et al. 2015), optionally weight-normalised.

    ``score_j = v . tanh(W_m m_j + W_q q)`` (``normalize=True``:
    ``g * v / |v| . tanh(W_m m_j + W_q q + b)``).  ``kernel_initializer`` initialises
    ``attention_v`` (glorot-uniform by default, as tensorflow-addons); the query layer is
    sized by the query.
    """

    tf_default_name = "bahdanau_attention"

    def __init__(self, num_units: int, memory=None, memory_sequence_length=None,
                 normalize: bool = False, probability_fn: Callable | None = None,
                 score_mask_value: float | None = None, dtype=None, name: str | None = None,
                 query_depth: int | None = None, memory_depth: int | None = None, *,
                 kernel_initializer: Any = None, memory_layer: nn.Module | None = None,
                 query_layer: nn.Module | None = None,
                 custom_key_value_fn: Callable | None = None):
        if query_layer is None:
            query_layer = Dense(_checks.as_count("num_units", num_units), use_bias=False,
                                name="query_layer", in_features=query_depth, dtype=dtype)
        super().__init__(num_units, memory, memory_sequence_length, probability_fn,
                         score_mask_value, name=name, memory_depth=memory_depth, dtype=dtype,
                         memory_layer=memory_layer, query_layer=query_layer,
                         custom_key_value_fn=custom_key_value_fn)
        self._kernel_init = initializers.resolve("kernel_initializer", kernel_initializer)
        self.normalize = _checks.as_flag("normalize", normalize)
        self.attention_v = self._own_parameter(torch.zeros(self.num_units))
        if self.normalize:
            self.attention_g = self._own_parameter(0.0)
            self.attention_b = self._own_parameter(torch.zeros(self.num_units))
        self._init_own()

    def _init_own(self) -> None:
        layout.initialize(self)

    def _initial_values(self) -> dict[str, Any]:
        return {"attention_v": self._kernel_init or "glorot_uniform",
                "attention_g": math.sqrt(1.0 / self.num_units), "attention_b": 0.0}

    def score(self, query, state):
        self.build_query_layer(query.shape[-1])
        processed = self.query_layer(query)[:, None, :]  # [batch, 1, num_units]
        if self.normalize:
            v = self.attention_g * self.attention_v * torch.rsqrt((self.attention_v ** 2).sum())
            return (v * torch.tanh(self.keys + processed + self.attention_b)).sum(-1)
        return (self.attention_v * torch.tanh(self.keys + processed)).sum(-1)


class LuongAttention(AttentionMechanism):
    """Multiplicative attention (Luong et al. 2015): ``score_j = q . (W_m m_j)``, times a
    learned scalar ``attention_g`` (starting at 1) when ``scale``.  The query depth must be
    ``num_units``."""

    tf_default_name = "luong_attention"

    def __init__(self, num_units: int, memory=None, memory_sequence_length=None,
                 scale: bool = False, probability_fn: Callable | None = None,
                 score_mask_value: float | None = None, dtype=None, name: str | None = None,
                 memory_depth: int | None = None, *, memory_layer: nn.Module | None = None,
                 custom_key_value_fn: Callable | None = None):
        super().__init__(num_units, memory, memory_sequence_length, probability_fn,
                         score_mask_value, name=name, memory_depth=memory_depth, dtype=dtype,
                         memory_layer=memory_layer, custom_key_value_fn=custom_key_value_fn)
        self.scale = _checks.as_flag("scale", scale)
        if self.scale:
            self.attention_g = self._own_parameter(1.0)

    def _initial_values(self) -> dict[str, Any]:
        return {"attention_g": 1.0}

    def score(self, query, state):
        if query.shape[-1] != self.keys.shape[-1]:
            raise ValueError(f"LuongAttention needs a query of depth num_units="
                             f"{self.keys.shape[-1]}, received depth {query.shape[-1]}")
        s = torch.bmm(self.keys, query[:, :, None])[..., 0]
        return self.attention_g * s if self.scale else s


class _MonotonicMixin:
    """Monotonic probability function and one-hot initial alignments."""

    def _init_monotonic(self, sigmoid_noise, sigmoid_noise_seed, score_bias_init, mode):
        if mode not in ("parallel", "recursive", "hard"):
            raise ValueError(f"mode must be 'parallel', 'recursive' or 'hard', received "
                             f"{mode!r}")
        self.sigmoid_noise = _checks.as_number("sigmoid_noise", sigmoid_noise)
        self.mode = mode
        self._score_bias_init = _checks.as_number("score_bias_init", score_bias_init)
        self.attention_score_bias = self._own_parameter(self._score_bias_init)
        self._noise = SeededGenerators(sigmoid_noise_seed, "sigmoid_noise_seed")

    def _initial_values(self) -> dict[str, Any]:
        return {**super()._initial_values(), "attention_score_bias": self._score_bias_init}

    def graph_bindings(self):
        """The memory, as every mechanism; seeded noise in ``train()`` mode cannot be
        graphed."""
        if self.sigmoid_noise > 0 and self.training:
            self._noise.refuse_graphs(
                f"{type(self).__name__}(sigmoid_noise_seed=...) draws its noise")
        return super().graph_bindings()

    def probability_fn(self, score, state):
        score = self.mask_score(score)
        if self.sigmoid_noise > 0 and self.training:
            score = score + self.sigmoid_noise * self._noise.normal(score)
        if self.mode == "hard":
            p_choose_i = (score > 0).to(score.dtype)
        else:
            p_choose_i = torch.sigmoid(score)
        return monotonic_attention(p_choose_i, state, self.mode)

    def initial_alignments(self, batch_size, dtype=None):
        a = super().initial_alignments(batch_size, dtype)
        a[:, 0] = 1.0
        return a


class BahdanauMonotonicAttention(_MonotonicMixin, BahdanauAttention):
    """Monotonic attention with a Bahdanau score plus a learned bias
    (``attention_score_bias``, starting at ``score_bias_init``).

    ``sigmoid_noise`` adds Gaussian noise to the scores in ``train()`` mode (seeded by
    ``sigmoid_noise_seed``); ``mode``: see :func:`monotonic_attention`.
    """

    tf_default_name = "bahdanau_monotonic_attention"

    def __init__(self, num_units, memory=None, memory_sequence_length=None, normalize=False,
                 score_mask_value=None, sigmoid_noise=0.0, sigmoid_noise_seed=None,
                 score_bias_init=0.0, mode="parallel", dtype=None, name=None,
                 query_depth=None, memory_depth=None, *, kernel_initializer=None,
                 memory_layer=None, query_layer=None):
        self._score_bias_pending = (sigmoid_noise, sigmoid_noise_seed, score_bias_init, mode)
        super().__init__(num_units, memory, memory_sequence_length, normalize=normalize,
                         score_mask_value=score_mask_value, name=name, query_depth=query_depth,
                         memory_depth=memory_depth, dtype=dtype,
                         kernel_initializer=kernel_initializer, memory_layer=memory_layer,
                         query_layer=query_layer)

    def _init_own(self) -> None:
        self._init_monotonic(*self._score_bias_pending)
        super()._init_own()

    def score(self, query, state):
        return super().score(query, state) + self.attention_score_bias


class LuongMonotonicAttention(_MonotonicMixin, LuongAttention):
    """Monotonic attention with a Luong score plus a learned bias; see
    :class:`BahdanauMonotonicAttention`."""

    tf_default_name = "luong_monotonic_attention"

    def __init__(self, num_units, memory=None, memory_sequence_length=None, scale=False,
                 score_mask_value=None, sigmoid_noise=0.0, sigmoid_noise_seed=None,
                 score_bias_init=0.0, mode="parallel", dtype=None, name=None,
                 memory_depth=None, *, memory_layer=None):
        super().__init__(num_units, memory, memory_sequence_length, scale=scale,
                         score_mask_value=score_mask_value, name=name, memory_depth=memory_depth,
                         dtype=dtype, memory_layer=memory_layer)
        self._init_monotonic(sigmoid_noise, sigmoid_noise_seed, score_bias_init, mode)

    def score(self, query, state):
        return super().score(query, state) + self.attention_score_bias
