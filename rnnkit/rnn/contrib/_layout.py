"""What the contrib cells share: ``_Linear`` (TF's linear map), the base of the cells
stored in TF's own layout (``_TFLayoutCell``) and sharded kernels (``num_unit_shards``)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import torch
from torch import nn

from rnnkit import _checks, initializers
from rnnkit.compat import layout
from rnnkit.rnn.cell import RNNCell
from rnnkit.rnn.cells import (
    _check_input,
)

Layout = dict[str, layout.TFVariable]


# -- _Linear ------------------------------------------------------------------------------------

class _Linear(nn.Module):
    """contrib's ``_Linear``: ``concat(args, 1) @ kernel (+ bias)``.

    Args:
        args: a ``[batch, n]`` tensor or a list of them (their depths fix ``kernel``'s rows),
            or the depths themselves (an int or a list of ints).
        output_size: the columns ``N``.
        build_bias: add ``bias [N]``.
        bias_initializer: default zeros.
        kernel_initializer: default ``glorot_uniform`` (TF's variable default); see
            :mod:`rnnkit.initializers`.

    Shapes: ``linear(args)`` with the same structure as ``args`` -> ``[batch, N]``.
    TF variables (in the scope where TF created it): ``kernel [sum(n), N]``, ``bias [N]``.
    """

    def __init__(self, args: Any, output_size: int, build_bias: bool,
                 bias_initializer: Any = None, kernel_initializer: Any = None, *,
                 dtype: torch.dtype | None = None, name: str | None = None):
        super().__init__()
        if args is None or (isinstance(args, (list, tuple)) and not args):
            raise ValueError("`args` must be specified")
        self._is_sequence = isinstance(args, (list, tuple))
        items = list(args) if self._is_sequence else [args]
        depths, like = [], None
        for i, a in enumerate(items):
            if isinstance(a, torch.Tensor):
                if a.dim() != 2:
                    raise ValueError(f"linear is expecting 2D arguments: args[{i}] has shape "
                                     f"{tuple(a.shape)}")
                depths.append(int(a.shape[1]))
                like = like if like is not None else a
            else:
                depths.append(_checks.as_count(f"args[{i}]", a))
        self._depths = tuple(depths)
        self._output_size = _checks.as_count("output_size", output_size)
        self._build_bias = _checks.as_flag("build_bias", build_bias)
        self._name = name
        if dtype is None:
            dtype = like.dtype if like is not None and like.is_floating_point() \
                else torch.get_default_dtype()
        device = like.device if like is not None else None
        shape = (sum(depths), self._output_size)
        k_init = initializers.resolve("kernel_initializer", kernel_initializer) \
            or initializers.glorot_uniform_initializer()
        self.kernel = nn.Parameter(k_init(shape, dtype).to(device))
        self.bias = None
        if self._build_bias:
            b_init = initializers.resolve("bias_initializer", bias_initializer) \
                or initializers.zeros_initializer()
            self.bias = nn.Parameter(b_init((self._output_size,), dtype).to(device))

    def forward(self, args: Any) -> torch.Tensor:
        """``concat(args, 1) @ kernel + bias``: ``[batch, sum(n)] -> [batch, N]``."""
        items = list(args) if self._is_sequence else [args]
        if len(items) != len(self._depths):
            raise ValueError(f"_Linear was made for {len(self._depths)} args, received "
                             f"{len(items)}")
        for i, (a, d) in enumerate(zip(items, self._depths, strict=True)):
            _checks.tensor(f"args[{i}]", a)
            if a.dim() != 2 or a.shape[1] != d:
                raise ValueError(f"args[{i}] must have shape [batch, {d}], received "
                                 f"{tuple(a.shape)}")
        x = items[0] if len(items) == 1 else torch.cat(items, 1)
        res = x @ self.kernel
        return res + self.bias if self.bias is not None else res

    @property
    def tf_name(self) -> str:
        """No scope of its own (TF creates the variables in the caller's scope) unless
        ``name=`` is given."""
        return self._name or ""

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        """``kernel [sum(n), N]`` and ``bias [N]``, stored as TF stores them."""
        out = {"kernel": layout.param(lambda: self.kernel, "kernel")}
        if self.bias is not None:
            out["bias"] = layout.param(lambda: self.bias, "bias")
        return out

    def tf_children(self) -> list:
        """None: a leaf of the scope tree."""
        return []


# -- cells stored in TF's layout ----------------------------------------------------------------

class _TFLayoutCell(RNNCell):
    """A cell whose variables are TF's own (``add_variable`` in :meth:`_shapes` order), each
    initialised as TF initialises it.  TF variables loaded into the unbuilt cell size it
    from the first whose shape depends on the input depth."""

    def __init__(self, num_units: int, name, dtype, input_size, **kwargs):
        super().__init__(name=name, dtype=_checks.as_float_dtype("dtype", dtype), **kwargs)
        self._num_units = _checks.as_count("num_units", num_units)
        self._input_size: int | None = None
        self.declare_variables(*self._shapes(1))
        if input_size is not None:
            self.build_for(_checks.as_count("input_size", input_size), dtype,
                           torch.device("cpu"))

    def _shapes(self, input_depth: int) -> dict[str, tuple[int, ...]]:
        """TF variable name -> shape, for inputs of ``input_depth``."""
        raise NotImplementedError

    def _initializer(self, name: str) -> Any:
        """TF's initializer of variable ``name`` (``None``: glorot-uniform)."""
        return None

    def build(self, inputs_shape):
        self._input_size = _checks.matrix_depth(type(self).__name__, inputs_shape)
        for name, shape in self._shapes(self._input_size).items():
            self.add_variable(name, shape, initializer=self._initializer(name))

    def input_depth_from(self, params):
        kernel = params.get("kernel")
        return int(kernel.shape[0]) if kernel is not None and kernel.dim() == 2 else None

    def call(self, inputs, state):
        _check_input(self, inputs)
        return self.call_projected(self.project_inputs(inputs), state)

    @property
    def output_size(self) -> int:
        return self._num_units

    def _depth_from(self, name: str, shape: tuple[int, ...]) -> int | None:
        """The input depth for which :meth:`_shapes` gives variable ``name`` the TF
        ``shape`` (``None``: its shape does not depend on the depth); a shape that fits no
        depth is refused by name."""
        try:
            one, two = self._shapes(1).get(name), self._shapes(2).get(name)
        except ValueError:  # a depth of 1 or 2 does not suit the cell (GLSTMCell's groups)
            return None
        if one is None or one == two:
            return None
        axis = next(i for i, (a, b) in enumerate(zip(one, two, strict=True)) if a != b)
        depth, rest = divmod(shape[axis] - one[axis], two[axis] - one[axis]) \
            if len(shape) == len(one) else (0, 1)
        depth += 1
        expected = self._shapes(depth).get(name) if depth >= 1 and not rest else None
        if expected != tuple(shape):
            raise ValueError(f"{self.tf_name}/{name}: the shape {tuple(shape)} fits no input "
                             f"depth (shape at depth I: {one} with I = 1)")
        return depth

    def _sized_on_write(self, name: str, var: layout.TFVariable) -> layout.TFVariable:
        """Unbuilt: writing a variable whose shape tells the input depth builds the cell
        first (TF's order: construct, restore, run)."""
        try:
            if self._depth_from(name, self._shapes(1)[name]) is None:
                return var
        except (KeyError, ValueError):
            return var

        def write(value: Any) -> list[torch.Tensor]:
            v = layout.as_value(value)
            if not self.built:
                self.build_for(self._depth_from(name, tuple(v.shape)), self._build_dtype)
            return super(_TFLayoutCell, self).tf_variables()[name].write(v)

        return var._replace(write=write, builds=True)

    def tf_variables(self, available: Collection[str] = ()) -> Layout:
        out = super().tf_variables(available)
        if not self.built:
            out = {n: self._sized_on_write(n, v) for n, v in out.items()}
        return {n: v._replace(initializer=initializers.resolve(
            n, self._initializer(n) if self._initializer(n) is not None else "glorot_uniform"))
            for n, v in out.items()}


# -- sharded kernels (num_unit_shards) ---------------------------------------------------------

def _shard_rows(rows: int, shards: int, what: str) -> list[int]:
    """TF's ``_get_sharded_variable`` split of ``rows`` rows into ``shards`` pieces (the
    first ``rows % shards`` one row larger)."""
    if shards > rows:
        raise ValueError(f"Too many shards for {what}: {rows} rows, num_shards={shards}")
    unit, extra = divmod(rows, shards)
    return [unit + (1 if i < extra else 0) for i in range(shards)]


def _sharded(get, name: str, shards: int, initializer: Any) -> Layout:
    """The parameter ``get()`` as TF's sharded variables ``name_0 ... name_{n-1}`` (row
    blocks; ``name_0`` alone when ``shards == 1``, as TF names it)."""
    p = get()
    if not layout._built(p):
        return {f"{name}_{i}": layout.TFVariable(None, None, _unbuilt(f"{name}_{i}"),
                                                 initializers.resolve(name, initializer))
                for i in range(shards)}
    sizes = _shard_rows(int(p.shape[0]), shards, name)
    out, start = {}, 0
    for i, n in enumerate(sizes):
        def read(a=start, b=start + n):
            return get()[a:b].detach()

        def write(value, a=start, b=start + n, what=f"{name}_{i}"):
            return [layout.assign(get()[a:b], value, what)]

        out[f"{name}_{i}"] = layout.TFVariable((n, *p.shape[1:]), read, write,
                                               initializers.resolve(name, initializer))
        start += n
    return out


def _unbuilt(what: str):
    def write(value):
        raise ValueError(f"{what}: the cell is not built yet (call it once, or give "
                         "input_size=)")
    return write
