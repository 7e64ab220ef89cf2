"""rnnkit.masking.select_rows: the one per-entry selection the drivers and decoders use."""

import torch

from rnnkit import rnn
from rnnkit.masking import select_rows


def test_rows_are_selected_not_multiplied():
    mask = torch.tensor([True, False, True])
    new = torch.tensor([[1.0, 2.0], [float("nan"), float("inf")], [5.0, 6.0]],
                       requires_grad=True)
    old = torch.tensor([[7.0, 8.0], [9.0, 10.0], [11.0, 12.0]], requires_grad=True)
    got = select_rows(mask, new, old)
    assert torch.equal(got, torch.tensor([[1.0, 2.0], [9.0, 10.0], [5.0, 6.0]]))
    got.sum().backward()
    assert torch.equal(new.grad, torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]]))
    assert torch.equal(old.grad, torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))


def test_a_number_fills_the_dropped_rows_in_each_leaf_dtype():
    mask = torch.tensor([False, True])
    new = (torch.tensor([[1.5, 2.5], [3.5, 4.5]]), torch.tensor([7, 8]),
           torch.tensor([True, True]))
    floats, ids, flags = select_rows(mask, new, 0.0)
    assert torch.equal(floats, torch.tensor([[0.0, 0.0], [3.5, 4.5]]))
    assert ids.dtype == torch.int64 and ids.tolist() == [0, 8]
    assert flags.dtype == torch.bool and flags.tolist() == [False, True]


def test_beam_masks_reach_flattened_and_beam_major_leaves():
    mask = torch.tensor([[True, False], [False, True]])  # [batch=2, beam=2]
    flat = torch.arange(4.0)[:, None].expand(4, 3)  # [batch * beam, depth]
    beam_major = torch.arange(4.0).view(2, 2, 1).expand(2, 2, 3)
    got_flat, got_beam = select_rows(mask, (flat, beam_major), -1.0)
    assert got_flat[:, 0].tolist() == [0.0, -1.0, -1.0, 3.0]
    assert got_beam[..., 0].tolist() == [[0.0, -1.0], [-1.0, 3.0]]


def test_leaves_without_a_batch_dimension_come_from_new():
    mask = torch.tensor([False, False])
    new = (torch.tensor(5), rnn.LSTMStateTuple(torch.ones(2, 3), torch.ones(2, 3)))
    old = (torch.tensor(4), rnn.LSTMStateTuple(torch.zeros(2, 3), torch.zeros(2, 3)))
    step, state = select_rows(mask, new, old)
    assert step.item() == 5 and state.c.sum().item() == 0 and state.h.sum().item() == 0
