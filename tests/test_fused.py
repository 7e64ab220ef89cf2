"""The fused-kernel fast path: cuDNN's training-mode rule, the cell protocol, packing, parity.

cuDNN refuses a backward pass through an RNN kernel that ran with ``train=False``; the CPU
kernels accept it.  ``cudnn_rule`` wraps PyTorch's fused entry points so that CPU runs
enforce the GPU's rule.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rnnkit import nest, rnn
from rnnkit.rnn import FusedForm

KERNELS = ("lstm", "gru", "rnn_tanh", "rnn_relu")


class KernelLog:
    """Wraps ``torch._VF.<kernel>``: records calls and enforces cuDNN's training-mode rule."""

    def __init__(self, monkeypatch):
        self.calls: list[dict] = []
        for name in KERNELS:
            monkeypatch.setattr(torch._VF, name, self._wrap(name, getattr(torch._VF, name)))

    def _wrap(self, name, kernel):
        def run(*args):
            packed = isinstance(args[1], torch.Tensor) and args[1].dim() == 1
            train = args[7] if packed else args[6]
            layers = args[5] if packed else args[4]
            bidirectional = args[8] if packed else args[7]
            self.calls.append(dict(kernel=name, packed=packed, train=train, layers=layers,
                                   bidirectional=bidirectional))
            res = kernel(*args)
            if not train and res[0].requires_grad:
                def refuse(grad):
                    raise RuntimeError("cudnn RNN backward can only be called in training mode")
                res[0].register_hook(refuse)
            return res

        return run


@pytest.fixture
def kernels(monkeypatch):
    return KernelLog(monkeypatch)


def make_cell(kind: str, units: int = 5, input_size: int | None = None):
    return {
        "basic_lstm": lambda: rnn.BasicLSTMCell(units, input_size=input_size),
        "lstm_proj": lambda: rnn.LSTMCell(units, num_proj=3, input_size=input_size),
        "lstm_concat_state": lambda: rnn.BasicLSTMCell(units, state_is_tuple=False,
                                                       input_size=input_size),
        "gru": lambda: rnn.GRUCell(units, reset_after=True, input_size=input_size),
        "rnn_tanh": lambda: rnn.BasicRNNCell(units, input_size=input_size),
        "rnn_relu": lambda: rnn.BasicRNNCell(units, activation=torch.relu,
                                             input_size=input_size),
    }[kind]()


CELLS = ["basic_lstm", "lstm_proj", "lstm_concat_state", "gru", "rnn_tanh", "rnn_relu"]
LENGTHS = [None, [6, 0, 3, 6]]


def _grads(module, outputs, state):
    loss = sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum()
               for o in nest.flatten(outputs) + nest.flatten(state))
    params = list(module.parameters())
    return torch.autograd.grad(loss, params)


def _clone(module):
    import copy
    return copy.deepcopy(module)


@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("lengths", LENGTHS)
def test_dynamic_rnn_trains_under_cudnn_rule(kernels, kind, lengths):
    torch.manual_seed(0)
    cell = rnn.MultiRNNCell([make_cell(kind, input_size=4), make_cell(kind)])
    x = torch.randn(4, 6, 4)
    out, state = rnn.dynamic_rnn(cell, x, sequence_length=lengths, fused=True)
    grads = _grads(cell, out, state)
    assert kernels.calls and all(c["train"] for c in kernels.calls)
    # same values and gradients as the step loop
    loop = _clone(cell)
    out2, state2 = rnn.dynamic_rnn(loop, x, sequence_length=lengths, fused=False)
    torch.testing.assert_close(out, out2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state, state2, atol=1e-5, rtol=1e-5)
    for g, g2 in zip(grads, _grads(loop, out2, state2), strict=True):
        torch.testing.assert_close(g, g2, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("lengths", LENGTHS)
def test_bidirectional_trains_under_cudnn_rule(kernels, kind, lengths):
    torch.manual_seed(1)
    fw, bw = make_cell(kind), make_cell(kind)
    x = torch.randn(4, 6, 3, requires_grad=True)
    (of, ob), (sf, sb) = rnn.bidirectional_dynamic_rnn(fw, bw, x, lengths, fused=True)
    assert [c["bidirectional"] for c in kernels.calls] == [True]  # one kernel call
    mods = torch.nn.ModuleList([fw, bw])
    grads = _grads(mods, (of, ob), (sf, sb))
    fw2, bw2 = _clone(fw), _clone(bw)
    (of2, ob2), (sf2, sb2) = rnn.bidirectional_dynamic_rnn(fw2, bw2, x, lengths, fused=False)
    torch.testing.assert_close((of, ob, sf, sb), (of2, ob2, sf2, sb2), atol=1e-5, rtol=1e-5)
    grads2 = _grads(torch.nn.ModuleList([fw2, bw2]), (of2, ob2), (sf2, sb2))
    for g, g2 in zip(grads, grads2, strict=True):
        torch.testing.assert_close(g, g2, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kind", ["basic_lstm", "gru", "lstm_proj"])
@pytest.mark.parametrize("lengths", LENGTHS)
def test_stack_bidirectional_is_one_kernel_call(kernels, kind, lengths):
    torch.manual_seed(2)
    fws = [make_cell(kind) for _ in range(3)]
    bws = [make_cell(kind) for _ in range(3)]
    x = torch.randn(4, 6, 3)
    out, sfs, sbs = rnn.stack_bidirectional_dynamic_rnn(fws, bws, x, sequence_length=lengths)
    assert [(c["layers"], c["bidirectional"]) for c in kernels.calls] == [(3, True)]
    grads = _grads(torch.nn.ModuleList(fws + bws), out, (sfs, sbs))
    fws2, bws2 = [_clone(c) for c in fws], [_clone(c) for c in bws]
    out2, sfs2, sbs2 = rnn.stack_bidirectional_dynamic_rnn(fws2, bws2, x,
                                                           sequence_length=lengths, fused=False)
    torch.testing.assert_close((out, sfs, sbs), (out2, sfs2, sbs2), atol=1e-5, rtol=1e-5)
    grads2 = _grads(torch.nn.ModuleList(fws2 + bws2), out2, (sfs2, sbs2))
    for g, g2 in zip(grads, grads2, strict=True):
        torch.testing.assert_close(g, g2, atol=1e-5, rtol=1e-4)


def test_stack_is_packed_once_and_runs_in_one_call(kernels, monkeypatch):
    from rnnkit.rnn import fused

    packs = []
    original = fused.PackPlan.pack
    monkeypatch.setattr(fused.PackPlan, "pack", lambda self, x: packs.append(1) or
                        original(self, x))
    cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(8, input_size=4)] +
                            [rnn.BasicLSTMCell(8) for _ in range(2)])
    rnn.dynamic_rnn(cell, torch.randn(5, 7, 4), sequence_length=[7, 1, 3, 0, 2])
    assert len(packs) == 1
    assert [(c["kernel"], c["layers"], c["packed"]) for c in kernels.calls] == [("lstm", 3, True)]


def test_mixed_stack_groups_same_sized_layers(kernels):
    cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(8), rnn.BasicLSTMCell(8), rnn.GRUCell(4),
                             rnn.BasicLSTMCell(8), rnn.BasicLSTMCell(6)])
    x = torch.randn(3, 5, 2)
    out, state = rnn.dynamic_rnn(cell, x, sequence_length=[5, 2, 4])
    # the TF-formula GRU runs on the loop; the rest in three fused calls
    assert [(c["kernel"], c["layers"]) for c in kernels.calls] == [("lstm", 2), ("lstm", 1),
                                                                   ("lstm", 1)]
    out2, state2 = rnn.dynamic_rnn(cell, x, sequence_length=[5, 2, 4], fused=False)
    torch.testing.assert_close((out, state), (out2, state2), atol=1e-5, rtol=1e-5)


def test_inference_runs_without_training_mode(kernels):
    cell = rnn.BasicLSTMCell(4, input_size=3)
    with torch.no_grad():
        rnn.dynamic_rnn(cell, torch.randn(2, 3, 3))
    assert [c["train"] for c in kernels.calls] == [False]


@pytest.mark.parametrize(
    "cell, reason",
    [
        (lambda: rnn.LSTMCell(4, use_peepholes=True), "use_peepholes=True"),
        (lambda: rnn.LSTMCell(4, cell_clip=3.0), "cell_clip=3.0"),
        (lambda: rnn.LSTMCell(4, num_proj=2, proj_clip=1.0), "proj_clip=1.0"),
        (lambda: rnn.GRUCell(4), r"GRUCell\(reset_after=False\)"),
        (lambda: rnn.BasicLSTMCell(4, activation=torch.relu), "activation 'relu'"),
        (lambda: rnn.BasicRNNCell(4, activation=torch.sigmoid), "activation 'sigmoid'"),
        (lambda: rnn.LayerNormBasicLSTMCell(4), "layer normalisation"),
        (lambda: rnn.OutputProjectionWrapper(rnn.BasicLSTMCell(4), 3),
         "OutputProjectionWrapper defines no fused_form"),
        (lambda: rnn.MultiRNNCell([rnn.BasicLSTMCell(4), rnn.LSTMCell(4, cell_clip=1.0)]),
         r"layer 1 \(LSTMCell\) cannot run"),
    ],
)
def test_fused_true_names_why_not(cell, reason):
    with pytest.raises(ValueError, match=reason):
        rnn.dynamic_rnn(cell(), torch.randn(2, 3, 3), fused=True)


def test_fused_argument_checked():
    with pytest.raises(ValueError, match='fused must be "auto", True or False, received '
                                         "'yes'"):
        rnn.dynamic_rnn(rnn.GRUCell(2), torch.randn(2, 3, 3), fused="yes")


def test_subclass_that_changes_the_math_runs_its_own_math(kernels):
    class Doubled(rnn.BasicLSTMCell):
        def call(self, inputs, state):
            out, st = super().call(inputs, state)
            return 2 * out, st

    cell = Doubled(4, input_size=3)
    x = torch.randn(2, 5, 3)
    out, _ = rnn.dynamic_rnn(cell, x)
    assert kernels.calls == []
    plain = rnn.BasicLSTMCell(4, input_size=3)
    plain.load_state_dict(cell.state_dict())
    torch.testing.assert_close(out, 2 * rnn.dynamic_rnn(plain, x)[0])
    with pytest.raises(ValueError, match=r"Doubled overrides call\(\)"):
        rnn.dynamic_rnn(cell, x, fused=True)


class UserGRU(rnn.RNNCell):
    """A user cell written TF's way that also describes its fused form."""

    def __init__(self, units):
        super().__init__()
        self.units = units

    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self):
        return self.units

    def build(self, inputs_shape):
        n, d = self.units, inputs_shape[-1]
        self.w_ih = self.add_variable("w_ih", [3 * n, d])
        self.w_hh = self.add_variable("w_hh", [3 * n, n])
        self.b_ih = self.add_variable("b_ih", [3 * n], initializer=0.1)
        self.b_hh = self.add_variable("b_hh", [3 * n], initializer=-0.2)

    def call(self, inputs, state):
        gi = F.linear(inputs, self.w_ih, self.b_ih)
        gh = F.linear(state, self.w_hh, self.b_hh)
        n = self.units
        r = torch.sigmoid(gi[:, :n] + gh[:, :n])
        z = torch.sigmoid(gi[:, n:2 * n] + gh[:, n:2 * n])
        c = torch.tanh(gi[:, 2 * n:] + r * gh[:, 2 * n:])
        h = (1 - z) * c + z * state
        return h, h

    def fused_form(self):
        return FusedForm("gru", self.w_ih.shape[1], self.units, 0,
                         (self.w_ih, self.w_hh, self.b_ih, self.b_hh),
                         lambda s: (s, None), lambda h, c: h)


def test_user_cell_opts_into_the_fused_path(kernels):
    torch.manual_seed(3)
    cell = UserGRU(5)
    x = torch.randn(3, 6, 4)
    out, st = rnn.dynamic_rnn(cell, x, sequence_length=[6, 2, 0], fused=True)
    assert [c["kernel"] for c in kernels.calls] == ["gru"]
    out2, st2 = rnn.dynamic_rnn(cell, x, sequence_length=[6, 2, 0], fused=False)
    torch.testing.assert_close((out, st), (out2, st2), atol=1e-5, rtol=1e-5)


def test_bad_fused_form_is_reported():
    class Bad(UserGRU):
        def fused_form(self):
            return ("gru",)

    with pytest.raises(TypeError, match=r"Bad.fused_form\(\) must return a FusedForm"):
        rnn.dynamic_rnn(Bad(2), torch.randn(2, 3, 3))


def test_all_lengths_zero_and_time_major(kernels):
    cell = rnn.MultiRNNCell([rnn.GRUCell(3, reset_after=True) for _ in range(2)])
    init = tuple(torch.randn(2, 3) for _ in range(2))
    out, st = rnn.dynamic_rnn(cell, torch.randn(4, 2, 3), [0, 0], initial_state=init,
                              time_major=True)
    assert kernels.calls == []
    assert out.shape == (4, 2, 3) and not out.any()
    torch.testing.assert_close(st, init)
    x = torch.randn(4, 2, 3)
    a = rnn.dynamic_rnn(cell, x, [4, 1], initial_state=init, time_major=True)
    b = rnn.dynamic_rnn(cell, x, [4, 1], initial_state=init, time_major=True, fused=False)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)



@pytest.mark.parametrize("time_major", [False, True])
def test_zero_steps_give_empty_outputs_and_the_initial_state(kernels, time_major):
    # TF's dynamic_rnn over max_time 0 (upstream rnn_cell_test's testRawRNNZeroLength)
    cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(3) for _ in range(2)])
    init = tuple(rnn.LSTMStateTuple(torch.randn(2, 3), torch.randn(2, 3)) for _ in range(2))
    x = torch.zeros((0, 2, 4) if time_major else (2, 0, 4))
    out, st = rnn.dynamic_rnn(cell, x, initial_state=init, time_major=time_major, fused=True)
    assert kernels.calls == []
    assert out.shape == ((0, 2, 3) if time_major else (2, 0, 3))
    torch.testing.assert_close(st, init)


@pytest.mark.parametrize("lengths", [None, [0, 0]])
def test_zero_time_steps_run_no_kernel(kernels, lengths):
    """No time steps (TF's ``max_time`` 0): empty outputs, the initial states back, as the
    step loop does; PyTorch's kernels refuse zero steps."""
    init = rnn.LSTMStateTuple(torch.randn(2, 3), torch.randn(2, 3))
    out, st = rnn.dynamic_rnn(rnn.LSTMCell(3), torch.randn(2, 0, 4), lengths,
                              initial_state=init)
    assert kernels.calls == []
    assert out.shape == (2, 0, 3)
    torch.testing.assert_close(st, init)
    out, st_fw, st_bw = rnn.stack_bidirectional_dynamic_rnn(
        [rnn.BasicLSTMCell(3), rnn.BasicLSTMCell(2)], [rnn.BasicLSTMCell(3), rnn.BasicLSTMCell(2)],
        torch.randn(0, 2, 4), sequence_length=lengths, time_major=True, dtype=torch.float32)
    assert kernels.calls == []
    assert out.shape == (0, 2, 4)
    assert not any(s.any() for s in nest.flatten((st_fw, st_bw)))


def test_padding_content_never_matters_on_the_fused_path():
    cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(4) for _ in range(2)])
    x = torch.randn(3, 5, 2)
    lengths = torch.tensor([5, 2, 0])
    pad = torch.arange(5)[None, :, None] >= lengths[:, None, None]
    a = rnn.dynamic_rnn(cell, x, lengths)
    b = rnn.dynamic_rnn(cell, torch.where(pad, float("nan"), x), lengths)
    torch.testing.assert_close(a, b)


def test_dropout_wrapper_fuses_when_inactive(kernels):
    cell = rnn.MultiRNNCell([rnn.DropoutWrapper(rnn.BasicLSTMCell(4), output_keep_prob=0.5)
                             for _ in range(2)])
    x = torch.randn(2, 3, 3)
    cell.eval()
    rnn.dynamic_rnn(cell, x)
    assert [c["layers"] for c in kernels.calls] == [2]
    cell.train()
    rnn.dynamic_rnn(cell, x)
    assert len(kernels.calls) == 1  # active dropout: the step loop
