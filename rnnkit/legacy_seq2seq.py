"""``tf.contrib.legacy_seq2seq``: TF 1.x's list-of-steps sequence-to-sequence functions.

Inputs are Python lists with one tensor per step, as in TF: ``[batch, depth]`` floats for
the plain decoders, ``[batch]`` integer ids for the embedding models.  Outputs are lists of
``[batch, output_size]`` tensors and the final state.

**Variables.**  TF's functions create variables (embeddings, attention weights, output
projections, the encoder's copy of the cell) in variable scopes and share them by name.
rnnkit keeps them in a :class:`VariableStore`, an ``nn.Module`` that plays TF's graph: the
first call creates a module at each scope, later calls at the same scope reuse it (TF's
``reuse``; a cell given anew at a scope where one already ran is a template, as in TF, and
the stored one runs).  So a training loop calls the model function every step::

    store = legacy_seq2seq.VariableStore()
    with store:
        outputs, state = legacy_seq2seq.embedding_attention_seq2seq(enc, dec, cell, 10, 10, 16)
    optimizer = torch.optim.Adam(store.parameters())   # after the first call, as in TF
    for batch in data:
        with store:
            outputs, _ = legacy_seq2seq.embedding_attention_seq2seq(...)   # same variables

Without ``with store:`` the module-wide default store is used
(:func:`default_variable_store`, TF's default graph).  :func:`variable_scope` opens a
scope inside the current store (TF's ``tf.variable_scope``).  TF variable names: the store
lists each module at its TF scope, so ``compat.load_tf_variables({"": store}, variables)``
loads a TF 1.x checkpoint of the same model (``compat.tf_variable_names({"": store})`` lists
them).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit import _checks, initializers, nest
from rnnkit.compat import layout
from rnnkit.rnn.cell import RNNCell, require_cell, start_sequence
from rnnkit.rnn.contrib import EmbeddingWrapper
from rnnkit.rnn.driver import static_rnn
from rnnkit.rnn.wrappers import OutputProjectionWrapper

__all__ = [
    "VariableStore",
    "attention_decoder",
    "basic_rnn_seq2seq",
    "default_variable_store",
    "embedding_attention_decoder",
    "embedding_attention_seq2seq",
    "embedding_rnn_decoder",
    "embedding_rnn_seq2seq",
    "embedding_tied_rnn_seq2seq",
    "model_with_buckets",
    "one2many_rnn_seq2seq",
    "rnn_decoder",
    "sequence_loss",
    "sequence_loss_by_example",
    "tied_rnn_seq2seq",
    "variable_scope",
]


# -- the variable store ---------------------------------------------------------------------

class Variables(nn.Module):
    """Variables a function creates directly in one scope (``embedding``, ``AttnW_0``,
    ``kernel``, ...), stored in TF's shapes.

    Args:
        specs: ``{TF name: (shape, initializer)}`` (initializer as
            :func:`rnnkit.initializers.resolve` takes it; ``None``: glorot-uniform, TF's
            default for ``get_variable``).
        dtype, device: of the parameters.
    """

    def __init__(self, specs: Mapping[str, tuple[tuple[int, ...], Any]],
                 dtype: torch.dtype | None = None, device: torch.device | None = None):
        super().__init__()
        dtype = dtype or torch.get_default_dtype()
        self._names: dict[str, str] = {}
        self._inits: dict[str, Any] = {}
        for name, (shape, init) in specs.items():
            fn = initializers.resolve(f"initializer for {name!r}", init) \
                or initializers.glorot_uniform_initializer()
            key = name.replace("/", "__")
            self.register_parameter(key, nn.Parameter(fn(tuple(shape), dtype).to(device)))
            self._names[name] = key
            self._inits[name] = fn

    def __getitem__(self, name: str) -> nn.Parameter:
        """The parameter TF names ``name``."""
        return getattr(self, self._names[name])

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """``{TF name: shape}``."""
        return {n: tuple(self[n].shape) for n in self._names}

    def tf_variables(self, available: Collection[str] = ()) -> dict[str, layout.TFVariable]:
        """Each variable under its TF name, stored as TF stores it."""
        return {n: layout.param(lambda k=k: getattr(self, k), n, initializer=self._inits[n])
                for n, k in self._names.items()}

    def tf_children(self) -> list:
        """None."""
        return []


class VariableStore(nn.Module):
    """TF's variable scopes for :mod:`rnnkit.legacy_seq2seq`: the modules its functions
    create or run, each at its TF scope; ``parameters()`` holds every variable of a model.

    Use it as a context (``with store:``); the functions called inside create their
    variables in it at the first call and reuse them afterwards.  ``store.tf_children()``
    lists ``(scope, module)``: ``compat.load_tf_variables({"": store}, variables)`` loads a
    TF checkpoint of the model.
    """

    def __init__(self):
        super().__init__()
        self.scopes = nn.ModuleDict()
        self._path: list[str] = []

    def __enter__(self) -> VariableStore:
        _STORES.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _STORES.remove(self)

    @property
    def scope_name(self) -> str:
        """The current scope (``"root/embedding_rnn_seq2seq"``)."""
        return "/".join(self._path)

    @contextlib.contextmanager
    def scope(self, name: str) -> Iterator[str]:
        """Open the scope ``name`` below the current one (``tf.variable_scope(name)``)."""
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"scope must be a non-empty name without '.', received {name!r}")
        self._path.extend(name.strip("/").split("/"))
        try:
            yield self.scope_name
        finally:
            del self._path[-len(name.strip("/").split("/")):]

    def module(self, name: str, make: Callable[[], nn.Module]) -> nn.Module:
        """The module at ``<current scope>/<name>``: the stored one, or ``make()`` stored
        there at the first call."""
        path = f"{self.scope_name}/{name}" if self._path else name
        if path not in self.scopes:
            self.scopes[path] = make()
        return self.scopes[path]

    def cell(self, cell: RNNCell) -> RNNCell:
        """The cell that runs in the current scope: ``cell`` the first time, afterwards the
        one stored there (TF's reuse: variables are found by name; a new cell object is a
        template).  A cell of another kind or size there is refused, as TF refuses a
        variable of another shape."""
        require_cell("cell", cell)
        stored = self.module(cell.tf_name, lambda: cell)
        if stored is not cell and (type(stored) is not type(cell)
                                   or stored.state_size != cell.state_size
                                   or stored.output_size != cell.output_size):
            raise ValueError(
                f"scope {self.scope_name}/{cell.tf_name} already holds a "
                f"{type(stored).__name__} (state_size {stored.state_size!r}); TF would reuse "
                f"its variables. Use another scope or a fresh legacy_seq2seq.VariableStore()")
        return stored

    def variables(self, name: str, specs: Mapping[str, tuple[tuple[int, ...], Any]],
                  dtype: torch.dtype | None = None,
                  device: torch.device | None = None) -> Variables:
        """The variables ``specs`` of the current scope (``name`` distinguishes groups in
        one scope; TF names are the specs' keys), created at the first call; shapes are
        checked against the stored ones afterwards."""
        key = f"{self.scope_name}/{name}" if self._path else name
        found = self.scopes[key] if key in self.scopes else None
        if found is None:
            found = self.scopes[key] = Variables(specs, dtype, device)
            found._scope = self.scope_name
        want = {n: tuple(s) for n, (s, _) in specs.items()}
        if found.shapes() != want:
            raise ValueError(f"scope {self.scope_name}: variables {found.shapes()} exist, the "
                             f"call needs {want} (TF refuses another shape on reuse); use "
                             "another scope or a fresh legacy_seq2seq.VariableStore()")
        return found

    @property
    def tf_name(self) -> str:
        """None (pass the store as ``{"": store}`` to ``rnnkit.compat``)."""
        return ""

    def tf_variables(self, available: Collection[str] = ()) -> dict:
        """None of its own."""
        return {}

    def tf_children(self) -> list[tuple[str, nn.Module]]:
        """Every stored module at its TF scope."""
        out = []
        for key, module in self.scopes.items():
            if isinstance(module, Variables):
                out.append((getattr(module, "_scope", ""), module))
            else:
                out.append((key, module))
        return out


_DEFAULT = VariableStore()
_STORES: list[VariableStore] = []


def default_variable_store() -> VariableStore:
    """The store used outside any ``with VariableStore():`` (TF's default graph)."""
    return _DEFAULT


def _store() -> VariableStore:
    return _STORES[-1] if _STORES else _DEFAULT


@contextlib.contextmanager
def variable_scope(name: str) -> Iterator[str]:
    """``tf.variable_scope(name)`` in the current :class:`VariableStore`."""
    with _store().scope(name) as full:
        yield full


def _scope_name(scope: Any, default: str) -> str:
    if scope is None:
        return default
    if not isinstance(scope, str):
        raise TypeError(f"scope must be a str (a variable scope name), received "
                        f"{type(scope).__name__}")
    return scope


# -- helpers ----------------------------------------------------------------------------------

def _steps(name: str, values: Any, what: str) -> list[torch.Tensor]:
    if isinstance(values, torch.Tensor) or not isinstance(values, (list, tuple)) \
            and not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a list of {what} tensors (one per step), received "
                        f"{type(values).__name__}")
    return list(values)


def _ids(name: str, value: Any) -> torch.Tensor:
    ids = _checks.as_ids(name, value)
    if ids.dim() == 2 and ids.shape[1] == 1:
        ids = ids[:, 0]
    if ids.dim() != 1:
        raise ValueError(f"{name} must be ids [batch], received shape {tuple(ids.shape)}")
    return ids


def _feed_previous(value: Any) -> tuple[bool, bool]:
    """``(feed_previous, update_embedding_for_previous)``: a bool as given; a scalar bool
    tensor (TF builds both graphs and picks one) read now, without updating the fed
    embeddings, as TF's tensor branch does."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.dtype != torch.bool:
            raise TypeError(f"feed_previous must be a bool or a scalar bool tensor, received "
                            f"{value.dtype} of shape {tuple(value.shape)}")
        return bool(value.item()), False
    return _checks.as_flag("feed_previous", value), True


def _projection(output_projection: Any, num_symbols: int) -> tuple | None:
    if output_projection is None:
        return None
    if not isinstance(output_projection, (tuple, list)) or len(output_projection) != 2:
        raise TypeError("output_projection must be a pair (W [output_size, num_symbols], "
                        "B [num_symbols])")
    w, b = (_checks.tensor("output_projection[0]", output_projection[0]),
            _checks.tensor("output_projection[1]", output_projection[1]))
    if w.dim() != 2 or w.shape[1] != num_symbols:
        raise ValueError(f"output_projection[0] must have shape [output_size, {num_symbols}], "
                         f"received {tuple(w.shape)}")
    if tuple(b.shape) != (num_symbols,):
        raise ValueError(f"output_projection[1] must have shape [{num_symbols}], received "
                         f"{tuple(b.shape)}")
    return w, b


def _extract_argmax_and_embed(embedding: torch.Tensor, output_projection: tuple | None = None,
                              update_embedding: bool = True) -> Callable:
    """TF's greedy ``loop_function``: project the previous output (if ``output_projection``
    is given), take its argmax and embed it."""

    def loop_function(prev: torch.Tensor, _: int) -> torch.Tensor:
        if output_projection is not None:
            prev = prev @ output_projection[0] + output_projection[1]
        emb = F.embedding(prev.argmax(1), embedding)
        return emb if update_embedding else emb.detach()

    return loop_function


def _encoder_steps(inputs: Any, name: str) -> list[torch.Tensor]:
    """Id steps ``[batch]`` as the ``[batch, 1]`` steps an ``EmbeddingWrapper`` reads."""
    return [_ids(f"{name}[{i}]", x)[:, None] for i, x in enumerate(_steps(name, inputs, "id"))]


# -- decoders ---------------------------------------------------------------------------------

def rnn_decoder(decoder_inputs: Sequence[torch.Tensor], initial_state: Any, cell: RNNCell,
                loop_function: Callable | None = None,
                scope: str | None = None) -> tuple[list[Any], Any]:
    """``tf.contrib.legacy_seq2seq.rnn_decoder``: run ``cell`` over the steps.

    Args:
        decoder_inputs: a list of ``[batch, input_size]`` tensors.
        initial_state: the cell's state (``[batch, state_size]`` or its structure).
        cell: the decoder cell.
        loop_function: ``fn(prev_output, i) -> next_input``; when given, only the first of
            ``decoder_inputs`` is read (the "GO" input), later inputs come from it.
        scope: default ``"rnn_decoder"``.

    Returns:
        ``(outputs, state)``: a list of ``[batch, output_size]`` per step, the final state.
    """
    store = _store()
    _checks.as_function("loop_function", loop_function)
    with store.scope(_scope_name(scope, "rnn_decoder")):
        cell = store.cell(cell)
        start_sequence(cell)
        state, outputs, prev = initial_state, [], None
        for i, inp in enumerate(_steps("decoder_inputs", decoder_inputs, "[batch, depth]")):
            if loop_function is not None and prev is not None:
                inp = loop_function(prev, i)
            output, state = cell(inp, state)
            outputs.append(output)
            if loop_function is not None:
                prev = output
    return outputs, state


def _query_size(state: Any) -> int:
    return sum(int(leaf.shape[-1]) for leaf in nest.flatten(state))


def attention_decoder(decoder_inputs: Sequence[torch.Tensor], initial_state: Any,
                      attention_states: torch.Tensor, cell: RNNCell,
                      output_size: int | None = None, num_heads: int = 1,
                      loop_function: Callable | None = None, dtype: Any = None,
                      scope: str | None = None,
                      initial_state_attention: bool = False) -> tuple[list[torch.Tensor], Any]:
    """``tf.contrib.legacy_seq2seq.attention_decoder`` (Vinyals et al. 2015 attention).

    At each step: ``x = linear([input, *attns])``; ``cell_output, state = cell(x, state)``;
    per head ``a = softmax(v^T tanh(W_1 h_j + W_2 [state]))`` over the memory,
    ``attn = sum_j a_j h_j``; ``output = linear([cell_output, *attns])``.

    Args:
        decoder_inputs: a list of ``[batch, input_size]`` tensors.
        initial_state: the cell's state.
        attention_states: ``[batch, attn_length, attn_size]``.
        cell: the decoder cell.
        output_size: default ``cell.output_size``.
        num_heads: attention heads reading ``attention_states``.
        loop_function: as in :func:`rnn_decoder`.
        dtype: of the variables (default: ``attention_states``' dtype).
        scope: default ``"attention_decoder"``.
        initial_state_attention: attend from ``initial_state`` before the first step
            (default: the first attentions are zeros).

    Returns:
        ``(outputs, state)``: a list of ``[batch, output_size]``, the final state.

    TF variables (in the scope): ``AttnW_<a> [1, 1, attn_size, attn_size]``, ``AttnV_<a>
    [attn_size]``, ``Attention_<a>/kernel [query, attn_size]`` and ``/bias``, ``kernel
    [input_size + heads * attn_size, input_size]``, ``bias``, ``AttnOutputProjection/
    kernel``, ``/bias``; the cell's below.
    """
    decoder_inputs = _steps("decoder_inputs", decoder_inputs, "[batch, depth]")
    if not decoder_inputs:
        raise ValueError("Must provide at least 1 input to attention decoder.")
    num_heads = _checks.as_int("num_heads", num_heads)
    if num_heads < 1:
        raise ValueError("With less than 1 heads, use a non-attention decoder.")
    attention_states = _checks.tensor("attention_states", attention_states)
    _checks.rank("attention_states", attention_states, 3, "[batch, attn_length, attn_size]")
    _checks.as_function("loop_function", loop_function)
    initial_state_attention = _checks.as_flag("initial_state_attention",
                                              initial_state_attention)
    dtype = _checks.as_dtype("dtype", dtype) or attention_states.dtype
    output_size = cell.output_size if output_size is None else \
        _checks.as_count("output_size", output_size)
    store = _store()
    _, attn_length, attn_size = attention_states.shape
    vec = attn_size
    first = _checks.tensor("decoder_inputs[0]", decoder_inputs[0])
    input_size = int(first.shape[-1])
    query = _query_size(initial_state)
    with store.scope(_scope_name(scope, "attention_decoder")):
        cell = store.cell(cell)
        specs: dict[str, tuple[tuple[int, ...], Any]] = {}
        for a in range(num_heads):
            specs[f"AttnW_{a}"] = ((1, 1, attn_size, vec), None)
            specs[f"AttnV_{a}"] = ((vec,), None)
            specs[f"Attention_{a}/kernel"] = ((query, vec), None)
            specs[f"Attention_{a}/bias"] = ((vec,), 0.0)
        specs["kernel"] = ((input_size + num_heads * attn_size, input_size), None)
        specs["bias"] = ((input_size,), 0.0)
        specs["AttnOutputProjection/kernel"] = (
            (int(cell.output_size) + num_heads * attn_size, output_size), None)
        specs["AttnOutputProjection/bias"] = ((output_size,), 0.0)
        v = store.variables("attention", specs, dtype, attention_states.device)
        start_sequence(cell)
        hidden = attention_states.to(dtype)
        features = [hidden @ v[f"AttnW_{a}"][0, 0] for a in range(num_heads)]  # [B, L, vec]

        def attention(q: Any) -> list[torch.Tensor]:
            q = torch.cat([leaf.to(dtype) for leaf in nest.flatten(q)], 1)
            reads = []
            for a in range(num_heads):
                y = q @ v[f"Attention_{a}/kernel"] + v[f"Attention_{a}/bias"]
                s = (v[f"AttnV_{a}"] * torch.tanh(features[a] + y[:, None, :])).sum(-1)
                weights = torch.softmax(s.float(), dim=-1).to(dtype)
                reads.append((weights[..., None] * hidden).sum(1))
            return reads

        batch = first.shape[0]
        attns = attention(initial_state) if initial_state_attention else \
            [hidden.new_zeros(batch, attn_size) for _ in range(num_heads)]
        state, outputs, prev = initial_state, [], None
        for i, inp in enumerate(decoder_inputs):
            if loop_function is not None and prev is not None:
                inp = loop_function(prev, i)
            if inp.dim() != 2 or inp.shape[1] != input_size:
                raise ValueError(f"decoder input {i} must have shape [batch, {input_size}], "
                                 f"received {tuple(inp.shape)}")
            x = torch.cat([inp.to(dtype), *attns], 1) @ v["kernel"] + v["bias"]
            cell_output, state = cell(x, state)
            attns = attention(state)
            output = (torch.cat([cell_output.to(dtype), *attns], 1)
                      @ v["AttnOutputProjection/kernel"] + v["AttnOutputProjection/bias"])
            if loop_function is not None:
                prev = output
            outputs.append(output)
    return outputs, state


def embedding_rnn_decoder(decoder_inputs: Sequence[Any], initial_state: Any, cell: RNNCell,
                          num_symbols: int, embedding_size: int,
                          output_projection: tuple | None = None, feed_previous: Any = False,
                          update_embedding_for_previous: bool = True,
                          scope: str | None = None) -> tuple[list[torch.Tensor], Any]:
    """``tf.contrib.legacy_seq2seq.embedding_rnn_decoder``: :func:`rnn_decoder` on embedded
    ids, optionally feeding back its own greedy choices.

    Args:
        decoder_inputs: a list of ``[batch]`` integer ids.
        initial_state, cell: as in :func:`rnn_decoder`.
        num_symbols, embedding_size: the embedding ``[num_symbols, embedding_size]``.
        output_projection: ``(W [output_size, num_symbols], B [num_symbols])`` applied to
            the outputs before the argmax when feeding back (outputs are returned
            unprojected).
        feed_previous: feed ``embed(argmax(output))`` instead of the given ids after the
            first step (a greedy decoder).
        update_embedding_for_previous: ``False``: no gradient reaches the embedding
            through the fed-back symbols.
        scope: default ``"embedding_rnn_decoder"``.

    Returns:
        ``(outputs, state)``: a list of ``[batch, output_size]``, the final state.
        TF variables: ``embedding [num_symbols, embedding_size]``; the cell's below
        ``rnn_decoder/``.
    """
    store = _store()
    projection = _projection(output_projection, _checks.as_count("num_symbols", num_symbols))
    feed, update = _feed_previous(feed_previous)
    update = update and _checks.as_flag("update_embedding_for_previous",
                                        update_embedding_for_previous)
    dtype = cell.dtype or torch.get_default_dtype()
    with store.scope(_scope_name(scope, "embedding_rnn_decoder")):
        emb = store.variables("embedding", {"embedding": (
            (num_symbols, _checks.as_count("embedding_size", embedding_size)), None)}, dtype)
        embedding = emb["embedding"]
        loop = _extract_argmax_and_embed(embedding, projection, update) if feed else None
        steps = [F.embedding(_ids(f"decoder_inputs[{i}]", x).to(embedding.device), embedding)
                 for i, x in enumerate(_steps("decoder_inputs", decoder_inputs, "id"))]
        return rnn_decoder(steps, initial_state, cell, loop_function=loop)


def embedding_attention_decoder(decoder_inputs: Sequence[Any], initial_state: Any,
                                attention_states: torch.Tensor, cell: RNNCell,
                                num_symbols: int, embedding_size: int, num_heads: int = 1,
                                output_size: int | None = None,
                                output_projection: tuple | None = None,
                                feed_previous: Any = False,
                                update_embedding_for_previous: bool = True, dtype: Any = None,
                                scope: str | None = None,
                                initial_state_attention: bool = False):
    """``tf.contrib.legacy_seq2seq.embedding_attention_decoder``: :func:`attention_decoder`
    on embedded ids, optionally feeding back its greedy choices (arguments as in
    :func:`embedding_rnn_decoder` and :func:`attention_decoder`).

    Returns ``(outputs, state)``: a list of ``[batch, output_size]``, the final state.  TF
    variables: ``embedding``; the decoder's below ``attention_decoder/``.
    """
    store = _store()
    projection = _projection(output_projection, _checks.as_count("num_symbols", num_symbols))
    feed, update = _feed_previous(feed_previous)
    update = update and _checks.as_flag("update_embedding_for_previous",
                                        update_embedding_for_previous)
    dtype = _checks.as_dtype("dtype", dtype) or attention_states.dtype
    with store.scope(_scope_name(scope, "embedding_attention_decoder")):
        emb = store.variables("embedding", {"embedding": (
            (num_symbols, _checks.as_count("embedding_size", embedding_size)), None)},
            dtype, attention_states.device)
        embedding = emb["embedding"]
        loop = _extract_argmax_and_embed(embedding, projection, update) if feed else None
        steps = [F.embedding(_ids(f"decoder_inputs[{i}]", x).to(embedding.device), embedding)
                 for i, x in enumerate(_steps("decoder_inputs", decoder_inputs, "id"))]
        return attention_decoder(steps, initial_state, attention_states, cell,
                                 output_size=output_size, num_heads=num_heads,
                                 loop_function=loop,
                                 initial_state_attention=initial_state_attention)


# -- models -----------------------------------------------------------------------------------

def _encoder(store: VariableStore, name: str, make: Callable[[], RNNCell]):
    """The encoder cell run by ``static_rnn`` in ``<scope>/rnn``: made once, then reused."""
    with store.scope("rnn"):
        return store.module(name, make)


def basic_rnn_seq2seq(encoder_inputs: Sequence[torch.Tensor],
                      decoder_inputs: Sequence[torch.Tensor], cell: RNNCell,
                      dtype: Any = torch.float32, scope: str | None = None):
    """``tf.contrib.legacy_seq2seq.basic_rnn_seq2seq``: encode with a copy of ``cell``
    (``static_rnn``), decode with ``cell`` from the final encoder state.

    Args:
        encoder_inputs, decoder_inputs: lists of ``[batch, input_size]`` tensors.
        cell: the decoder cell; the encoder is a copy (its own variables).
        dtype: of the encoder's zero state.
        scope: default ``"basic_rnn_seq2seq"``.

    Returns ``(outputs, state)`` as :func:`rnn_decoder`.
    """
    store = _store()
    require_cell("cell", cell)
    with store.scope(_scope_name(scope, "basic_rnn_seq2seq")):
        enc = _encoder(store, cell.tf_name, lambda: copy.deepcopy(cell))
        _, enc_state = static_rnn(enc, _steps("encoder_inputs", encoder_inputs, "[batch, "
                                              "depth]"), dtype=_checks.as_dtype("dtype", dtype))
        return rnn_decoder(decoder_inputs, enc_state, cell)


def tied_rnn_seq2seq(encoder_inputs: Sequence[torch.Tensor],
                     decoder_inputs: Sequence[torch.Tensor], cell: RNNCell,
                     loop_function: Callable | None = None, dtype: Any = torch.float32,
                     scope: str | None = None):
    """``tf.contrib.legacy_seq2seq.tied_rnn_seq2seq``: encoder and decoder are the same
    ``cell`` (shared variables).

    Args: as :func:`basic_rnn_seq2seq`, with ``loop_function`` as in :func:`rnn_decoder`;
    ``scope`` (default ``"tied_rnn_seq2seq"``) sits inside ``combined_tied_rnn_seq2seq``.

    Returns ``(outputs, state)`` as :func:`rnn_decoder`.
    """
    store = _store()
    name = _scope_name(scope, "tied_rnn_seq2seq")
    with store.scope("combined_tied_rnn_seq2seq"):
        with store.scope(name):
            cell = store.cell(cell)
        _, enc_state = static_rnn(cell, _steps("encoder_inputs", encoder_inputs,
                                               "[batch, depth]"),
                                  dtype=_checks.as_dtype("dtype", dtype))
        return rnn_decoder(decoder_inputs, enc_state, cell, loop_function=loop_function,
                           scope=name)


def _output_wrapper(store: VariableStore, cell: RNNCell, num_symbols: int) -> RNNCell:
    """``OutputProjectionWrapper(cell, num_symbols)``: a template, as in TF; the decoder
    runs the one stored at its scope after the first call."""
    return OutputProjectionWrapper(cell, _checks.as_count("num_decoder_symbols", num_symbols))


def embedding_rnn_seq2seq(encoder_inputs: Sequence[Any], decoder_inputs: Sequence[Any],
                          cell: RNNCell, num_encoder_symbols: int, num_decoder_symbols: int,
                          embedding_size: int, output_projection: tuple | None = None,
                          feed_previous: Any = False, dtype: Any = None,
                          scope: str | None = None):
    """``tf.contrib.legacy_seq2seq.embedding_rnn_seq2seq``: embed and encode the ids with
    a copy of ``cell`` in an ``EmbeddingWrapper``, decode with
    :func:`embedding_rnn_decoder`.

    Args:
        encoder_inputs, decoder_inputs: lists of ``[batch]`` ids.
        cell: the decoder cell (the encoder is a copy).
        num_encoder_symbols, num_decoder_symbols, embedding_size: vocabulary and embedding
            sizes.
        output_projection: ``(W, B)``; without it the decoder cell is wrapped in an
            ``OutputProjectionWrapper(cell, num_decoder_symbols)``.
        feed_previous: bool or scalar bool tensor (see :func:`embedding_rnn_decoder`).
        dtype: of the encoder's zero state.
        scope: default ``"embedding_rnn_seq2seq"``.

    Returns ``(outputs, state)``: outputs ``[batch, num_decoder_symbols]`` (``[batch,
    cell.output_size]`` with ``output_projection``).
    """
    store = _store()
    require_cell("cell", cell)
    with store.scope(_scope_name(scope, "embedding_rnn_seq2seq")):
        enc = _encoder(store, "embedding_wrapper", lambda: EmbeddingWrapper(
            copy.deepcopy(cell), embedding_classes=num_encoder_symbols,
            embedding_size=embedding_size))
        _, enc_state = static_rnn(enc, _encoder_steps(encoder_inputs, "encoder_inputs"),
                                  dtype=_checks.as_dtype("dtype", dtype))
        if output_projection is None:
            cell = _output_wrapper(store, cell, num_decoder_symbols)
        feed, update = _feed_previous(feed_previous)
        return embedding_rnn_decoder(decoder_inputs, enc_state, cell, num_decoder_symbols,
                                     embedding_size, output_projection=output_projection,
                                     feed_previous=feed,
                                     update_embedding_for_previous=update)


def embedding_tied_rnn_seq2seq(encoder_inputs: Sequence[Any], decoder_inputs: Sequence[Any],
                               cell: RNNCell, num_symbols: int, embedding_size: int,
                               num_decoder_symbols: int | None = None,
                               output_projection: tuple | None = None,
                               feed_previous: Any = False, dtype: Any = None,
                               scope: str | None = None):
    """``tf.contrib.legacy_seq2seq.embedding_tied_rnn_seq2seq``: one embedding
    ``[num_symbols, embedding_size]`` for both sides and :func:`tied_rnn_seq2seq`.

    Args: as :func:`embedding_rnn_seq2seq`; ``num_decoder_symbols`` (default
    ``num_symbols``) sizes the outputs.  ``scope`` default ``"embedding_tied_rnn_seq2seq"``.

    Returns ``(outputs, state)``: outputs ``[batch, num_decoder_symbols or num_symbols]``.
    """
    store = _store()
    require_cell("cell", cell)
    num_symbols = _checks.as_count("num_symbols", num_symbols)
    projection = _projection(output_projection, num_symbols)
    with store.scope(_scope_name(scope, "embedding_tied_rnn_seq2seq")):
        dtype = _checks.as_dtype("dtype", dtype) or cell.dtype or torch.get_default_dtype()
        embedding = store.variables("embedding", {"embedding": (
            (num_symbols, _checks.as_count("embedding_size", embedding_size)), None)},
            dtype)["embedding"]

        def embed(name: str, steps: Any) -> list[torch.Tensor]:
            return [F.embedding(_ids(f"{name}[{i}]", x).to(embedding.device), embedding)
                    for i, x in enumerate(_steps(name, steps, "id"))]

        symbols = num_symbols if num_decoder_symbols is None else \
            _checks.as_count("num_decoder_symbols", num_decoder_symbols)
        if output_projection is None:
            cell = _output_wrapper(store, cell, symbols)
        feed, update = _feed_previous(feed_previous)
        loop = _extract_argmax_and_embed(embedding, projection, update) if feed else None
        return tied_rnn_seq2seq(embed("encoder_inputs", encoder_inputs),
                                embed("decoder_inputs", decoder_inputs), cell,
                                loop_function=loop, dtype=dtype)


def embedding_attention_seq2seq(encoder_inputs: Sequence[Any], decoder_inputs: Sequence[Any],
                                cell: RNNCell, num_encoder_symbols: int,
                                num_decoder_symbols: int, embedding_size: int,
                                num_heads: int = 1, output_projection: tuple | None = None,
                                feed_previous: Any = False, dtype: Any = None,
                                scope: str | None = None,
                                initial_state_attention: bool = False):
    """``tf.contrib.legacy_seq2seq.embedding_attention_seq2seq``: the TF translation
    tutorial's model.  The ids are embedded and encoded by a copy of ``cell``; the decoder
    (:func:`embedding_attention_decoder`) attends over the encoder's outputs.

    Args: as :func:`embedding_rnn_seq2seq`, with ``num_heads`` and
    ``initial_state_attention`` as in :func:`attention_decoder`.  ``scope`` default
    ``"embedding_attention_seq2seq"``.

    Returns ``(outputs, state)``: outputs ``[batch, num_decoder_symbols]`` (``[batch,
    cell.output_size]`` with ``output_projection``).
    """
    store = _store()
    require_cell("cell", cell)
    with store.scope(_scope_name(scope, "embedding_attention_seq2seq")):
        enc = _encoder(store, "embedding_wrapper", lambda: EmbeddingWrapper(
            copy.deepcopy(cell), embedding_classes=num_encoder_symbols,
            embedding_size=embedding_size))
        enc_outputs, enc_state = static_rnn(enc, _encoder_steps(encoder_inputs,
                                                                "encoder_inputs"),
                                            dtype=_checks.as_dtype("dtype", dtype))
        attention_states = torch.stack(enc_outputs, 1)
        output_size = None
        if output_projection is None:
            cell = _output_wrapper(store, cell, num_decoder_symbols)
            output_size = num_decoder_symbols
        feed, update = _feed_previous(feed_previous)
        return embedding_attention_decoder(
            decoder_inputs, enc_state, attention_states, cell, num_decoder_symbols,
            embedding_size, num_heads=num_heads, output_size=output_size,
            output_projection=output_projection, feed_previous=feed,
            update_embedding_for_previous=update,
            initial_state_attention=initial_state_attention)


def one2many_rnn_seq2seq(encoder_inputs: Sequence[Any], decoder_inputs_dict: Mapping,
                         enc_cell: RNNCell, dec_cells_dict: Mapping, num_encoder_symbols: int,
                         num_decoder_symbols_dict: Mapping, embedding_size: int,
                         feed_previous: Any = False, dtype: Any = None,
                         scope: str | None = None):
    """``tf.contrib.legacy_seq2seq.one2many_rnn_seq2seq``: one encoder, one
    :func:`embedding_rnn_decoder` per task (multi-task; Luong et al. 2016).

    Args:
        encoder_inputs: a list of ``[batch]`` ids.
        decoder_inputs_dict: ``{name: list of [batch] ids}``.
        enc_cell: the encoder cell (wrapped in an ``EmbeddingWrapper``, not copied).
        dec_cells_dict: ``{name: cell}``, the same keys.
        num_encoder_symbols, num_decoder_symbols_dict, embedding_size: sizes.
        feed_previous, dtype: as in :func:`embedding_rnn_seq2seq`.
        scope: default ``"one2many_rnn_seq2seq"``; decoder ``name`` in
            ``one2many_decoder_<name>``.

    Returns ``(outputs_dict, state_dict)``: per name, a list of ``[batch,
    num_decoder_symbols_dict[name]]`` and the final state.
    """
    require_cell("enc_cell", enc_cell)
    if set(dec_cells_dict) != set(decoder_inputs_dict):
        raise ValueError("keys of dec_cells_dict != keys of decoder_inputs_dict")
    for name, dec in dec_cells_dict.items():
        require_cell(f"dec_cells_dict[{name!r}]", dec)
    store = _store()
    outputs_dict, state_dict = {}, {}
    feed, update = _feed_previous(feed_previous)
    with store.scope(_scope_name(scope, "one2many_rnn_seq2seq")):
        enc = _encoder(store, "embedding_wrapper", lambda: EmbeddingWrapper(
            enc_cell, embedding_classes=num_encoder_symbols, embedding_size=embedding_size))
        _, enc_state = static_rnn(enc, _encoder_steps(encoder_inputs, "encoder_inputs"),
                                  dtype=_checks.as_dtype("dtype", dtype))
        for name, decoder_inputs in decoder_inputs_dict.items():
            with store.scope(f"one2many_decoder_{name}"):
                dec = _output_wrapper(store, dec_cells_dict[name],
                                      num_decoder_symbols_dict[name])
                outputs, state = embedding_rnn_decoder(
                    decoder_inputs, enc_state, dec, num_decoder_symbols_dict[name],
                    embedding_size, feed_previous=feed,
                    update_embedding_for_previous=update)
            outputs_dict[name], state_dict[name] = outputs, state
    return outputs_dict, state_dict


# -- losses -----------------------------------------------------------------------------------

def sequence_loss_by_example(logits: Sequence[torch.Tensor], targets: Sequence[Any],
                             weights: Sequence[torch.Tensor],
                             average_across_timesteps: bool = True,
                             softmax_loss_function: Callable | None = None,
                             name: str | None = None) -> torch.Tensor:
    """``tf.contrib.legacy_seq2seq.sequence_loss_by_example``: the weighted cross-entropy
    of each sequence.

    Args:
        logits: a list of ``[batch, num_symbols]``.
        targets: a list of ``[batch]`` ids, as long.
        weights: a list of ``[batch]`` floats, as long.
        average_across_timesteps: divide by the total weight of each sequence (+1e-12).
        softmax_loss_function: ``fn(labels=[batch], logits=[batch, ...]) -> [batch]``
            instead of the sparse softmax cross-entropy (called with named arguments).

    Returns: ``[batch]`` log-perplexities.
    """
    logits, targets, weights = (_steps("logits", logits, "[batch, classes]"),
                                _steps("targets", targets, "[batch]"),
                                _steps("weights", weights, "[batch]"))
    if len(targets) != len(logits) or len(weights) != len(logits):
        raise ValueError(f"Lengths of logits, weights, and targets must be the same "
                         f"{len(logits)}, {len(weights)}, {len(targets)}.")
    if not logits:
        raise ValueError("logits must hold at least one step")
    _checks.as_function("softmax_loss_function", softmax_loss_function)
    average = _checks.as_flag("average_across_timesteps", average_across_timesteps)
    total = None
    for i, (logit, target, weight) in enumerate(zip(logits, targets, weights, strict=True)):
        if softmax_loss_function is None:
            target = _checks.as_ids(f"targets[{i}]", target).reshape(-1).to(logit.device)
            crossent = F.cross_entropy(logit, target, reduction="none")
        else:
            crossent = softmax_loss_function(labels=target, logits=logit)
        term = crossent * weight
        total = term if total is None else total + term
    if average:
        total = total / (sum(weights) + 1e-12)
    return total


def sequence_loss(logits: Sequence[torch.Tensor], targets: Sequence[Any],
                  weights: Sequence[torch.Tensor], average_across_timesteps: bool = True,
                  average_across_batch: bool = True,
                  softmax_loss_function: Callable | None = None,
                  name: str | None = None) -> torch.Tensor:
    """``tf.contrib.legacy_seq2seq.sequence_loss``: the sum over the batch of
    :func:`sequence_loss_by_example`, divided by the batch size when
    ``average_across_batch``.  Returns a scalar."""
    cost = sequence_loss_by_example(logits, targets, weights,
                                    average_across_timesteps=average_across_timesteps,
                                    softmax_loss_function=softmax_loss_function).sum()
    if _checks.as_flag("average_across_batch", average_across_batch):
        return cost / _checks.as_ids("targets[0]", list(targets)[0]).reshape(-1).shape[0]
    return cost


def model_with_buckets(encoder_inputs: Sequence[Any], decoder_inputs: Sequence[Any],
                       targets: Sequence[Any], weights: Sequence[torch.Tensor],
                       buckets: Sequence[tuple[int, int]], seq2seq: Callable,
                       softmax_loss_function: Callable | None = None,
                       per_example_loss: bool = False, name: str | None = None):
    """``tf.contrib.legacy_seq2seq.model_with_buckets``: run ``seq2seq(enc[:i], dec[:o])``
    for each bucket ``(i, o)`` (sharing its variables, as TF's reuse) and its loss.

    Args:
        encoder_inputs, decoder_inputs, targets, weights: lists at least as long as the
            last bucket.
        buckets: ``[(input length, output length), ...]``, the longest last.
        seq2seq: ``fn(encoder_inputs, decoder_inputs) -> (outputs, states)``.
        softmax_loss_function: as in :func:`sequence_loss_by_example`.
        per_example_loss: ``[batch]`` losses per bucket instead of scalars.

    Returns ``(outputs, losses)``: one list of step outputs and one loss per bucket.
    """
    encoder_inputs, decoder_inputs = list(encoder_inputs), list(decoder_inputs)
    targets, weights = list(targets), list(weights)
    buckets = [tuple(b) for b in buckets]
    if not buckets:
        raise ValueError("buckets must hold at least one (input size, output size) pair")
    if len(encoder_inputs) < buckets[-1][0]:
        raise ValueError(f"Length of encoder_inputs ({len(encoder_inputs)}) must be at least "
                         f"that of last bucket ({buckets[-1][0]}).")
    if len(targets) < buckets[-1][1]:
        raise ValueError(f"Length of targets ({len(targets)}) must be at least that of last "
                         f"bucket ({buckets[-1][1]}).")
    if len(weights) < buckets[-1][1]:
        raise ValueError(f"Length of weights ({len(weights)}) must be at least that of last "
                         f"bucket ({buckets[-1][1]}).")
    _checks.as_function("seq2seq", seq2seq, optional=False)
    per_example = _checks.as_flag("per_example_loss", per_example_loss)
    loss = sequence_loss_by_example if per_example else sequence_loss
    outputs, losses = [], []
    for n_in, n_out in buckets:
        bucket_outputs, _ = seq2seq(encoder_inputs[:n_in], decoder_inputs[:n_out])
        outputs.append(bucket_outputs)
        losses.append(loss(bucket_outputs, targets[:n_out], weights[:n_out],
                           softmax_loss_function=softmax_loss_function))
    return outputs, losses
