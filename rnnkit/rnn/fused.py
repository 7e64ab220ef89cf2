"""Fast path: run built-in cells on PyTorch's fused RNN kernels (cuDNN / oneDNN / ATen).

A cell qualifies when its mathematics is exactly what ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``
compute: :class:`BasicLSTMCell`, :class:`LSTMCell` without peepholes or clipping (``num_proj``
maps to ``proj_size``), :class:`GRUCell` with ``reset_after=True``, and :class:`BasicRNNCell`
with ``tanh`` or ``relu``.  The cell's own parameters are handed to the kernel (no copies);
``forget_bias`` rides in the kernel's second bias vector.  Ragged ``sequence_length`` runs
on packed sequences, so the final state is the state at each entry's last valid step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import _VF
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit.rnn.cell import RNNCell
from rnnkit.rnn.cells import BasicLSTMCell, BasicRNNCell, GRUCell, LSTMCell

__all__ = ["fused_mode", "run_fused"]

_RELUS = (torch.relu, F.relu)


def fused_mode(cell: RNNCell) -> str | None:
    """``'lstm'``, ``'gru'``, ``'rnn_tanh'``, ``'rnn_relu'``, or ``None`` if the cell can't fuse.

    Exact types only: a user subclass may change the mathematics.
    """
    if not cell.built:
        return None
    kind = type(cell)
    act = getattr(cell, "_activation", None)
    if kind is BasicLSTMCell:
        return "lstm" if act is torch.tanh else None
    if kind is LSTMCell:
        plain = not cell._use_peepholes and cell._cell_clip is None and cell._proj_clip is None
        return "lstm" if plain and act is torch.tanh else None
    if kind is GRUCell:
        return "gru" if cell.reset_after and act is torch.tanh else None
    if kind is BasicRNNCell:
        if act is torch.tanh:
            return "rnn_tanh"
        return "rnn_relu" if any(act is r for r in _RELUS) else None
    return None


def _weights(cell: RNNCell, mode: str) -> list[torch.Tensor]:
    if mode == "lstm":
        w = [cell.weight_ih, cell.weight_hh, cell.bias, cell.forget_offset()]
        if getattr(cell, "_num_proj", None) is not None:
            w.append(cell.weight_proj)
        return w
    if mode == "gru":
        return [cell.weight_ih, cell.weight_hh, cell.bias, cell.bias_hh]
    return [cell.weight_ih, cell.weight_hh, cell.bias, torch.zeros_like(cell.bias)]


def _to_hx(cell: RNNCell, mode: str, state):
    if mode != "lstm":
        return state.unsqueeze(0)
    c, h = cell._split_state(state)
    return (h.unsqueeze(0), c.unsqueeze(0))


def _from_hx(cell: RNNCell, mode: str, hx):
    if mode != "lstm":
        return hx[0].squeeze(0)
    h, c = hx[0], hx[1]
    return cell._pack_state(c.squeeze(0), h.squeeze(0))


def _kernel(mode: str):
    return {"lstm": _VF.lstm, "gru": _VF.gru, "rnn_tanh": _VF.rnn_tanh,
            "rnn_relu": _VF.rnn_relu}[mode]


def run_fused(cell: RNNCell, inputs: torch.Tensor, state, lengths: torch.Tensor | None):
    """Run ``cell`` over time-major ``inputs [time, batch, depth]``.

    Returns ``(outputs [time, batch, output_size], final_state)``; outputs are zero at
    ``t >= lengths[b]`` and the final state is taken at step ``lengths[b] - 1`` (the initial
    state where the length is 0).
    """
    mode = fused_mode(cell)
    if mode is None:
        raise ValueError(f"{type(cell).__name__} cannot run on the fused kernels")
    weights = _weights(cell, mode)
    hx = _to_hx(cell, mode, state)
    kernel = _kernel(mode)
    if lengths is None:
        res = kernel(inputs, hx, weights, True, 1, 0.0, False, False, False)
        return res[0], _from_hx(cell, mode, res[1:])

    total = inputs.shape[0]
    packed = pack_padded_sequence(inputs, lengths.clamp(min=1).cpu(), enforce_sorted=False)
    order, unorder = packed.sorted_indices, packed.unsorted_indices
    if mode == "lstm":
        hx_sorted = tuple(t.index_select(1, order) for t in hx)
    else:
        hx_sorted = hx.index_select(1, order)
    res = kernel(packed.data, packed.batch_sizes, hx_sorted, weights, True, 1, 0.0, False, False)
    out_packed = PackedSequence(res[0], packed.batch_sizes, order, unorder)
    out, _ = pad_packed_sequence(out_packed, total_length=total)
    final = tuple(t.index_select(1, unorder) for t in res[1:])
    final_state = _from_hx(cell, mode, final)
    empty = lengths == 0
    if bool(empty.any()):
        out = out.masked_fill(empty.view(1, -1, 1), 0.0)
        final_state = _select_state(~empty, final_state, state)
    return out, final_state


def _select_state(keep_new: torch.Tensor, new, old):
    from rnnkit import nest

    def pick(n, o):
        return torch.where(keep_new.view(-1, *([1] * (n.dim() - 1))), n, o)

    return nest.map_structure(pick, new, old)

