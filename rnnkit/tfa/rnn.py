"""``tfa.rnn`` (tensorflow-addons 0.23): the Keras-style cells ``LayerNormLSTMCell``,
``LayerNormSimpleRNNCell``, ``NASCell``, ``PeepholeLSTMCell`` and ``ESNCell`` on rnnkit's
:class:`~rnnkit.rnn.RNNCell`, so they run under :func:`rnnkit.rnn.dynamic_rnn` and the
seq2seq decoders.

Each keeps Keras's variables, names and layouts (``kernel [I, gates * H]``,
``recurrent_kernel [H, gates * H]``, ``bias``; Keras's gate order ``i, f, c, o``; the layer
normalisations' ``gamma`` / ``beta``) and Keras's state: a list ``[h, c]`` for the LSTMs,
``[c, m]`` for ``NASCell`` (tfa's order), one tensor for the others.  A Keras checkpoint's
values load through :func:`rnnkit.compat.load_tf_variables` under the cell's name
(``layer_norm_lstm_cell/kernel``, ...).

Arguments are Keras's: activations by name (``"tanh"``, ``"sigmoid"``, ``"relu"``,
``"linear"``, ...) or as functions, initializers by Keras name or anything
:func:`rnnkit.initializers.resolve` takes.  Regularizers and constraints are not available:
anything but ``None`` is refused.

``dropout`` / ``recurrent_dropout`` (``PeepholeLSTMCell``, ``LayerNormLSTMCell``,
``LayerNormSimpleRNNCell``; tfa's ``NASCell`` and ``ESNCell`` take neither) are Keras's:
in ``train()`` mode the inputs ``[batch, I]`` and the previous output ``h [batch, H]`` are
multiplied by masks that keep each entry with probability ``1 - rate`` and scale it by
``1 / (1 - rate)``.  As in Keras the masks are drawn at the first step of a sequence, for its
batch, and reused at every step of it: the drivers (``dynamic_rnn``, ``dynamic_decode``, ...)
start a new sequence at each call, code that steps a cell by hand calls
:func:`rnnkit.rnn.start_sequence` between sequences.  ``eval()`` turns dropout off.  Which
masks meet which gates is each class's (its docstring says).  A rate must lie in
``[0, 1)``: Keras clips it into ``[0, 1]`` instead, which makes a negative rate no dropout and
a rate of 1 or more an error at the first training step; rnnkit refuses both when the cell
is made.  While dropout is active the cells step one by one (the hoisted input projection
would need the masks of a batch not yet seen).  Masks come from PyTorch's default generator
(which CUDA graphs replay, drawing new masks at each replay); ``seed=`` gives the cell its own
(one per device), as Keras's ``seed``, at the cost of graph capture.
"""

from __future__ import annotations

from typing import Any

import torch

from rnnkit import _checks, activations, initializers
from rnnkit.capture import GraphBindings
from rnnkit.generators import SeededGenerators
from rnnkit.rnn.cells import _check_input, layer_norm
from rnnkit.rnn.contrib import NASCell as _ContribNASCell
from rnnkit.rnn.contrib import _TFLayoutCell

__all__ = [
    "ESNCell",
    "LayerNormLSTMCell",
    "LayerNormSimpleRNNCell",
    "NASCell",
    "PeepholeLSTMCell",
]

def _refuse_unsupported(owner: str, **given: Any) -> None:
    """Keras arguments rnnkit has no counterpart for (regularizers, constraints): only
    ``None`` is accepted."""
    for arg, value in given.items():
        if value is not None:
            raise ValueError(f"{owner}: {arg} is not supported by rnnkit (no Keras "
                             "regularizers or constraints); pass None")


def _rate(owner: str, name: str, value: Any) -> float:
    """A Keras dropout rate: a number in ``[0, 1)`` (the fraction of entries dropped)."""
    try:
        rate = _checks.as_number(name, value)  # a string: TypeError
    except ValueError:  # NaN, infinities
        rate = float("nan")
    if not 0.0 <= rate < 1.0:  # NaN fails too
        raise ValueError(f"{owner}: {name} must be a float in [0, 1) (the fraction of "
                         f"entries dropped), received {value!r} (Keras clips it into [0, 1]: "
                         f"a negative rate silently means no dropout, 1 or more fails at the "
                         f"first training step)")
    return rate


def _masked_product(x: torch.Tensor, masks: list[torch.Tensor] | None,
                    weight: torch.Tensor) -> torch.Tensor:
    """``x [batch, n] @ weight [n, k]`` with dropout masks on ``x``: ``None`` (no mask), one
    ``[batch, n]`` mask for every column, or ``g`` masks, the ``j``-th for the ``j``-th of
    ``g`` equal column blocks of ``weight`` (Keras's per-gate masks).  ``-> [batch, k]``."""
    if masks is None:
        return x @ weight
    if len(masks) == 1:
        return (x * masks[0]) @ weight
    return torch.cat([(x * m) @ w for m, w in zip(masks, weight.chunk(len(masks), -1),
                                                  strict=True)], -1)


class _UnitForgetBias(initializers.Initializer):
    """Keras's ``unit_forget_bias``: ``bias_initializer`` for ``i``, ones for ``f``,
    ``bias_initializer`` for ``c, o``."""

    def __init__(self, inner: initializers.Initializer, units: int):
        super().__init__()
        self.inner, self.units = inner, units

    def fill(self, t, gen):
        h = self.units
        self.inner.fill(t[:h], gen)
        t[h:2 * h].fill_(1.0)
        self.inner.fill(t[2 * h:], gen)


class _KerasDropout:
    """Keras's ``dropout`` / ``recurrent_dropout`` for a :class:`_KerasCell`: masks drawn at
    a sequence's first step in ``train()`` mode and kept until :meth:`start_sequence`.

    A class using it calls :meth:`_init_dropout` in its ``__init__`` and defines
    ``_dropped_step(inputs, state)``, its step with the masks of :meth:`_sequence_masks`;
    its ``project_inputs`` returns ``None`` while :meth:`_dropping` (so that the drivers
    step it through :meth:`call`).
    """

    training: bool

    def _init_dropout(self, owner: str, dropout: Any, recurrent_dropout: Any,
                      seed: int | None) -> None:
        self._dropout = _rate(owner, "dropout", dropout)
        self._recurrent_dropout = _rate(owner, "recurrent_dropout", recurrent_dropout)
        self._random = SeededGenerators(seed)
        self._masks: dict[str, list[torch.Tensor]] = {}

    @property
    def dropout(self) -> float:
        """Keras's ``dropout``: the fraction of the inputs' entries dropped."""
        return self._dropout

    @property
    def recurrent_dropout(self) -> float:
        """Keras's ``recurrent_dropout``: the fraction of ``h_{t-1}``'s entries dropped."""
        return self._recurrent_dropout

    def start_sequence(self) -> None:
        """A new sequence: the next step draws new masks."""
        self._masks = {}

    def _dropping(self) -> bool:
        return self.training and (self._dropout > 0.0 or self._recurrent_dropout > 0.0)

    def graph_bindings(self) -> GraphBindings:
        """Masks are drawn inside a CUDA graph from PyTorch's default generator; a cell
        given ``seed=`` draws from its own, which a graph cannot replay."""
        if self._dropping():
            self._random.refuse_graphs(f"{type(self).__name__}(seed=...) draws its masks")
        return GraphBindings()

    def _sequence_masks(self, key: str, like: torch.Tensor, rate: float,
                        count: int) -> list[torch.Tensor] | None:
        """``count`` masks shaped like ``like [batch, n]`` for rate ``rate`` (``None`` when
        it is 0), drawn at the sequence's first step and returned again at its next ones
        (drawn again for a batch of another shape, dtype or device)."""
        if rate == 0.0:
            return None
        masks = self._masks.get(key)
        if masks is None or len(masks) != count or masks[0].shape != like.shape or (
                masks[0].dtype != like.dtype or masks[0].device != like.device):
            masks = self._masks[key] = [self._random.mask(like, 1.0 - rate)
                                        for _ in range(count)]
        return masks

    def call(self, inputs: torch.Tensor, state: Any) -> tuple[Any, Any]:
        """One step; with dropout active, the masked step (``_dropped_step``)."""
        _check_input(self, inputs)
        if self._dropping():
            return self._dropped_step(inputs, state)
        return self.call_projected(self.project_inputs(inputs), state)

    def _dropped_step(self, inputs: torch.Tensor, state: Any) -> tuple[Any, Any]:
        raise NotImplementedError


class _KerasCell(_TFLayoutCell):
    """A Keras cell: variables in Keras's layout and names, built like TF's."""

    def __init__(self, units, name, dtype, input_size, trainable=True):
        super().__init__(units, name, dtype, input_size, trainable=trainable)

    @property
    def units(self) -> int:
        """Keras's ``units``."""
        return self._num_units

    def _initializer(self, name):
        return self._inits.get(name)


class PeepholeLSTMCell(_KerasDropout, _KerasCell):
    """``tfa.rnn.PeepholeLSTMCell``: Keras's ``LSTMCell`` with peephole connections (Gers et
    al. 2002, Sak et al. 2014).

    ``z = x @ kernel + h @ recurrent_kernel + bias`` split ``i, f, c, o``; ``i = ra(z_i +
    input_gate_peephole_weights * c)``, ``f = ra(z_f + forget_gate_peephole_weights * c)``,
    ``c' = f * c + i * act(z_c)``, ``o = ra(z_o + output_gate_peephole_weights * c')``, ``h'
    = o * act(c')`` (``act`` = ``activation``, ``ra`` = ``recurrent_activation``).

    Args:
        units: ``H``.
        activation, recurrent_activation: default ``tanh`` / ``sigmoid``.
        use_bias: add ``bias``.
        kernel_initializer, recurrent_initializer, bias_initializer: default
            ``glorot_uniform``, ``orthogonal``, ``zeros``; the peephole weights take
            ``kernel_initializer`` (as tfa).
        unit_forget_bias: start the forget part of ``bias`` at one.
        kernel_regularizer, ..., bias_constraint: refused unless ``None``.
        dropout: fraction of the inputs' entries dropped (Keras's; module docstring), in
            ``[0, 1)``.  With ``implementation=1`` each gate ``i, f, c, o`` has its own
            ``[batch, I]`` mask (``(x * m_g) @ kernel_g``), with 2 one mask serves all.
        recurrent_dropout: fraction of ``h``'s entries dropped, in ``[0, 1)``: a ``[batch,
            H]`` mask per gate (``(h * r_g) @ recurrent_kernel_g``).  As in Keras it runs
            with ``implementation=1`` (which :attr:`implementation` then reports).
        implementation: Keras's 1 or 2 (the same values without dropout).
        seed: the masks' own seed (Keras's ``seed``); ``None``: PyTorch's generator.
        name: default ``peephole_lstm_cell``.

    Shapes: inputs ``[batch, I]``; state ``[h, c]`` (a list, Keras's order), each ``[batch,
    H]``; output ``h [batch, H]``.  Variables: ``kernel [I, 4H]``, ``recurrent_kernel [H,
    4H]``, ``bias [4H]``, ``input_gate_peephole_weights``, ``forget_gate_peephole_weights``,
    ``output_gate_peephole_weights [H]``.  The input product is hoisted (``project_inputs``)
    unless dropout is active.
    """

    _fast_paths = ("project_inputs",)
    _peepholes = True

    def __init__(self, units: int, activation: Any = "tanh",
                 recurrent_activation: Any = "sigmoid", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 unit_forget_bias: bool = True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, implementation: int = 2, *,
                 seed: int | None = None, name: str | None = None,
                 dtype: torch.dtype | None = None, trainable: bool = True,
                 input_size: int | None = None):
        owner = type(self).__name__
        _refuse_unsupported(owner, kernel_regularizer=kernel_regularizer,
                            recurrent_regularizer=recurrent_regularizer,
                            bias_regularizer=bias_regularizer,
                            kernel_constraint=kernel_constraint,
                            recurrent_constraint=recurrent_constraint,
                            bias_constraint=bias_constraint)
        if isinstance(implementation, bool) or implementation not in (1, 2):
            raise ValueError(f"{owner}: implementation must be 1 or 2, received "
                             f"{implementation!r}")
        self._init_dropout(owner, dropout, recurrent_dropout, seed)
        # Keras's LSTMCell: recurrent dropout runs with implementation 1
        self._implementation = 1 if self._recurrent_dropout > 0.0 else int(implementation)
        units = _checks.as_count("units", units)
        self._act = activations.get("activation", activation)
        self._rec_act = activations.get("recurrent_activation", recurrent_activation)
        self._use_bias = _checks.as_flag("use_bias", use_bias)
        k_init = initializers.resolve("kernel_initializer", kernel_initializer)
        b_init = initializers.resolve("bias_initializer", bias_initializer) \
            or initializers.zeros_initializer()
        if _checks.as_flag("unit_forget_bias", unit_forget_bias):
            b_init = _UnitForgetBias(b_init, units)
        self._inits = {"kernel": k_init, "bias": b_init,
                       "recurrent_kernel": initializers.resolve("recurrent_initializer",
                                                                recurrent_initializer)}
        if self._peepholes:
            self._inits.update({f"{g}_gate_peephole_weights": k_init
                                for g in ("input", "forget", "output")})
        self._extra_init()
        super().__init__(units, name, dtype, input_size, trainable)

    def _extra_init(self) -> None:
        """Subclasses' own arguments, read before the variables are declared."""

    def _shapes(self, input_depth):
        h = self._num_units
        out = {"kernel": (input_depth, 4 * h), "recurrent_kernel": (h, 4 * h)}
        if self._use_bias:
            out["bias"] = (4 * h,)
        if self._peepholes:
            out.update({f"{g}_gate_peephole_weights": (h,)
                        for g in ("input", "forget", "output")})
        return out

    @property
    def state_size(self):
        return [self._num_units, self._num_units]

    @property
    def implementation(self) -> int:
        """Keras's ``implementation`` as the cell runs it (1 with ``recurrent_dropout``)."""
        return self._implementation

    def _mask_counts(self) -> tuple[int, int]:
        """How many masks the inputs and ``h`` take (Keras's LSTMCell.call)."""
        return (4 if self._implementation == 1 else 1), 4

    def _input_part(self, inputs: torch.Tensor,
                    masks: list[torch.Tensor] | None = None) -> torch.Tensor:
        """``[batch, I] -> [batch, 4H]``: ``x @ kernel + bias`` (``x`` under ``masks``)."""
        z = _masked_product(inputs, masks, self.kernel)
        return z + self.bias if self._use_bias else z

    def project_inputs(self, inputs):
        """``[..., I] -> [..., 4H]``: ``x @ kernel + bias``; ``None`` while dropout is
        active (the drivers then step through :meth:`call`)."""
        return None if self._dropping() else self._input_part(inputs)

    def _dropped_step(self, inputs, state):
        n_in, n_rec = self._mask_counts()
        x_masks = self._sequence_masks("input", inputs, self._dropout, n_in)
        h_masks = self._sequence_masks("recurrent", state[0], self._recurrent_dropout, n_rec)
        return self._recurrent_part(self._input_part(inputs, x_masks), state, h_masks)

    def _carry_and_output(self, z, c):
        zi, zf, zc, zo = z.chunk(4, -1)
        ra = self._rec_act
        i = ra(zi + self.input_gate_peephole_weights * c)
        f = ra(zf + self.forget_gate_peephole_weights * c)
        new_c = f * c + i * self._act(zc)
        o = ra(zo + self.output_gate_peephole_weights * new_c)
        return new_c, o

    def call_projected(self, projected, state):
        return self._recurrent_part(projected, state, None)

    def _recurrent_part(self, projected: torch.Tensor, state: list,
                        h_masks: list[torch.Tensor] | None) -> tuple[torch.Tensor, list]:
        """The step from ``projected [batch, 4H]`` and ``state [h, c]``, ``h`` under
        ``h_masks``."""
        h, c = state
        z = projected + _masked_product(h, h_masks, self.recurrent_kernel)
        new_c, o = self._carry_and_output(z, c)
        new_h = o * self._act(new_c)
        return new_h, [new_h, new_c]


class LayerNormLSTMCell(PeepholeLSTMCell):
    """``tfa.rnn.LayerNormLSTMCell``: Keras's ``LSTMCell`` with layer normalisation (Ba et
    al. 2016) of the input product, the recurrent product and the new carry.

    ``z = kernel_norm(x @ kernel) + recurrent_norm(h @ recurrent_kernel) + bias`` split ``i,
    f, c, o``; ``c' = state_norm(ra(z_f) * c + ra(z_i) * act(z_c))``; ``h' = ra(z_o) *
    act(c')``.  Each norm is ``(v - mean) / sqrt(var + norm_epsilon) * gamma + beta``.

    Args:
        units, activation, recurrent_activation, use_bias, the initializers,
            unit_forget_bias, seed: as :class:`PeepholeLSTMCell`.
        implementation: 1 or 2, no effect (tfa's step is the fused one either way).
        norm_gamma_initializer, norm_beta_initializer: default ``ones`` / ``zeros``.
        norm_epsilon: default ``1e-3``.
        regularizers, constraints: refused unless ``None``.
        dropout, recurrent_dropout: fractions (in ``[0, 1)``) of the inputs' and of ``h``'s
            entries dropped, each by one mask for all gates (tfa's step uses Keras's first
            mask): ``kernel_norm((x * m) @ kernel) + recurrent_norm((h * r) @
            recurrent_kernel)``.
        name: default ``layer_norm_lstm_cell``.

    Shapes: inputs ``[batch, I]``; state ``[h, c]``, each ``[batch, H]``; output ``[batch,
    H]``.  Variables: ``kernel [I, 4H]``, ``recurrent_kernel [H, 4H]``, ``bias [4H]``,
    ``kernel_norm/gamma``, ``kernel_norm/beta``, ``recurrent_norm/gamma``,
    ``recurrent_norm/beta [4H]``, ``state_norm/gamma``, ``state_norm/beta [H]``.
    """

    _fast_paths = ("project_inputs",)
    _peepholes = False

    def __init__(self, units: int, activation: Any = "tanh",
                 recurrent_activation: Any = "sigmoid", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 unit_forget_bias: bool = True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, norm_gamma_initializer: Any = "ones",
                 norm_beta_initializer: Any = "zeros", norm_epsilon: float = 1e-3,
                 implementation: int = 2, *, seed: int | None = None,
                 name: str | None = None, dtype: torch.dtype | None = None,
                 trainable: bool = True, input_size: int | None = None):
        self._gamma_init = initializers.resolve("norm_gamma_initializer",
                                                norm_gamma_initializer)
        self._beta_init = initializers.resolve("norm_beta_initializer", norm_beta_initializer)
        self._eps = _checks.as_number("norm_epsilon", norm_epsilon, low=0)
        super().__init__(units, activation, recurrent_activation, use_bias,
                         kernel_initializer, recurrent_initializer, bias_initializer,
                         unit_forget_bias, kernel_regularizer, recurrent_regularizer,
                         bias_regularizer, kernel_constraint, recurrent_constraint,
                         bias_constraint, dropout, recurrent_dropout, implementation,
                         seed=seed, name=name, dtype=dtype, trainable=trainable,
                         input_size=input_size)

    _NORMS = ("kernel_norm", "recurrent_norm", "state_norm")

    def _extra_init(self):
        for n in self._NORMS:
            self._inits[f"{n}/gamma"] = self._gamma_init
            self._inits[f"{n}/beta"] = self._beta_init

    def _shapes(self, input_depth):
        h = self._num_units
        out = super()._shapes(input_depth)
        for n, size in zip(self._NORMS, (4 * h, 4 * h, h), strict=True):
            out.update({f"{n}/gamma": (size,), f"{n}/beta": (size,)})
        return out

    def _norm(self, which: str, x: torch.Tensor) -> torch.Tensor:
        return layer_norm(x, getattr(self, f"{which}_gamma"), getattr(self, f"{which}_beta"),
                           self._eps)

    def _mask_counts(self) -> tuple[int, int]:
        return 1, 1  # tfa's LayerNormLSTMCell.call: the first of Keras's masks only

    def _input_part(self, inputs, masks=None):
        """``[batch, I] -> [batch, 4H]``: ``kernel_norm(x @ kernel) + bias``."""
        z = self._norm("kernel_norm", _masked_product(inputs, masks, self.kernel))
        return z + self.bias if self._use_bias else z

    def project_inputs(self, inputs):
        """``[..., I] -> [..., 4H]``: ``kernel_norm(x @ kernel) + bias``; ``None`` while
        dropout is active."""
        return None if self._dropping() else self._input_part(inputs)

    def call_projected(self, projected, state):
        return self._recurrent_part(projected, state, None)

    def _recurrent_part(self, projected, state, h_masks):
        h, c = state
        z = projected + self._norm("recurrent_norm",
                                   _masked_product(h, h_masks, self.recurrent_kernel))
        zi, zf, zc, zo = z.chunk(4, -1)
        ra = self._rec_act
        new_c = self._norm("state_norm", ra(zf) * c + ra(zi) * self._act(zc))
        new_h = ra(zo) * self._act(new_c)
        return new_h, [new_h, new_c]


class LayerNormSimpleRNNCell(_KerasDropout, _KerasCell):
    """``tfa.rnn.LayerNormSimpleRNNCell``: Keras's ``SimpleRNNCell`` with a scale-only
    layer normalisation before the bias: ``h' = act(ln(x @ kernel + h @ recurrent_kernel) +
    bias)``, ``ln(v) = (v - mean) / sqrt(var + layernorm_epsilon) * gamma``.

    Args:
        units: ``H``.
        activation: default ``tanh`` (``None``: linear).
        use_bias: add ``bias``.
        layernorm_epsilon: default ``1e-5``.
        kernel_initializer, recurrent_initializer, bias_initializer, gamma_initializer:
            default ``glorot_uniform``, ``orthogonal``, ``zeros``, ``ones``.
        regularizers, constraints: refused unless ``None``.
        dropout, recurrent_dropout: fractions (in ``[0, 1)``) of the inputs' and of the
            previous output's entries dropped, one mask each (Keras's SimpleRNNCell): ``h' =
            act(ln((x * m) @ kernel + (h * r) @ recurrent_kernel) + bias)``.
        seed: the masks' own seed (Keras's ``seed``); ``None``: PyTorch's generator.
        name: default ``layer_norm_simple_rnn_cell``.

    Shapes: inputs ``[batch, I]``; state and output ``[batch, H]``.  Variables: ``kernel [I,
    H]``, ``recurrent_kernel [H, H]``, ``bias [H]``, ``gamma [H]`` (the normalisation's,
    built in the cell's scope as tfa builds it).  The input product is hoisted unless
    dropout is active.
    """

    _fast_paths = ("project_inputs",)

    def __init__(self, units: int, activation: Any = "tanh", use_bias: bool = True,
                 layernorm_epsilon: float = 1e-05, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, gamma_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 gamma_constraint=None, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 *, seed: int | None = None, name: str | None = None,
                 dtype: torch.dtype | None = None, trainable: bool = True,
                 input_size: int | None = None):
        _refuse_unsupported(type(self).__name__, kernel_regularizer=kernel_regularizer,
                            recurrent_regularizer=recurrent_regularizer,
                            bias_regularizer=bias_regularizer,
                            gamma_regularizer=gamma_regularizer,
                            kernel_constraint=kernel_constraint,
                            recurrent_constraint=recurrent_constraint,
                            bias_constraint=bias_constraint, gamma_constraint=gamma_constraint)
        self._init_dropout(type(self).__name__, dropout, recurrent_dropout, seed)
        self._act = activations.get("activation", activation)
        self._use_bias = _checks.as_flag("use_bias", use_bias)
        self._eps = _checks.as_number("layernorm_epsilon", layernorm_epsilon, low=0)
        self._inits = {
            "kernel": initializers.resolve("kernel_initializer", kernel_initializer),
            "recurrent_kernel": initializers.resolve("recurrent_initializer",
                                                     recurrent_initializer),
            "bias": initializers.resolve("bias_initializer", bias_initializer)
            or initializers.zeros_initializer(),
            "gamma": initializers.resolve("gamma_initializer", gamma_initializer)
            or initializers.ones_initializer()}
        super().__init__(units, name, dtype, input_size, trainable)

    def _shapes(self, input_depth):
        h = self._num_units
        out = {"kernel": (input_depth, h), "recurrent_kernel": (h, h)}
        if self._use_bias:
            out["bias"] = (h,)
        out["gamma"] = (h,)
        return out

    @property
    def state_size(self) -> int:
        return self._num_units

    def project_inputs(self, inputs):
        """``[..., I] -> [..., H]``: ``x @ kernel`` (the bias comes after the norm); ``None``
        while dropout is active."""
        return None if self._dropping() else inputs @ self.kernel

    def _dropped_step(self, inputs, state):
        x_masks = self._sequence_masks("input", inputs, self._dropout, 1)
        h_masks = self._sequence_masks("recurrent", state, self._recurrent_dropout, 1)
        return self._recurrent_part(_masked_product(inputs, x_masks, self.kernel), state,
                                    h_masks)

    def call_projected(self, projected, state):
        return self._recurrent_part(projected, state, None)

    def _recurrent_part(self, projected: torch.Tensor, state: torch.Tensor,
                        h_masks: list[torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The step from ``projected [batch, H]`` and ``state [batch, H]`` under
        ``h_masks``."""
        z = layer_norm(projected + _masked_product(state, h_masks, self.recurrent_kernel),
                       self.gamma, None, self._eps)
        if self._use_bias:
            z = z + self.bias
        out = self._act(z)
        return out, out


class NASCell(_ContribNASCell):
    """``tfa.rnn.NASCell``: :class:`rnnkit.rnn.NASCell`'s step (Zoph & Le 2017) with tfa's
    arguments and state order.

    Args:
        units: ``H``.
        projection: project the output to ``P``.
        use_bias: add ``bias [8H]`` to the recurrent product.
        kernel_initializer, recurrent_initializer, projection_initializer,
            bias_initializer: default ``glorot_uniform`` (the first three), ``zeros``.
        name: default ``nas_cell``.

    Shapes: inputs ``[batch, I]``; state ``[c [batch, H], m [batch, P or H]]`` (a list,
    tfa's order); output ``m``.  Variables: ``kernel [I, 8H]``, ``recurrent_kernel [P or H,
    8H]``, ``bias [8H]``, ``projection_weights [H, P]``.
    """

    _fast_paths = ("project_inputs",)

    def __init__(self, units: int, projection: int | None = None, use_bias: bool = False,
                 kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "glorot_uniform",
                 projection_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", *, name: str | None = None,
                 dtype: torch.dtype | None = None, trainable: bool = True,
                 input_size: int | None = None):
        self._inits = {
            "kernel": initializers.resolve("kernel_initializer", kernel_initializer),
            "recurrent_kernel": initializers.resolve("recurrent_initializer",
                                                     recurrent_initializer),
            "projection_weights": initializers.resolve("projection_initializer",
                                                       projection_initializer),
            "bias": initializers.resolve("bias_initializer", bias_initializer)
            or initializers.zeros_initializer()}
        if not trainable:
            raise ValueError("trainable=False: freeze the cell's parameters with "
                             "cell.requires_grad_(False)")
        super().__init__(units, num_proj=projection, use_bias=use_bias, name=name,
                         dtype=dtype, input_size=input_size)

    @property
    def units(self) -> int:
        """Keras's ``units``."""
        return self._num_units

    def _initializer(self, name):
        return self._inits.get(name)

    @property
    def state_size(self):
        return [self._num_units, self._num_proj or self._num_units]

    def call_projected(self, projected, state):
        out, new = super().call_projected(projected, state)
        return out, [new.c, new.h]


class _ESNRecurrent(initializers.Initializer):
    """tfa's reservoir: ``recurrent_initializer``'s values kept with probability
    ``connectivity``, scaled to ``spectral_radius`` (over the largest absolute eigenvalue,
    or over the 2-norm with ``use_norm2``)."""

    def __init__(self, cell: ESNCell, inner: initializers.Initializer):
        super().__init__()
        self._cell, self.inner = [cell], inner  # the cell: not a submodule

    def fill(self, t, gen):
        cell = self._cell[0]
        self.inner.fill(t, gen)
        keep = torch.rand(t.shape, generator=gen, dtype=t.dtype) <= cell._connectivity
        t.mul_(keep.to(t.dtype))
        if cell._use_norm2:
            norm = t.pow(2).sum().sqrt()
            scale = cell._spectral_radius / (norm + (norm == 0).to(t.dtype))
        else:
            top = torch.linalg.eigvals(t).abs().max()
            scale = cell._spectral_radius / top if top > 0 else torch.zeros((), dtype=t.dtype)
        t.mul_(scale)


class ESNCell(_KerasCell):
    """``tfa.rnn.ESNCell``: an echo-state network's reservoir (Jaeger 2001), its weights
    fixed (not trained).

    ``y = act([x, h] @ [kernel; recurrent_kernel] + bias)``; ``h' = (1 - leaky) * h + leaky
    * y``.

    Args:
        units: ``H``, the reservoir size.
        connectivity: the probability that a reservoir connection exists (default 0.1).
        leaky: the leaking rate (1: no leaky integration).
        spectral_radius: the reservoir matrix's spectral radius at initialisation.
        use_norm2: scale by the 2-norm (an upper bound) instead of the eigenvalues.
        use_bias: add ``bias``.
        activation: default ``tanh``.
        kernel_initializer, recurrent_initializer, bias_initializer: default
            ``glorot_uniform``, ``glorot_uniform`` (then masked and scaled), ``zeros``.
        name: default ``esn_cell``.

    Shapes: inputs ``[batch, I]``; state and output ``[batch, H]``.  Variables (none
    trainable, as tfa): ``recurrent_kernel [H, H]``, ``kernel [I, H]``, ``bias [H]``.
    """

    _fast_paths = ("project_inputs",)

    def __init__(self, units: int, connectivity: float = 0.1, leaky: float = 1,
                 spectral_radius: float = 0.9, use_norm2: bool = False, use_bias: bool = True,
                 activation: Any = "tanh", kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", *, name: str | None = None,
                 dtype: torch.dtype | None = None, trainable: bool = True,
                 input_size: int | None = None):
        self._connectivity = _checks.as_number("connectivity", connectivity, low=0, high=1)
        self._leaky = _checks.as_number("leaky", leaky, low=0, high=1)
        self._spectral_radius = _checks.as_number("spectral_radius", spectral_radius, low=0)
        self._use_norm2 = _checks.as_flag("use_norm2", use_norm2)
        self._use_bias = _checks.as_flag("use_bias", use_bias)
        self._act = activations.get("activation", activation)
        rec = initializers.resolve("recurrent_initializer", recurrent_initializer) \
            or initializers.glorot_uniform_initializer()
        self._inits = {"recurrent_kernel": _ESNRecurrent(self, rec),
                       "kernel": initializers.resolve("kernel_initializer", kernel_initializer),
                       "bias": initializers.resolve("bias_initializer", bias_initializer)
                       or initializers.zeros_initializer()}
        super().__init__(units, name, dtype, input_size, trainable)

    def _shapes(self, input_depth):
        h = self._num_units
        out = {"recurrent_kernel": (h, h), "kernel": (input_depth, h)}
        if self._use_bias:
            out["bias"] = (h,)
        return out

    def build(self, inputs_shape):
        self._input_size = _checks.matrix_depth(type(self).__name__, inputs_shape)
        for name, shape in self._shapes(self._input_size).items():
            self.add_variable(name, shape, initializer=self._initializer(name),
                              trainable=False)

    @property
    def state_size(self) -> int:
        return self._num_units

    def project_inputs(self, inputs):
        """``[..., I] -> [..., H]``: ``x @ kernel + bias``."""
        z = inputs @ self.kernel
        return z + self.bias if self._use_bias else z

    def call_projected(self, projected, state):
        y = self._act(projected + state @ self.recurrent_kernel)
        out = (1 - self._leaky) * state + self._leaky * y
        return out, out
