"""The same results on every device present, under autocast, and in the applications.

Parametrised over ``cpu`` and, where PyTorch sees a GPU, ``cuda`` (marked ``cuda``: run them
alone with ``pytest -m cuda``).  The reference is always the step loop on the CPU in float32;
TF32 is off on the GPU so that float32 means float32.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from conftest import UserLSTM
from torch import nn

from rnnkit import graph_engine, nest, rnn, seq2seq

HAS_CUDA = torch.cuda.is_available()
CUDA = pytest.param("cuda", marks=[pytest.mark.cuda,
                                   pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")])
DEVICES = ["cpu", CUDA]
LENGTHS = [7, 0, 3, 7, 1]


@pytest.fixture(autouse=True)
def _float32_means_float32():
    if not HAS_CUDA:
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _stack(kind: str, depth: int = 4):
    make = {
        "lstm": lambda i: rnn.BasicLSTMCell(6, input_size=i),
        "lstm_proj": lambda i: rnn.LSTMCell(6, num_proj=4, input_size=i),
        "gru": lambda i: rnn.GRUCell(6, reset_after=True, input_size=i),
        "rnn": lambda i: rnn.BasicRNNCell(6, input_size=i),
    }[kind]
    first = make(depth)
    return rnn.MultiRNNCell([first, make(first.output_size)])


def _loss(outputs, state):
    leaves = nest.flatten(outputs) + nest.flatten(state)
    return sum((t.float() * torch.linspace(-1, 1, t.numel(), device=t.device).view_as(t)).sum()
               for t in leaves)


def _run_and_grad(module, fn):
    outputs, state = fn()
    grads = torch.autograd.grad(_loss(outputs, state), list(module.parameters()))
    return outputs, state, grads


def _assert_close_cpu(got, want, atol=1e-5, rtol=1e-4):
    got = nest.map_structure(lambda t: t.detach().float().cpu(), got)
    want = nest.map_structure(lambda t: t.detach().float().cpu(), want)
    torch.testing.assert_close(got, want, atol=atol, rtol=rtol)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["lstm", "lstm_proj", "gru", "rnn"])
def test_stack_same_on_every_path_and_device(device, kind):
    torch.manual_seed(0)
    ref_cell = _stack(kind)
    x = torch.randn(5, 7, 4)
    want = _run_and_grad(ref_cell, lambda: rnn.dynamic_rnn(ref_cell, x, LENGTHS, fused=False))
    xd = x.to(device)
    for fused in ("auto", False):
        cell = copy.deepcopy(ref_cell).to(device)
        got = _run_and_grad(cell, lambda c=cell, f=fused: rnn.dynamic_rnn(
            c, xd, torch.tensor(LENGTHS, device=device), fused=f))
        _assert_close_cpu(got, want)


@pytest.mark.parametrize("device", DEVICES)
def test_bidirectional_same_on_every_device(device):
    torch.manual_seed(1)
    cells = [rnn.BasicLSTMCell(5, input_size=4) for _ in range(2)]
    stack_fw = [rnn.GRUCell(3, reset_after=True, input_size=d) for d in (4, 6)]
    stack_bw = [rnn.GRUCell(3, reset_after=True, input_size=d) for d in (4, 6)]
    ref = nn.ModuleList(cells + stack_fw + stack_bw)
    x = torch.randn(5, 7, 4)

    def both(mods, xx, fused):
        c = list(mods)
        bi = rnn.bidirectional_dynamic_rnn(c[0], c[1], xx, LENGTHS, fused=fused)
        st = rnn.stack_bidirectional_dynamic_rnn(c[2:4], c[4:6], xx, sequence_length=LENGTHS,
                                                 fused=fused)
        return (bi[0], st[0]), (bi[1], st[1], st[2])

    want = _run_and_grad(ref, lambda: both(ref, x, False))
    mods = copy.deepcopy(ref).to(device)
    got = _run_and_grad(mods, lambda: both(mods, x.to(device), "auto"))
    _assert_close_cpu(got, want)


def _attention_decoder(device, vocab=7, units=8, batch=3):
    torch.manual_seed(4)
    memory = torch.randn(batch, 5, 6)
    mech = seq2seq.BahdanauAttention(units, memory_depth=6)
    cell = seq2seq.AttentionWrapper(rnn.GRUCell(units, reset_after=True, input_size=4 + 6),
                                    mech, attention_layer_size=6, alignment_history=True)
    emb = nn.Embedding(vocab, 4)
    out = nn.Linear(6, vocab)
    mods = nn.ModuleList([cell, emb, out]).to(device)
    return mods, memory.to(device), torch.tensor([5, 2, 4], device=device)


def _beam(mods, memory, mem_len, beam=3):
    cell, emb, out = mods
    cell.attention_mechanisms[0].setup_memory(seq2seq.tile_batch(memory, beam),
                                              seq2seq.tile_batch(mem_len, beam))
    start = torch.zeros(memory.shape[0], dtype=torch.long, device=memory.device)
    dec = seq2seq.BeamSearchDecoder(cell, emb, start, 1, cell.zero_state(memory.shape[0] * beam),
                                    beam, output_layer=out, length_penalty_weight=0.6)
    res, state, lengths = seq2seq.dynamic_decode(dec, maximum_iterations=6)
    return res, state, lengths


@pytest.mark.parametrize("device", DEVICES)
def test_beam_search_with_attention_same_on_every_device(device):
    mods, memory, mem_len = _attention_decoder("cpu")
    with torch.no_grad():
        want, want_state, want_len = _beam(mods, memory, mem_len)
        dmods = copy.deepcopy(mods).to(device)
        got, got_state, got_len = _beam(dmods, memory.to(device), mem_len.to(device))
    assert got.predicted_ids.device.type == device
    assert torch.equal(got.predicted_ids.cpu(), want.predicted_ids)
    assert torch.equal(got_len.cpu(), want_len)
    _assert_close_cpu(got.beam_search_decoder_output.scores,
                      want.beam_search_decoder_output.scores)
    _assert_close_cpu(got_state.cell_state.alignment_history.stack(),
                      want_state.cell_state.alignment_history.stack())


AUTOCAST = [
    pytest.param("cpu", torch.bfloat16, id="cpu-bf16"),
    pytest.param("cuda", torch.bfloat16, id="cuda-bf16",
                 marks=[pytest.mark.cuda, pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")]),
    pytest.param("cuda", torch.float16, id="cuda-fp16",
                 marks=[pytest.mark.cuda, pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")]),
]
#: |autocast - float32| bound for the small, O(1)-valued networks below: bf16 keeps 8 bits
#: of mantissa (relative error 2^-8 per rounding), accumulated over a few steps and layers
AUTOCAST_ATOL = {torch.bfloat16: 6e-2, torch.float16: 1e-2}


@pytest.mark.parametrize("device, dtype", AUTOCAST)
def test_autocast_close_to_float32(device, dtype):
    torch.manual_seed(5)
    atol = AUTOCAST_ATOL[dtype]
    stack = _stack("lstm").to(device)
    x = torch.randn(5, 7, 4, device=device)
    lengths = torch.tensor(LENGTHS, device=device)
    mods, memory, mem_len = _attention_decoder(device)
    cell, emb, out = mods
    targets = torch.randint(0, 7, (3, 4), device=device)
    weights = (torch.arange(4, device=device)[None] < torch.tensor([4, 2, 3],
                                                                   device=device)[:, None])

    def run():
        fused_out, fused_state = rnn.dynamic_rnn(stack, x, lengths)
        loop_out, _ = rnn.dynamic_rnn(stack, x, lengths, fused=False)
        cell.attention_mechanisms[0].setup_memory(memory, mem_len)
        helper = seq2seq.TrainingHelper(emb(targets), torch.tensor([4, 2, 3], device=device))
        dec = seq2seq.BasicDecoder(cell, helper, cell.zero_state(3), out)
        logits = seq2seq.dynamic_decode(dec, impute_finished=True)[0].rnn_output
        loss = seq2seq.sequence_loss(logits, targets, weights.float())
        return fused_out, fused_state, loop_out, logits, loss

    want = run()
    with torch.autocast(device, dtype=dtype):
        got = run()
        beam, _, _ = _beam(mods, memory, mem_len)
    assert got[-1].dtype == torch.float32  # the loss is reduced in float32
    for g, w in zip(got, want, strict=True):
        for a, b in zip(nest.flatten(g), nest.flatten(w), strict=True):
            assert torch.isfinite(a).all()
            torch.testing.assert_close(a.float(), b.float(), atol=atol, rtol=atol)
    assert torch.isfinite(beam.beam_search_decoder_output.scores).all()
    got[-1].backward()  # the mixed-precision graph trains
    assert all(p.grad is not None and torch.isfinite(p.grad).all()
               for p in (*cell.parameters(), *out.parameters()))


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_cudnn_weights_laid_out_once_without_warning():
    stack = rnn.MultiRNNCell([rnn.BasicLSTMCell(16, input_size=8),
                              rnn.BasicLSTMCell(16)]).cuda()
    x = torch.randn(4, 5, 8, device="cuda")
    rnn.dynamic_rnn(stack, x, [5, 3, 2, 1])[0].sum().backward()
    weights = [p for c in stack.cells for p in (c.weight_ih, c.weight_hh, c.bias)]
    storages = {w.untyped_storage().data_ptr() for w in weights}
    assert len(storages) == 1  # one cuDNN buffer for the whole stack
    ptrs = [w.data_ptr() for w in weights]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            rnn.dynamic_rnn(stack, x, [5, 3, 2, 1])[0].sum().backward()
    assert [w.data_ptr() for w in weights] == ptrs  # not laid out again
    assert not [w for w in caught if "contiguous chunk" in str(w.message)]
    opt = torch.optim.Adam(stack.parameters(), lr=0.1)
    before = stack.cells[0].weight_ih.detach().clone()
    opt.step()
    assert not torch.equal(before, stack.cells[0].weight_ih)  # the optimizer updates the views


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_applications_train_on_cuda(tmp_path):
    from rnnkit.apps import charrnn, mnist_rows, translate

    corpus = tmp_path / "corpus.txt"  # any text: the GPU machine may lack the play corpus
    corpus.write_text("HAMLET\n" + "To be, or not to be, that is the question.\n" * 300)
    cfg = charrnn.CharRNNConfig(corpus=str(corpus), hidden_size=64, batch_size=16,
                                seq_length=32, steps=30, eval_every=30, checkpoint_every=30,
                                sample_length=40)
    summary = charrnn.train(cfg, tmp_path / "char", device="cuda", progress=False,
                            log=lambda *_: None)
    vals = [v for _, v in summary["val_history"]]
    assert vals and all(v == v for v in vals)
    model, vocab, _ = charrnn.load_run(tmp_path / "char", device="cuda")
    assert len(charrnn.sample(model, vocab, "HAMLET", 20, 0.8, seed=1)) == 26
    result = mnist_rows.train(epochs=2, log=lambda *_: None, device="cuda")
    assert result.test_accuracy > 0.5
    tcfg = translate.TranslateConfig(steps=20, hidden=64, embedding=32, batch_size=32,
                                     max_words=12, vocab_size=1500, beam_width=3, max_decode=15)
    scores = translate.train(tcfg, tmp_path / "tr", log=lambda *_: None, progress=False,
                             device="cuda")
    assert 0.0 <= scores["bleu_beam"] <= 100.0
    model, src, tgt, cfg = translate.load_model(tmp_path / "tr", device="cuda")
    hyps, _ = translate.translate(model, ["And God said"], src, tgt, 3, 10)
    assert isinstance(hyps[0], str)


@pytest.mark.skipif(HAS_CUDA, reason="checks the message on a machine without CUDA")
def test_device_cuda_without_cuda_is_one_error_line():
    import subprocess
    import sys

    for args in (["mnist", "--epochs", "1"], ["translate", "train", "--steps", "1"],
                 ["charrnn", "train", "--steps", "1"]):
        res = subprocess.run([sys.executable, "-m", "rnnkit", *args, "--device", "cuda",
                              "--out" if args[0] != "mnist" else "--seed", "/nonexistent"
                              if args[0] != "mnist" else "0"],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 2, res.stderr
        assert res.stderr.strip().splitlines() == [
            res.stderr.strip().splitlines()[0]] and "CUDA is not available" in res.stderr


def test_cuda_graph_falls_back_with_a_warning_on_cpu():
    cell = rnn.MultiRNNCell([UserLSTM(4), UserLSTM(4)])
    x = torch.randn(2, 3, 4)
    with pytest.warns(UserWarning, match="running eagerly, the inputs are not on a CUDA"):
        got = rnn.dynamic_rnn(cell, x, [3, 1], cuda_graph=True)
    _assert_close_cpu(got, rnn.dynamic_rnn(cell, x, [3, 1]))
    with pytest.raises(ValueError, match="cuda_graph=True or compile_step=True, not both"):
        rnn.dynamic_rnn(cell, x, cuda_graph=True, compile_step=True)


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_cuda_graph_user_cell_same_outputs_and_gradients():
    torch.manual_seed(8)
    cell = rnn.MultiRNNCell([UserLSTM(16), UserLSTM(16)]).cuda()
    emb = nn.Embedding(11, 8).cuda()
    ids = torch.randint(0, 11, (5, 9), device="cuda")
    rnn.dynamic_rnn(cell, emb(ids))  # build, then copy: both cells hold the same weights
    eager_cell = copy.deepcopy(cell)
    for lengths in ([9, 4, 9, 1, 7], [9, 2, 3, 9, 5], None):  # two patterns share max 9
        x = emb(ids)  # comes out of an autograd graph: gradients must reach the embedding
        want = _run_and_grad(nn.ModuleList([eager_cell, emb]),
                             lambda xx=x, ll=lengths: rnn.dynamic_rnn(eager_cell, xx, ll))
        x = emb(ids)
        got = _run_and_grad(nn.ModuleList([cell, emb]),
                            lambda xx=x, ll=lengths: rnn.dynamic_rnn(cell, xx, ll,
                                                                     cuda_graph=True))
        _assert_close_cpu(got, want, atol=1e-6, rtol=1e-5)
    assert len(graph_engine.cache(cell.cells[0], "dynamic_rnn")) == 2  # ragged + full length
    with torch.no_grad():
        a = rnn.dynamic_rnn(cell, emb(ids), [9, 4, 9, 1, 7], cuda_graph=True)
        b = rnn.dynamic_rnn(eager_cell, emb(ids), [9, 4, 9, 1, 7])
    _assert_close_cpu(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_seeded_dropout_draws_the_same_masks_whatever_the_global_state(device):
    cell = rnn.DropoutWrapper(UserLSTM(6), input_keep_prob=0.5, output_keep_prob=0.6,
                              seed=7).to(device)
    x = torch.randn(3, 5, 4, device=device)
    cell.eval()
    rnn.dynamic_rnn(cell, x)  # build (its weights come from the global state)
    runs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        twin = copy.deepcopy(cell)  # the seed's generator state, untouched
        twin.train()
        runs.append(rnn.dynamic_rnn(twin, x)[0])
    assert torch.equal(runs[0], runs[1])
    cell.eval()
    assert not torch.equal(runs[0], rnn.dynamic_rnn(cell, x)[0])  # dropout did act


def test_a_function_embedding_decides_where_greedy_and_sampling_decode():
    """An embedding given as a function (TF's ``embedding_lookup`` closure) says nothing of
    its device; the vectors it returns do.  ``initialize()`` must hand the decode one device
    (finished flags, inputs, and the sampling generator), not CPU flags beside CUDA inputs.
    ``meta`` stands in for a GPU here: it is another device, on any machine."""
    table = torch.randn(10, 4, device="meta")
    for helper in (seq2seq.GreedyEmbeddingHelper(lambda ids: table[ids], [1, 2, 3], 0),
                   seq2seq.SampleEmbeddingHelper(lambda ids: table[ids], [1, 2, 3], 0)):
        finished, inputs = helper.initialize()
        assert inputs.device.type == "meta"
        assert finished.device.type == "meta" and helper.start_tokens.device.type == "meta"
    start = torch.tensor([1, 2, 3], device="meta")  # given on the device: kept there
    helper = seq2seq.GreedyEmbeddingHelper(lambda ids: table[ids], start, 0)
    assert helper.initialize()[0].device.type == "meta"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_function_embedding_samples_on_cuda():
    table = torch.randn(10, 4, device="cuda")
    cell = rnn.GRUCell(10, input_size=4).cuda()
    for helper in (seq2seq.GreedyEmbeddingHelper(lambda ids: table[ids], [1, 2, 3], 0),
                   seq2seq.SampleEmbeddingHelper(lambda ids: table[ids], [1, 2, 3], 0, seed=1)):
        decoder = seq2seq.BasicDecoder(cell, helper, cell.zero_state(3, torch.float32))
        outputs, _, lengths = seq2seq.dynamic_decode(decoder, maximum_iterations=5)
        assert outputs.sample_id.is_cuda and lengths.is_cuda


class _DevicesOfOps(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the device of every tensor an op makes."""

    def __init__(self):
        super().__init__()
        self.devices: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in torch.utils._pytree.tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self.devices.add(leaf.device.type)
        return out


@pytest.mark.parametrize("kind", ["BahdanauMonotonicAttention", "LuongMonotonicAttention"])
def test_monotonic_noise_is_drawn_on_the_memorys_device(kind):
    """Training noise drawn on the CPU and copied to the GPU at every step costs a transfer
    per step and keeps the step out of CUDA graphs; ``meta`` stands in for the GPU."""
    mech = getattr(seq2seq, kind)(4, memory=torch.randn(2, 5, 4, device="meta"),
                                  sigmoid_noise=1.0)
    mech.train()
    query, state = torch.randn(2, 4, device="meta"), mech.initial_state(2)
    mech(query, state)  # the first call builds the query layer
    with _DevicesOfOps() as ops:
        alignments, _ = mech(query, state)
    assert alignments.device.type == "meta" and ops.devices == {"meta"}


def test_seeded_monotonic_noise_is_reproducible_and_unchanged_on_cpu():
    def alignments(seed):
        torch.manual_seed(0)
        mech = seq2seq.LuongMonotonicAttention(4, memory=torch.randn(2, 5, 4), sigmoid_noise=1.0,
                                               sigmoid_noise_seed=seed)
        mech.train()
        query = torch.randn(2, 4)
        return [mech(query, mech.initial_state(2))[0] for _ in range(2)]

    first, again = alignments(3), alignments(3)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], first[1])  # the generator advances between steps
    torch.manual_seed(0)
    mech = seq2seq.LuongMonotonicAttention(4, memory=torch.randn(2, 5, 4), sigmoid_noise=1.0)
    mech.train()
    query = torch.randn(2, 4)
    score = mech.score(query, mech.initial_state(2))
    noise = torch.randn(score.shape, generator=torch.Generator().manual_seed(3))
    want = seq2seq.monotonic_attention(torch.sigmoid(score + noise), mech.initial_state(2),
                                       "parallel")
    torch.testing.assert_close(first[0], want)  # the CPU stream of the seed, as before


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_seeded_monotonic_noise_on_cuda():
    def alignments():
        torch.manual_seed(0)
        mech = seq2seq.BahdanauMonotonicAttention(
            4, memory=torch.randn(2, 5, 4, device="cuda"), sigmoid_noise=1.0,
            sigmoid_noise_seed=3)
        mech.train()
        query = torch.randn(2, 4, device="cuda")
        return mech(query, mech.initial_state(2))[0]

    assert torch.equal(alignments(), alignments())
