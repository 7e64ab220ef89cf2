"""The ``RNNCell`` base class, ``LSTMStateTuple`` and what every cell shares.

A cell maps ``(inputs [batch, input_depth], state)`` to ``(output [batch, output_size],
next_state)``.  Subclass it exactly as in TF 1.x: define ``state_size``, ``output_size`` and
``call(inputs, state)``; optionally ``build(inputs_shape)``, which runs once, at the first
call, and creates parameters with :meth:`RNNCell.add_variable`.  A TF program's override of
``__call__(inputs, state, scope=None)`` (or PyTorch's ``forward``) is what every driver,
decoder and wrapper runs.

The protocols a cell may implement, each optional (``docs/architecture.md``):

* **fast paths**: ``fused_form()`` (PyTorch's fused kernels), ``project_inputs`` /
  ``call_projected`` (the input projection hoisted out of the time loop) and
  ``sequential_layers`` (a stack run layer by layer).  Each holds only while no subclass
  below the class that defines it overrides the step (:meth:`RNNCell.fast_path`);
* **TF variable layout**: ``tf_name``, ``tf_variables``, ``tf_children``
  (:mod:`rnnkit.compat.layout`);
* **search hooks**: ``reorder_state``, ``tiled_for_beams``, ``attention_probabilities``
  (what beam search asks of a cell, found through wrappers and stacks);
* **graph bindings**: ``graph_bindings()`` on modules holding per-call tensors
  (:mod:`rnnkit.capture`).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import re
from collections.abc import Callable, Collection, Iterator
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from rnnkit import _checks, initializers, nest
from rnnkit.compat import layout
from rnnkit.lazy import LazyParameter, LazyParameterError, track_lazy
from rnnkit.rnn.fused import FusedForm, NotFusableError

__all__ = ["LSTMStateTuple", "LazyParameterError", "RNNCell", "build", "initial_state",
           "require_cell", "start_sequence", "zeros_for"]

Initializer = Any  # see rnnkit.initializers.resolve


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

    @classmethod
    def check_state(cls, name: str, size: LSTMStateTuple, state: Any, batch_size: int) -> None:
        """An LSTM state given as a *list* of two tensors is Keras's ``[h, c]`` (what
        ``tf.keras.layers.LSTM(return_state=True)`` returns, and tfa code passes on); read
        as TF 1.x's ``(c, h)`` it would swap them silently, so it is refused."""
        if isinstance(state, list):
            raise ValueError(
                f"{name}: an LSTM state given as a list reads as Keras's [h, c] order; the "
                "state here is TF 1.x's LSTMStateTuple(c, h): pass LSTMStateTuple(c=..., "
                "h=...) (or the tuple (c, h))")
        _checks.state_fields(name, size, state, batch_size)


def require_cell(name: str, cell: Any) -> RNNCell:
    """``cell`` must be an rnnkit :class:`RNNCell`."""
    if not isinstance(cell, RNNCell):
        raise TypeError(f"{name} must be an rnnkit RNNCell, received {type(cell).__name__}")
    return cell


def zeros_for(size: Any, leading: tuple[int, ...], dtype: torch.dtype,
              device: torch.device | str | None) -> Any:
    """Zeros shaped like a cell's ``state_size`` / ``output_size`` structure, each leaf
    ``[*leading, *size]`` (an int size ``n`` is ``[n]``)."""
    def zeros(s: Any) -> torch.Tensor:
        dims = (s,) if isinstance(s, int) else tuple(s)
        return torch.zeros((*leading, *dims), dtype=dtype, device=device)

    return nest.map_structure(zeros, size)


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


def build(module: nn.Module, *example_inputs: Any, **example_kwargs: Any) -> nn.Module:
    """Size every lazily sized parameter of ``module`` by running it once, without
    gradients, on example inputs (TF's graph construction, which sized every variable
    before ``global_variables_initializer``).

    ``module(*example_inputs, **example_kwargs)`` is called (any model or cell; for a cell
    pass ``(inputs, state)``).  Afterwards initializers may be applied to every parameter,
    ``state_dict()`` holds every tensor, and an optimizer made then holds them all.
    Raises :class:`~rnnkit.lazy.LazyParameterError` naming any parameter still unsized.  Returns
    ``module``.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, received {type(module).__name__}")
    with torch.no_grad():
        module(*example_inputs, **example_kwargs)
    start_sequence(module)
    left = [n for n, p in module.named_parameters()
            if isinstance(p, nn.parameter.UninitializedTensorMixin)]
    if left:
        raise LazyParameterError(f"build: the example call did not size {left}; call the "
                                 "module with inputs that reach those layers")
    return module


# -- overrides ---------------------------------------------------------------------------------

def _defining_class(cls: type, name: str) -> type:
    return next(k for k in cls.__mro__ if name in k.__dict__)


def _vouching_class(cls: type, name: str) -> type:
    """The most derived class that defines the fast path ``name`` or vouches that its own
    step keeps an inherited one (``_fast_paths = ("project_inputs",)`` in its body)."""
    return next(k for k in cls.__mro__
                if name in k.__dict__ or name in k.__dict__.get("_fast_paths", ()))


@functools.cache
def _overridden_below(cls: type, owner: type, names: tuple[str, ...]) -> tuple[str, ...]:
    """The ``names`` that a class strictly below ``owner`` in ``cls``'s MRO defines."""
    below = cls.__mro__[: cls.__mro__.index(owner)]
    return tuple(n for n in names if any(n in k.__dict__ for k in below))


def overridden_below(obj: Any, owner: type, names: tuple[str, ...]) -> tuple[str, ...]:
    """Which of ``names`` a subclass of ``owner`` (``type(obj)`` or one between them)
    redefines: where a fast path ``owner`` provides no longer provably computes the step."""
    return _overridden_below(type(obj), owner, tuple(names))


def _routes_through_call(cls: type) -> bool:
    """Does ``cls`` override ``__call__`` (TF's way) or ``forward`` (PyTorch's)?  Computed
    once per class, when it is created (``RNNCell.__init_subclass__``)."""
    return (_defining_class(cls, "__call__") is not nn.Module
            or _defining_class(cls, "forward") is not RNNCell)


@functools.cache
def _takes_device(fn: Callable) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return "device" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def initial_state(cell: RNNCell, batch_size: int, dtype: torch.dtype | None,
                  device: torch.device | str | None) -> Any:
    """``cell.zero_state(batch_size, dtype)`` on ``device``: a TF-shaped override
    ``zero_state(self, batch_size, dtype)`` is called as TF calls it, its tensors moved."""
    if _takes_device(type(cell).zero_state):
        return cell.zero_state(batch_size, dtype, device)
    state = cell.zero_state(batch_size, dtype)
    if device is None:
        return state
    return nest.map_structure(
        lambda t: t.to(device) if isinstance(t, torch.Tensor) else t, state)


def _snake_case(name: str) -> str:
    """TF's default layer name: the class name in snake case."""
    s = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


class RNNCell(nn.Module):
    """Abstract recurrent cell (``tf.nn.rnn_cell.RNNCell``).

    Subclasses define:

    * ``state_size``: an int, a ``torch.Size``, or a (nested) tuple / NamedTuple of them.
    * ``output_size``: likewise.
    * ``call(inputs, state) -> (output, next_state)`` with ``inputs`` of shape
      ``[batch, input_depth]`` and ``state`` matching ``state_size``.
    * optionally ``build(inputs_shape)``: create parameters once the input depth is known
      (``inputs_shape`` is the ``torch.Size`` of the first ``inputs``).

    Call the cell as ``cell(inputs, state)``.  A cell may instead override ``__call__(inputs,
    state, scope=None)`` as TF programs do, or ``forward``; drivers, decoders and wrappers
    then run that.  Parameters created lazily exist only after the first call: declare them
    in ``__init__`` (:meth:`declare_variables`), build the optimizer after
    :func:`rnnkit.rnn.build`, or pass ``input_size=`` to built-in cells.

    The optional fast path :meth:`project_inputs` / :meth:`call_projected` lets the drivers
    compute the input-side matrix product for all time steps at once.  For an LSTM on CPU it
    is the difference between about 2.6x and 1.6x of ``nn.LSTM``'s forward+backward time at
    batch 32, 256 units (``benchmarks/RESULTS.md``)::

        def project_inputs(self, inputs):          # [..., input_depth] -> [..., 4 * units]
            return inputs @ self.w_x + self.bias

        def call_projected(self, projected, state):  # projected: [batch, 4 * units]
            c, h = state
            i, j, f, o = (projected + h @ self.w_h).chunk(4, 1)
            ...

        def call(self, inputs, state):
            return self.call_projected(self.project_inputs(inputs), state)
    """

    #: The methods that make up what one step computes.  A fast path that a class defines
    #: (``fused_form``, ``project_inputs``, ``sequential_layers``) holds for an instance
    #: only while no class below it redefines one of these (:meth:`fast_path`).
    step_methods: ClassVar[tuple[str, ...]] = (
        "__call__", "forward", "step", "call", "call_projected", "project_inputs")

    #: Fast paths a class keeps although it redefines the step: its own step computes what
    #: the inherited ``project_inputs`` (for example) assumes.  Set in the class body.
    _fast_paths: ClassVar[tuple[str, ...]] = ()

    #: TF's scope name for instances without ``name=`` (None: the class name in snake case,
    #: TF's rule for layers).
    tf_default_name: ClassVar[str | None] = None

    #: whether :meth:`step` goes through ``__call__`` / ``forward`` (an override of them)
    _steps_through_call: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._steps_through_call = _routes_through_call(cls)

    def __init__(self, name: str | None = None, dtype: torch.dtype | None = None, **kwargs):
        super().__init__()
        unknown = set(kwargs) - {"trainable", "reuse", "_reuse"}
        if unknown:
            raise TypeError(f"RNNCell got unexpected keyword arguments {sorted(unknown)}")
        if kwargs.get("trainable", True) is not True:
            raise ValueError("trainable=False: freeze the cell's parameters with "
                             "cell.requires_grad_(False) (rnnkit keeps TF's trainable flag "
                             "on the parameters themselves)")
        self.built = False
        self.cell_name = name
        self._build_device: torch.device | None = None
        self._build_dtype: torch.dtype | None = _checks.as_dtype("dtype", dtype)
        self._tf_variable_names: dict[str, str] = {}  # parameter -> TF name (add_variable)

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

    # -- running a step -----------------------------------------------------------------------
    def forward(self, inputs: Any, state: Any, scope: Any = None) -> tuple[Any, Any]:
        """``cell(inputs [batch, depth], state) -> (output, next_state)``, inputs and state
        checked first (batch, structure, shapes, dtype, device), before anything is built."""
        inputs = self._check_call(inputs, state)
        self.maybe_build(inputs)
        return self.call(inputs, state)

    def step(self, inputs: Any, state: Any) -> tuple[Any, Any]:
        """One step as this cell defines it, without the argument checks of ``cell(...)``:
        what drivers, wrappers and decoders call at every step.  A cell that overrides
        ``__call__`` or ``forward`` is called through them."""
        if self._steps_through_call:
            return self(inputs, state)
        self.maybe_build(inputs)
        return self.call(inputs, state)

    def dtype_reference(self, inputs: Any) -> Any:
        """The leaf of structured ``inputs`` whose dtype the state and the parameters share:
        the first; a cell one of whose inputs keeps a dtype of its own (PhasedLSTMCell's
        times) names the other."""
        return nest.flatten(inputs)[0]

    def _check_call(self, inputs: Any, state: Any) -> Any:
        if not nest.is_nested(inputs):
            inputs = _checks.as_inputs("inputs", inputs)
            _checks.rank_at_least("inputs", inputs, 2, "[batch, depth]")
            like = inputs
        else:
            like = self.dtype_reference(inputs)
            _checks.tensor("inputs", like)
        self.assert_state("state", state, like.shape[0])
        if like.is_floating_point():
            _checks.state_matches_inputs("state", state, like)
            if self.built:
                _checks.params_match_inputs(type(self).__name__, self, like)
        return inputs

    # -- fast paths ---------------------------------------------------------------------------
    def fast_path(self, name: str) -> str | None:
        """Whether the fast path ``name`` (``"fused_form"``, ``"project_inputs"``,
        ``"sequential_layers"``) computes this cell's step: ``None`` when it does, else the
        reason (a subclass below the class providing it redefines the step)."""
        owner = _vouching_class(type(self), name)
        if owner is RNNCell:
            return None  # the default: no fast path to protect
        changed = overridden_below(self, owner, tuple(m for m in type(self).step_methods
                                                       if m != name))
        if not changed:
            return None
        return (f"{type(self).__name__} overrides {', '.join(f'{m}()' for m in changed)}, so "
                f"the {name}() of {owner.__name__} may not compute its step; define "
                f"{name}() in {type(self).__name__} to opt in")

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

    def hoists_inputs(self) -> bool:
        """May the drivers use :meth:`project_inputs` / :meth:`call_projected`?  Only while
        no subclass redefines the step below the class that defines ``project_inputs``."""
        return self.fast_path("project_inputs") is None

    def fused_form(self) -> FusedForm:
        """How this (built) cell runs on PyTorch's fused RNN kernels.

        Return a :class:`rnnkit.rnn.fused.FusedForm` whose kernel computes exactly what
        :meth:`call` computes, or raise :class:`rnnkit.rnn.NotFusableError` saying why not.
        The planner asks only while :meth:`fast_path` holds for it.  The default: a cell
        runs on the step loop.
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

    # -- building ---------------------------------------------------------------------------
    def maybe_build(self, inputs: Any) -> None:
        """Run :meth:`build` once, with parameters on the inputs' device and dtype."""
        if self.built:
            return
        first = nest.flatten(inputs)[0]
        shape = (nest.map_structure(lambda x: x.shape, inputs) if nest.is_nested(inputs)
                 else first.shape)
        self.build_for(shape, first.dtype if first.is_floating_point() else None, first.device)

    def build_for(self, inputs_shape: Any, dtype: torch.dtype | None = None,
                  device: torch.device | str | None = None) -> None:
        """Build the cell for inputs of ``inputs_shape`` (``[batch, depth]``, or a structure
        of shapes) without running it; parameters take ``dtype`` / ``device`` unless the
        cell was given them.  Does nothing once built."""
        if self.built:
            return
        self._build_device = torch.device(device) if device is not None else \
            (self._build_device or self._param_device())
        if self._build_dtype is None and dtype is not None:
            self._build_dtype = dtype
        if isinstance(inputs_shape, int):
            inputs_shape = torch.Size([0, inputs_shape])
        elif isinstance(inputs_shape, (tuple, list)) and not nest.is_nested(inputs_shape[0]) \
                and all(isinstance(d, int) for d in inputs_shape):
            inputs_shape = torch.Size(inputs_shape)
        before = set(self._parameters)
        self.build(inputs_shape)
        self.built = True
        created = [n for n in self._parameters if n not in before]
        if created:  # new Parameter objects: an optimizer made earlier does not hold them
            track_lazy(self, created)

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
                self.build_for(depth, like.dtype if like.is_floating_point() else None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        lazy = [n for n, p in self._parameters.items()
                if isinstance(p, nn.parameter.UninitializedTensorMixin)]
        if lazy:
            raise LazyParameterError(
                f"state_dict(): {type(self).__name__} parameters {lazy} are sized at its first "
                "call and have no value yet: run the model once on example inputs first, "
                "rnnkit.rnn.build(model, *example_inputs), or give the cell input_size=")
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def declare_variables(self, *names: str) -> None:
        """Register parameters now whose shapes :meth:`build` fixes at the first call.

        Call it in ``__init__`` with the names that ``build`` passes to
        :meth:`add_variable`: the parameters exist from the start (unsized) and
        ``add_variable`` fills them in place, so an optimizer made before the first call
        (TF's order) trains them.  Built-in cells do this.  A cell that creates new
        parameters in ``build`` instead is reported by a warning at the first optimizer step
        that misses them.
        """
        for name in names:
            key = name.replace("/", "_")
            self.register_parameter(key, LazyParameter(owner=f"{type(self).__name__}.{key}"))
            self._tf_variable_names[key] = name

    def add_variable(
        self,
        name: str,
        shape: tuple[int, ...] | list[int] | torch.Size,
        initializer: Initializer = None,
        dtype: torch.dtype | None = None,
        trainable: bool = True,
    ) -> nn.Parameter:
        """Create and register a parameter (``tf.get_variable`` inside ``build``).

        ``initializer``: anything :func:`rnnkit.initializers.resolve` accepts (a TF-named
        initializer, a Keras name, a constant, an array of the right shape, a
        ``torch.nn.init``-style function), or ``None`` for TF's default ``glorot_uniform``.
        The parameter is TF's variable ``name`` in the cell's TF layout.
        """
        shape = tuple(int(s) for s in shape)
        dtype = dtype or self._build_dtype or torch.get_default_dtype()
        device = self._build_device or self._param_device()
        key = name.replace("/", "_")
        init = initializers.resolve(f"initializer for variable {name!r}", initializer) \
            or initializers.glorot_uniform_initializer()
        try:
            value = init(shape, dtype)
        except ValueError as e:
            raise ValueError(f"initializer for variable {name!r} (shape {shape}): {e}") from None
        declared = self._parameters.get(key)
        self._tf_variable_names[key] = name
        if isinstance(declared, nn.UninitializedParameter):
            declared.materialize(shape, device=device, dtype=dtype)
            with torch.no_grad():
                declared.copy_(value)
            declared.requires_grad_(trainable)
            return declared  # the same object an optimizer may already hold
        param = nn.Parameter(value.to(device), requires_grad=trainable)
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

    @property
    def dtype(self) -> torch.dtype | None:
        """The dtype of the cell's variables (TF's ``Layer.dtype``): given at construction,
        or taken from the first inputs; ``None`` before either."""
        for p in self.parameters():
            if p.is_floating_point() and not isinstance(p, nn.UninitializedParameter):
                return p.dtype
        return self._build_dtype

    # -- states -----------------------------------------------------------------------------
    def zero_state(
        self,
        batch_size: int,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Any:
        """Zeros shaped like ``state_size``: each leaf ``[batch_size, size]``.  ``dtype``:
        the variables' dtype by default; ``device``: the parameters' device by default."""
        batch_size = _checks.as_count("batch_size", batch_size, minimum=0)
        dtype = _checks.as_dtype("dtype", dtype) or self._param_dtype()
        device = torch.device(device) if device is not None else self._param_device()
        return zeros_for(self.state_size, (batch_size,), dtype, device)

    def assert_state(self, name: str, state: Any, batch_size: int) -> None:
        """Raise ``ValueError`` unless ``state`` matches ``state_size`` with ``batch_size``
        rows; the message names the field (``initial_state[1].c``).  Every state rnnkit's
        cells make passes (a scalar step counter, an alignment history); override it only
        for a state no ``state_size`` can describe."""
        _checks.state(name, self.state_size, state, batch_size)

    def get_initial_state(self, inputs: Any = None, batch_size: Any = None,
                          dtype: torch.dtype | None = None) -> Any:
        """tf.keras's ``get_initial_state``: zeros for ``inputs``' batch and dtype, or for
        ``batch_size`` and ``dtype``; both given must agree (as TF requires)."""
        if inputs is None and batch_size is None:
            raise ValueError("get_initial_state needs inputs or batch_size (and dtype)")
        dtype = _checks.as_dtype("dtype", dtype)
        device = None
        if inputs is not None:
            like = self.dtype_reference(inputs) if nest.is_nested(inputs) else inputs
            like = _checks.as_inputs("inputs", like)
            rows = like.shape[0]
            if batch_size is not None and _checks.as_int("batch_size", batch_size) != rows:
                raise ValueError(f"get_initial_state: batch_size is {batch_size} but inputs "
                                 f"have {rows} rows")
            if dtype is not None and like.is_floating_point() and dtype != like.dtype:
                raise ValueError(f"get_initial_state: dtype is {dtype} but inputs have dtype "
                                 f"{like.dtype}")
            batch_size = rows
            dtype = dtype or (like.dtype if like.is_floating_point() else None)
            device = like.device
        return initial_state(self, batch_size, dtype, device)

    # -- TF variable layout (rnnkit.compat.layout) --------------------------------------------
    @property
    def tf_name(self) -> str:
        """The TF scope name: ``name=`` if given, else the class's TF default."""
        return self.cell_name or type(self).tf_default_name or _snake_case(type(self).__name__)

    def tf_variables(self, available: Collection[str] = ()) -> dict[str, layout.TFVariable]:
        """This cell's own TF variables (names relative to its scope).  The default: the
        variables created with :meth:`add_variable` (or declared), each stored as TF stores
        it."""
        out = {}
        for key, tf_name in self._tf_variable_names.items():
            if key in self._parameters:
                out[tf_name] = layout.param(functools.partial(getattr, self, key), tf_name)
        return out

    def tf_children(self) -> list[tuple[str, nn.Module]]:
        """The modules below this cell in TF's scope tree, with their relative scopes.  The
        default: direct submodules that describe a TF layout, under their ``tf_name``."""
        return [(m.tf_name, m) for m in _layout_children(self)]

    # -- search hooks ---------------------------------------------------------------------------
    def reorder_state(self, state: Any, indices: torch.Tensor) -> Any:
        """The state with its rows picked by ``indices [new_rows]`` (int64 rows of
        ``state``): how beam search tiles a state for its hypotheses and follows them
        (fairseq's ``reorder_incremental_state``).  The default gathers every tensor leaf
        with a batch dimension; a scalar step counter and per-step histories are kept."""
        return reorder_rows(state, indices)

    @contextlib.contextmanager
    def tiled_for_beams(self, batch_size: int, multiplier: int) -> Iterator[None]:
        """Within the block, memory bound for ``batch_size`` rows (attention) serves
        ``batch_size * multiplier`` rows, each entry's rows consecutive (:func:`tile_batch`'s
        order).  The default enters the hook of each submodule that has one (attention
        mechanisms, inner cells)."""
        with contextlib.ExitStack() as stack:
            for m in _hook_children(self, "tiled_for_beams"):
                stack.enter_context(m.tiled_for_beams(batch_size, multiplier))
            yield

    def attention_probabilities(self, state: Any) -> torch.Tensor | None:
        """``[rows, memory_time]`` attention probabilities in ``state`` (for a coverage
        penalty), or ``None`` when the cell attends nothing.  The default looks through the
        state for every attention state (TF's rule): their mean when there are several."""
        found = [s.attention_probabilities() for s in _attention_states(state)]
        if not found:
            return None
        return found[0] if len(found) == 1 else torch.stack(found).mean(0)

    def extra_repr(self) -> str:
        return f"state_size={self.state_size!r}, output_size={self.output_size!r}"


def reorder_rows(state: Any, indices: torch.Tensor) -> Any:
    """Gather the rows ``indices`` of every tensor leaf of ``state`` that has a batch
    dimension (``[rows, ...]``); scalars and non-tensor leaves pass through."""
    def pick(x: Any) -> Any:
        if not isinstance(x, torch.Tensor) or x.dim() == 0:
            return x
        return x.index_select(0, indices.to(x.device))

    return nest.map_structure(pick, state)


def _attention_states(state: Any) -> list:
    """Every state node that carries attention probabilities (``AttentionWrapperState``),
    depth first."""
    if callable(getattr(state, "attention_probabilities", None)) and hasattr(state, "_fields"):
        return [state]
    if isinstance(state, dict):
        return [s for v in state.values() for s in _attention_states(v)]
    if isinstance(state, (tuple, list)):
        return [s for v in state for s in _attention_states(v)]
    return []


_CONTAINERS = (nn.ModuleList, nn.ModuleDict, nn.Sequential)


def _hook_children(module: nn.Module, hook: str) -> list[nn.Module]:
    """The nearest submodules (through plain containers) that define ``hook``."""
    out = []
    for child in module.children():
        if callable(getattr(child, hook, None)):
            out.append(child)
        elif isinstance(child, _CONTAINERS):
            out.extend(_hook_children(child, hook))
    return out


def _layout_children(module: nn.Module) -> list[nn.Module]:
    return _hook_children(module, "tf_variables")
