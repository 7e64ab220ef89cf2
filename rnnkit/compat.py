"""Load TF 1.x variables (``tf.train.list_variables`` names) into rnnkit modules.

TF stores recurrent weights as one fused kernel ``[input + state, gates * units]`` with LSTM
gates ordered ``i, j, f, o``; rnnkit stores ``weight_ih [gates*units, input]`` and
``weight_hh [gates*units, state]`` in PyTorch's order ``i, f, g(=j), o``.  The loaders here
convert between the two, build lazily-built cells from the kernel shapes, and raise on a name
they cannot place or on a parameter left unset.

Scopes: a module's variables live under its TF name (``basic_lstm_cell``,
``multi_rnn_cell/cell_0/...``; a cell built with ``name=`` uses that name).  Pass
``scope`` to strip a prefix first (``"rnn/"`` for ``tf.nn.dynamic_rnn``,
``"bidirectional_rnn/fw/"``...), or pass a dict ``{full_scope: module}`` to load a model
made of several modules (e.g. ``{"rnn/multi_rnn_cell": cell, "output_projection": dense}``).
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "list_tf_variables",
    "load_tf_checkpoint",
    "load_tf_variables",
    "read_tf_checkpoint",
    "register_tf_mapping",
    "tf_name",
    "tf_variable_names",
]

Loader = Callable[[np.ndarray], list[nn.Parameter]]
Mapper = Callable[[nn.Module, str], dict[str, Loader]]
_MAPPERS: dict[type, Mapper] = {}
# the variable names being loaded: mappers whose module has several TF layouts (TF 1.x,
# Keras, contrib) pick the one these names use
_AVAILABLE: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "rnnkit_tf_names", default=frozenset())


def _uses(*names: str) -> bool:
    """Do the variables being loaded include all of ``names``?"""
    available = _AVAILABLE.get()
    return all(n in available for n in names)


def _one_layout(scope: str, layouts: dict[str, list[str]]) -> str | None:
    """The layout whose marker names are present; several present is an error."""
    found = [name for name, markers in layouts.items() if _uses(*markers)]
    if len(found) > 1:
        raise ValueError(f"{scope}: the variables match several layouts "
                         f"({', '.join(found)}): " + "; ".join(
                             f"{n}: {layouts[n]}" for n in found))
    return found[0] if found else None
_DEFAULT_NAMES: dict[type, str] = {}


def register_tf_mapping(cls: type, default_name: str | None = None) -> Callable[[Mapper], Mapper]:
    """Decorator registering ``fn(module, scope) -> {tf_name: loader}`` for ``cls``."""

    def deco(fn: Mapper) -> Mapper:
        _MAPPERS[cls] = fn
        if default_name is not None:
            _DEFAULT_NAMES[cls] = default_name
        return fn

    return deco


def tf_name(module: nn.Module) -> str:
    """The TF scope name of ``module`` (its ``name=`` or TF's default for the class)."""
    own = getattr(module, "cell_name", None) or getattr(module, "tf_scope_name", None)
    if own:
        return own
    for cls in type(module).__mro__:
        if cls in _DEFAULT_NAMES:
            return _DEFAULT_NAMES[cls]
    raise TypeError(f"no TF name known for {type(module).__name__}; pass a dict of scopes")


def _mapper(module: nn.Module) -> Mapper:
    for cls in type(module).__mro__:
        if cls in _MAPPERS:
            return _MAPPERS[cls]
    raise TypeError(f"load_tf_variables does not know how to load {type(module).__name__}")


def collect(module: nn.Module, scope: str) -> dict[str, Loader]:
    """Loaders for ``module`` whose own TF scope is ``scope``."""
    return _mapper(module)(module, scope)


def _assign(param: nn.Parameter, value: np.ndarray | torch.Tensor, what: str) -> nn.Parameter:
    value = torch.as_tensor(np.asarray(value))
    if tuple(value.shape) != tuple(param.shape):
        raise ValueError(
            f"{what}: expected shape {tuple(param.shape)}, received {tuple(value.shape)}"
        )
    with torch.no_grad():
        param.copy_(value.to(dtype=param.dtype, device=param.device))
    return param


def _ensure_built(cell, input_depth: int, name: str) -> None:
    if cell.built:
        if cell._input_size != input_depth:
            raise ValueError(
                f"{name}: kernel implies input depth {input_depth}, but the cell was built for "
                f"{cell._input_size}"
            )
        return
    if input_depth <= 0:
        raise ValueError(f"{name}: kernel rows leave no room for inputs (depth {input_depth})")
    cell.maybe_build(torch.zeros(1, input_depth))


def _gate_perm(units: int) -> np.ndarray:
    """TF column order i, j, f, o -> PyTorch i, f, g, o."""
    i, j, f, o = (np.arange(units) + k * units for k in range(4))
    return np.concatenate([i, f, j, o])


def _fused_kernel_loader(cell, name: str, state_rows: int, cols: int, perm: np.ndarray | None,
                         w_ih: str, w_hh: str) -> Loader:
    """TF's ``[input + state_rows, cols]`` kernel -> ``w_ih``, ``w_hh`` (columns permuted)."""

    def load(k: np.ndarray):
        k = np.asarray(k)
        if k.ndim != 2:
            raise ValueError(f"{name}: expected a 2-D kernel, received shape {k.shape}")
        if k.shape[1] != cols:
            raise ValueError(f"{name}: expected a kernel [input + {state_rows}, {cols}], "
                             f"received shape {k.shape}")
        _ensure_built(cell, k.shape[0] - state_rows, name)
        if perm is not None:
            k = k[:, perm]
        depth = k.shape[0] - state_rows
        return [
            _assign(getattr(cell, w_ih), k[:depth].T, f"{name} (input part)"),
            _assign(getattr(cell, w_hh), k[depth:].T, f"{name} (state part)"),
        ]

    return load


def _param_loader(cell, attr: str, name: str, transform=None) -> Loader:
    def load(v: np.ndarray):
        v = np.asarray(v)
        return [_assign(getattr(cell, attr), transform(v) if transform else v, name)]

    return load


def _input_kernel_loader(cell, name: str, cols: int, perm: np.ndarray | None) -> Loader:
    """Keras ``kernel [input, cols]`` -> ``weight_ih`` (columns permuted); builds the cell."""

    def load(k: np.ndarray):
        k = np.asarray(k)
        if k.ndim != 2 or k.shape[1] != cols:
            raise ValueError(f"{name}: expected a kernel [input, {cols}], received shape "
                             f"{k.shape}")
        _ensure_built(cell, k.shape[0], name)
        return [_assign(cell.weight_ih, (k if perm is None else k[:, perm]).T, name)]

    return load


def _keras_lstm(cell, scope: str) -> dict[str, Loader]:
    """Keras ``LSTMCell``: kernel ``[I, 4H]``, recurrent_kernel ``[H, 4H]``, bias ``[4H]``,
    gates i, f, c, o (PyTorch's order) and no forget-bias offset: the cell's ``forget_bias``
    is subtracted from the loaded bias, so the step computes exactly Keras's."""
    h = cell._num_units

    def bias(b):
        b = np.asarray(b)
        if b.shape != (4 * h,):
            raise ValueError(f"{scope}/bias: expected shape ({4 * h},), received {b.shape}")
        return [_assign(cell.bias, b - cell.forget_offset().cpu().numpy(), f"{scope}/bias")]

    return {f"{scope}/kernel": _input_kernel_loader(cell, f"{scope}/kernel", 4 * h, None),
            f"{scope}/recurrent_kernel": _param_loader(
                cell, "weight_hh", f"{scope}/recurrent_kernel", lambda k: k.T),
            f"{scope}/bias": bias}


def _keras_gru_before(cell, scope: str) -> dict[str, Loader]:
    """Keras ``GRUCell(reset_after=False)`` (gates z, r, h) into TF 1.x's formula (the same
    mathematics): gates ``[r, u=z]``, candidate ``h``."""
    h = cell._num_units

    def split(a):
        z, r, c = a[..., :h], a[..., h:2 * h], a[..., 2 * h:]
        return np.concatenate([r, z], -1), c

    def kernel(k):
        k = np.asarray(k)
        if k.ndim != 2 or k.shape[1] != 3 * h:
            raise ValueError(f"{scope}/kernel: expected [input, {3 * h}], received {k.shape}")
        _ensure_built(cell, k.shape[0], f"{scope}/kernel")
        g, c = split(k)
        return [_assign(cell.gate_weight_ih, g.T, f"{scope}/kernel"),
                _assign(cell.cand_weight_ih, c.T, f"{scope}/kernel")]

    def recurrent(k):
        g, c = split(np.asarray(k))
        return [_assign(cell.gate_weight_hh, g.T, f"{scope}/recurrent_kernel"),
                _assign(cell.cand_weight_hh, c.T, f"{scope}/recurrent_kernel")]

    def bias(b):
        b = np.asarray(b)
        if b.shape != (3 * h,):
            raise ValueError(f"{scope}/bias: expected shape ({3 * h},) (reset_after=False), "
                             f"received {b.shape}")
        g, c = split(b)
        return [_assign(cell.gate_bias, g, f"{scope}/bias"),
                _assign(cell.cand_bias, c, f"{scope}/bias")]

    return {f"{scope}/kernel": kernel, f"{scope}/recurrent_kernel": recurrent,
            f"{scope}/bias": bias}


def _permuted_loader(cell, attr: str, name: str, perm: np.ndarray) -> Loader:
    """A 1-D vector stored in TF's gate order, reordered by ``perm``."""

    def load(v: np.ndarray):
        v = np.asarray(v)
        if v.shape != perm.shape:
            raise ValueError(f"{name}: expected shape {perm.shape}, received {v.shape}")
        return [_assign(getattr(cell, attr), v[perm], name)]

    return load


def _register_builtin() -> None:
    from rnnkit.rnn import cells as C
    from rnnkit.rnn import wrappers as W

    @register_tf_mapping(C.BasicRNNCell, "basic_rnn_cell")
    def _rnn(cell, scope):
        h = cell._num_units
        if _uses(f"{scope}/recurrent_kernel"):  # Keras SimpleRNNCell
            return {f"{scope}/kernel": _input_kernel_loader(cell, f"{scope}/kernel", h, None),
                    f"{scope}/recurrent_kernel": _param_loader(
                        cell, "weight_hh", f"{scope}/recurrent_kernel", lambda k: k.T),
                    f"{scope}/bias": _param_loader(cell, "bias", f"{scope}/bias")}
        return {
            f"{scope}/kernel": _fused_kernel_loader(cell, f"{scope}/kernel", h, h, None,
                                                    "weight_ih", "weight_hh"),
            f"{scope}/bias": _param_loader(cell, "bias", f"{scope}/bias"),
        }

    @register_tf_mapping(C.BasicLSTMCell, "basic_lstm_cell")
    def _lstm(cell, scope):
        h = cell._num_units
        perm = _gate_perm(h)
        if _uses(f"{scope}/recurrent_kernel"):
            return _keras_lstm(cell, scope)
        return {
            f"{scope}/kernel": _fused_kernel_loader(cell, f"{scope}/kernel", h, 4 * h, perm,
                                                    "weight_ih", "weight_hh"),
            f"{scope}/bias": _permuted_loader(cell, "bias", f"{scope}/bias", perm),
        }

    @register_tf_mapping(C.LSTMCell, "lstm_cell")
    def _full_lstm(cell, scope):
        h = cell._num_units
        perm = _gate_perm(h)
        if _uses(f"{scope}/recurrent_kernel"):  # Keras LSTMCell: same scope name, own layout
            if cell._use_peepholes or cell._num_proj is not None:
                raise ValueError(f"{scope}: a Keras LSTMCell has no peepholes or projection; "
                                 "load it into LSTMCell(use_peepholes=False, num_proj=None)")
            return _keras_lstm(cell, scope)
        out = {
            f"{scope}/kernel": _fused_kernel_loader(cell, f"{scope}/kernel",
                                                    cell._recurrent_size, 4 * h, perm,
                                                    "weight_ih", "weight_hh"),
            f"{scope}/bias": _permuted_loader(cell, "bias", f"{scope}/bias", perm),
        }
        if cell._use_peepholes:
            for d in ("w_f_diag", "w_i_diag", "w_o_diag"):
                out[f"{scope}/{d}"] = _param_loader(cell, d, f"{scope}/{d}")
        if cell._num_proj is not None:
            out[f"{scope}/projection/kernel"] = _param_loader(
                cell, "weight_proj", f"{scope}/projection/kernel", lambda k: k.T)
        return out

    @register_tf_mapping(C.GRUCell, "gru_cell")
    def _gru(cell, scope):
        h = cell._num_units
        layout = _one_layout(scope, {"TF 1.x GRUCell": [f"{scope}/gates/kernel"],
                                     "Keras GRUCell": [f"{scope}/recurrent_kernel"],
                                     "TF 1.x GRUBlockCell": [f"{scope}/w_ru"]})
        if layout == "Keras GRUCell" and not cell.reset_after:
            return _keras_gru_before(cell, scope)
        if layout in ("TF 1.x GRUCell", "TF 1.x GRUBlockCell") and cell.reset_after:
            raise ValueError(f"{scope}: {layout} variables need GRUCell(reset_after=False)")
        if cell.reset_after:
            # Keras GRUCell(reset_after=True): kernel [I, 3H], recurrent_kernel [H, 3H],
            # bias [2, 3H]; gate order z, r, h -> nn.GRU's r, z, n.
            perm = np.concatenate([np.arange(h, 2 * h), np.arange(h), np.arange(2 * h, 3 * h)])

            def kernel(k):
                k = np.asarray(k)
                _ensure_built(cell, k.shape[0], f"{scope}/kernel")
                return [_assign(cell.weight_ih, k[:, perm].T, f"{scope}/kernel")]

            def bias(b):
                b = np.asarray(b)
                if b.shape != (2, 3 * h):
                    raise ValueError(f"{scope}/bias: expected shape (2, {3 * h}), received "
                                     f"{b.shape}")
                return [_assign(cell.bias, b[0, perm], f"{scope}/bias[0]"),
                        _assign(cell.bias_hh, b[1, perm], f"{scope}/bias[1]")]

            return {
                f"{scope}/kernel": kernel,
                f"{scope}/recurrent_kernel": _param_loader(
                    cell, "weight_hh", f"{scope}/recurrent_kernel", lambda k: k[:, perm].T),
                f"{scope}/bias": bias,
            }
        # TF 1.x GRUCell and GRUBlockCellV2 name them gates/kernel ...; GRUBlockCell w_ru ...
        names = (("w_ru", "b_ru", "w_c", "b_c") if layout == "TF 1.x GRUBlockCell" else
                 ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"))
        gates_k, gates_b, cand_k, cand_b = (f"{scope}/{n}" for n in names)
        return {
            gates_k: _fused_kernel_loader(cell, gates_k, h, 2 * h, None, "gate_weight_ih",
                                          "gate_weight_hh"),
            gates_b: _param_loader(cell, "gate_bias", gates_b),
            cand_k: _fused_kernel_loader(cell, cand_k, h, h, None, "cand_weight_ih",
                                         "cand_weight_hh"),
            cand_b: _param_loader(cell, "cand_bias", cand_b),
        }

    @register_tf_mapping(C.LayerNormBasicLSTMCell, "layer_norm_basic_lstm_cell")
    def _ln_lstm(cell, scope):
        h = cell._num_units
        perm = _gate_perm(h)
        out = {f"{scope}/kernel": _fused_kernel_loader(cell, f"{scope}/kernel", h, 4 * h, perm,
                                                       "weight_ih", "weight_hh")}
        if not cell._layer_norm:
            out[f"{scope}/bias"] = _permuted_loader(cell, "bias", f"{scope}/bias", perm)
            return out
        for row, gate in enumerate(("input", "forget", "transform", "output")):
            for var, attr in (("gamma", "ln_gamma"), ("beta", "ln_beta")):
                out[f"{scope}/{gate}/{var}"] = _row_loader(cell, attr, row, f"{scope}/{gate}/{var}")
        out[f"{scope}/state/gamma"] = _param_loader(cell, "state_gamma", f"{scope}/state/gamma")
        out[f"{scope}/state/beta"] = _param_loader(cell, "state_beta", f"{scope}/state/beta")
        return out

    @register_tf_mapping(W.MultiRNNCell, "multi_rnn_cell")
    def _multi(cell, scope):
        out: dict[str, Loader] = {}
        for i, c in enumerate(cell.cells):
            out.update(collect(c, f"{scope}/cell_{i}/{tf_name(c)}"))
        return out

    def _transparent(wrapper, scope):
        # DropoutWrapper / ResidualWrapper create no variables; the wrapped cell keeps the
        # wrapper's place in the scope path.
        inner = wrapper.cell
        parent = scope.rsplit("/", 1)[0] if "/" in scope else ""
        return collect(inner, f"{parent}/{tf_name(inner)}" if parent else tf_name(inner))

    register_tf_mapping(W.DropoutWrapper, "dropout_wrapper")(_transparent)
    register_tf_mapping(W.ResidualWrapper, "residual_wrapper")(_transparent)

    def _projection(attr_size: str):
        def mapper(wrapper, scope):
            out = {}
            if wrapper.projection is None:  # lazy InputProjectionWrapper
                def kernel(k, wrapper=wrapper):
                    k = np.asarray(k)
                    wrapper.maybe_build(torch.zeros(1, k.shape[0]))
                    return [_assign(wrapper.projection.weight, k.T, f"{scope}/kernel")]
            else:
                kernel = _param_loader(wrapper.projection, "weight", f"{scope}/kernel",
                                       lambda k: k.T)
            out[f"{scope}/kernel"] = kernel
            out[f"{scope}/bias"] = lambda b, w=wrapper: [
                _assign(w.projection.bias, b, f"{scope}/bias")]
            out.update(collect(wrapper.cell, f"{scope}/{tf_name(wrapper.cell)}"))
            return out

        return mapper

    register_tf_mapping(W.OutputProjectionWrapper, "output_projection_wrapper")(
        _projection("output"))
    register_tf_mapping(W.InputProjectionWrapper, "input_projection_wrapper")(
        _projection("input"))

    _register_attention()

    @register_tf_mapping(nn.Linear)
    def _dense(layer, scope):
        # Keras Dense / tf.layers.dense: kernel, bias; tf.contrib.layers.fully_connected
        # (and seed 003's contrib linear): weights, biases
        contrib = _one_layout(scope, {"Dense": [f"{scope}/kernel"],
                                      "contrib fully_connected": [f"{scope}/weights"]})
        w, b = ("weights", "biases") if contrib == "contrib fully_connected" else ("kernel",
                                                                                   "bias")
        out = {f"{scope}/{w}": _param_loader(layer, "weight", f"{scope}/{w}", lambda k: k.T)}
        if layer.bias is not None:
            out[f"{scope}/{b}"] = _param_loader(layer, "bias", f"{scope}/{b}")
        return out

    @register_tf_mapping(nn.Embedding)
    def _embedding(layer, scope):
        if _uses(f"{scope}/embeddings"):  # Keras Embedding
            return {f"{scope}/embeddings": _param_loader(layer, "weight", f"{scope}/embeddings")}
        return {scope: _param_loader(layer, "weight", scope)}


def _register_attention() -> None:
    from rnnkit.seq2seq import attention as A
    from rnnkit.seq2seq import attention_wrapper as AW

    def mechanism(m, scope):
        out: dict[str, Loader] = {}

        def memory_kernel(k, m=m):
            if m.memory_layer is None:
                raise ValueError(f"{scope}/memory_layer/kernel: the mechanism has no memory "
                                 "layer yet; bind memory first (memory= or setup_memory)")
            params = [_assign(m.memory_layer.weight, np.asarray(k).T,
                              f"{scope}/memory_layer/kernel")]
            m.refresh_keys()
            return params

        def query_kernel(k, m=m):
            k = np.asarray(k)
            m.build_query_layer(k.shape[0])
            return [_assign(m.query_layer.weight, k.T, f"{scope}/query_layer/kernel")]

        if m._use_memory_layer:
            out[f"{scope}/memory_layer/kernel"] = memory_kernel
        if isinstance(m, A.BahdanauAttention):
            out[f"{scope}/query_layer/kernel"] = query_kernel
        for name in ("attention_v", "attention_g", "attention_b", "attention_score_bias"):
            if isinstance(getattr(m, name, None), nn.Parameter):
                out[f"{scope}/{name}"] = _param_loader(m, name, f"{scope}/{name}")
        return out

    for cls, name in ((A.BahdanauAttention, "bahdanau_attention"),
                      (A.LuongAttention, "luong_attention"),
                      (A.BahdanauMonotonicAttention, "bahdanau_monotonic_attention"),
                      (A.LuongMonotonicAttention, "luong_monotonic_attention")):
        register_tf_mapping(cls, name)(mechanism)
    register_tf_mapping(A.AttentionMechanism, "attention_mechanism")(mechanism)

    @register_tf_mapping(AW.AttentionWrapper, "attention_wrapper")
    def _wrapper(w, scope):
        out = collect(w.cell, f"{scope}/{tf_name(w.cell)}")
        counts: dict[str, int] = {}
        for m in w.attention_mechanisms:
            base = tf_name(m)
            k = counts.get(base, 0)
            counts[base] = k + 1
            out.update(collect(m, f"{scope}/{base}" + (f"_{k}" if k else "")))
        if w.attention_layers is not None:
            for i, layer in enumerate(w.attention_layers):
                out.update(collect(layer, f"{scope}/attention_layer" + (f"_{i}" if i else "")))
        return out


def _row_loader(cell, attr: str, row: int, name: str) -> Loader:
    def load(v):
        param = getattr(cell, attr)
        v = torch.as_tensor(np.asarray(v))
        if tuple(v.shape) != tuple(param.shape[1:]):
            raise ValueError(f"{name}: expected shape {tuple(param.shape[1:])}, received "
                             f"{tuple(v.shape)}")
        with torch.no_grad():
            param[row].copy_(v.to(param.dtype))
        return [param]

    return load


def _normalise(name: str) -> str:
    name = name[:-2] if name.endswith(":0") else name
    # tf.train.Checkpoint (object-based) names: "layer/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    return name.removesuffix("/.ATTRIBUTES/VARIABLE_VALUE")


def tf_variable_names(module: nn.Module | Mapping[str, nn.Module]) -> list[str]:
    """The TF variable names that :func:`load_tf_variables` expects for ``module``."""
    return sorted(_loaders(module))


def _loaders(module) -> dict[str, Loader]:
    if isinstance(module, Mapping):
        out: dict[str, Loader] = {}
        for scope, m in module.items():
            out.update(collect(m, scope.strip("/")))
        return out
    return collect(module, tf_name(module))


def load_tf_variables(
    module: nn.Module | Mapping[str, nn.Module],
    variables: Mapping[str, Any],
    scope: str = "",
) -> None:
    """Copy TF 1.x variables into ``module``.

    Args:
        module: an rnnkit cell / wrapper / ``nn.Linear`` / ``nn.Embedding``, or a dict
            ``{tf_scope: module}`` (the scope includes the module's own name).
        variables: ``{name: array}`` as ``tf.train.list_variables`` / ``load_variable`` give
            them (a trailing ``:0`` is ignored).
        scope: prefix removed from every name first (e.g. ``"rnn/"``); names outside it are
            an error.

    Raises:
        ValueError: a name that matches no parameter, a shape mismatch, or a parameter of
            ``module`` that received no value.
    """
    if not isinstance(variables, Mapping):
        raise TypeError("load_tf_variables: variables must be a mapping {name: array}, "
                        f"received {type(variables).__name__}")
    if not isinstance(scope, str):
        raise TypeError(f"load_tf_variables: scope must be a str, received {scope!r}")
    prefix = scope if not scope or scope.endswith("/") else scope + "/"
    stripped = {_normalise(str(n))[len(prefix):] for n in variables
                if _normalise(str(n)).startswith(prefix)}
    token = _AVAILABLE.set(frozenset(stripped))
    try:
        loaders = _loaders(module)
    finally:
        _AVAILABLE.reset(token)
    placed, unknown = [], []
    for raw, value in variables.items():
        name = _normalise(str(raw))
        if prefix and not name.startswith(prefix):
            unknown.append(raw)
            continue
        name = name[len(prefix):]
        if name not in loaders:
            unknown.append(raw)
            continue
        placed.append((name, value))
    if unknown:  # refused before anything is written
        raise ValueError(
            f"load_tf_variables: cannot place {sorted(map(str, unknown))} (after removing "
            f"scope {prefix!r}); expected names: {sorted(loaders)}"
        )
    modules = list(module.values()) if isinstance(module, Mapping) else [module]
    saved = {id(p): (p, p.detach().clone()) for m in modules for p in m.parameters()
             if not isinstance(p, nn.UninitializedParameter)}
    try:
        done: set[int] = set()
        # kernels first: their shapes build lazily-built cells (TF lists "bias" first)
        for name, value in sorted(placed, key=lambda nv: not nv[0].endswith("kernel")):
            for p in loaders[name](value):
                done.add(id(p))
        missing = [n for m in modules for n, p in m.named_parameters()
                   if id(p) not in done and not isinstance(p, nn.UninitializedParameter)]
        if missing:
            raise ValueError(f"load_tf_variables: no value for parameters {missing}")
    except BaseException:
        with torch.no_grad():  # all or nothing: put back what was there
            for p, old in saved.values():
                if p.shape == old.shape:
                    p.copy_(old)
        raise


#: Variables that optimizers and savers add beside the model's own (skipped by
#: :func:`load_tf_checkpoint` unless ``include_optimizer=True``).
_OPTIMIZER_NAME = re.compile(
    r"(^|/)(beta[12]_power|global_step|save_counter|_CHECKPOINTABLE_OBJECT_GRAPH)$"
    r"|/(Adam|Adam_1|Momentum|RMSProp|RMSProp_1|Adagrad|Adadelta|Adadelta_1|Ftrl|Ftrl_1"
    r"|ExponentialMovingAverage)$|(^|/)optimizer/|\.OPTIMIZER_SLOT/")


def list_tf_variables(ckpt) -> list[tuple[str, list[int]]]:
    """``[(name, shape), ...]`` of a TF checkpoint, as ``tf.train.list_variables`` prints
    them; no TensorFlow needed.  ``ckpt``: a prefix (``.../char-rnn_3``) or a directory with
    TF's ``checkpoint`` file."""
    from rnnkit import tf_bundle

    return tf_bundle.list_variables(ckpt)


def read_tf_checkpoint(ckpt) -> dict[str, np.ndarray]:
    """``{name: array}`` of every numeric variable of a TF checkpoint (CRC32C-verified)."""
    from rnnkit import tf_bundle

    return tf_bundle.read_variables(ckpt)


def load_tf_checkpoint(module: nn.Module | Mapping[str, nn.Module], ckpt, scope: str = "",
                       include_optimizer: bool = False) -> dict[str, np.ndarray]:
    """:func:`read_tf_checkpoint` then :func:`load_tf_variables` (all or nothing).

    Optimizer slots and bookkeeping (``.../Adam``, ``.../Adam_1``, ``beta1_power``,
    ``global_step``, TF 2's ``optimizer/...`` and ``save_counter``) are skipped unless
    ``include_optimizer``; so are variables outside ``scope``.  Returns what was loaded.
    """
    variables = read_tf_checkpoint(ckpt)
    if not include_optimizer:
        variables = {k: v for k, v in variables.items()
                     if not _OPTIMIZER_NAME.search(_normalise(k))}
    if scope:
        prefix = scope if scope.endswith("/") else scope + "/"
        variables = {k: v for k, v in variables.items() if _normalise(k).startswith(prefix)}
    load_tf_variables(module, variables, scope)
    return variables


_register_builtin()  # the built-in layouts, before any user registration
