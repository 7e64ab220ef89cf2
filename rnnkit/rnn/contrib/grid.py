"""``tf.contrib.rnn``'s frequency-window LSTMs: ``TimeFreqLSTMCell`` (Sainath & Li 2016),
``GridLSTMCell`` (Kalchbrenner et al. 2016, with Sainath & Li's peepholes) and
``BidirectionalGridLSTMCell``.

Each time step slides a window of ``feature_size`` inputs along the input (the frequency
axis) by ``frequency_skip``; an LSTM runs over the windows (the F-LSTM, its state reset to
zeros at every time step), and every window also keeps a recurrent state over time (the
T-LSTM).  The cells compute TF 1.15's equations and name their variables as TF does (their
``tf_variables``), so a TF checkpoint loads through :mod:`rnnkit.compat`; the variables are
stored in TF's own layout (``W [rows, cols]``).
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit import _checks, initializers
from rnnkit.rnn.cells import _check_input
from rnnkit.rnn.contrib._layout import Layout, _shard_rows, _sharded, _TFLayoutCell

__all__ = ["BidirectionalGridLSTMCell", "GridLSTMCell", "TimeFreqLSTMCell"]


def _required_count(owner: str, name: str, value: Any) -> int:
    if value is None:
        raise ValueError(f"{owner}: {name} must be a positive int (the frequency windows "
                         f"need it), received None")
    return _checks.as_count(name, value)


def _windows(span: int, feature_size: int, frequency_skip: int) -> int:
    """How many windows of ``feature_size`` at steps of ``frequency_skip`` TF cuts from
    ``span`` inputs (``int((span - feature_size) / frequency_skip) + 1``)."""
    return int((span - feature_size) / frequency_skip) + 1


@functools.cache
def _state_tuple(typename: str, fields: tuple[str, ...]) -> type:
    """TF's state NamedTuple (one type per field list, so equal cells share it)."""
    cls = namedtuple(typename, fields)
    cls.__doc__ = (f"{typename}: the state of a grid LSTM, one ``[batch, num_units]`` "
                   "tensor per field (``<prefix>_fFF_bBB_c`` / ``_m``: the time LSTM's cell "
                   "and output of window FF of frequency block BB).")
    cls.__reduce__ = lambda self: (_rebuild_state, (typename, fields, tuple(self)))
    return cls


def _rebuild_state(typename: str, fields: tuple[str, ...], values: tuple) -> tuple:
    """Unpickle a grid state (its type is made per field list, not a module attribute)."""
    return _state_tuple(typename, fields)(*values)


def _split_windows(inputs: torch.Tensor, start: int, count: int, feature_size: int,
                   frequency_skip: int) -> list[torch.Tensor]:
    return [inputs[:, start + k * frequency_skip:start + k * frequency_skip + feature_size]
            for k in range(count)]


# -- TimeFreqLSTMCell -------------------------------------------------------------------------

class TimeFreqLSTMCell(_TFLayoutCell):
    """``tf.contrib.rnn.TimeFreqLSTMCell``: an LSTM stepped over frequency windows of the
    input, each window with its own state over time (Sainath & Li 2016).

    The input ``x [batch, D]`` is cut into ``n = int((D - feature_size) / frequency_skip) + 1``
    windows ``x_k = x[:, k * frequency_skip : k * frequency_skip + feature_size]``.  With
    ``m_freq = 0`` before the first window, for each ``k``:
    ``i, j, f, o = split([x_k, m_k, m_freq] @ W + B, 4)``;
    ``c_k' = sigmoid(f + forget_bias (+ W_F_diag * c_k)) * c_k
    + sigmoid(i (+ W_I_diag * c_k)) * tanh(j)``, clipped to ``cell_clip``;
    ``m_k' = sigmoid(o (+ W_O_diag * c_k')) * tanh(c_k')``; ``m_freq = m_k'``.

    Args:
        num_units: ``H``.
        use_peepholes: ``W_F_diag``, ``W_I_diag``, ``W_O_diag``.
        cell_clip: clip ``c'`` to ``[-cell_clip, cell_clip]`` (``None``: no clipping).
        initializer: of ``W`` and the peepholes (TF 1.15 stores this argument but creates
            them with the glorot-uniform default; rnnkit applies it).
        num_unit_shards: how many row blocks TF stores ``W`` in (``W_0 ... W_{n-1}``); the
            computation is the same.
        forget_bias: added to ``f``.
        feature_size: the window width (required).
        frequency_skip: the window step.
        input_size: ``D``, to build at construction (the state size depends on it).

    Shapes: inputs ``[batch, D]``; state ``[batch, 2 * H * n]`` (``[c_0, m_0, c_1, m_1,
    ...]``, ``H`` columns each); output ``[batch, H * n]`` (``[m_0', m_1', ...]``).
    TF 1.15 reports ``state_size = 2H`` and ``output_size = H`` whatever ``n``; rnnkit
    reports the sizes the cell computes, known once it is built (first call,
    :func:`rnnkit.rnn.build` or ``input_size=``).  TF variables (``time_freq_lstm_cell/``):
    ``W_0 [feature_size + 2H, 4H]`` (``W_k`` row blocks with shards), ``B [4H]`` (zeros),
    ``W_F_diag``, ``W_I_diag``, ``W_O_diag [H]``.
    """

    def __init__(self, num_units: int, use_peepholes: bool = False,
                 cell_clip: float | None = None, initializer: Any = None,
                 num_unit_shards: int = 1, forget_bias: float = 1.0,
                 feature_size: int | None = None, frequency_skip: int = 1, reuse=None, *,
                 name: str | None = None, dtype: torch.dtype | None = None,
                 input_size: int | None = None):
        owner = type(self).__name__
        self._use_peepholes = _checks.as_flag("use_peepholes", use_peepholes)
        self._cell_clip = None if cell_clip is None else _checks.as_number(
            "cell_clip", cell_clip, low=0)
        self._kernel_init = initializers.resolve("initializer", initializer)
        self._num_unit_shards = _checks.as_count("num_unit_shards", num_unit_shards)
        self._forget_bias = _checks.as_number("forget_bias", forget_bias)
        self._feature_size = _required_count(owner, "feature_size", feature_size)
        self._frequency_skip = _required_count(owner, "frequency_skip", frequency_skip)
        units = _checks.as_count("num_units", num_units)
        _shard_rows(self._feature_size + 2 * units, self._num_unit_shards, "W")
        super().__init__(num_units, name, dtype, input_size, reuse=reuse)

    def _shapes(self, input_depth):
        h = self._num_units
        out = {"W": (self._feature_size + 2 * h, 4 * h), "B": (4 * h,)}
        if self._use_peepholes:
            out["W_F_diag"] = out["W_I_diag"] = out["W_O_diag"] = (h,)
        return out

    def _initializer(self, name):
        return 0.0 if name == "B" else self._kernel_init

    def build(self, inputs_shape):
        depth = _checks.matrix_depth(type(self).__name__, inputs_shape)
        if depth < self._feature_size:
            raise ValueError(f"TimeFreqLSTMCell: the input depth ({depth}) must be at least "
                             f"feature_size ({self._feature_size})")
        super().build(inputs_shape)

    def input_depth_from(self, params):
        return None  # W's rows are feature_size + 2H whatever the input depth

    @property
    def num_shifts(self) -> int:
        """``n``, the number of frequency windows (known once built)."""
        if self._input_size is None:
            raise ValueError(
                "TimeFreqLSTMCell: the number of frequency windows, hence state_size and "
                "output_size, depends on the input depth: build the cell first (call it "
                "once, rnnkit.rnn.build(cell, inputs, state)) or give input_size=")
        return _windows(self._input_size, self._feature_size, self._frequency_skip)

    @property
    def state_size(self) -> int:
        return 2 * self._num_units * self.num_shifts

    @property
    def output_size(self) -> int:
        return self._num_units * self.num_shifts

    def extra_repr(self) -> str:
        if self._input_size is None:
            return ("state_size and output_size set by the input depth (not built), "
                    f"feature_size={self._feature_size}, frequency_skip={self._frequency_skip}")
        return super().extra_repr()

    def _check_call(self, inputs, state):
        # the state's size depends on the input depth: build from the inputs first
        if not self.built and isinstance(inputs, torch.Tensor) and inputs.dim() == 2 \
                and inputs.is_floating_point():
            self.maybe_build(inputs)
        return super()._check_call(inputs, state)

    def call(self, inputs, state):
        _check_input(self, inputs)
        h = self._num_units
        windows = _split_windows(inputs, 0, self.num_shifts, self._feature_size,
                                 self._frequency_skip)
        m_freq = inputs.new_zeros(inputs.shape[0], h)
        outputs, states = [], []
        for k, x_k in enumerate(windows):
            c_prev = state[:, 2 * k * h:(2 * k + 1) * h]
            m_prev = state[:, (2 * k + 1) * h:(2 * k + 2) * h]
            z = torch.cat([x_k, m_prev, m_freq], 1) @ self.W + self.B
            i, j, f, o = z.chunk(4, 1)
            if self._use_peepholes:
                f = f + self.W_F_diag * c_prev
                i = i + self.W_I_diag * c_prev
            c = torch.sigmoid(f + self._forget_bias) * c_prev + torch.sigmoid(i) * torch.tanh(j)
            if self._cell_clip is not None:
                c = c.clamp(-self._cell_clip, self._cell_clip)
            if self._use_peepholes:
                o = o + self.W_O_diag * c
            m = torch.sigmoid(o) * torch.tanh(c)
            m_freq = m
            outputs.append(m)
            states += [c, m]
        return torch.cat(outputs, 1), torch.cat(states, 1)

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        out = super().tf_variables(available)
        del out["W"]
        out.update(_sharded(lambda: self.W, "W", self._num_unit_shards,
                            self._kernel_init or "glorot_uniform"))
        return out


# -- GridLSTMCell -----------------------------------------------------------------------------

class GridLSTMCell(_TFLayoutCell):
    """``tf.contrib.rnn.GridLSTMCell``: a grid LSTM over time and frequency (Kalchbrenner et
    al. 2016; peepholes after Sainath & Li 2016).

    Frequency blocks: without ``start_freqindex_list``, one block of
    ``int((D - feature_size) / frequency_skip) + 1`` windows (which must equal
    ``num_frequency_blocks[0]``) starting at input 0; with it, block ``b`` spans inputs
    ``start_freqindex_list[b] .. end_freqindex_list[b]`` and holds
    ``num_frequency_blocks[b]`` windows (``int((end - start - feature_size) /
    frequency_skip) + 1``).  Window ``k`` of a block reads
    ``x[:, start + k * frequency_skip : ... + feature_size]``.

    In block ``b``, with ``c_freq = m_freq = 0`` before the first window, for each window
    ``x_k`` and its time state ``(c_t, m_t)`` (fields ``state_fKK_bBB_c`` / ``_m``):
    ``z = [x_k, m_t, m_freq]``; the F-LSTM gates ``i, j, f, o = split(z @ W_f_b + B_f_b)``
    and the T-LSTM's ``split(z @ W_t_b + B_t_b)`` (the F-LSTM's with
    ``share_time_frequency_weights``; ``i, j, o`` only with ``couple_input_forget_gates``).
    Per LSTM ``X`` in (freq, time), with peepholes ``P_g = W_G_diag_X f * c_freq +
    W_G_diag_X t * c_t`` (``X = freq`` when weights are shared):
    ``i_g = sigmoid(i + P_i)``; ``f_g = 1 - i_g`` when coupled, else
    ``sigmoid(f + forget_bias + P_f)``; ``c_X' = f_g * c_X + i_g * tanh(j)``, clipped to
    ``cell_clip``; then (peepholes on the new cells) ``m_X' = sigmoid(o + W_O_diag_X f *
    c_freq' + W_O_diag_X t * c_t') * tanh(c_X')``.  The window's new time state is
    ``(c_t', m_t')``, its output ``[m_t', m_freq']``; ``(c_freq, m_freq)`` move to the next
    window.

    Args:
        num_units: ``H``.
        use_peepholes: the diagonal peephole weights above.
        share_time_frequency_weights: the T-LSTM uses the F-LSTM's weights.
        cell_clip: clip both cells to ``[-cell_clip, cell_clip]`` (``None``: no clipping).
        initializer: of the kernels and peepholes (TF 1.15 stores this argument but creates
            them with the glorot-uniform default; rnnkit applies it).
        num_unit_shards: how many row blocks TF stores each kernel in (``W_f_0_0 ...``); the
            computation is the same.
        forget_bias: added to ``f`` (not used with coupled gates).
        feature_size, frequency_skip: window width and step (required).
        num_frequency_blocks: windows per block (a list, required).
        start_freqindex_list, end_freqindex_list: each block's input span (both or neither).
        couple_input_forget_gates: ``f = 1 - i`` (3 gates, no forget peepholes).
        state_is_tuple: the state as :attr:`state_tuple_type` (TF's ``GridLSTMStateTuple``);
            else one tensor, the fields concatenated in that order: with one frequency block
            only (TF 1.15 reads every block's concatenated state from the first block's
            columns, which rnnkit refuses to reproduce).
        input_size: ``D``, to build at construction.

    Shapes: inputs ``[batch, D]``; state ``GridLSTMStateTuple(state_f00_b00_c,
    state_f00_b00_m, state_f01_b00_c, ...)``, each ``[batch, H]``, windows in order within
    blocks in order (or ``[batch, 2 * H * total]``); output ``[batch, 2 * H * total]``
    (``[m_t', m_freq']`` per window), ``total = sum(num_frequency_blocks)``.  TF variables
    (``grid_lstm_cell/``), per block ``b``: ``W_f_b_0 [feature_size + 2H, G * H]`` (``G``: 4,
    or 3 coupled; more row blocks with shards), ``B_f_b [G * H]`` (zeros), unshared:
    ``W_t_b_0``, ``B_t_b``; peepholes ``[H]``: ``W_F_diag_freqf_b``, ``W_F_diag_freqt_b``
    (uncoupled), ``W_I_diag_freqf_b``, ``W_I_diag_freqt_b``, ``W_O_diag_freqf_b``,
    ``W_O_diag_freqt_b``, and unshared the same with ``time`` for ``freq``.
    """

    _STATE_TYPE = "GridLSTMStateTuple"

    def __init__(self, num_units: int, use_peepholes: bool = False,
                 share_time_frequency_weights: bool = False, cell_clip: float | None = None,
                 initializer: Any = None, num_unit_shards: int = 1, forget_bias: float = 1.0,
                 feature_size: int | None = None, frequency_skip: int | None = None,
                 num_frequency_blocks: Sequence[int] | None = None,
                 start_freqindex_list: Sequence[int] | None = None,
                 end_freqindex_list: Sequence[int] | None = None,
                 couple_input_forget_gates: bool = False, state_is_tuple: bool = True,
                 reuse=None, *, name: str | None = None, dtype: torch.dtype | None = None,
                 input_size: int | None = None):
        owner = type(self).__name__
        self._use_peepholes = _checks.as_flag("use_peepholes", use_peepholes)
        self._share = _checks.as_flag("share_time_frequency_weights",
                                      share_time_frequency_weights)
        self._cell_clip = None if cell_clip is None else _checks.as_number(
            "cell_clip", cell_clip, low=0)
        self._kernel_init = initializers.resolve("initializer", initializer)
        self._num_unit_shards = _checks.as_count("num_unit_shards", num_unit_shards)
        self._forget_bias = _checks.as_number("forget_bias", forget_bias)
        self._feature_size = _required_count(owner, "feature_size", feature_size)
        self._frequency_skip = _required_count(owner, "frequency_skip", frequency_skip)
        self._coupled = _checks.as_flag("couple_input_forget_gates",
                                        couple_input_forget_gates)
        self._state_is_tuple = _checks.as_flag("state_is_tuple", state_is_tuple)
        self._blocks = self._block_layout(owner, num_frequency_blocks, start_freqindex_list,
                                          end_freqindex_list)
        units = _checks.as_count("num_units", num_units)
        _shard_rows(self._feature_size + 2 * units, self._num_unit_shards, "W_f_0")
        self._total_blocks = sum(n for _, n in self._blocks)
        if not self._state_is_tuple and len(self._blocks) > 1:
            raise ValueError(
                f"{owner}: state_is_tuple=False with {len(self._blocks)} frequency blocks is "
                "refused: TF 1.15 reads every block's previous state from the first block's "
                "columns of the concatenated state, so such a TF model cannot be reproduced; "
                "use state_is_tuple=True (the same variables)")
        super().__init__(num_units, name, dtype, input_size, reuse=reuse)

    def _block_layout(self, owner, counts, starts, ends) -> list[tuple[int | None, int]]:
        """``[(start or None, windows)]`` per block, checked as TF checks it."""
        counts, starts, ends = (v.tolist() if isinstance(v, np.ndarray) and v.ndim == 1
                                else v for v in (counts, starts, ends))
        if counts is None:
            raise ValueError(f"{owner}: Must specify num_frequency_blocks (a list of window "
                             "counts, one per frequency block), received None")
        if not isinstance(counts, (list, tuple)) or not counts:
            raise TypeError(f"{owner}: num_frequency_blocks must be a non-empty list of "
                            f"ints, received {counts!r}")
        counts = [_checks.as_count(f"num_frequency_blocks[{b}]", n)
                  for b, n in enumerate(counts)]
        for arg, value in (("start_freqindex_list", starts), ("end_freqindex_list", ends)):
            if value is not None and not isinstance(value, (list, tuple)):
                raise TypeError(f"{owner}: {arg} must be a list of ints or None, received "
                                f"{value!r}")
        if not starts:  # TF: an empty start list is no start list
            if ends:
                raise ValueError(f"{owner}: end_freqindex_list is given ({list(ends)!r}) "
                                 "but start_freqindex_list is not: give both or neither")
            if len(counts) != 1:
                raise ValueError(f"{owner}: Length of num_frequency_blocks is not 1, but "
                                 f"instead is {len(counts)} (without start_freqindex_list "
                                 "the input is one block)")
            return [(None, counts[0])]
        if ends is None or len(starts) != len(ends):
            raise ValueError(f"{owner}: Length of start and end freqindex_list does not "
                             f"match: start_freqindex_list {list(starts)!r}, "
                             f"end_freqindex_list {None if ends is None else list(ends)!r}")
        if len(counts) != len(starts):
            raise ValueError(f"{owner}: Length of num_frequency_blocks ({len(counts)}) is not "
                             f"equal to that of start_freqindex_list ({len(starts)})")
        out = []
        for b, (s, e) in enumerate(zip(starts, ends, strict=True)):
            s = _checks.as_count(f"start_freqindex_list[{b}]", s, minimum=0)
            e = _checks.as_count(f"end_freqindex_list[{b}]", e, minimum=0)
            if e - s < self._feature_size:
                raise ValueError(
                    f"{owner}: block {b} spans inputs {s}..{e} ({e - s}), fewer than "
                    f"feature_size ({self._feature_size})")
            n = _windows(e - s, self._feature_size, self._frequency_skip)
            if n != counts[b]:
                raise ValueError(
                    f"{owner}: Invalid num_frequency_blocks, requires {n} but gets "
                    f"{counts[b]} (num_frequency_blocks[{b}], for start_freqindex_list[{b}]"
                    f"={s}, end_freqindex_list[{b}]={e}), please check the input size and "
                    "filter config are correct.")
            out.append((s, n))
        return out

    # -- layout --------------------------------------------------------------------------
    _directions: tuple[str, ...] = ("",)  # variable scope prefixes ("fwd/", "bwd/")

    def _gates(self) -> int:
        return 3 if self._coupled else 4

    def _kernel_names(self) -> list[str]:
        lstms = ("f",) if self._share else ("f", "t")
        return [f"{d}W_{x}_{b}" for d in self._directions for b in range(len(self._blocks))
                for x in lstms]

    def _shapes(self, input_depth):
        h, g = self._num_units, self._gates()
        rows = self._feature_size + 2 * h
        out: dict[str, tuple[int, ...]] = {}
        for d in self._directions:
            for b in range(len(self._blocks)):
                for x in ("f",) if self._share else ("f", "t"):
                    out[f"{d}W_{x}_{b}"] = (rows, g * h)
                    out[f"{d}B_{x}_{b}"] = (g * h,)
                if self._use_peepholes:
                    for lstm in ("freq",) if self._share else ("freq", "time"):
                        for gate in ("I", "O") if self._coupled else ("F", "I", "O"):
                            for src in ("f", "t"):
                                out[f"{d}W_{gate}_diag_{lstm}{src}_{b}"] = (h,)
        return out  # TF's creation order

    def _initializer(self, name):
        return 0.0 if name.rsplit("/", 1)[-1].startswith("B_") else self._kernel_init

    def build(self, inputs_shape):
        depth = _checks.matrix_depth(type(self).__name__, inputs_shape)
        self._check_depth(depth)
        super().build(inputs_shape)

    def _check_depth(self, depth: int) -> None:
        owner = type(self).__name__
        start, count = self._blocks[0]
        if start is None:
            if depth < self._feature_size:
                raise ValueError(f"{owner}: the input depth ({depth}) must be at least "
                                 f"feature_size ({self._feature_size})")
            n = _windows(depth, self._feature_size, self._frequency_skip)
            if n != count:
                raise ValueError(
                    f"{owner}: Invalid num_frequency_blocks, requires {n} but gets {count} "
                    f"(inputs of depth {depth}, feature_size {self._feature_size}, "
                    f"frequency_skip {self._frequency_skip}), please check the input size "
                    "and filter config are correct.")
            return
        for b, (s, n) in enumerate(self._blocks):
            end = s + (n - 1) * self._frequency_skip + self._feature_size
            if end > depth:
                raise ValueError(f"{owner}: frequency block {b} reads inputs {s}..{end}, "
                                 f"past the input depth ({depth})")

    def input_depth_from(self, params):
        return None  # the kernels' rows are feature_size + 2H whatever the input depth

    # -- state -----------------------------------------------------------------------------
    def _state_fields(self) -> tuple[str, ...]:
        names = []
        for prefix in self._state_prefixes():
            for b, (_, n) in enumerate(self._blocks):
                for k in range(n):
                    names += [f"{prefix}_f{k:02d}_b{b:02d}_c", f"{prefix}_f{k:02d}_b{b:02d}_m"]
        return tuple(names)

    def _state_prefixes(self) -> tuple[str, ...]:
        return ("state",)

    @property
    def state_tuple_type(self) -> type | None:
        """The state NamedTuple type (TF's ``GridLSTMStateTuple``); ``None`` for a
        concatenated state."""
        if not self._state_is_tuple:
            return None
        return _state_tuple(self._STATE_TYPE, self._state_fields())

    @property
    def state_size(self):
        fields = self._state_fields()
        if not self._state_is_tuple:
            return self._num_units * len(fields)
        return self.state_tuple_type(*([self._num_units] * len(fields)))

    @property
    def output_size(self) -> int:
        return self._num_units * len(self._state_fields())

    # -- step --------------------------------------------------------------------------------
    def _block_windows(self, inputs: torch.Tensor, offset: int = 0) -> list[list[torch.Tensor]]:
        """Each block's windows, shifted by ``offset`` inputs (zeros past either end)."""
        if offset:
            inputs = F.pad(inputs, (max(0, -offset), max(0, offset)))
        shift = max(0, offset)
        return [_split_windows(inputs, (s or 0) + shift, n, self._feature_size,
                               self._frequency_skip) for s, n in self._blocks]

    def _param(self, name: str) -> torch.Tensor:
        return getattr(self, name.replace("/", "_"))

    def _block(self, d: str, b: int, windows: list[torch.Tensor],
               prev: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """One block in direction ``d``: ``windows`` in processing order, ``prev`` their
        time states ``[c_0, m_0, c_1, m_1, ...]`` -> (outputs ``[m_t, m_freq]`` per window,
        new time states ``[c_t, m_t]`` per window)."""
        h = self._num_units
        coupled, share, peep = self._coupled, self._share, self._use_peepholes
        w_f, b_f = self._param(f"{d}W_f_{b}"), self._param(f"{d}B_f_{b}")
        w_t, b_t = (w_f, b_f) if share else (self._param(f"{d}W_t_{b}"),
                                             self._param(f"{d}B_t_{b}"))

        def diag(gate: str, lstm: str, src: str) -> torch.Tensor:
            return self._param(f"{d}W_{gate}_diag_{'freq' if share else lstm}{src}_{b}")

        def gates(z):
            if coupled:
                i, j, o = z.chunk(3, 1)
                return i, j, None, o
            return z.chunk(4, 1)

        def new_cell(lstm, i, j, f, c_self, c_freq, c_time):
            if peep:
                i = i + diag("I", lstm, "f") * c_freq + diag("I", lstm, "t") * c_time
            i = torch.sigmoid(i)
            if coupled:
                f = 1.0 - i
            else:
                f = f + self._forget_bias
                if peep:
                    f = f + diag("F", lstm, "f") * c_freq + diag("F", lstm, "t") * c_time
                f = torch.sigmoid(f)
            c = f * c_self + i * torch.tanh(j)
            if self._cell_clip is not None:
                c = c.clamp(-self._cell_clip, self._cell_clip)
            return c

        def new_output(lstm, o, c_self, c_freq, c_time):
            if peep:
                o = o + diag("O", lstm, "f") * c_freq + diag("O", lstm, "t") * c_time
            return torch.sigmoid(o) * torch.tanh(c_self)

        m_freq = c_freq = windows[0].new_zeros(windows[0].shape[0], h)
        outputs, states = [], []
        for k, x_k in enumerate(windows):
            c_time, m_time = prev[2 * k], prev[2 * k + 1]
            z = torch.cat([x_k, m_time, m_freq], 1)
            i_f, j_f, f_f, o_f = gates(z @ w_f + b_f)
            i_t, j_t, f_t, o_t = (i_f, j_f, f_f, o_f) if share else gates(z @ w_t + b_t)
            new_c_freq = new_cell("freq", i_f, j_f, f_f, c_freq, c_freq, c_time)
            new_c_time = new_cell("time", i_t, j_t, f_t, c_time, c_freq, c_time)
            m_freq = new_output("freq", o_f, new_c_freq, new_c_freq, new_c_time)
            new_m_time = new_output("time", o_t, new_c_time, new_c_freq, new_c_time)
            c_freq = new_c_freq
            outputs += [new_m_time, m_freq]
            states += [new_c_time, new_m_time]
        return outputs, states

    def _flat_fields(self, state: Any) -> list[torch.Tensor]:
        if self._state_is_tuple:
            return list(state)
        return list(state.split(self._num_units, 1))

    def _directions_windows(self, inputs):
        return [("", self._block_windows(inputs), False)]

    def call(self, inputs, state):
        _check_input(self, inputs)
        fields = self._flat_fields(state)
        outputs, states, at = [], [], 0
        for d, blocks, reverse in self._directions_windows(inputs):
            for b, windows in enumerate(blocks):
                n = 2 * len(windows)
                out, new = self._block(d, b, windows[::-1] if reverse else windows,
                                       fields[at:at + n])
                outputs += out
                states += new
                at += n
        output = torch.cat(outputs, 1)
        if self._state_is_tuple:
            return output, self.state_tuple_type(*states)
        return output, torch.cat(states, 1)

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        out = super().tf_variables(available)
        init = self._kernel_init or "glorot_uniform"
        ordered: Layout = {}
        for name, var in out.items():
            if name in self._kernel_names():
                ordered.update(_sharded(functools.partial(self._param, name), name,
                                        self._num_unit_shards, init))
            else:
                ordered[name] = var
        return ordered


# -- BidirectionalGridLSTMCell ------------------------------------------------------------------

class BidirectionalGridLSTMCell(GridLSTMCell):
    """``tf.contrib.rnn.BidirectionalGridLSTMCell``: a :class:`GridLSTMCell` run over the
    frequency windows in both directions, each with its own weights (``fwd/``, ``bwd/``); the
    time direction stays causal.

    The forward pass is a grid LSTM's; the backward pass takes each block's windows shifted
    by ``backward_slice_offset`` inputs (zeros past either end of the input) in reverse
    order, so its ``bwd_state_f00_bBB_*`` belong to the block's last window.  The state is
    always a tuple (TF's ``BidirectionalGridLSTMStateTuple``: the ``fwd_state_*`` fields,
    then the ``bwd_state_*`` ones); the output is the forward outputs then the backward
    ones, in processing order.

    Args: as :class:`GridLSTMCell` (without ``state_is_tuple``), plus
        backward_slice_offset: the backward windows' shift (an int, negative to the left).

    Shapes: inputs ``[batch, D]``; state ``4 * total`` fields ``[batch, H]``; output
    ``[batch, 4 * H * total]``.  TF variables (``bidirectional_grid_lstm_cell/``): those of
    :class:`GridLSTMCell` under ``fwd/`` and under ``bwd/``.
    """

    _STATE_TYPE = "BidirectionalGridLSTMStateTuple"
    _directions = ("fwd/", "bwd/")

    def __init__(self, num_units: int, use_peepholes: bool = False,
                 share_time_frequency_weights: bool = False, cell_clip: float | None = None,
                 initializer: Any = None, num_unit_shards: int = 1, forget_bias: float = 1.0,
                 feature_size: int | None = None, frequency_skip: int | None = None,
                 num_frequency_blocks: Sequence[int] | None = None,
                 start_freqindex_list: Sequence[int] | None = None,
                 end_freqindex_list: Sequence[int] | None = None,
                 couple_input_forget_gates: bool = False, backward_slice_offset: int = 0,
                 reuse=None, *, name: str | None = None, dtype: torch.dtype | None = None,
                 input_size: int | None = None):
        self._backward_slice_offset = _checks.as_int("backward_slice_offset",
                                                     backward_slice_offset)
        super().__init__(num_units, use_peepholes, share_time_frequency_weights, cell_clip,
                         initializer, num_unit_shards, forget_bias, feature_size,
                         frequency_skip, num_frequency_blocks, start_freqindex_list,
                         end_freqindex_list, couple_input_forget_gates, True, reuse,
                         name=name, dtype=dtype, input_size=input_size)

    def _state_prefixes(self):
        return ("fwd_state", "bwd_state")

    def _directions_windows(self, inputs):
        fwd = self._block_windows(inputs)
        bwd = self._block_windows(inputs, self._backward_slice_offset) \
            if self._backward_slice_offset else fwd
        return [("fwd/", fwd, False), ("bwd/", bwd, True)]
