"""Drivers: sequence_length semantics, fused == generic, bidirectional, properties."""

import pytest
import torch
from conftest import UserLSTM
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit import nest, rnn


def make(kind):
    return {
        "lstm": lambda: rnn.BasicLSTMCell(5),
        "lstm_proj": lambda: rnn.LSTMCell(5, num_proj=3),
        "gru": lambda: rnn.GRUCell(5, reset_after=True),
        "rnn": lambda: rnn.BasicRNNCell(5),
        "multi": lambda: rnn.MultiRNNCell([rnn.BasicLSTMCell(5), rnn.GRUCell(4, reset_after=True),
                                           rnn.BasicRNNCell(3)]),
        "multi_concat": lambda: rnn.MultiRNNCell(
            [rnn.BasicLSTMCell(4, state_is_tuple=False),
             rnn.BasicLSTMCell(4, state_is_tuple=False)],
            state_is_tuple=False),
    }[kind]()


@pytest.mark.parametrize("kind", ["lstm", "lstm_proj", "gru", "rnn", "multi", "multi_concat"])
def test_fused_equals_generic_forward_and_gradients(kind):
    cell = make(kind)
    x = torch.randn(4, 7, 3, requires_grad=True)
    lengths = torch.tensor([7, 2, 0, 5])
    rnn.dynamic_rnn(cell, x, lengths)  # build
    results = []
    for fused in (True, False):
        cell.zero_grad()
        x.grad = None
        out, state = rnn.dynamic_rnn(cell, x, lengths, fused=fused)
        loss = (out * torch.linspace(-1, 1, out.shape[-1])).sum() + sum(
            (s ** 2).sum() for s in nest.flatten(state))
        loss.backward()
        grads = [p.grad.clone() for p in cell.parameters()] + [x.grad.clone()]
        results.append((out.detach(), [s.detach() for s in nest.flatten(state)], grads))
    (o1, s1, g1), (o2, s2, g2) = results
    torch.testing.assert_close(o1, o2, atol=1e-5, rtol=1e-4)
    for a, b in zip(s1 + g1, s2 + g2, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("fused", ["auto", False])
def test_sequence_length_semantics(fused):
    cell = rnn.BasicLSTMCell(4)
    x = torch.randn(3, 6, 2)
    init = rnn.LSTMStateTuple(torch.randn(3, 4), torch.randn(3, 4))
    out, st = rnn.dynamic_rnn(cell, x, [6, 3, 0], initial_state=init, fused=fused)
    assert torch.all(out[1, 3:] == 0) and torch.all(out[2] == 0)
    torch.testing.assert_close(st.c[2], init.c[2])  # length 0: initial state
    # final state of entry 1 = state after step 2 of its own run
    out1, st1 = rnn.dynamic_rnn(cell, x[1:2, :3], initial_state=rnn.LSTMStateTuple(
        init.c[1:2], init.h[1:2]), fused=fused)
    torch.testing.assert_close(st.h[1:2], st1.h)
    torch.testing.assert_close(out[1:2, :3], out1)


def test_time_major_equals_batch_major():
    cell = rnn.GRUCell(4)
    x = torch.randn(3, 5, 2)
    a, sa = rnn.dynamic_rnn(cell, x, [5, 1, 3])
    b, sb = rnn.dynamic_rnn(cell, x.transpose(0, 1), [5, 1, 3], time_major=True)
    torch.testing.assert_close(a, b.transpose(0, 1))
    torch.testing.assert_close(sa, sb)


def test_static_rnn_matches_dynamic():
    cell = rnn.BasicLSTMCell(3)
    x = torch.randn(2, 4, 5)
    outs, st = rnn.static_rnn(cell, list(x.unbind(1)), sequence_length=[4, 2])
    d, sd = rnn.dynamic_rnn(cell, x, [4, 2])
    torch.testing.assert_close(torch.stack(outs, 1), d)
    torch.testing.assert_close(st.c, sd.c)


def test_bidirectional_reverses_within_length():
    fw, bw = rnn.BasicRNNCell(3), rnn.BasicRNNCell(3)
    x = torch.randn(2, 5, 2)
    (of, ob), (sf, sb) = rnn.bidirectional_dynamic_rnn(fw, bw, x, [5, 3])
    # entry 1: backward pass reads x[1, 2], x[1, 1], x[1, 0]
    rev = x[1:2, :3].flip(1)
    o_ref, s_ref = rnn.dynamic_rnn(bw, rev)
    torch.testing.assert_close(ob[1:2, :3], o_ref.flip(1))
    torch.testing.assert_close(sb[1:2], s_ref)
    assert torch.all(ob[1, 3:] == 0)
    # stacked version
    out, sfs, sbs = rnn.stack_bidirectional_dynamic_rnn(
        [rnn.BasicLSTMCell(3), rnn.BasicLSTMCell(3)], [rnn.BasicLSTMCell(3), rnn.BasicLSTMCell(2)],
        x, sequence_length=[5, 3])
    assert out.shape == (2, 5, 5) and len(sfs) == 2 and len(sbs) == 2


def test_reverse_sequence():
    x = torch.arange(10.0).reshape(2, 5)
    r = rnn.reverse_sequence(x, torch.tensor([5, 2]), seq_axis=1)
    assert r.tolist() == [[4, 3, 2, 1, 0], [6, 5, 7, 8, 9]]


def test_reverse_sequence_takes_tf_arguments_and_any_axes():
    # tf.reverse_sequence(input, seq_lengths, seq_axis, batch_axis) and TF 1.x's
    # seq_dim / batch_dim spellings; batch_axis defaults to 0
    x = torch.arange(24.0).reshape(2, 3, 4)  # axis 2 is time, axis 0 the batch
    want = x.clone()
    want[0, :, :3] = x[0, :, :3].flip(-1)
    want[1, :, :1] = x[1, :, :1]
    lengths = [3, 1]
    assert torch.equal(rnn.reverse_sequence(x, lengths, 2), want)
    assert torch.equal(rnn.reverse_sequence(input=x, seq_lengths=lengths, seq_axis=2,
                                            batch_axis=0), want)
    assert torch.equal(rnn.reverse_sequence(x, lengths, seq_dim=2, batch_dim=0), want)
    assert torch.equal(rnn.reverse_sequence(x, lengths, seq_axis=-1), want)
    # batch on axis 2, time on axis 1
    y = x.permute(1, 2, 0)  # [3, 4, 2]: axis 1 time, axis 2 batch
    got = rnn.reverse_sequence(y, lengths, seq_axis=1, batch_axis=2)
    assert torch.equal(got, want.permute(1, 2, 0))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(seq_lengths=[1, 2]), ValueError, "seq_axis must be given"),
    (dict(seq_lengths=[1, 2], seq_axis=0), ValueError,
     "seq_axis and batch_axis must differ, both are 0"),
    (dict(seq_lengths=[1, 2], seq_axis=3), ValueError, r"seq_axis must lie in \[-3, 3\)"),
    (dict(seq_lengths=[1, 2, 3], seq_axis=1), ValueError,
     r"seq_lengths must have shape \[batch_size\]=\[2\]"),
    (dict(seq_lengths=[1, 5], seq_axis=1), ValueError, r"seq_lengths values must lie in \[0, 3\]"),
    (dict(seq_lengths=[1.0, 2.0], seq_axis=1), TypeError, "seq_lengths must hold integers"),
    (dict(seq_lengths=[1, 2], seq_axis=1, seq_dim=1), ValueError,
     "give seq_axis or seq_dim, not both"),
])
def test_reverse_sequence_refuses_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        rnn.reverse_sequence(torch.zeros(2, 3, 4), **kwargs)


def test_stack_bidirectional_takes_tf_swap_memory():
    # TF 1.x's signature ends (..., time_major=False, scope=None, swap_memory=False)
    x = torch.randn(2, 4, 3)
    cells = [rnn.GRUCell(2)], [rnn.GRUCell(2)]
    out, _, _ = rnn.stack_bidirectional_dynamic_rnn(*cells, x, None, None, None, [4, 2],
                                                    None, False, None, True)
    ref, _, _ = rnn.stack_bidirectional_dynamic_rnn(*cells, x, sequence_length=[4, 2])
    torch.testing.assert_close(out, ref)
    with pytest.raises(TypeError, match="swap_memory must be a bool, received .no."):
        rnn.stack_bidirectional_dynamic_rnn(*cells, x, swap_memory="no")
    # a misplaced positional argument lands in a TF-only slot: refused, not swallowed
    with pytest.raises(ValueError, match=r"parallel_iterations must be a positive int, "
                                         r"received \[4, 2\]"):
        rnn.dynamic_rnn(rnn.GRUCell(2), x, None, None, None, [4, 2])


def test_compiled_step_matches_eager():
    cell = UserLSTM(4)
    x = torch.randn(2, 5, 3)
    eager, _ = rnn.dynamic_rnn(cell, x)
    compiled, _ = rnn.dynamic_rnn(cell, x, compile_step=True)
    torch.testing.assert_close(eager, compiled, atol=1e-5, rtol=1e-5)


def test_wrappers():
    x = torch.randn(2, 4, 3)
    w = rnn.OutputProjectionWrapper(rnn.BasicLSTMCell(5), 7)
    out, st = rnn.dynamic_rnn(w, x)
    assert out.shape == (2, 4, 7) and st.c.shape == (2, 5)
    inner, _ = rnn.dynamic_rnn(w.cell, x)
    torch.testing.assert_close(out, inner @ w.projection.weight.T + w.projection.bias)
    ip = rnn.InputProjectionWrapper(rnn.GRUCell(4), 6)
    assert rnn.dynamic_rnn(ip, x)[0].shape == (2, 4, 4)
    res = rnn.ResidualWrapper(rnn.BasicRNNCell(3))
    o, _ = rnn.dynamic_rnn(res, x)
    torch.testing.assert_close(o - x, rnn.dynamic_rnn(res.cell, x)[0])
    with pytest.raises(ValueError, match="ResidualWrapper needs inputs and cell outputs"):
        rnn.dynamic_rnn(rnn.ResidualWrapper(rnn.BasicRNNCell(4)), x)


def test_dropout_wrapper_modes():
    cell = rnn.DropoutWrapper(rnn.BasicLSTMCell(50), input_keep_prob=0.5,
                              output_keep_prob=0.5, state_keep_prob=0.5)
    x = torch.randn(8, 6, 10)
    cell.eval()
    a, _ = rnn.dynamic_rnn(cell, x)
    torch.testing.assert_close(a, rnn.dynamic_rnn(cell.cell, x)[0])
    cell.train()
    b, st = rnn.dynamic_rnn(cell, x)
    frac_zero = (b == 0).float().mean().item()
    assert 0.35 < frac_zero < 0.65
    # c is never dropped by the default state filter; h is
    var = rnn.DropoutWrapper(rnn.BasicRNNCell(40), output_keep_prob=0.5,
                             variational_recurrent=True)
    var.train()
    o, _ = rnn.dynamic_rnn(var, torch.randn(4, 5, 3))
    zeros = o == 0
    assert torch.equal(zeros[:, 0], zeros[:, 3])  # same mask at every step
    o2, _ = rnn.dynamic_rnn(var, torch.randn(4, 5, 3))
    assert not torch.equal(o2 == 0, zeros)  # new mask for a new sequence


def test_dropout_state_keeps_lstm_memory():
    cell = rnn.DropoutWrapper(rnn.BasicLSTMCell(64), state_keep_prob=0.5)
    cell.train()
    x = torch.randn(4, 3)
    _, st = cell(x, cell.zero_state(4))
    _, ref = cell.cell(x, cell.zero_state(4))
    torch.testing.assert_close(st.c, ref.c)
    assert (st.h == 0).float().mean() > 0.3


# --- properties --------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 6), min_size=1, max_size=5),
    pad_value=st.sampled_from([0.0, 1e3, float("nan"), -7.5]),
    kind=st.sampled_from(["lstm", "gru", "multi"]),
    fused=st.sampled_from(["auto", False]),
)
def test_padding_never_changes_results(lengths, pad_value, kind, fused):
    torch.manual_seed(1)
    cell = make(kind)
    x = torch.randn(len(lengths), 6, 3)
    lens = torch.tensor(lengths)
    out, state = rnn.dynamic_rnn(cell, x, lens, fused=fused)
    pad = torch.arange(6)[None, :, None] >= lens[:, None, None]
    out2, state2 = rnn.dynamic_rnn(cell, torch.where(pad, pad_value, x), lens, fused=fused)
    torch.testing.assert_close(out, out2)
    for a, b in zip(nest.flatten(state), nest.flatten(state2), strict=True):
        torch.testing.assert_close(a, b)


@settings(max_examples=20, deadline=None)
@given(lengths=st.lists(st.integers(0, 5), min_size=2, max_size=5), data=st.data())
def test_batch_order_never_changes_results(lengths, data):
    torch.manual_seed(2)
    cell = make("lstm")
    x = torch.randn(len(lengths), 5, 3)
    perm = torch.tensor(data.draw(st.permutations(list(range(len(lengths))))))
    lens = torch.tensor(lengths)
    out, st_ = rnn.dynamic_rnn(cell, x, lens)
    out_p, st_p = rnn.dynamic_rnn(cell, x[perm], lens[perm])
    torch.testing.assert_close(out[perm], out_p)
    torch.testing.assert_close(st_.h[perm], st_p.h)
