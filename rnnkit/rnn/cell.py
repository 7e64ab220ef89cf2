"""The ``RNNCell`` base class and ``LSTMStateTuple``.

A cell maps ``(inputs [batch, input_depth], state)`` to ``(output [batch, output_size],
next_state)``.  Subclass it exactly as in TF 1.x: define ``state_size``, ``output_size``
and ``call(inputs, state)``; optionally ``build(inputs_shape)``, which runs once, at the
first call, and creates parameters with :meth:`RNNCell.add_variable`.
"""

from __future__ import annotations

import copy
import math
import warnings
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from rnnkit import _checks, nest
from rnnkit.rnn.fused import FusedForm, NotFusableError

__all__ = ["LSTMStateTuple", "RNNCell", "glorot_uniform_", "start_sequence"]

Initializer = Callable[[torch.Tensor], Any] | float | int | torch.Tensor | None


class LSTMStateTuple(NamedTuple):
    """State of an LSTM cell.

    Attributes:
        c: cell state ``[batch, num_units]``.
        h: hidden state / output ``[batch, num_units]`` (``[batch, num_proj]`` with a
            projection).
    """

    c: Any
    h: Any

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the state (of ``c``)."""
        return self.c.dtype


# cells whose build registered new parameters, until an optimizer is seen holding them
_LAZY: weakref.WeakSet = weakref.WeakSet()
_OPTIMIZERS: weakref.WeakSet = weakref.WeakSet()
# the optimizer-step pre-hook that checks them: registered while _LAZY holds a cell, so a
# program whose cells declare their variables (every built-in cell) has no global hook
_HOOK: Any = None
_PERIOD = 0  # counts registrations: optimizer steps are counted from the latest one


def _track_lazy(cell: RNNCell, names: list[str]) -> None:
    global _HOOK, _PERIOD
    cell._lazy_names = names
    _LAZY.add(cell)
    if _HOOK is None:
        _HOOK = register_optimizer_step_pre_hook(_check_lazy_params)
        _PERIOD += 1


def _check_lazy_params(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    """Optimizer step pre-hook: warn (once per cell) when parameters that a cell created at
    its first call have gradients but no optimizer holds them (made before that call).
    Judged from an optimizer's second step on, so that every optimizer has stepped once."""
    global _HOOK
    if not _LAZY:  # every tracked cell was judged (or freed): the hook is not needed
        if _HOOK is not None:
            _HOOK.remove()
            _HOOK = None
        return
    _OPTIMIZERS.add(optimizer)
    period, steps = optimizer.__dict__.get("_rnnkit_steps", (_PERIOD, 0))
    steps = steps if period == _PERIOD else 0
    optimizer._rnnkit_steps = (_PERIOD, steps + 1)
    if steps == 0:
        return
    held = {id(p) for opt in _OPTIMIZERS for g in opt.param_groups for p in g["params"]}
    for cell in list(_LAZY):
        params = [p for p in (getattr(cell, n, None) for n in cell._lazy_names)
                  if isinstance(p, torch.Tensor)]
        if any(id(p) in held for p in params):
            _LAZY.discard(cell)  # trained
        elif any(p.grad is not None for p in params):
            _LAZY.discard(cell)
            warnings.warn(
                f"{type(cell).__name__} created parameters {cell._lazy_names} at its first "
                "call; they receive gradients but no optimizer holds them, so they do not "
                "train.  Make the optimizer after the first call, or create them in __init__ "
                "(declare_variables(...) then add_variable in build).", stacklevel=3)


def start_sequence(module: nn.Module) -> None:
    """Tell every part of ``module`` that a new sequence begins.

    Each submodule that defines ``start_sequence()`` is called: a variational
    ``DropoutWrapper`` draws new masks, an attention mechanism recomputes its keys.  The
    drivers (``dynamic_rnn``, ``dynamic_decode``, ...) call it at every run; code that steps
    a cell by hand calls it between sequences.
    """
    for m in module.modules():
        hook = getattr(m, "start_sequence", None)
        if callable(hook):
            hook()


def glorot_uniform_(t: torch.Tensor, fan_in: int | None = None, fan_out: int | None = None):
    """TF's default ``glorot_uniform`` initializer, in place.

    ``fan_in``/``fan_out`` may be given when ``t`` is a slice of a larger TF kernel
    (e.g. the input half of a fused ``[input + state, units]`` matrix).
    """
    if fan_in is None or fan_out is None:
        if t.dim() >= 2:
            fan_out_, fan_in_ = t.shape[0], math.prod(t.shape[1:])
        else:
            fan_in_ = fan_out_ = t.shape[0]
        fan_in = fan_in if fan_in is not None else fan_in_
        fan_out = fan_out if fan_out is not None else fan_out_
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return t.uniform_(-limit, limit)


class RNNCell(nn.Module):
    """Abstract recurrent cell (``tf.nn.rnn_cell.RNNCell``).

    Subclasses define:

    * ``state_size``: an int, a ``torch.Size``, or a (nested) tuple / NamedTuple of them.
    * ``output_size``: likewise.
    * ``call(inputs, state) -> (output, next_state)`` with ``inputs`` of shape
      ``[batch, input_depth]`` and ``state`` matching ``state_size``.
    * optionally ``build(inputs_shape)``: create parameters once the input depth is known
      (``inputs_shape`` is the ``torch.Size`` of the first ``inputs``).

    Call the cell as ``cell(inputs, state)``.  Parameters created lazily exist only after the
    first call: build the optimizer after it, or pass ``input_size=`` to built-in cells.

    Built-in cells also implement the optional fast-path protocol
    :meth:`project_inputs` / :meth:`call_projected`, which lets the drivers compute the
    input-side matrix product for all time steps at once.  A user cell may implement it too;
    for an LSTM on CPU it is the difference between about 2.6x and 1.6x of ``nn.LSTM``'s
    forward+backward time at batch 32, 256 units (``benchmarks/RESULTS.md``)::

        def project_inputs(self, inputs):          # [..., input_depth] -> [..., 4 * units]
            return inputs @ self.w_x + self.bias

        def call_projected(self, projected, state):  # projected: [batch, 4 * units]
            c, h = state
            i, j, f, o = (projected + h @ self.w_h).chunk(4, 1)
            ...

        def call(self, inputs, state):
            return self.call_projected(self.project_inputs(inputs), state)
    """

    def __init__(self, name: str | None = None, dtype: torch.dtype | None = None, **kwargs):
        super().__init__()
        unknown = set(kwargs) - {"trainable", "reuse", "_reuse"}
        if unknown:
            raise TypeError(f"RNNCell got unexpected keyword arguments {sorted(unknown)}")
        self.built = False
        self.cell_name = name
        self._build_device: torch.device | None = None
        self._build_dtype: torch.dtype | None = dtype

    # -- to be defined by subclasses ------------------------------------------------------
    @property
    def state_size(self) -> Any:
        """Size of the state per row: an int (``[batch, n]``), a ``torch.Size`` or a
        structure of them (``LSTMStateTuple(c=n, h=n)``, one entry per layer, ...)."""
        raise NotImplementedError(f"{type(self).__name__} must define the state_size property")

    @property
    def output_size(self) -> Any:
        """Size of the output per row: ``[batch, output_size]`` (or a structure of sizes)."""
        raise NotImplementedError(f"{type(self).__name__} must define the output_size property")

    def build(self, inputs_shape: torch.Size) -> None:
        """Create parameters; ``inputs_shape`` is ``[batch, input_depth]`` (for inputs given
        as a structure of tensors, as in TF, the same structure of their shapes)."""

    def call(self, inputs: torch.Tensor, state: Any) -> tuple[Any, Any]:
        """One step: ``inputs [batch, input_depth]`` and ``state`` (leaves ``[batch, size]``
        as ``state_size``) -> ``(output [batch, output_size], next_state)``."""
        raise NotImplementedError(f"{type(self).__name__} must define call(inputs, state)")

    # -- optional fast-path protocol -------------------------------------------------------
    def project_inputs(self, inputs: torch.Tensor) -> torch.Tensor | None:
        """Input-side part of the step for any leading shape ``[..., input_depth]``.

        Returns ``None`` (the default) when the cell cannot split its step; the drivers
        then call the cell step by step.  A cell that returns a tensor must make
        ``call_projected(project_inputs(x), state) == call(x, state)``.
        """
        return None

    def call_projected(self, projected: torch.Tensor, state: Any) -> tuple[Any, Any]:
        """:meth:`call` from ``projected = project_inputs(inputs)`` (``[batch, ...]``)."""
        raise NotImplementedError

    # -- optional fused-kernel protocol ----------------------------------------------------
    def fused_form(self) -> FusedForm:
        """How this (built) cell runs on PyTorch's fused RNN kernels.

        Return a :class:`rnnkit.rnn.fused.FusedForm` whose kernel computes exactly what
        :meth:`call` computes, or raise :class:`rnnkit.rnn.NotFusableError` saying why not.
        ``dynamic_rnn(..., fused="auto")`` then runs the step loop; ``fused=True`` raises
        the error.  The default: a cell runs on the step loop.
        """
        raise NotFusableError(f"{type(self).__name__} defines no fused_form")

    def sequential_layers(self) -> list[RNNCell]:
        """Cells whose step-by-step composition is this cell (a stack's layers).

        The drivers run each layer over the whole sequence in turn, which is exact when layer
        ``k`` at step ``t`` needs only layer ``k - 1`` at ``t`` and itself at ``t - 1``.
        Default ``[self]``; :class:`MultiRNNCell` returns its cells.
        """
        return [self]

    def split_state(self, state: Any) -> tuple:
        """Per-layer states of ``state``, matching :meth:`sequential_layers`."""
        return (state,)

    def join_state(self, states: Any) -> Any:
        """Inverse of :meth:`split_state`."""
        return states[0]

    def hoists_inputs(self) -> bool:
        """May the drivers use :meth:`project_inputs` / :meth:`call_projected` for this cell?

        Only when :meth:`call` is not overridden below the class that defines
        :meth:`project_inputs`: a subclass that changes ``call`` alone changes the step.
        """
        mro = type(self).__mro__

        def owner(name: str) -> int:
            return next(i for i, k in enumerate(mro) if name in k.__dict__)

        return owner("call") >= owner("project_inputs")

    # -- machinery ------------------------------------------------------------------------
    def forward(self, inputs: Any, state: Any, scope: Any = None) -> tuple[Any, Any]:
        """``cell(inputs [batch, depth], state) -> (output, next_state)``, inputs and state
        checked first (batch, structure, shapes, dtype, device), before anything is built."""
        inputs = self._check_call(inputs, state)
        return self.step(inputs, state)

    def step(self, inputs: Any, state: Any) -> tuple[Any, Any]:
        """One step without the argument checks of ``cell(...)``: what wrappers and decoders
        call per step after checking the state once."""
        self.maybe_build(inputs)
        return self.call(inputs, state)

    def _check_call(self, inputs: Any, state: Any) -> Any:
        from rnnkit import _checks

        if not nest.is_nested(inputs):
            inputs = _checks.as_inputs("inputs", inputs)
            _checks.rank_at_least("inputs", inputs, 2, "[batch, depth]")
            like = inputs
        else:
            like = nest.flatten(inputs)[0]
            _checks.tensor("inputs", like)
        self.assert_state("state", state, like.shape[0])
        if like.is_floating_point():
            _checks.state_matches_inputs("state", state, like)
            if self.built:
                _checks.params_match_inputs(type(self).__name__, self, like)
        return inputs

    def maybe_build(self, inputs: Any) -> None:
        """Run :meth:`build` once, with parameters on the inputs' device and dtype."""
        if self.built:
            return
        first = nest.flatten(inputs)[0]
        self._build_device = first.device
        if self._build_dtype is None and first.is_floating_point():
            self._build_dtype = first.dtype
        shape = (nest.map_structure(lambda x: x.shape, inputs) if nest.is_nested(inputs)
                 else first.shape)
        before = set(self._parameters)
        self.build(shape)
        self.built = True
        created = [n for n in self._parameters if n not in before]
        if created:  # new Parameter objects: an optimizer made earlier does not hold them
            _track_lazy(self, created)

    def input_depth_from(self, params: dict[str, torch.Tensor]) -> int | None:
        """The input depth that :meth:`build` would have seen, read from saved parameters
        (``name -> tensor``, this cell's own), or ``None`` when it cannot tell.

        Lets ``load_state_dict`` build a cell that was never called (TF's order: construct,
        restore, run).  Built-in cells read it from their input weights."""
        return None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if not self.built:
            own = {k[len(prefix):]: v for k, v in state_dict.items()
                   if k.startswith(prefix) and "." not in k[len(prefix):]}
            depth = self.input_depth_from(own) if own else None
            if depth is not None:
                like = next(iter(own.values()))
                dtype = self._build_dtype or (like.dtype if like.is_floating_point()
                                              else None)
                self.maybe_build(torch.zeros(1, depth, dtype=dtype,
                                             device=self._build_device or self._param_device()))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def declare_variables(self, *names: str) -> None:
        """Register parameters now whose shapes :meth:`build` fixes at the first call.

        Call it in ``__init__`` with the names that ``build`` passes to
        :meth:`add_variable`: the parameters exist from the start (as
        ``torch.nn.UninitializedParameter``) and ``add_variable`` fills them in place, so an
        optimizer made before the first call (TF's order) trains them.  Built-in cells do
        this.  A cell that creates new parameters in ``build`` instead is reported by a
        warning at the first optimizer step that misses them.
        """
        for name in names:
            self.register_parameter(name.replace("/", "_"), nn.UninitializedParameter())

    def add_variable(
        self,
        name: str,
        shape: tuple[int, ...] | list[int] | torch.Size,
        initializer: Initializer = None,
        dtype: torch.dtype | None = None,
        trainable: bool = True,
    ) -> nn.Parameter:
        """Create and register a parameter (``tf.get_variable`` inside ``build``).

        ``initializer``: a ``torch.nn.init``-style in-place function, a constant, a tensor /
        array of the right shape, or ``None`` for TF's default ``glorot_uniform``.
        """
        shape = tuple(int(s) for s in shape)
        dtype = dtype or self._build_dtype or torch.get_default_dtype()
        device = self._build_device or self._param_device()
        key = name.replace("/", "_")
        declared = self._parameters.get(key)
        if isinstance(declared, nn.UninitializedParameter):
            declared.materialize(shape, device=device, dtype=dtype)
            data = declared.data
        else:
            declared = None
            data = torch.empty(shape, dtype=dtype, device=device)
        if initializer is None:
            glorot_uniform_(data)
        elif callable(initializer):
            with torch.no_grad():
                initializer(data)
        else:
            value = torch.as_tensor(initializer, dtype=dtype, device=device)
            if value.dim() and tuple(value.shape) != shape:
                raise ValueError(
                    f"initializer for variable {name!r} has shape {tuple(value.shape)}, "
                    f"expected {shape}"
                )
            with torch.no_grad():
                data.copy_(value.expand(shape))
        if declared is not None:  # the same object an optimizer may already hold
            declared.requires_grad_(trainable)
            return declared
        param = nn.Parameter(data, requires_grad=trainable)
        self.register_parameter(key, param)
        return param

    def __setattr__(self, name: str, value: Any) -> None:
        # ``self._kernel = self.add_variable("kernel", ...)``: keep one registration and an
        # alias, so state_dict holds each tensor once.
        if isinstance(value, nn.Parameter) and any(
            p is value for p in self.__dict__.get("_parameters", {}).values()
        ):
            object.__setattr__(self, name, value)
            return
        super().__setattr__(name, value)

    def __copy__(self) -> RNNCell:
        # TF 1.x code writes ``[copy.copy(cell) for _ in range(n)]`` to stack independent
        # layers; a shallow module copy would share parameters, so copy deeply.
        return copy.deepcopy(self)

    def _param_device(self) -> torch.device:
        for p in self.parameters():
            if not isinstance(p, nn.UninitializedParameter):
                return p.device
        return self._build_device or torch.device("cpu")

    def _param_dtype(self) -> torch.dtype:
        for p in self.parameters():
            if p.is_floating_point() and not isinstance(p, nn.UninitializedParameter):
                return p.dtype
        return self._build_dtype or torch.get_default_dtype()

    def zero_state(
        self,
        batch_size: int,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Any:
        """Zeros shaped like ``state_size``: each leaf ``[batch_size, size]``."""
        batch_size = _checks.as_int("batch_size", batch_size)
        if batch_size < 0:
            raise ValueError(f"batch_size must be a non-negative int, received {batch_size!r}")
        dtype = _checks.as_dtype("dtype", dtype) or self._param_dtype()
        device = torch.device(device) if device is not None else self._param_device()

        def zeros(size: Any) -> torch.Tensor:
            dims = (size,) if isinstance(size, int) else tuple(size)
            return torch.zeros((batch_size, *dims), dtype=dtype, device=device)

        return nest.map_structure(zeros, self.state_size)

    def assert_state(self, name: str, state: Any, batch_size: int) -> None:
        """Raise ``ValueError`` unless ``state`` matches ``state_size`` with ``batch_size`` rows.

        Cells whose state holds more than ``[batch, ...]`` tensors (``AttentionWrapper``)
        override this; wrappers delegate to the wrapped cell.
        """
        _refuse_keras_lstm_lists(name, self.state_size, state)
        nest.assert_same_structure(self.state_size, state, what=f"{name} (vs cell.state_size)")
        for size, leaf in zip(nest.flatten(self.state_size), nest.flatten(state), strict=True):
            if not isinstance(leaf, torch.Tensor):
                raise TypeError(f"{name} leaves must be tensors, received "
                                f"{type(leaf).__name__}")
            dims = (size,) if isinstance(size, int) else tuple(size)
            if tuple(leaf.shape) != (batch_size, *dims):
                raise ValueError(
                    f"{name} leaf must have shape {(batch_size, *dims)}, "
                    f"received {tuple(leaf.shape)}"
                )

    def get_initial_state(self, inputs=None, batch_size=None, dtype=None):
        """tf.keras-style alias of :meth:`zero_state`."""
        if batch_size is None:
            batch_size = inputs.shape[0]
        return self.zero_state(batch_size, dtype or (inputs.dtype if inputs is not None else None))

    def extra_repr(self) -> str:
        return f"state_size={self.state_size!r}, output_size={self.output_size!r}"


def _refuse_keras_lstm_lists(name: str, size: Any, state: Any) -> None:
    """An LSTM state given as a *list* of two tensors is Keras's ``[h, c]`` (what
    ``tf.keras.layers.LSTM(return_state=True)`` returns, and tfa code passes on); read as
    TF 1.x's ``(c, h)`` it would swap them silently, so it is refused."""
    if isinstance(size, LSTMStateTuple):
        if isinstance(state, list):
            raise ValueError(
                f"{name}: an LSTM state given as a list reads as Keras's [h, c] order; the "
                "state here is TF 1.x's LSTMStateTuple(c, h): pass LSTMStateTuple(c=..., "
                "h=...) (or the tuple (c, h))")
        return
    if (isinstance(size, tuple) and not isinstance(size, torch.Size)
            and isinstance(state, (tuple, list)) and len(size) == len(state)):
        for sub_size, sub_state in zip(size, state, strict=True):
            _refuse_keras_lstm_lists(name, sub_size, sub_state)
