"""Fast path: run cells on PyTorch's fused RNN kernels (cuDNN on GPU, oneDNN / ATen on CPU).

A cell describes its own fused form through :meth:`rnnkit.rnn.RNNCell.fused_form`, which
returns a :class:`FusedForm` (kernel kind, weights in the kernel's layout, state conversion)
or raises :class:`NotFusableError` naming why the cell's mathematics is not the kernel's.
Built-in cells implement it; a user subclass may too.  The drivers never switch on types:
they ask each layer for its form and hand consecutive fused layers to :func:`run_layers`.

:func:`run_layers` runs a list of layers (each one form, or a forward/backward pair for a
bidirectional layer) in as few kernel calls as possible: consecutive layers of one kind and
size share one multi-layer call.  Ragged ``sequence_length`` is packed once for the whole
stack (one gather; entries of length 0 never enter the kernel), layers are chained on the
packed data, and outputs are scattered back once.  On CUDA the weights of each call are laid
out once as one contiguous cuDNN buffer (the cells' parameters become views of it, as in
``nn.LSTM.flatten_parameters``), so no call re-compacts them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

__all__ = ["FusedForm", "NotFusableError", "PackPlan", "run_layers"]

KERNEL_KINDS = ("lstm", "gru", "rnn_tanh", "rnn_relu")
_CUDNN_MODE_NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN_TANH", "rnn_relu": "RNN_RELU"}


class NotFusableError(ValueError):
    """A cell cannot run on the fused kernels; the message says why."""


class FusedForm(NamedTuple):
    """How one cell runs on PyTorch's fused kernel ``torch._VF.<mode>``.

    Attributes:
        mode: ``"lstm"``, ``"gru"``, ``"rnn_tanh"`` or ``"rnn_relu"``.
        input_size: input depth ``I``.
        hidden_size: ``H``.
        proj_size: LSTM projection size ``P`` (0: none).
        weights: ``(w_ih [G*H, I], w_hh [G*H, P or H], b_ih [G*H], b_hh [G*H])`` plus
            ``w_hr [P, H]`` when ``proj_size``; gate order as ``nn.LSTM`` / ``nn.GRU``.
        split_state: ``state -> (h [batch, P or H], c [batch, H] or None)``.
        join_state: ``(h, c or None) -> state`` in the cell's own structure.
    """

    mode: str
    input_size: int
    hidden_size: int
    proj_size: int
    weights: tuple[torch.Tensor, ...]
    split_state: Callable[[Any], tuple[torch.Tensor, torch.Tensor | None]]
    join_state: Callable[[torch.Tensor, torch.Tensor | None], Any]

    @property
    def output_size(self) -> int:
        """Output depth per row and direction: ``proj_size`` if set, else ``hidden_size``."""
        return self.proj_size or self.hidden_size

    def kernel_key(self) -> tuple[str, int, int]:
        """Layers with equal keys can share one multi-layer kernel call."""
        return self.mode, self.hidden_size, self.proj_size


#: One layer of a fused stack: a single form, or ``(forward, backward)`` for a
#: bidirectional layer whose output is ``cat([out_fw, out_bw], -1)``.
Layer = tuple[FusedForm, ...]


def check_form(form: Any, owner: str) -> FusedForm:
    """Validate what a cell's ``fused_form()`` returned."""
    if not isinstance(form, FusedForm):
        raise TypeError(f"{owner}.fused_form() must return a FusedForm, received "
                        f"{type(form).__name__}")
    if form.mode not in KERNEL_KINDS:
        raise ValueError(f"{owner}.fused_form().mode must be one of {KERNEL_KINDS}, received "
                         f"{form.mode!r}")
    want = 5 if form.proj_size else 4
    if len(form.weights) != want:
        raise ValueError(f"{owner}.fused_form().weights must hold {want} tensors, received "
                         f"{len(form.weights)}")
    return form


class PackPlan:
    """Where the valid steps of a ragged batch go in PyTorch's packed layout.

    Built once per driver call from ``lengths [batch]`` (on the CPU: the kernels need the
    per-step batch sizes there).  Entries are ordered by decreasing length (stable);
    entries of length 0 are left out of the kernel entirely and keep their initial state.
    The index tensors reach the device through pinned memory, without a host sync.
    """

    def __init__(self, lengths: torch.Tensor, max_time: int, batch_first: bool,
                 device: torch.device):
        lens = lengths.detach().cpu().numpy().astype(np.int64)
        batch = lens.shape[0]
        order = np.argsort(-lens, kind="stable")
        sorted_len = lens[order]
        self.batch, self.max_time, self.batch_first = batch, max_time, batch_first
        self.live = int((lens > 0).sum())
        steps = int(sorted_len[0]) if batch else 0
        t = np.arange(steps)
        valid = t[:, None] < sorted_len[None, :]  # [steps, batch] in sorted order
        self.batch_sizes = torch.from_numpy(valid.sum(1).astype(np.int64))
        if batch_first:
            flat = order[None, :] * max_time + t[:, None]
        else:
            flat = t[:, None] * batch + order[None, :]
        self.index = _to_device(flat[valid], device)  # packed row -> padded row
        self.order = _to_device(order[: self.live], device)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """Padded ``x`` (batch- or time-major) -> packed data ``[sum(lengths), depth]``."""
        return x.reshape(-1, x.shape[-1]).index_select(0, self.index)

    def unpack(self, data: torch.Tensor) -> torch.Tensor:
        """Packed ``data`` -> padded outputs, zero past each length."""
        rows = self.batch * self.max_time
        out = data.new_zeros(rows, data.shape[-1]).index_copy(0, self.index, data)
        shape = (self.batch, self.max_time) if self.batch_first else (self.max_time, self.batch)
        return out.view(*shape, data.shape[-1])


def _to_device(a: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def _kernel(mode: str):
    # looked up at call time so that tests can wrap the entry points
    return getattr(torch._VF, mode)


def _needs_train(x: torch.Tensor, weights: Sequence[torch.Tensor], hx: Sequence[torch.Tensor]):
    """cuDNN computes a backward pass only for a forward run in training mode."""
    if not torch.is_grad_enabled():
        return False
    return any(t.requires_grad for t in (x, *weights, *hx))


def _flatten_for_cudnn(weights: list[torch.Tensor], key: FusedForm, input_size: int,
                       num_layers: int, bidirectional: bool) -> None:
    """Make ``weights`` views of one contiguous cuDNN weight buffer (once; redone only when a
    weight was moved or replaced), so the kernel does not copy them at every call."""
    first = weights[0]
    if not first.is_cuda or not torch.backends.cudnn.is_acceptable(first):
        return
    ptrs = tuple(w.data_ptr() for w in weights)
    if getattr(first, "_rnnkit_cudnn_layout", None) == ptrs:
        return
    if len(set(ptrs)) != len(ptrs) or any(
        w.dtype != first.dtype or not w.is_cuda for w in weights
    ):
        return  # aliased or mixed weights: let the kernel copy them
    from torch.backends.cudnn import rnn as cudnn_rnn

    with torch.no_grad():
        torch._cudnn_rnn_flatten_weight(
            weights, 5 if key.proj_size else 4, input_size,
            cudnn_rnn.get_cudnn_mode(_CUDNN_MODE_NAMES[key.mode]), key.hidden_size,
            key.proj_size, num_layers, False, bidirectional)
    first._rnnkit_cudnn_layout = tuple(w.data_ptr() for w in weights)


def _group(layers: Sequence[Layer]) -> list[list[int]]:
    """Consecutive layers that one kernel call can run (same kind, sizes and directions)."""
    groups: list[list[int]] = []
    for i, layer in enumerate(layers):
        keys = {f.kernel_key() for f in layer}
        prev = layers[groups[-1][-1]] if groups else None
        if (prev is not None and len(keys) == 1 and len(prev) == len(layer)
                and keys == {f.kernel_key() for f in prev}):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def run_layers(
    layers: Sequence[Layer],
    x: torch.Tensor,
    states: Sequence[Sequence[Any]],
    plan: PackPlan | None,
    batch_first: bool,
) -> tuple[torch.Tensor, list[list[Any]]]:
    """Run fused ``layers`` over ``x``.

    Args:
        layers: each a 1-tuple (unidirectional) or a ``(fw, bw)`` pair of :class:`FusedForm`.
        x: ``[batch, time, depth]`` if ``batch_first`` else ``[time, batch, depth]``.
        states: per layer, per direction, the initial state in the cell's structure, or
            ``None`` for zeros.
        plan: the packing of a ragged batch, or ``None`` when every entry has full length.

    Returns:
        ``(outputs, final_states)``: outputs shaped like ``x`` with the last layer's depth
        (``fw + bw`` for a bidirectional layer), zero past each length; final states per
        layer and direction, the state after each entry's last valid step (the initial state
        where the length is 0).
    """
    steps = x.shape[1 if batch_first else 0]
    if steps == 0 or (plan is not None and plan.live == 0):  # nothing to run (PyTorch's
        # kernels refuse zero steps): zeros, initial states
        depth = sum(f.output_size for f in layers[-1])
        h0, c0 = _initial_states(layers, states, x.shape[0 if batch_first else 1], x)
        return x.new_zeros(*x.shape[:-1], depth), _finals(layers, h0, c0)
    data = plan.pack(x) if plan is not None else x
    finals: list[list[Any]] = []
    for idx in _group(layers):
        data, group_finals = _run_group([layers[i] for i in idx], data,
                                        [states[i] for i in idx], plan, batch_first)
        finals.extend(group_finals)
    out = plan.unpack(data) if plan is not None else data
    return out, finals


def _initial_states(layers, states, batch: int, like: torch.Tensor):
    """``(h0 [layers*dirs, batch, P or H], c0 [layers*dirs, batch, H] or None)``; a state
    given as ``None`` is zeros."""
    forms = [form for layer in layers for form in layer]
    flat = [s for ls in states for s in ls]
    lstm = forms[0].mode == "lstm"
    n = len(forms)
    if all(s is None for s in flat):
        h0 = like.new_zeros(n, batch, forms[0].output_size)
        return h0, like.new_zeros(n, batch, forms[0].hidden_size) if lstm else None
    hs, cs = [], []
    for form, s in zip(forms, flat, strict=True):
        if s is None:
            h, c = like.new_zeros(batch, form.output_size), like.new_zeros(batch, form.hidden_size)
        else:
            h, c = form.split_state(s)
        hs.append(h)
        cs.append(c)
    return torch.stack(hs), torch.stack(cs) if lstm else None


def _run_group(layers, data, states, plan, batch_first):
    first = layers[0][0]
    ndir = len(layers[0])
    lstm = first.mode == "lstm"
    weights = [w for layer in layers for form in layer for w in form.weights]
    batch = plan.batch if plan is not None else data.shape[0 if batch_first else 1]
    h_init, c_init = _initial_states(layers, states, batch, data)
    h0, c0 = h_init, c_init
    if plan is not None and all(s is None for ls in states for s in ls):
        h0 = data.new_zeros(h_init.shape[0], plan.live, h_init.shape[2])  # nothing to reorder
        c0 = data.new_zeros(c_init.shape[0], plan.live, c_init.shape[2]) if lstm else None
    elif plan is not None:  # the kernel takes states in packed (sorted, live) order
        h0 = h_init.index_select(1, plan.order)
        c0 = c_init.index_select(1, plan.order) if lstm else None
    hx = (h0, c0) if lstm else h0
    _flatten_for_cudnn(weights, first, first.input_size, len(layers), ndir == 2)
    train = _needs_train(data, weights, (h0, c0) if lstm else (h0,))
    kernel = _kernel(first.mode)
    if plan is None:
        res = kernel(data, hx, weights, True, len(layers), 0.0, train, ndir == 2, batch_first)
    else:
        res = kernel(data, plan.batch_sizes, hx, weights, True, len(layers), 0.0, train,
                     ndir == 2)
    out, hn = res[0], res[1]
    cn = res[2] if lstm else None
    if plan is not None:  # back to batch order; entries of length 0 keep their initial state
        hn = h_init.to(hn.dtype).index_copy(1, plan.order, hn)
        cn = c_init.to(cn.dtype).index_copy(1, plan.order, cn) if lstm else None
    return out, _finals(layers, hn, cn)


def _finals(layers, hn: torch.Tensor, cn: torch.Tensor | None) -> list[list[Any]]:
    """Per layer and direction, the cell's state from stacked ``[layers*dirs, batch, .]``."""
    hs = hn.unbind(0)
    cs = cn.unbind(0) if cn is not None else [None] * len(hs)
    finals, k = [], 0
    for layer in layers:
        finals.append([form.join_state(hs[k + d], cs[k + d]) for d, form in enumerate(layer)])
        k += len(layer)
    return finals
