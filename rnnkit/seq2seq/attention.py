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
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit import _checks
from rnnkit.generators import SeededGenerators

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


def _dense(in_features: int, out_features: int, like: torch.Tensor | None = None) -> nn.Linear:
    """TF ``Dense(use_bias=False)`` with glorot-uniform init."""
    layer = nn.Linear(in_features, out_features, bias=False)
    nn.init.xavier_uniform_(layer.weight)
    if like is not None:
        layer.to(device=like.device, dtype=like.dtype)
    return layer


def attention_mechanisms(module: nn.Module) -> list[AttentionMechanism]:
    """The attention mechanisms inside ``module`` (found once by a decoder, not per step)."""
    return [m for m in module.modules() if isinstance(m, AttentionMechanism)]


@contextlib.contextmanager
def tiled_memory(mechanisms: list[AttentionMechanism], batch_size: int,
                 multiplier: int) -> Iterator[None]:
    """Within the block, each of ``mechanisms`` bound to ``batch_size`` rows of memory
    attends ``multiplier`` copies of each row (``tile_batch``'s order), as a beam search of
    width ``multiplier`` needs; bindings are restored afterwards."""
    swapped = [(m, m._swap_in_tiled(multiplier)) for m in mechanisms
               if multiplier > 1 and m.values is not None and m.values.shape[0] == batch_size]
    try:
        yield
    finally:
        for m, saved in swapped:
            m._restore(saved)


class AttentionMechanism(nn.Module):
    """Base class: memory handling, masking and the ``probability_fn`` plumbing.

    Subclasses implement :meth:`score` (``query [batch, query_depth]`` ->
    ``score [batch, memory_time]``) or override :meth:`forward` entirely (TF's
    ``__call__``), returning ``(alignments, next_state)``.

    Attributes after :meth:`setup_memory`: ``values`` (masked memory
    ``[batch, memory_time, memory_depth]``), ``keys`` (``memory_layer(values)``,
    ``[batch, memory_time, num_units]``), ``batch_size``, ``alignments_size``,
    ``memory_sequence_length``.

    ``keys`` are never stale: they are computed at their first use in each sequence (the
    drivers call :meth:`start_sequence`) and again whenever the memory layer's weights
    change (an optimizer step, ``load_state_dict``), so memory bound once, TF's way, and a
    plain training loop that rebinds it every batch both work.
    """

    def __init__(self, num_units: int, memory=None, memory_sequence_length=None,
                 probability_fn: Callable | None = None, score_mask_value: float | None = None,
                 use_memory_layer: bool = True, name: str | None = None,
                 memory_depth: int | None = None):
        super().__init__()
        self.num_units = _checks.as_count("num_units", num_units)
        self.tf_scope_name = name
        self._probability = (_checks.as_function("probability_fn", probability_fn)
                             or (lambda score: torch.softmax(score, dim=-1)))
        self.score_mask_value = float("-inf") if score_mask_value is None else \
            _checks.as_number("score_mask_value", score_mask_value, finite=False)
        self._use_memory_layer = use_memory_layer
        self.memory_layer: nn.Linear | None = None
        self.query_layer: nn.Linear | None = None
        self.values: torch.Tensor | None = None
        self._keys: dict[tuple, torch.Tensor] = {}
        self._tiled: tuple | None = None
        self._sequence = 0
        self.memory_sequence_length: torch.Tensor | None = None
        self._mask: torch.Tensor | None = None
        if memory_depth is not None and use_memory_layer:
            self.memory_layer = _dense(memory_depth, num_units)
        if memory is not None:
            self.setup_memory(memory, memory_sequence_length)
        elif memory_sequence_length is not None:
            warnings.warn("memory_sequence_length without memory is ignored (as "
                          "tensorflow-addons does); pass it with the memory to "
                          "setup_memory(memory, memory_sequence_length)", stacklevel=3)

    # -- memory ----------------------------------------------------------------------------
    def setup_memory(self, memory: torch.Tensor, memory_sequence_length=None,
                     memory_mask: torch.Tensor | None = None) -> None:
        """Bind a batch of memory ``[batch, memory_time, memory_depth]``.

        ``memory_sequence_length`` (``[batch]`` ints in ``[1, memory_time]``) or a boolean
        ``memory_mask [batch, memory_time]`` mark the valid positions; padding is zeroed in
        ``values`` and gets zero alignment.  The first call creates ``memory_layer`` (unless
        ``memory_depth=`` created it already); later calls must keep the memory depth.
        """
        _checks.tensor("memory", memory)
        _checks.rank("memory", memory, 3, "[batch, memory_time, memory_depth]")
        _checks.floating("memory", memory)
        batch, max_time, depth = memory.shape
        if memory_sequence_length is not None and memory_mask is not None:
            raise ValueError("give memory_sequence_length or memory_mask, not both")
        mask = None
        lengths = None
        if memory_sequence_length is not None:
            lengths = _checks.as_lengths("memory_sequence_length", memory_sequence_length,
                                         batch, max_time, memory.device)
            if lengths.numel() and int(lengths.min()) < 1:
                raise ValueError("memory_sequence_length values must be >= 1 (a row with no "
                                 f"memory cannot be attended), received {lengths.tolist()}")
            mask = torch.arange(max_time, device=memory.device)[None, :] < lengths[:, None]
        elif memory_mask is not None:
            if memory_mask.shape != (batch, max_time):
                raise ValueError(f"memory_mask must have shape {(batch, max_time)}, received "
                                 f"{tuple(memory_mask.shape)}")
            if memory_mask.dtype != torch.bool:
                raise TypeError(f"memory_mask must be a bool tensor, received dtype "
                                f"{memory_mask.dtype}")
            mask = memory_mask.to(device=memory.device)
            empty = ~mask.any(1)
            if bool(empty.any()):
                raise ValueError("memory_mask rows must mark at least one position (a row "
                                 "with no memory cannot be attended); rows "
                                 f"{empty.nonzero().flatten().tolist()} are all False")
        if self._use_memory_layer:
            if self.memory_layer is None:
                self.memory_layer = _dense(depth, self.num_units, memory)
            elif self.memory_layer.in_features != depth:
                raise ValueError(f"memory depth changed: the memory layer expects "
                                 f"{self.memory_layer.in_features}, received {depth}")
        # padding is replaced, never multiplied: NaN or inf there must not leak
        values = memory if mask is None else torch.where(mask[..., None], memory, 0.0)
        self.values = values
        self._keys = {}
        self._tiled = None
        self.memory_sequence_length = lengths
        self._mask = mask

    @property
    def keys(self) -> torch.Tensor | None:
        """``memory_layer(values)`` ``[batch, memory_time, num_units]``, computed for the
        current sequence and the memory layer's current weights."""
        if self.values is None or self.memory_layer is None:
            return self.values
        stamp = (id(self.values), self._sequence, torch.is_grad_enabled(),
                 *((p._version, p.data_ptr()) for p in self.memory_layer.parameters()))
        keys = self._keys.get(stamp)
        if keys is None:
            if len(self._keys) >= 2:  # the memory as bound, and tiled for a beam search
                self._keys.pop(next(iter(self._keys)))
            keys = self._keys[stamp] = self.memory_layer(self.values)
        return keys

    def _swap_in_tiled(self, multiplier: int) -> tuple:
        """Bind the memory tiled ``multiplier`` times (cached); returns what to restore."""
        from rnnkit.seq2seq.beam_search import tile_batch

        saved = (self.values, self._mask, self.memory_sequence_length)
        if self._tiled is None or self._tiled[0] is not self.values or \
                self._tiled[1] != multiplier:
            tiled = tuple(tile_batch(t, multiplier) if t is not None else None for t in saved)
            self._tiled = (self.values, multiplier, tiled)
        self.values, self._mask, self.memory_sequence_length = self._tiled[2]
        return saved

    def _restore(self, saved: tuple) -> None:
        self.values, self._mask, self.memory_sequence_length = saved

    def graph_bindings(self):
        """A CUDA graph of decode steps reads the memory bound here: its values, mask and
        lengths are rebound per decode (the keys are computed inside the graph)."""
        from rnnkit.seq2seq.decode_graphs import GraphBindings

        return GraphBindings(key=(type(self).__name__,), slots=(
            (self, "values"), (self, "_mask"), (self, "memory_sequence_length")))

    def start_sequence(self) -> None:
        """A new sequence begins: ``keys`` are computed afresh at their next use."""
        self._sequence += 1

    def refresh_keys(self) -> None:
        """Recompute ``keys`` at their next use (kept for code written against older
        versions; keys now follow the weights by themselves)."""
        self.start_sequence()

    def _require_memory(self) -> None:
        if self.values is None:
            raise ValueError(f"{type(self).__name__} has no memory: pass memory= or call "
                             "setup_memory(memory, memory_sequence_length) first")

    @property
    def memory_depth(self) -> int | None:
        """Depth of the memory (known once memory is bound or ``memory_depth=`` was given)."""
        if self.values is not None:
            return self.values.shape[-1]
        return self.memory_layer.in_features if self.memory_layer is not None else None

    @property
    def batch_size(self) -> int:
        """Rows of the bound memory."""
        self._require_memory()
        return self.values.shape[0]

    @property
    def alignments_size(self) -> int:
        """``memory_time``: the length of each row of alignments."""
        self._require_memory()
        return self.values.shape[1]

    @property
    def state_size(self) -> int:
        """Size of the mechanism's state (its previous alignments): ``alignments_size``."""
        return self.alignments_size

    def build_query_layer(self, query_depth: int) -> None:
        """Create parameters that depend on the query depth (called by AttentionWrapper)."""

    # -- scoring ---------------------------------------------------------------------------
    def score(self, query: torch.Tensor, state: Any) -> torch.Tensor:
        """Unnormalised ``score [batch, memory_time]`` of ``query [batch, query_depth]``
        against ``keys``; ``state`` is the previous alignments (monotonic attention)."""
        raise NotImplementedError

    def mask_score(self, score: torch.Tensor) -> torch.Tensor:
        """``score [batch, memory_time]`` with ``score_mask_value`` past each memory
        length."""
        if self._mask is None:
            return score
        return score.masked_fill(~self._mask, self.score_mask_value)

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
        if query.shape[0] != self.batch_size:
            raise ValueError(
                f"query has batch size {query.shape[0]} but the memory has {self.batch_size}; "
                "with BeamSearchDecoder, tile the memory (and its lengths) with "
                "tile_batch(memory, beam_width)")
        alignments = self.probability_fn(self.score(query, state), state)
        return alignments, alignments

    def initial_alignments(self, batch_size: int, dtype: torch.dtype | None = None):
        """Zeros ``[batch_size, memory_time]``."""
        self._require_memory()
        return torch.zeros(batch_size, self.alignments_size, dtype=dtype or self.values.dtype,
                           device=self.values.device)

    def initial_state(self, batch_size: int, dtype: torch.dtype | None = None):
        """The mechanism's state before the first step: :meth:`initial_alignments`."""
        return self.initial_alignments(batch_size, dtype)


class BahdanauAttention(AttentionMechanism):
    """Additive attention (Bahdanau et al. 2015), optionally weight-normalised.

    ``score_j = v . tanh(W_m m_j + W_q q)`` (``normalize=True``:
    ``g * v / |v| . tanh(W_m m_j + W_q q + b)``).
    """

    def __init__(self, num_units: int, memory=None, memory_sequence_length=None,
                 normalize: bool = False, probability_fn: Callable | None = None,
                 score_mask_value: float | None = None, dtype=None, name: str | None = None,
                 query_depth: int | None = None, memory_depth: int | None = None):
        super().__init__(num_units, memory, memory_sequence_length, probability_fn,
                         score_mask_value, name=name, memory_depth=memory_depth)
        self.normalize = _checks.as_flag("normalize", normalize)
        self.attention_v = nn.Parameter(torch.empty(num_units))
        bound = math.sqrt(6.0 / (2 * num_units))
        nn.init.uniform_(self.attention_v, -bound, bound)
        if self.normalize:
            self.attention_g = nn.Parameter(torch.tensor(math.sqrt(1.0 / num_units)))
            self.attention_b = nn.Parameter(torch.zeros(num_units))
        self._place_like_memory()
        if query_depth is not None:
            self.build_query_layer(query_depth)

    def _place_like_memory(self) -> None:
        if self.values is not None:
            self.to(device=self.values.device, dtype=self.values.dtype)

    def build_query_layer(self, query_depth: int) -> None:
        if self.query_layer is None:
            self.query_layer = _dense(query_depth, self.num_units, self.attention_v)

    def score(self, query, state):
        if self.query_layer is None:
            self.build_query_layer(query.shape[-1])
        processed = self.query_layer(query)[:, None, :]  # [batch, 1, num_units]
        if self.normalize:
            v = self.attention_g * self.attention_v * torch.rsqrt((self.attention_v ** 2).sum())
            return (v * torch.tanh(self.keys + processed + self.attention_b)).sum(-1)
        return (self.attention_v * torch.tanh(self.keys + processed)).sum(-1)


class LuongAttention(AttentionMechanism):
    """Multiplicative attention (Luong et al. 2015): ``score_j = q . (W_m m_j)``, times a
    learned scalar ``attention_g`` when ``scale``.  The query depth must be ``num_units``."""

    def __init__(self, num_units: int, memory=None, memory_sequence_length=None,
                 scale: bool = False, probability_fn: Callable | None = None,
                 score_mask_value: float | None = None, dtype=None, name: str | None = None,
                 memory_depth: int | None = None):
        super().__init__(num_units, memory, memory_sequence_length, probability_fn,
                         score_mask_value, name=name, memory_depth=memory_depth)
        self.scale = _checks.as_flag("scale", scale)
        if self.scale:
            self.attention_g = nn.Parameter(torch.tensor(1.0))
            if self.values is not None:
                self.to(device=self.values.device, dtype=self.values.dtype)

    def build_query_layer(self, query_depth: int) -> None:
        if query_depth != self.num_units:
            raise ValueError(f"LuongAttention needs a query of depth num_units="
                             f"{self.num_units}, received depth {query_depth}")

    def score(self, query, state):
        self.build_query_layer(query.shape[-1])
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
        self.attention_score_bias = nn.Parameter(
            torch.tensor(_checks.as_number("score_bias_init", score_bias_init)))
        self._noise = SeededGenerators(sigmoid_noise_seed, "sigmoid_noise_seed")

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
        self._require_memory()
        a = torch.zeros(batch_size, self.alignments_size, dtype=dtype or self.values.dtype,
                        device=self.values.device)
        a[:, 0] = 1.0
        return a


class BahdanauMonotonicAttention(_MonotonicMixin, BahdanauAttention):
    """Monotonic attention with a Bahdanau score plus a learned bias
    (``attention_score_bias``, starting at ``score_bias_init``).

    ``sigmoid_noise`` adds Gaussian noise to the scores in ``train()`` mode (seeded by
    ``sigmoid_noise_seed``); ``mode``: see :func:`monotonic_attention`.
    """

    def __init__(self, num_units, memory=None, memory_sequence_length=None, normalize=False,
                 score_mask_value=None, sigmoid_noise=0.0, sigmoid_noise_seed=None,
                 score_bias_init=0.0, mode="parallel", dtype=None, name=None,
                 query_depth=None, memory_depth=None):
        super().__init__(num_units, memory, memory_sequence_length, normalize=normalize,
                         score_mask_value=score_mask_value, name=name, query_depth=query_depth,
                         memory_depth=memory_depth)
        self._init_monotonic(sigmoid_noise, sigmoid_noise_seed, score_bias_init, mode)
        self._place_like_memory()

    def score(self, query, state):
        return super().score(query, state) + self.attention_score_bias


class LuongMonotonicAttention(_MonotonicMixin, LuongAttention):
    """Monotonic attention with a Luong score plus a learned bias; see
    :class:`BahdanauMonotonicAttention`."""

    def __init__(self, num_units, memory=None, memory_sequence_length=None, scale=False,
                 score_mask_value=None, sigmoid_noise=0.0, sigmoid_noise_seed=None,
                 score_bias_init=0.0, mode="parallel", dtype=None, name=None,
                 memory_depth=None):
        super().__init__(num_units, memory, memory_sequence_length, scale=scale,
                         score_mask_value=score_mask_value, name=name, memory_depth=memory_depth)
        self._init_monotonic(sigmoid_noise, sigmoid_noise_seed, score_bias_init, mode)
        if self.values is not None:
            self.to(device=self.values.device, dtype=self.values.dtype)

    def score(self, query, state):
        return super().score(query, state) + self.attention_score_bias
