"""Driver inputs beyond ``[batch, time, depth]``, as TF's ``dynamic_rnn`` takes them: steps of
any rank (``[batch, time, height, width]`` for a convolutional cell of one's own) and
structures of tensors (a tuple or NamedTuple of inputs per step)."""

from typing import NamedTuple

import pytest
import torch

from rnnkit import graph_engine, rnn


class FrameCell(rnn.RNNCell):
    """A cell of one's own whose step inputs are frames ``[batch, height, width]``."""

    def __init__(self, units: int):
        super().__init__()
        self.n = units
        self.declare_variables("kernel", "recurrent")

    @property
    def state_size(self):
        return self.n

    @property
    def output_size(self):
        return self.n

    def build(self, inputs_shape):
        self.kernel = self.add_variable("kernel", [inputs_shape[1] * inputs_shape[2], self.n])
        self.recurrent = self.add_variable("recurrent", [self.n, self.n])

    def call(self, inputs, state):
        h = torch.tanh(inputs.flatten(1) @ self.kernel + state @ self.recurrent)
        return h, h


class Step(NamedTuple):
    frame: torch.Tensor  # [batch, 2, 3]
    features: torch.Tensor  # [batch, 4]


class TwoInputCell(rnn.RNNCell):
    """A cell reading a :class:`Step` of two inputs at each step; as in TF, ``build`` gets
    the structure of their shapes."""

    def __init__(self, units: int):
        super().__init__()
        self.n = units
        self.declare_variables("frame_kernel", "features_kernel", "recurrent")

    @property
    def state_size(self):
        return self.n

    @property
    def output_size(self):
        return self.n

    def build(self, inputs_shape):
        frame, features = inputs_shape.frame, inputs_shape.features  # [batch, 2, 3], [batch, 4]
        self.frame_kernel = self.add_variable("frame_kernel", [frame[1] * frame[2], self.n])
        self.features_kernel = self.add_variable("features_kernel", [features[1], self.n])
        self.recurrent = self.add_variable("recurrent", [self.n, self.n])

    def call(self, inputs, state):
        h = torch.tanh(inputs.frame.flatten(1) @ self.frame_kernel
                       + inputs.features @ self.features_kernel + state @ self.recurrent)
        return h, h


def reference(cell, steps, lengths, batch):
    """TF's semantics step by step: zero outputs past each length, the state frozen there."""
    state = torch.zeros(batch, cell.n)
    outputs = []
    for t, x in enumerate(steps):
        out, new = cell.call(x, state)
        live = (t < lengths)[:, None]
        outputs.append(torch.where(live, out, 0.0))
        state = torch.where(live, new, state)
    return torch.stack(outputs, 1), state


def _frames(batch=3, time=5, nan_padding_from=None):
    torch.manual_seed(0)
    x = torch.randn(batch, time, 2, 3)
    lengths = torch.tensor([5, 3, 0])[:batch]
    if nan_padding_from is not None:
        for b, n in enumerate(lengths.tolist()):
            x[b, n:] = float("nan")
    return x, lengths


def test_steps_of_any_rank_follow_tf_semantics_and_padding_never_leaks():
    cell = FrameCell(4)
    x, lengths = _frames(nan_padding_from=True)
    out, state = rnn.dynamic_rnn(cell, x, sequence_length=lengths)
    clean = torch.nan_to_num(x, nan=0.0)
    want_out, want_state = reference(cell, clean.unbind(1), lengths, 3)
    torch.testing.assert_close(out, want_out)
    torch.testing.assert_close(state, want_state)
    assert out.shape == (3, 5, 4) and not out.isnan().any()
    # time-major, and the same cell for both directions of a bidirectional run
    tm, _ = rnn.dynamic_rnn(cell, x.transpose(0, 1), sequence_length=lengths, time_major=True)
    torch.testing.assert_close(tm.transpose(0, 1), want_out)
    (fw, bw), (_, sbw) = rnn.bidirectional_dynamic_rnn(cell, cell, x, sequence_length=lengths)
    torch.testing.assert_close(fw, want_out)
    rev = rnn.reverse_sequence(clean, lengths, seq_axis=1)
    want_bw, want_sbw = reference(cell, rev.unbind(1), lengths, 3)
    torch.testing.assert_close(bw, rnn.reverse_sequence(want_bw, lengths, seq_axis=1))
    torch.testing.assert_close(sbw, want_sbw)


def test_structured_inputs_reach_the_cell_step_by_step():
    cell = TwoInputCell(4)
    frames, lengths = _frames()
    features = torch.randn(3, 5, 4, requires_grad=True)
    out, state = rnn.dynamic_rnn(cell, Step(frames, features), sequence_length=lengths)
    steps = [Step(frames[:, t], features[:, t]) for t in range(5)]
    want_out, want_state = reference(cell, steps, lengths, 3)
    torch.testing.assert_close(out, want_out)
    torch.testing.assert_close(state, want_state)
    # gradients reach every input leaf, and none past a length
    grad, = torch.autograd.grad(out.sum(), features)
    assert grad[0].abs().sum() > 0 and grad[1, 3:].abs().sum() == 0 and grad[2].abs().sum() == 0
    # a plain tuple and time-major inputs work the same
    tm, _ = rnn.dynamic_rnn(cell, Step(frames.transpose(0, 1), features.transpose(0, 1)),
                            sequence_length=lengths, time_major=True)
    torch.testing.assert_close(tm.transpose(0, 1), want_out)
    # static_rnn: one structure per step
    outs, st = rnn.static_rnn(cell, steps, sequence_length=lengths, dtype=torch.float32)
    torch.testing.assert_close(torch.stack(outs, 1), want_out)
    torch.testing.assert_close(st, want_state)


def test_structured_inputs_are_checked():
    cell = TwoInputCell(4)
    frames, _ = _frames()
    with pytest.raises(ValueError, match=r"inputs leaves must agree on \[batch, max_time\] and "
                                         r"device: leaf 0 has shape \(3, 5, 2, 3\)"):
        rnn.dynamic_rnn(cell, Step(frames, torch.randn(3, 4, 4)))
    with pytest.raises(ValueError, match=r"inputs leaf 1 must have rank 3 \[batch, max_time, "
                                         r"depth\] or more, received shape \(3, 4\)"):
        rnn.dynamic_rnn(cell, Step(frames, torch.randn(3, 4)))
    with pytest.raises(ValueError, match=r"fused=True needs inputs of one float tensor \[batch, "
                                         r"time, depth\]; received a Step of 2 tensors"):
        rnn.dynamic_rnn(cell, Step(frames, torch.randn(3, 5, 4)), fused=True)
    with pytest.raises(ValueError, match=r"inputs\[1\] has shape \(2, 4\), inputs\[0\] has "
                                         r"\(3, 4\)"):
        rnn.static_rnn(cell, [Step(frames[:, 0], torch.randn(3, 4)),
                              Step(frames[:, 1], torch.randn(2, 4))], dtype=torch.float32)


@pytest.mark.parametrize("make", [
    lambda: rnn.LSTMCell(4), lambda: rnn.GRUCell(4), lambda: rnn.LayerNormBasicLSTMCell(4),
    lambda: rnn.MultiRNNCell([rnn.LSTMCell(4)]), lambda: rnn.InputProjectionWrapper(
        rnn.LSTMCell(3), 5)])
def test_built_in_cells_name_what_they_take(make):
    frames, _ = _frames()
    with pytest.raises(TypeError, match=r"takes one tensor \[batch, depth\] as inputs, received "
                                        r"a Step of 2 tensors"):
        rnn.dynamic_rnn(make(), Step(frames, torch.randn(3, 5, 4)))
    with pytest.raises(ValueError, match=r"inputs must have shape \[batch, 3\], received "
                                         r"\(3, 2, 3\)"):
        rnn.dynamic_rnn(make(), frames)


def test_captured_loops_take_one_tensor_and_say_so(monkeypatch):
    monkeypatch.setattr(graph_engine, "EMULATE_ON_CPU", True)
    cell = TwoInputCell(4)
    frames, lengths = _frames()
    inputs = Step(frames, torch.randn(3, 5, 4))
    with pytest.warns(UserWarning, match="running eagerly, the inputs are a structure of "
                                         "tensors"):
        out, _ = rnn.dynamic_rnn(cell, inputs, sequence_length=lengths, cuda_graph=True)
    torch.testing.assert_close(out, rnn.dynamic_rnn(cell, inputs, sequence_length=lengths)[0])
    # steps of higher rank are captured as one tensor: same outputs as eager
    frame_cell = FrameCell(4)
    eager, _ = rnn.dynamic_rnn(frame_cell, frames, sequence_length=lengths)
    for _ in range(2):
        graphed, _ = rnn.dynamic_rnn(frame_cell, frames, sequence_length=lengths,
                                     cuda_graph=True)
        torch.testing.assert_close(graphed, eager)


def test_layers_after_a_step_loop_layer_still_fuse(monkeypatch):
    # frames -> a cell of one's own -> built-in LSTM layers: once the data is
    # [batch, time, depth] again, the LSTM layers run on the fused kernels (one call)
    from rnnkit.rnn import planner as plan

    calls = []
    real = plan.run_layers
    monkeypatch.setattr(plan, "run_layers",
                        lambda layers, *a, **k: calls.append(len(layers)) or real(layers, *a,
                                                                                   **k))
    torch.manual_seed(0)
    cell = rnn.MultiRNNCell([FrameCell(4), rnn.LSTMCell(3), rnn.LSTMCell(3)])
    frames, lengths = _frames(nan_padding_from=True)
    out, state = rnn.dynamic_rnn(cell, frames, sequence_length=lengths)
    assert calls == [2]
    loop_out, loop_state = rnn.dynamic_rnn(cell, frames, sequence_length=lengths, fused=False)
    assert calls == [2]
    torch.testing.assert_close(out, loop_out)
    torch.testing.assert_close(state, loop_state)
    assert not out.isnan().any()
