"""contrib.rnn's frequency-window LSTMs (``TimeFreqLSTMCell``, ``GridLSTMCell``,
``BidirectionalGridLSTMCell``): closed-form numpy references written from TF 1.15's equations
(``tensorflow/contrib/rnn/python/ops/rnn_cell.py``), run on TF-layout variables with random
values loaded through ``compat`` (so the variable names, shapes and shards are checked too),
one step through the cell and several through ``dynamic_rnn``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit import compat, rnn


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def random_variables(cell, x, state, seed=0):
    """Build ``cell`` on ``(x, state)``, give every TF variable a random value, return them
    as TF names them (relative to the cell's scope)."""
    rnn.build(cell, x, state)
    rng = np.random.default_rng(seed)
    values = {name: rng.uniform(-0.8, 0.8, v.shape).astype(np.float64)
              for name, v in compat.tf_variables_of(cell).items()}
    compat.load_tf_variables(cell, values)
    prefix = cell.tf_name + "/"
    return {k[len(prefix):]: v for k, v in values.items()}


def kernel(v, name):
    """TF's sharded kernel ``name_0, name_1, ...`` as one matrix (row blocks in order)."""
    shards = []
    while f"{name}_{len(shards)}" in v:
        shards.append(v[f"{name}_{len(shards)}"])
    assert shards, name
    return np.concatenate(shards, 0)


def tf_names(cell):
    prefix = cell.tf_name + "/"
    return {k[len(prefix):]: tuple(v.shape) for k, v in compat.tf_variables_of(cell).items()}


# ------------------------------------------------------------------------ numpy references

def np_time_freq(x, state, v, h, fs, skip, peep=False, clip=None, forget_bias=1.0):
    """TimeFreqLSTMCell: ``x [batch, D]``, ``state [batch, 2Hn]`` -> (output, new state)."""
    w, bias = kernel(v, "W"), v["B"]
    n = int((x.shape[1] - fs) / skip) + 1
    m_freq = np.zeros((x.shape[0], h))
    outs, states = [], []
    for k in range(n):
        xk = x[:, k * skip:k * skip + fs]
        c_prev = state[:, 2 * k * h:(2 * k + 1) * h]
        m_prev = state[:, (2 * k + 1) * h:(2 * k + 2) * h]
        i, j, f, o = np.split(np.concatenate([xk, m_prev, m_freq], 1) @ w + bias, 4, 1)
        if peep:
            f_g = sigmoid(f + forget_bias + v["W_F_diag"] * c_prev)
            i_g = sigmoid(i + v["W_I_diag"] * c_prev)
        else:
            f_g, i_g = sigmoid(f + forget_bias), sigmoid(i)
        c = f_g * c_prev + i_g * np.tanh(j)
        if clip is not None:
            c = np.clip(c, -clip, clip)
        m = sigmoid(o + (v["W_O_diag"] * c if peep else 0)) * np.tanh(c)
        m_freq = m
        outs.append(m)
        states += [c, m]
    return np.concatenate(outs, 1), np.concatenate(states, 1)


def np_grid(x, fields, v, h, blocks, fs, skip, *, coupled=False, share=False, peep=False,
            clip=None, forget_bias=1.0, directions=(("", 0, False),)):
    """GridLSTMCell (and the bidirectional one: ``directions`` of ``(scope prefix, slice
    offset, reversed)``): ``fields`` the time states ``[c, m]`` per window, directions then
    blocks then windows in order -> (output, new fields)."""
    outs, states, at = [], [], 0
    for pre, offset, rev in directions:
        xp = np.pad(x, ((0, 0), (max(0, -offset), max(0, offset))))
        shift = max(0, offset)
        for b, (start, n) in enumerate(blocks):
            windows = [xp[:, start + shift + k * skip:start + shift + k * skip + fs]
                       for k in range(n)]
            if rev:
                windows = windows[::-1]
            wf, bf = kernel(v, f"{pre}W_f_{b}"), v[f"{pre}B_f_{b}"]
            wt, bt = (wf, bf) if share else (kernel(v, f"{pre}W_t_{b}"), v[f"{pre}B_t_{b}"])

            def peeps(gate, lstm, c_freq, c_time, b=b, pre=pre):
                if not peep:
                    return 0.0
                lstm = "freq" if share else lstm
                return (v[f"{pre}W_{gate}_diag_{lstm}f_{b}"] * c_freq
                        + v[f"{pre}W_{gate}_diag_{lstm}t_{b}"] * c_time)

            def split(z):
                if coupled:
                    i, j, o = np.split(z, 3, 1)
                    return i, j, None, o
                return np.split(z, 4, 1)

            c_freq = m_freq = np.zeros((x.shape[0], h))
            for xk in windows:
                c_time, m_time = fields[at], fields[at + 1]
                at += 2
                z = np.concatenate([xk, m_time, m_freq], 1)
                i_f, j_f, f_f, o_f = split(z @ wf + bf)
                i_t, j_t, f_t, o_t = split(z @ wt + bt)
                ig_f = sigmoid(i_f + peeps("I", "freq", c_freq, c_time))
                fg_f = 1 - ig_f if coupled else sigmoid(
                    f_f + forget_bias + peeps("F", "freq", c_freq, c_time))
                new_c_freq = fg_f * c_freq + ig_f * np.tanh(j_f)
                ig_t = sigmoid(i_t + peeps("I", "time", c_freq, c_time))
                fg_t = 1 - ig_t if coupled else sigmoid(
                    f_t + forget_bias + peeps("F", "time", c_freq, c_time))
                new_c_time = fg_t * c_time + ig_t * np.tanh(j_t)
                if clip is not None:
                    new_c_freq = np.clip(new_c_freq, -clip, clip)
                    new_c_time = np.clip(new_c_time, -clip, clip)
                m_freq = sigmoid(o_f + peeps("O", "freq", new_c_freq, new_c_time)) \
                    * np.tanh(new_c_freq)
                m_time = sigmoid(o_t + peeps("O", "time", new_c_freq, new_c_time)) \
                    * np.tanh(new_c_time)
                c_freq = new_c_freq
                outs += [m_time, m_freq]
                states += [new_c_time, m_time]
    return np.concatenate(outs, 1), states


def _fields(state):
    return [s.numpy() for s in state] if isinstance(state, tuple) else None


def _sequence_reference(step, x_seq, state):
    """Run ``step(x [batch, D], state) -> (out, state)`` over ``x_seq [batch, T, D]``."""
    outs = []
    for t in range(x_seq.shape[1]):
        out, state = step(x_seq[:, t], state)
        outs.append(out)
    return np.stack(outs, 1), state


# ------------------------------------------------------------------------ TimeFreqLSTMCell

@pytest.mark.parametrize("peep,clip,shards", [(False, None, 1), (True, 0.7, 3)])
def test_time_freq_lstm_cell_matches_tf_equations(peep, clip, shards):
    h, fs, skip, depth = 3, 3, 2, 8  # windows at 0, 2, 4: int((8 - 3) / 2) + 1 = 3
    cell = rnn.TimeFreqLSTMCell(h, use_peepholes=peep, cell_clip=clip, num_unit_shards=shards,
                                forget_bias=0.3, feature_size=fs, frequency_skip=skip,
                                dtype=torch.float64)
    x = torch.randn(2, depth, dtype=torch.float64)
    state = torch.randn(2, 2 * h * 3, dtype=torch.float64)
    v = random_variables(cell, x, state)
    assert cell.state_size == 18 and cell.output_size == 9 and cell.num_shifts == 3

    def step(xa, s):
        return np_time_freq(xa, s, v, h, fs, skip, peep, clip, 0.3)

    want_out, want_state = step(x.numpy(), state.numpy())
    with torch.no_grad():
        out, new = cell(x, state)
    np.testing.assert_allclose(out.numpy(), want_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(new.numpy(), want_state, rtol=1e-10, atol=1e-12)

    seq = torch.randn(2, 4, depth, dtype=torch.float64)
    with torch.no_grad():
        outs, final = rnn.dynamic_rnn(cell, seq, initial_state=state)
    want_outs, want_final = _sequence_reference(step, seq.numpy(), state.numpy())
    np.testing.assert_allclose(outs.numpy(), want_outs, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(final.numpy(), want_final, rtol=1e-10, atol=1e-12)


def test_time_freq_lstm_cell_tf_variables_and_sizes():
    cell = rnn.TimeFreqLSTMCell(4, use_peepholes=True, num_unit_shards=2, feature_size=3,
                                input_size=7)
    assert cell.tf_name == "time_freq_lstm_cell"
    # TF: _get_concat_variable("W", [feature_size + 2H, 4H]) in 2 shards (6 + 5 rows), B,
    # then W_F_diag, W_I_diag, W_O_diag [H]
    assert tf_names(cell) == {"W_0": (6, 16), "W_1": (5, 16), "B": (16,),
                              "W_F_diag": (4,), "W_I_diag": (4,), "W_O_diag": (4,)}
    assert cell.num_shifts == 5 and cell.state_size == 40 and cell.output_size == 20
    zeros = cell.zero_state(2, torch.float32)
    np.testing.assert_array_equal(zeros.numpy(), np.zeros((2, 40)))
    np.testing.assert_array_equal(compat.tf_variables_of(cell)["time_freq_lstm_cell/B"],
                                  np.zeros(16))


def test_time_freq_lstm_cell_dynamic_rnn_zero_state_and_sequence_length():
    cell = rnn.TimeFreqLSTMCell(2, feature_size=2, dtype=torch.float64)
    seq = torch.randn(3, 5, 4, dtype=torch.float64)
    lengths = torch.tensor([5, 2, 3])
    v = random_variables(cell, seq[:, 0], torch.zeros(3, 12, dtype=torch.float64))
    padded = seq.clone()
    for r, n in enumerate(lengths.tolist()):
        padded[r, n:] = 1e3  # padding must change nothing
    with torch.no_grad():
        outs, final = rnn.dynamic_rnn(cell, padded, sequence_length=lengths,
                                      dtype=torch.float64)
    for r, n in enumerate(lengths.tolist()):
        want_outs, want_final = _sequence_reference(
            lambda xa, s: np_time_freq(xa, s, v, 2, 2, 1), seq[r:r + 1, :n].numpy(),
            np.zeros((1, 12)))
        np.testing.assert_allclose(outs[r, :n].numpy(), want_outs[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(outs[r, n:].numpy(), np.zeros((5 - n, 6)))
        np.testing.assert_allclose(final[r].numpy(), want_final[0], rtol=1e-10, atol=1e-12)


def test_time_freq_lstm_cell_initializer_is_applied():
    cell = rnn.TimeFreqLSTMCell(2, use_peepholes=True, initializer=0.25, feature_size=2,
                                input_size=3)
    v = {k.split("/", 1)[1]: a for k, a in compat.tf_variables_of(cell).items()}
    for name in ("W_0", "W_F_diag", "W_I_diag", "W_O_diag"):
        np.testing.assert_array_equal(v[name], np.full(v[name].shape, 0.25))
    np.testing.assert_array_equal(v["B"], np.zeros(8))


def test_time_freq_lstm_cell_refusals():
    with pytest.raises(ValueError, match="feature_size.*received None"):
        rnn.TimeFreqLSTMCell(2)
    with pytest.raises(ValueError, match="frequency_skip"):
        rnn.TimeFreqLSTMCell(2, feature_size=2, frequency_skip=0)
    with pytest.raises(TypeError, match="use_peepholes"):
        rnn.TimeFreqLSTMCell(2, feature_size=2, use_peepholes="yes")
    with pytest.raises(ValueError, match="cell_clip"):
        rnn.TimeFreqLSTMCell(2, feature_size=2, cell_clip=-1.0)
    with pytest.raises(TypeError, match="forget_bias"):
        rnn.TimeFreqLSTMCell(2, feature_size=2, forget_bias="1")
    with pytest.raises(ValueError, match="Too many shards"):
        rnn.TimeFreqLSTMCell(1, feature_size=1, num_unit_shards=4)
    with pytest.raises(ValueError, match="num_unit_shards"):
        rnn.TimeFreqLSTMCell(1, feature_size=1, num_unit_shards=0)
    cell = rnn.TimeFreqLSTMCell(2, feature_size=3)
    with pytest.raises(ValueError, match="depends on the input depth.*input_size="):
        cell.zero_state(2, torch.float32)
    with pytest.raises(ValueError, match=r"input depth \(2\) must be at least feature_size"):
        cell(torch.zeros(1, 2), torch.zeros(1, 4))
    cell = rnn.TimeFreqLSTMCell(2, feature_size=3, input_size=4)
    with pytest.raises(ValueError, match=r"must have shape \(1, 8\)"):
        cell(torch.zeros(1, 4), torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"inputs must have shape \[batch, 4\]"):
        cell(torch.zeros(1, 5), torch.zeros(1, 8))
    with pytest.raises(TypeError, match="unexpected keyword"):
        rnn.TimeFreqLSTMCell(2, feature_size=2, state_is_tuple=True)


# ------------------------------------------------------------------------ GridLSTMCell

GRID_CONFIGS = [  # coupled, share, peep, clip, shards
    (False, False, False, None, 1),
    (False, False, True, 0.6, 2),
    (False, True, True, None, 1),
    (True, False, True, 0.6, 3),
    (True, True, False, None, 2),
    (True, True, True, 0.6, 1),
]


@pytest.mark.parametrize("coupled,share,peep,clip,shards", GRID_CONFIGS)
@pytest.mark.parametrize("with_lists", [False, True])
def test_grid_lstm_cell_matches_tf_equations(coupled, share, peep, clip, shards, with_lists):
    h, fs, skip = 2, 2, 2
    if with_lists:  # blocks 0..5 (2 windows) and 4..9 (2 windows, overlapping the first)
        depth, blocks = 10, [(0, 2), (4, 2)]
        kw = dict(num_frequency_blocks=[2, 2], start_freqindex_list=[0, 4],
                  end_freqindex_list=[5, 9])
    else:  # int((7 - 2) / 2) + 1 = 3 windows
        depth, blocks = 7, [(0, 3)]
        kw = dict(num_frequency_blocks=[3])
    cell = rnn.GridLSTMCell(h, use_peepholes=peep, share_time_frequency_weights=share,
                            cell_clip=clip, num_unit_shards=shards, forget_bias=0.4,
                            feature_size=fs, frequency_skip=skip,
                            couple_input_forget_gates=coupled, dtype=torch.float64, **kw)
    total = sum(n for _, n in blocks)
    state = cell.state_tuple_type(*torch.randn(2 * total, 3, h, dtype=torch.float64))
    x = torch.randn(3, depth, dtype=torch.float64)
    v = random_variables(cell, x, state)

    def step(xa, fields):
        return np_grid(xa, fields, v, h, blocks, fs, skip, coupled=coupled, share=share,
                       peep=peep, clip=clip, forget_bias=0.4)

    want_out, want_fields = step(x.numpy(), _fields(state))
    with torch.no_grad():
        out, new = cell(x, state)
    assert type(new) is cell.state_tuple_type
    np.testing.assert_allclose(out.numpy(), want_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.stack([s.numpy() for s in new]), np.stack(want_fields),
                               rtol=1e-10, atol=1e-12)

    seq = torch.randn(3, 3, depth, dtype=torch.float64)
    with torch.no_grad():
        outs, final = rnn.dynamic_rnn(cell, seq, initial_state=state)
    want_outs, want_final = _sequence_reference(step, seq.numpy(), _fields(state))
    np.testing.assert_allclose(outs.numpy(), want_outs, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.stack([s.numpy() for s in final]), np.stack(want_final),
                               rtol=1e-10, atol=1e-12)


def _grid_names(prefix, b, rows, h, coupled, share, peep, shards=(None,)):
    """What TF's ``GridLSTMCell._compute`` creates for block ``b`` (rnn_cell.py r1.15)."""
    g = 3 if coupled else 4
    out = {}
    for lstm in ("f",) if share else ("f", "t"):
        for i, n in enumerate(shards if shards != (None,) else (rows,)):
            out[f"{prefix}W_{lstm}_{b}_{i}"] = (n, g * h)
        out[f"{prefix}B_{lstm}_{b}"] = (g * h,)
    if peep:
        for which in ("freq",) if share else ("freq", "time"):
            gates = ("I", "O") if coupled else ("F", "I", "O")
            for gate in gates:
                for src in ("f", "t"):
                    out[f"{prefix}W_{gate}_diag_{which}{src}_{b}"] = (h,)
    return out


def test_grid_lstm_cell_tf_variables():
    cell = rnn.GridLSTMCell(3, use_peepholes=True, feature_size=2, frequency_skip=1,
                            num_frequency_blocks=[1, 2], start_freqindex_list=[0, 1],
                            end_freqindex_list=[2, 4], num_unit_shards=3, input_size=4)
    assert cell.tf_name == "grid_lstm_cell"
    want = {**_grid_names("", 0, 8, 3, False, False, True, (3, 3, 2)),
            **_grid_names("", 1, 8, 3, False, False, True, (3, 3, 2))}
    assert tf_names(cell) == want
    assert "W_F_diag_timet_1" in want and "W_t_1_2" in want and len(want) == 2 * (6 + 2 + 12)
    coupled = rnn.GridLSTMCell(2, use_peepholes=True, share_time_frequency_weights=True,
                               couple_input_forget_gates=True, feature_size=2,
                               frequency_skip=1, num_frequency_blocks=[2], input_size=3)
    assert tf_names(coupled) == {"W_f_0_0": (6, 6), "B_f_0": (6,), "W_I_diag_freqf_0": (2,),
                                 "W_I_diag_freqt_0": (2,), "W_O_diag_freqf_0": (2,),
                                 "W_O_diag_freqt_0": (2,)}
    biases = {k: a for k, a in compat.tf_variables_of(cell).items() if "/B_" in k}
    assert len(biases) == 4
    for a in biases.values():
        np.testing.assert_array_equal(a, np.zeros(12))
    init = rnn.GridLSTMCell(2, use_peepholes=True, initializer=-0.5, feature_size=2,
                            frequency_skip=1, num_frequency_blocks=[1], input_size=2)
    for name, a in compat.tf_variables_of(init).items():
        want_value = 0.0 if "/B_" in name else -0.5
        np.testing.assert_array_equal(a, np.full(a.shape, want_value))


def test_grid_lstm_cell_state_tuple_fields_and_sizes():
    cell = rnn.GridLSTMCell(2, feature_size=2, frequency_skip=1, num_frequency_blocks=[2, 1],
                            start_freqindex_list=[0, 3], end_freqindex_list=[3, 5])
    assert cell.state_tuple_type.__name__ == "GridLSTMStateTuple"
    assert cell.state_tuple_type._fields == (
        "state_f00_b00_c", "state_f00_b00_m", "state_f01_b00_c", "state_f01_b00_m",
        "state_f00_b01_c", "state_f00_b01_m")
    assert cell.state_size == cell.state_tuple_type(2, 2, 2, 2, 2, 2)
    assert cell.output_size == 12
    zeros = cell.zero_state(4, torch.float32)
    assert type(zeros) is cell.state_tuple_type
    np.testing.assert_array_equal(np.stack([z.numpy() for z in zeros]), np.zeros((6, 4, 2)))
    flat = rnn.GridLSTMCell(2, feature_size=2, frequency_skip=1, num_frequency_blocks=[3],
                            state_is_tuple=False)
    assert flat.state_tuple_type is None and flat.state_size == 12 and flat.output_size == 12
    with pytest.raises(ValueError, match="state_is_tuple=False with 2 frequency blocks"):
        rnn.GridLSTMCell(2, feature_size=2, frequency_skip=1, num_frequency_blocks=[2, 1],
                         start_freqindex_list=[0, 3], end_freqindex_list=[3, 5],
                         state_is_tuple=False)


@pytest.mark.parametrize("with_lists", [False, True])
def test_grid_lstm_cell_concatenated_state_agrees_with_tuple(with_lists):
    kw = dict(num_frequency_blocks=[4], start_freqindex_list=[0],
              end_freqindex_list=[5]) if with_lists else dict(num_frequency_blocks=[3])
    make = lambda t: rnn.GridLSTMCell(  # noqa: E731
        3, use_peepholes=True, feature_size=2, frequency_skip=1, state_is_tuple=t,
        dtype=torch.float64, input_size=5 if with_lists else 4, **kw)
    tup, cat = make(True), make(False)
    rng = np.random.default_rng(3)
    values = {k: rng.uniform(-0.8, 0.8, a.shape) for k, a in compat.tf_variables_of(tup).items()}
    compat.load_tf_variables(tup, values)
    compat.load_tf_variables(cat, values)
    depth = 5 if with_lists else 4
    seq = torch.randn(2, 4, depth, dtype=torch.float64)
    fields = torch.randn(8 if with_lists else 6, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        out_t, fin_t = rnn.dynamic_rnn(tup, seq, initial_state=tup.state_tuple_type(*fields))
        out_c, fin_c = rnn.dynamic_rnn(cat, seq, initial_state=torch.cat(list(fields), 1))
    np.testing.assert_allclose(out_c.numpy(), out_t.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fin_c.numpy(), torch.cat(list(fin_t), 1).numpy(),
                               rtol=1e-12, atol=1e-12)


def test_grid_lstm_cell_dynamic_rnn_sequence_length():
    cell = rnn.GridLSTMCell(2, feature_size=2, frequency_skip=1, num_frequency_blocks=[3],
                            use_peepholes=True, dtype=torch.float64)
    seq = torch.randn(3, 4, 4, dtype=torch.float64)
    lengths = torch.tensor([1, 4, 2])
    v = random_variables(cell, seq[:, 0], cell.zero_state(3, torch.float64))
    padded = seq.clone()
    for r, n in enumerate(lengths.tolist()):
        padded[r, n:] = float("nan")  # padding must change nothing
    with torch.no_grad():
        outs, final = rnn.dynamic_rnn(cell, padded, sequence_length=lengths,
                                      dtype=torch.float64)
    for r, n in enumerate(lengths.tolist()):
        want_outs, want_final = _sequence_reference(
            lambda xa, f: np_grid(xa, f, v, 2, [(0, 3)], 2, 1, peep=True),
            seq[r:r + 1, :n].numpy(), [np.zeros((1, 2))] * 6)
        np.testing.assert_allclose(outs[r, :n].numpy(), want_outs[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(outs[r, n:].numpy(), np.zeros((4 - n, 12)))
        np.testing.assert_allclose(np.stack([s[r].numpy() for s in final]),
                                   np.concatenate(want_final), rtol=1e-10, atol=1e-12)


def test_grid_lstm_cell_refusals():
    kw = dict(feature_size=2, frequency_skip=1)
    with pytest.raises(ValueError, match="Must specify num_frequency_blocks"):
        rnn.GridLSTMCell(2, **kw)
    with pytest.raises(ValueError, match="feature_size.*received None"):
        rnn.GridLSTMCell(2, frequency_skip=1, num_frequency_blocks=[1])
    with pytest.raises(ValueError, match="frequency_skip.*received None"):
        rnn.GridLSTMCell(2, feature_size=2, num_frequency_blocks=[1])
    with pytest.raises(TypeError, match="num_frequency_blocks must be a non-empty list"):
        rnn.GridLSTMCell(2, num_frequency_blocks=3, **kw)
    with pytest.raises(ValueError, match=r"num_frequency_blocks\[1\]"):
        rnn.GridLSTMCell(2, num_frequency_blocks=[1, 0], start_freqindex_list=[0, 2],
                         end_freqindex_list=[2, 4], **kw)
    with pytest.raises(ValueError, match="Length of num_frequency_blocks is not 1"):
        rnn.GridLSTMCell(2, num_frequency_blocks=[1, 1], **kw)
    with pytest.raises(ValueError, match="end_freqindex_list is given"):
        rnn.GridLSTMCell(2, num_frequency_blocks=[1], end_freqindex_list=[2], **kw)
    with pytest.raises(ValueError, match="Length of start and end freqindex_list"):
        rnn.GridLSTMCell(2, num_frequency_blocks=[1], start_freqindex_list=[0], **kw)
    with pytest.raises(ValueError, match="Length of num_frequency_blocks .2. is not equal"):
        rnn.GridLSTMCell(2, num_frequency_blocks=[1, 1], start_freqindex_list=[0],
                         end_freqindex_list=[2], **kw)
    with pytest.raises(ValueError, match="requires 3 but gets 2"):
        rnn.GridLSTMCell(2, num_frequency_blocks=[2], start_freqindex_list=[0],
                         end_freqindex_list=[4], **kw)
    with pytest.raises(ValueError, match="fewer than feature_size"):
        rnn.GridLSTMCell(2, num_frequency_blocks=[1], start_freqindex_list=[3],
                         end_freqindex_list=[4], **kw)
    with pytest.raises(ValueError, match=r"start_freqindex_list\[0\]"):
        rnn.GridLSTMCell(2, num_frequency_blocks=[1], start_freqindex_list=[-1],
                         end_freqindex_list=[1], **kw)
    with pytest.raises(TypeError, match="couple_input_forget_gates"):
        rnn.GridLSTMCell(2, num_frequency_blocks=[1], couple_input_forget_gates=1, **kw)
    with pytest.raises(TypeError, match="share_time_frequency_weights"):
        rnn.GridLSTMCell(2, num_frequency_blocks=[1], share_time_frequency_weights=None, **kw)
    with pytest.raises(TypeError, match="state_is_tuple"):
        rnn.GridLSTMCell(2, num_frequency_blocks=[1], state_is_tuple="no", **kw)
    with pytest.raises(ValueError, match="Too many shards"):
        rnn.GridLSTMCell(1, num_frequency_blocks=[1], num_unit_shards=5, **kw)
    cell = rnn.GridLSTMCell(2, num_frequency_blocks=[3], **kw)
    with pytest.raises(ValueError, match="requires 2 but gets 3.*depth 3"):
        cell(torch.zeros(1, 3), cell.zero_state(1, torch.float32))
    listed = rnn.GridLSTMCell(2, num_frequency_blocks=[1], start_freqindex_list=[2],
                              end_freqindex_list=[4], **kw)
    with pytest.raises(ValueError, match=r"reads inputs 2..4, past the input depth \(3\)"):
        listed(torch.zeros(1, 3), listed.zero_state(1, torch.float32))
    built = rnn.GridLSTMCell(2, num_frequency_blocks=[2], input_size=3, **kw)
    with pytest.raises(ValueError, match="state_f01_b00_m"):
        built(torch.zeros(1, 3), built.zero_state(1, torch.float32)[:3]
              + (torch.zeros(1, 3),))


# ------------------------------------------------------------------------ bidirectional

@pytest.mark.parametrize("offset", [0, 1, -1, 3])
@pytest.mark.parametrize("coupled,share,peep", [(False, False, True), (True, True, False)])
def test_bidirectional_grid_lstm_cell_matches_tf_equations(offset, coupled, share, peep):
    h, fs, skip, depth = 2, 2, 1, 4
    cell = rnn.BidirectionalGridLSTMCell(
        h, use_peepholes=peep, share_time_frequency_weights=share, cell_clip=0.9,
        num_unit_shards=2, forget_bias=0.2, feature_size=fs, frequency_skip=skip,
        num_frequency_blocks=[2, 1], start_freqindex_list=[0, 2], end_freqindex_list=[3, 4],
        couple_input_forget_gates=coupled, backward_slice_offset=offset, dtype=torch.float64)
    state = cell.state_tuple_type(*torch.randn(12, 2, h, dtype=torch.float64))
    x = torch.randn(2, depth, dtype=torch.float64)
    v = random_variables(cell, x, state)

    def step(xa, fields):
        return np_grid(xa, fields, v, h, [(0, 2), (2, 1)], fs, skip, coupled=coupled,
                       share=share, peep=peep, clip=0.9, forget_bias=0.2,
                       directions=(("fwd/", 0, False), ("bwd/", offset, True)))

    want_out, want_fields = step(x.numpy(), _fields(state))
    with torch.no_grad():
        out, new = cell(x, state)
    assert type(new) is cell.state_tuple_type
    np.testing.assert_allclose(out.numpy(), want_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.stack([s.numpy() for s in new]), np.stack(want_fields),
                               rtol=1e-10, atol=1e-12)
    seq = torch.randn(2, 3, depth, dtype=torch.float64)
    with torch.no_grad():
        outs, final = rnn.dynamic_rnn(cell, seq, initial_state=state,
                                      sequence_length=torch.tensor([3, 2]))
    want_outs, want_final = _sequence_reference(step, seq[:1].numpy(),
                                                [f[:1] for f in _fields(state)])
    np.testing.assert_allclose(outs[:1].numpy(), want_outs, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.stack([s[:1].numpy() for s in final]), np.stack(want_final),
                               rtol=1e-10, atol=1e-12)
    want_outs, want_final = _sequence_reference(step, seq[1:, :2].numpy(),
                                                [f[1:] for f in _fields(state)])
    np.testing.assert_allclose(outs[1:, :2].numpy(), want_outs, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(outs[1, 2].numpy(), np.zeros(24))
    np.testing.assert_allclose(np.stack([s[1:].numpy() for s in final]), np.stack(want_final),
                               rtol=1e-10, atol=1e-12)


def test_bidirectional_grid_lstm_cell_layout_and_refusals():
    cell = rnn.BidirectionalGridLSTMCell(2, feature_size=2, frequency_skip=1,
                                         num_frequency_blocks=[2], use_peepholes=True,
                                         couple_input_forget_gates=True, input_size=3)
    assert cell.tf_name == "bidirectional_grid_lstm_cell"
    one = _grid_names("", 0, 6, 2, True, False, True)
    assert tf_names(cell) == {f"{d}/{k}": s for d in ("fwd", "bwd") for k, s in one.items()}
    assert cell.state_tuple_type.__name__ == "BidirectionalGridLSTMStateTuple"
    assert cell.state_tuple_type._fields == (
        "fwd_state_f00_b00_c", "fwd_state_f00_b00_m", "fwd_state_f01_b00_c",
        "fwd_state_f01_b00_m", "bwd_state_f00_b00_c", "bwd_state_f00_b00_m",
        "bwd_state_f01_b00_c", "bwd_state_f01_b00_m")
    assert cell.output_size == 16
    with pytest.raises(TypeError, match="unexpected keyword"):
        rnn.BidirectionalGridLSTMCell(2, feature_size=2, frequency_skip=1,
                                      num_frequency_blocks=[2], state_is_tuple=False)
    with pytest.raises(TypeError, match="backward_slice_offset"):
        rnn.BidirectionalGridLSTMCell(2, feature_size=2, frequency_skip=1,
                                      num_frequency_blocks=[2], backward_slice_offset=0.5)
    with pytest.raises(ValueError, match="Must specify num_frequency_blocks"):
        rnn.BidirectionalGridLSTMCell(2, feature_size=2, frequency_skip=1)


def test_grid_states_pickle_and_unbuilt_repr():
    import pickle

    cell = rnn.BidirectionalGridLSTMCell(2, feature_size=2, frequency_skip=1,
                                         num_frequency_blocks=[1])
    state = cell.zero_state(1, torch.float32)
    back = pickle.loads(pickle.dumps(state))
    assert type(back) is cell.state_tuple_type
    assert back._fields == state._fields
    np.testing.assert_array_equal(np.stack([b.numpy() for b in back]), np.zeros((4, 1, 2)))
    assert "set by the input depth" in repr(rnn.TimeFreqLSTMCell(2, feature_size=2))
    assert "state_size=8" in repr(rnn.TimeFreqLSTMCell(2, feature_size=2, input_size=3))


def test_grid_lstm_cell_takes_numpy_block_lists():
    lists = dict(num_frequency_blocks=[2, 1], start_freqindex_list=[0, 3],
                 end_freqindex_list=[3, 5])
    a = rnn.GridLSTMCell(2, feature_size=2, frequency_skip=1, **lists)
    b = rnn.GridLSTMCell(2, feature_size=2, frequency_skip=1,
                         **{k: np.array(v) for k, v in lists.items()})
    assert a.state_tuple_type is b.state_tuple_type and b.output_size == 12
