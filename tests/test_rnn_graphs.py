"""dynamic_rnn(cuda_graph=True): a captured step loop gives the eager loop's results.

On CPU the graphs are emulated (``rnnkit.graph_engine.EMULATE_ON_CPU``): the same watched run,
bindings and cache, with a forward-only graph replayed from recorded ops on the same tensors.
So a value frozen into a graph (a dropout mask, attention memory, a train-mode graph replayed
in eval mode) shows here as a wrong result or a refused capture, not only on a GPU.  The
``cuda`` parameter runs real graphs.
"""

from __future__ import annotations

import copy
import gc
import random
import warnings
import weakref

import pytest
import torch
from conftest import UserLSTM

from rnnkit import graph_engine, nest, rnn, seq2seq
from rnnkit.rnn import graphs

HAS_CUDA = torch.cuda.is_available()
CUDA = pytest.param("cuda", marks=[pytest.mark.cuda,
                                   pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")])
DEVICES = ["cpu", CUDA]


@pytest.fixture(autouse=True)
def _graphs_on_this_machine(monkeypatch):
    monkeypatch.setattr(graph_engine, "EMULATE_ON_CPU", True)
    if HAS_CUDA:
        monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)


def _graphed(cell, *args, **kwargs):
    """``dynamic_rnn(..., cuda_graph=True)``, failing on any warning (an eager fallback)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return rnn.dynamic_rnn(cell, *args, cuda_graph=True, **kwargs)


def _graphs_of(cell):
    entries = graph_engine.cache(cell, "dynamic_rnn")
    return [e.run for e in entries.values() if e is not False]


def _stacked(x):
    """Alignment histories as ``[time, batch, memory_time]`` tensors, to compare."""
    return nest.map_structure(
        lambda t: t.stack() if isinstance(t, seq2seq.AlignmentHistory) else t, x)


def _same(got, want, exact):
    got, want = _stacked(got), _stacked(want)
    if exact:
        for g, w in zip(nest.flatten(got), nest.flatten(want), strict=True):
            assert torch.equal(g, w)
    else:
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_forward_graph_replays_new_inputs_and_lengths(device):
    cell = UserLSTM(6).to(device)
    for seed, lengths in enumerate(([5, 2, 5], [3, 5, 1], None)):
        x = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(seed)).to(device)
        with torch.no_grad():
            want = rnn.dynamic_rnn(cell, x, lengths)
            got = _graphed(cell, x, lengths)
        _same(got, want, exact=device == "cpu")
    assert len(_graphs_of(cell)) == 2  # ragged and full length


@pytest.mark.parametrize("device", DEVICES)
def test_variational_dropout_masks_are_drawn_at_each_replay(device):
    """The masks are drawn inside the graph, not frozen from the capture."""
    cell = rnn.DropoutWrapper(UserLSTM(6), input_keep_prob=0.6, state_keep_prob=0.7,
                              output_keep_prob=0.8, variational_recurrent=True).to(device)
    cell.train()
    x = torch.randn(3, 5, 4, device=device)
    rnn.dynamic_rnn(cell, x)  # build
    for seed in (1, 2, 3):
        with torch.no_grad():
            torch.manual_seed(seed)
            want = rnn.dynamic_rnn(cell, x, [5, 3, 4])
            torch.manual_seed(seed)
            got = _graphed(cell, x, [5, 3, 4])
        if device == "cpu":  # the same draws in the same order: the same result
            _same(got, want, exact=True)
    assert len(_graphs_of(cell)) == 1


@pytest.mark.parametrize("device", DEVICES)
def test_eval_mode_is_not_served_by_a_train_mode_graph(device):
    cell = rnn.DropoutWrapper(UserLSTM(6), input_keep_prob=0.5,
                              output_keep_prob=0.5).to(device)
    x = torch.randn(3, 5, 4, device=device)
    with torch.no_grad():
        cell.train()
        _graphed(cell, x, [5, 3, 4])
        cell.eval()
        got = _graphed(cell, x, [5, 3, 4])
        want = rnn.dynamic_rnn(cell, x, [5, 3, 4])
    _same(got, want, exact=device == "cpu")
    assert len(_graphs_of(cell)) == 2


def _attention_cell(device):
    mech = seq2seq.BahdanauAttention(8, memory_depth=6)
    return seq2seq.AttentionWrapper(UserLSTM(8), mech, attention_layer_size=5).to(device), mech


def _memory(seed, device):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(3, 7, 6, generator=g).to(device),
            torch.tensor([7, 4 + seed % 3, 2], device=device))


@pytest.mark.parametrize("device", DEVICES)
def test_attention_memory_is_an_input_of_the_graph(device):
    """Each call attends the memory bound for it, and gradients reach the memory."""
    cell, mech = _attention_cell(device)
    x = torch.randn(3, 5, 4, device=device)
    mech.setup_memory(*_memory(0, device))
    rnn.dynamic_rnn(cell, x)  # build
    params = list(cell.parameters())
    for seed in (1, 2, 3):
        results = []
        for graph in (False, True):
            memory, lengths = _memory(seed, device)
            memory.requires_grad_(True)
            mech.setup_memory(memory * 1.0, lengths)
            run = _graphed if graph else rnn.dynamic_rnn
            outputs, state = run(cell, x, [5, 2, 4])
            loss = (outputs * torch.linspace(-1, 1, outputs.numel(), device=device)
                    .view_as(outputs)).sum() + state.attention.sum()
            results.append((outputs, state.alignments,
                            torch.autograd.grad(loss, [memory, *params])))
        _same(results[1], results[0], exact=False)
    with torch.no_grad():
        for seed in (4, 5):
            mech.setup_memory(*_memory(seed, device))
            want = rnn.dynamic_rnn(cell, x, [5, 2, 4])
            got = _graphed(cell, x, [5, 2, 4])
            _same(got, want, exact=device == "cpu")
    assert len(_graphs_of(cell)) == 2  # with and without autograd


@pytest.mark.parametrize("device", DEVICES)
def test_alignment_history_is_graphed_with_its_gradients(device):
    """Tacotron-style training logs the alignments: an AttentionWrapper keeping its
    alignment history is captured too, the history rebuilt from the graph's outputs."""
    mech = seq2seq.LuongAttention(8, memory_depth=6)
    cell = seq2seq.AttentionWrapper(UserLSTM(8), mech, attention_layer_size=5,
                                    alignment_history=True).to(device)
    x = torch.randn(3, 5, 4, device=device)
    mech.setup_memory(*_memory(0, device))
    rnn.dynamic_rnn(cell, x)  # build
    params = list(cell.parameters())
    for seed in (1, 2):
        results = []
        for run in (rnn.dynamic_rnn, _graphed):
            memory, lengths = _memory(seed, device)
            mech.setup_memory(memory, lengths)
            outputs, state = run(cell, x, [5, 2, 4])
            history = state.alignment_history
            assert isinstance(history, seq2seq.AlignmentHistory) and history.size() == 5
            stacked = history.stack()  # [time, batch, memory_time]
            weights = torch.linspace(-1, 1, stacked.numel(), device=device).view_as(stacked)
            loss = outputs.sum() + (stacked * weights).sum()
            results.append((outputs, stacked, state.alignments,
                            torch.autograd.grad(loss, params)))
        _same(results[1], results[0], exact=False)
    # a history that already holds steps (a continued state) runs eagerly and says so
    with pytest.warns(UserWarning, match="alignment history that already holds steps"):
        rnn.dynamic_rnn(cell, x, initial_state=state, cuda_graph=True)


class _ContextCell(rnn.RNNCell):
    """A cell that reads a tensor attribute which is neither parameter nor buffer."""

    def __init__(self):
        super().__init__()
        self.inner = rnn.BasicRNNCell(4, input_size=4)
        self.context = None

    @property
    def state_size(self):
        return 4

    @property
    def output_size(self):
        return 4

    def call(self, inputs, state):
        return self.inner.step(inputs + self.context, state)


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("device", DEVICES)
def test_an_undeclared_tensor_read_runs_eagerly_with_a_warning(device, grad):
    cell = _ContextCell().to(device)
    x = torch.randn(3, 5, 4, device=device)
    for _ in range(2):
        cell.context = torch.randn(4, device=device)
        with torch.set_grad_enabled(grad):
            want = rnn.dynamic_rnn(cell, x)
            with pytest.warns(UserWarning, match="neither a parameter, a buffer"):
                got = rnn.dynamic_rnn(cell, x, cuda_graph=True)
        _same(got, want, exact=True)
        graph_engine.cache(cell, "dynamic_rnn").clear()  # the refusal is remembered per key


@pytest.mark.parametrize("make, match", [
    (lambda: rnn.DropoutWrapper(UserLSTM(6), input_keep_prob=0.5, seed=3),
     r"DropoutWrapper\(seed=...\) draws its masks from its own generator"),
    (lambda: rnn.LayerNormBasicLSTMCell(6, dropout_keep_prob=0.5, dropout_prob_seed=3),
     r"LayerNormBasicLSTMCell\(dropout_prob_seed=...\) draws its dropout from its own "
     r"generator"),
    (lambda: seq2seq.AttentionWrapper(rnn.GRUCell(5), seq2seq.BahdanauMonotonicAttention(
        5, memory=torch.randn(3, 6, 5), sigmoid_noise=1.0, sigmoid_noise_seed=3)),
     r"BahdanauMonotonicAttention\(sigmoid_noise_seed=...\) draws its noise from its own "
     r"generator"),
], ids=["DropoutWrapper", "LayerNormBasicLSTMCell", "monotonic attention"])
def test_a_seeded_generator_runs_eagerly_and_says_why(make, match):
    cell = make()
    x = torch.randn(3, 5, 4)
    with torch.no_grad(), pytest.warns(UserWarning, match=match):
        rnn.dynamic_rnn(cell, x, cuda_graph=True)
    assert not _graphs_of(cell)
    cell.eval()  # no draws in eval mode: captured
    with torch.no_grad():
        _graphed(cell, x)
    assert _graphs_of(cell)


def test_graphs_cached_on_a_cell_do_not_keep_it_alive():
    gc.disable()
    try:
        cell, mech = _attention_cell("cpu")
        mech.setup_memory(*_memory(0, "cpu"))
        x = torch.randn(3, 5, 4)
        _graphed(cell, x, [5, 2, 4])  # autograd on: the loop module itself is cached
        with torch.no_grad():
            _graphed(cell, x, [5, 2, 4])  # a forward graph
        entries = _graphs_of(cell)
        assert len(entries) == 2
        # the loop differentiates every parameter, including those made at the first call
        assert {id(p) for p in entries[0].parameters()} == {id(p) for p in cell.parameters()}
        alive = weakref.ref(cell)
        del cell, mech, entries
        assert alive() is None  # freed by reference counting, no cycle through the cache
    finally:
        gc.enable()


@pytest.mark.parametrize("device", DEVICES)
def test_calls_waiting_for_one_backward_each_keep_their_activations(device):
    """A graph replays into one static memory, which its backward reads.  Chunks of one
    sequence (or one encoder over two inputs) run the same shape several times before a
    single backward: each call must keep its own activations, or the gradients are wrong."""
    cell = UserLSTM(6).to(device)
    chunks = [torch.randn(3, 5, 4, device=device) for _ in range(4)]
    rnn.dynamic_rnn(cell, chunks[0])  # sizes the cell
    params = list(cell.parameters())

    def outputs_and_grads(run):
        xs = [x.clone().requires_grad_() for x in chunks]
        state, loss, outs = None, 0.0, []
        for i, x in enumerate(xs):  # the state carries over: chunks 2 to 4 share a graph
            out, state = run(cell, x, [5, 3, 4], initial_state=state)
            loss = loss + (out * (i + 1)).sum()
            outs.append(out)
        return outs, torch.autograd.grad(loss + state.h.sum(), [*xs, *params])

    want = outputs_and_grads(rnn.dynamic_rnn)
    for _ in range(3):  # capture, replay, replay
        _same(outputs_and_grads(_graphed), want, exact=False)


@pytest.mark.parametrize("device", DEVICES)
def test_beyond_the_copies_per_shape_calls_run_eagerly_with_a_warning(device, monkeypatch):
    monkeypatch.setattr(graphs, "MAX_COPIES_PER_SHAPE", 2)
    cell = UserLSTM(6).to(device)
    xs = [torch.randn(3, 5, 4, device=device, requires_grad=True) for _ in range(3)]
    rnn.dynamic_rnn(cell, xs[0])
    want = torch.autograd.grad(sum((rnn.dynamic_rnn(cell, x)[0] * (i + 1)).sum()
                                   for i, x in enumerate(xs)), xs)
    outs = [_graphed(cell, x)[0] for x in xs[:2]]
    with pytest.warns(UserWarning, match="running eagerly, 2 earlier calls of this shape "
                                         "are still waiting for their backward"):
        outs.append(rnn.dynamic_rnn(cell, xs[2], cuda_graph=True)[0])
    got = torch.autograd.grad(sum((o * (i + 1)).sum() for i, o in enumerate(outs)), xs)
    _same(got, want, exact=False)
    assert len(_graphs_of(cell)) == 2
    outs = [_graphed(cell, x)[0] for x in xs[:2]]  # after the backward: graphs free again


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("device", DEVICES)
def test_a_cell_sized_at_its_first_call_is_captured_at_that_call(device, grad):
    """Parameters made by the first run (the inner cell of an attention wrapper is sized
    at its first step) are made eagerly before capturing, and then read by the graph."""
    cell, mech = _attention_cell(device)
    twin = copy.deepcopy(cell)
    for c in (cell, twin):
        c.attention_mechanisms[0].setup_memory(*_memory(0, device))
    x = torch.randn(3, 5, 4, device=device)
    results = []
    for c, run in ((twin, rnn.dynamic_rnn), (cell, _graphed)):
        torch.manual_seed(5)  # the lazily made weights are drawn alike
        with torch.set_grad_enabled(grad):
            results.append(run(c, x, [5, 2, 4]))
    _same(results[1], results[0], exact=device == "cpu")
    assert len(_graphs_of(cell)) == 1
    assert all(torch.equal(a, b) for a, b in zip(cell.parameters(), twin.parameters(),
                                                    strict=True))


@pytest.mark.parametrize("device", DEVICES)
def test_a_moved_cell_is_captured_again(device):
    """A graph reads parameters at the addresses they had when it was captured."""
    cell = UserLSTM(6).to(device)
    x = torch.randn(3, 5, 4, device=device)
    with torch.no_grad():
        rnn.dynamic_rnn(cell, x)
        first = _graphed(cell, x, [5, 3, 4])
        cell.double().float()  # same device and dtype, new storage
        got = _graphed(cell, x, [5, 3, 4])
        want = rnn.dynamic_rnn(cell, x, [5, 3, 4])
    _same(got, want, exact=device == "cpu")
    _same(got, first, exact=device == "cpu")
    (entry,) = graph_engine.cache(cell, "dynamic_rnn").values()
    assert all(t.data_ptr() == ptr for t, ptr in entry.reads)


@pytest.mark.parametrize("device", DEVICES)
def test_bidirectional_drivers_graph_their_loop_layers(device):
    fw, bw = UserLSTM(5).to(device), rnn.LayerNormBasicLSTMCell(5).to(device)
    stack_fw = [UserLSTM(3).to(device), UserLSTM(3).to(device)]
    stack_bw = [UserLSTM(3).to(device), UserLSTM(3).to(device)]
    for seed, lengths in enumerate(([6, 2, 4], [6, 6, 1])):
        x = torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(seed)).to(device)
        with torch.no_grad():
            want = rnn.bidirectional_dynamic_rnn(fw, bw, x, lengths, dtype=x.dtype)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                got = rnn.bidirectional_dynamic_rnn(fw, bw, x, lengths, dtype=x.dtype,
                                                    cuda_graph=True)
            _same(got, want, exact=device == "cpu")
            want = rnn.stack_bidirectional_dynamic_rnn(stack_fw, stack_bw, x,
                                                       sequence_length=lengths)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                got = rnn.stack_bidirectional_dynamic_rnn(stack_fw, stack_bw, x,
                                                          sequence_length=lengths,
                                                          cuda_graph=True)
            _same(got, want, exact=device == "cpu")
    assert all(len(_graphs_of(c)) == 1 for c in (fw, bw, *stack_fw, *stack_bw))


def test_loop_options_are_checked_by_every_driver():
    cell, x = UserLSTM(3), torch.randn(2, 4, 3)
    for run in (lambda **kw: rnn.dynamic_rnn(cell, x, **kw),
                lambda **kw: rnn.bidirectional_dynamic_rnn(cell, cell, x, **kw),
                lambda **kw: rnn.stack_bidirectional_dynamic_rnn([cell], [cell], x, **kw)):
        with pytest.raises(ValueError, match="cuda_graph=True or compile_step=True, not both"):
            run(cuda_graph=True, compile_step=True)
        with pytest.raises(TypeError, match="cuda_graph must be a bool, received 'yes'"):
            run(cuda_graph="yes")


def _random_cell(rng: random.Random, depth: int):
    kind = rng.choice(["user", "layer_norm", "peepholes", "clip", "dropout", "residual",
                       "stack", "projection", "attention"])
    if kind == "user":
        return UserLSTM(5)
    if kind == "layer_norm":
        return rnn.LayerNormBasicLSTMCell(5, dropout_keep_prob=rng.choice([1.0, 0.7]))
    if kind == "peepholes":
        return rnn.LSTMCell(5, use_peepholes=True)
    if kind == "clip":
        return rnn.LSTMCell(5, cell_clip=0.5, num_proj=3)
    if kind == "dropout":
        return rnn.DropoutWrapper(rnn.GRUCell(5), input_keep_prob=0.8, state_keep_prob=0.7,
                                  variational_recurrent=rng.random() < 0.5, input_size=depth)
    if kind == "residual":
        return rnn.ResidualWrapper(rnn.BasicRNNCell(depth))
    if kind == "stack":
        return rnn.MultiRNNCell([UserLSTM(4), rnn.LSTMCell(5, use_peepholes=True)])
    if kind == "projection":
        return rnn.OutputProjectionWrapper(UserLSTM(5), 3)
    memory, lengths = torch.randn(3, 6, 5), [6, 2, 4]
    mechs = [seq2seq.LuongAttention(5, memory, lengths),
             seq2seq.BahdanauMonotonicAttention(5, memory, lengths, sigmoid_noise=1.0)]
    mechs = mechs[:rng.choice([1, 2])] if rng.random() < 0.5 else mechs[-1:]
    return seq2seq.AttentionWrapper(rnn.GRUCell(5), mechs if len(mechs) > 1 else mechs[0],
                                    attention_layer_size=[4] * len(mechs) if len(mechs) > 1
                                    else 4, alignment_history=rng.random() < 0.5)


def test_random_cells_replay_the_eager_loop():
    """Cells, wrappers, train/eval mode, lengths, layout and autograd drawn at random:
    every run is graphed (no warning) and identical to the eager loop, gradients too."""
    rng = random.Random(0)
    for trial in range(60):
        torch.manual_seed(trial)
        cell = _random_cell(rng, 4)
        cell.train(rng.random() < 0.7)
        time_major = rng.random() < 0.3
        x = torch.randn(6, 3, 4) if time_major else torch.randn(3, 6, 4)
        lengths = rng.choice([None, [6, 3, 1], [6, 6, 2], [0, 4, 6]])
        grad = rng.random() < 0.5
        run = dict(sequence_length=lengths, time_major=time_major, dtype=torch.float32)
        rnn.dynamic_rnn(cell, x, **run)  # sizes the cell
        params = [p for p in cell.parameters() if p.requires_grad]
        for seed in range(2):
            results = []
            for step in (rnn.dynamic_rnn, _graphed):
                with torch.set_grad_enabled(grad):
                    torch.manual_seed(seed)
                    outputs, state = step(cell, x.clone().requires_grad_(grad), **run)
                results.append((outputs, state))
                if grad:
                    weights = torch.linspace(-1, 1, outputs.numel()).view_as(outputs)
                    loss = (outputs * weights).sum() + sum(
                        t.sum() for t in nest.flatten(_stacked(state)) if t.requires_grad)
                    results[-1] += tuple(torch.autograd.grad(loss, params))
            _same(results[1][:2], results[0][:2], exact=True)
            _same(results[1][2:], results[0][2:], exact=False)
