"""dynamic_decode(cuda_graph=True): replayed graphs give the eager decode's results.

On CPU the graphs are emulated (graph_engine.EMULATE_ON_CPU): the ops of each captured
chunk are recorded and replayed on the same tensors, with a CUDA graph's semantics (Python
values baked in, the same memory read again).  A binding the machinery missed therefore
shows here as a wrong result, not only on a GPU.  The `cuda` tests run real graphs.
"""

from __future__ import annotations

import random
import warnings

import pytest
import torch
from torch import nn

from rnnkit import graph_engine, nest, rnn, seq2seq
from rnnkit.seq2seq import decode_graphs

HAS_CUDA = torch.cuda.is_available()
VOCAB, END = 7, 1


@pytest.fixture
def emulated(monkeypatch):
    monkeypatch.setattr(graph_engine, "EMULATE_ON_CPU", True)


class Model:
    """An attention decoder and the decoders the tests run on it."""

    def __init__(self, device="cpu", cell=None):
        torch.manual_seed(0)
        self.device = device
        self.mech = seq2seq.BahdanauAttention(8, memory_depth=6).to(device)
        inner = cell or rnn.LSTMCell(8, input_size=4 + 6)
        self.cell = seq2seq.AttentionWrapper(inner, self.mech, attention_layer_size=6,
                                             alignment_history=True).to(device)
        self.emb = nn.Embedding(VOCAB, 4).to(device)
        self.out = nn.Linear(6, VOCAB).to(device)
        self.plain = rnn.LSTMCell(8, input_size=4).to(device)  # hoists its projection
        self.plain_out = nn.Linear(8, VOCAB).to(device)
        self.fed = rnn.GRUCell(8, input_size=8 + 4).to(device)  # fed its outputs + aux

    def data(self, seed):
        g = torch.Generator().manual_seed(seed)
        d = self.device
        return dict(memory=torch.randn(2, 5, 6, generator=g).to(d),
                    lengths=torch.tensor([5, 2 + seed % 3], device=d),
                    start=torch.randint(0, VOCAB, (2,), generator=g).to(d),
                    inputs=torch.randn(2, 6, 4, generator=g).to(d),
                    seq=torch.tensor([6, 1 + seed % 5], device=d),
                    fed=torch.randn(2, 6, 8, generator=g).to(d))

    def decoder(self, name, seed):
        d = self.data(seed)
        self.mech.setup_memory(d["memory"], d["lengths"])
        zero = self.cell.zero_state(2)
        basic = lambda helper, cell=self.cell, out=self.out, init=zero: (  # noqa: E731
            seq2seq.BasicDecoder(cell, helper, init, out))
        if name == "training":
            return basic(seq2seq.TrainingHelper(d["inputs"], d["seq"]))
        if name == "greedy":
            return basic(seq2seq.GreedyEmbeddingHelper(self.emb, d["start"], END))
        if name == "greedy_projected":  # projected rows flow through `inputs`
            return basic(seq2seq.GreedyEmbeddingHelper(self.emb, d["start"], END),
                         cell=self.plain, out=self.plain_out,
                         init=self.plain.zero_state(2, device=self.device))
        if name == "sample":
            return basic(seq2seq.SampleEmbeddingHelper(self.emb, d["start"], END, seed=seed,
                                                       top_k=4, softmax_temperature=0.7))
        if name == "scheduled_embedding":
            return basic(seq2seq.ScheduledEmbeddingTrainingHelper(
                d["inputs"], d["seq"], self.emb, 0.5, seed=seed, scheduling_seed=seed + 1))
        if name == "scheduled_output":
            return basic(seq2seq.ScheduledOutputTrainingHelper(
                d["fed"], d["seq"], 0.5, seed=seed, auxiliary_inputs=d["inputs"]),
                cell=self.fed, out=None, init=self.fed.zero_state(2, device=self.device))
        tiled = dict(length_penalty_weight=0.6)
        if name == "beam_coverage":
            tiled = dict(coverage_penalty_weight=0.3, length_penalty_weight=0.2)
        if name == "beam_constraints":
            tiled = dict(min_length=2, no_repeat_ngram_size=2, length_penalty_weight=1.0,
                         length_normalization="average")
        if name == "beam_all_scores":
            tiled = dict(output_all_scores=True, length_penalty_weight=0.6)
        return seq2seq.BeamSearchDecoder(self.cell, self.emb, d["start"], END, zero, 3,
                                         output_layer=self.out, **tiled)


NAMES = ["training", "greedy", "greedy_projected", "sample", "scheduled_embedding",
         "scheduled_output", "beam", "beam_coverage", "beam_constraints", "beam_all_scores"]


def decode(model, name, seed, graph, **kw):
    kw.setdefault("maximum_iterations", 10)
    kw.setdefault("check_finished_every", 3)
    if name == "training" or name.startswith("scheduled"):
        kw.pop("maximum_iterations")
    with torch.no_grad():
        return seq2seq.dynamic_decode(model.decoder(name, seed), cuda_graph=graph, **kw)


def assert_identical(got, want):
    for a, b in zip(nest.flatten(got), nest.flatten(want), strict=True):
        if not isinstance(a, torch.Tensor):
            a, b = a.stack(), b.stack()  # AlignmentHistory
        assert a.shape == b.shape and a.dtype == b.dtype
        assert torch.equal(a, b), (a, b)


def entry_of(model, cell=None):
    cache = graph_engine.cache(cell or model.cell, "dynamic_decode")
    return list(cache.values())[-1] if cache else None


def graphs_of(model, name):
    cell = {"greedy_projected": model.plain, "scheduled_output": model.fed}.get(name)
    return entry_of(model, cell)


@pytest.mark.parametrize("name", NAMES)
def test_replayed_graphs_give_the_eager_decode(emulated, name):
    model = Model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for seed in range(4):  # new memory, tokens and inputs each time
            want = decode(model, name, seed, False)
            got = decode(model, name, seed, True)
            assert_identical(got, want)
            entry = graphs_of(model, name)
            assert len(entry.chunks) == (0 if seed == 0 else entry.chunks[-1].time // 3 + 1)
    assert entry.chunks, "the decode never ran from graphs"


@pytest.mark.parametrize("kw", [dict(impute_finished=True), dict(maximum_iterations=1),
                                dict(maximum_iterations=5, check_finished_every=8),
                                dict(maximum_iterations=12, check_finished_every=1)])
@pytest.mark.parametrize("name", ["greedy", "beam_coverage", "training"])
def test_graphs_follow_the_driver_options(emulated, name, kw):
    if name == "training" and "maximum_iterations" in kw:
        kw = dict(kw, impute_finished=True)
    if name.startswith("beam") and kw.get("impute_finished"):
        kw = dict(kw, impute_finished=False)  # refused for beam search (it reorders rows)
    model = Model()
    for seed in range(3):
        assert_identical(decode(model, name, seed, True, **kw),
                         decode(model, name, seed, False, **kw))
    assert graphs_of(model, name).chunks


def test_a_seeded_sampler_draws_as_eagerly(emulated):
    """The sampler's own generator is advanced exactly as an eager decode advances it."""
    model = Model()
    for seed in range(3):
        eager, graph = model.decoder("sample", seed), model.decoder("sample", seed)
        with torch.no_grad():
            seq2seq.dynamic_decode(eager, maximum_iterations=10, check_finished_every=3)
            seq2seq.dynamic_decode(graph, maximum_iterations=10, check_finished_every=3,
                                   cuda_graph=True)
        assert torch.equal(eager.helper._generator.get_state(),
                           graph.helper._generator.get_state())
    assert entry_of(model).chunks


def test_parameters_are_read_in_place_and_user_tensors_never_written(emulated):
    model = Model()
    kept = model.data(0)["memory"].clone()
    for seed in range(3):
        decode(model, "beam_coverage", seed, True)
    with torch.no_grad():  # an optimizer step between decodes
        for p in model.cell.parameters():
            p.add_(0.05 * torch.randn_like(p))
    assert_identical(decode(model, "beam_coverage", 5, True),
                     decode(model, "beam_coverage", 5, False))
    entry = entry_of(model)
    # a module whose parameters move (new storage) drops its graphs
    model.out.weight.data = model.out.weight.data.clone()
    assert_identical(decode(model, "beam_coverage", 6, True),
                     decode(model, "beam_coverage", 6, False))
    assert entry_of(model) is not entry
    assert torch.equal(model.data(0)["memory"], kept)  # the data of decode 0, regenerated
    memory = model.data(7)["memory"]
    before = memory.clone()
    model.mech.setup_memory(memory, torch.tensor([5, 3]))
    with torch.no_grad():
        seq2seq.dynamic_decode(seq2seq.BeamSearchDecoder(
            model.cell, model.emb, torch.tensor([0, 2]), END, model.cell.zero_state(2), 3,
            output_layer=model.out, coverage_penalty_weight=0.3, length_penalty_weight=0.2),
            maximum_iterations=10, check_finished_every=3, cuda_graph=True)
    assert torch.equal(memory, before)


def test_graphs_are_kept_per_configuration_and_bounded(emulated):
    model = Model()
    for limit in range(4, 4 + graph_engine.MAX_GRAPHS_PER_CELL + 2):
        for seed in range(2):
            decode(model, "greedy", seed, True, maximum_iterations=limit)
    cache = graph_engine.cache(model.cell, "dynamic_decode")
    assert len(cache) == graph_engine.MAX_GRAPHS_PER_CELL
    for _ in range(2):  # another batch size is another configuration
        model.mech.setup_memory(torch.randn(3, 5, 6))
        helper = seq2seq.GreedyEmbeddingHelper(model.emb, torch.tensor([0, 2, 4]), END)
        dec = seq2seq.BasicDecoder(model.cell, helper, model.cell.zero_state(3), model.out)
        with torch.no_grad():
            seq2seq.dynamic_decode(dec, maximum_iterations=6, cuda_graph=True)
    assert entry_of(model).chunks


class ReadsOutside(rnn.RNNCell):
    """A user cell that reads a tensor held outside any parameter or binding."""

    def __init__(self, at_time=0, host=False):
        super().__init__()
        self.inner = rnn.GRUCell(8, input_size=10)
        self.offset = torch.zeros(8)
        self.host, self.at_time, self.t = host, at_time, 0

    @property
    def state_size(self):
        return 8

    @property
    def output_size(self):
        return 8

    def call(self, inputs, state):
        out, new = self.inner(inputs, state)
        self.t += 1
        if self.t > self.at_time:
            if self.host:
                out = out * float(out.abs().max() > -1)  # reads a value on the host
            else:
                out = out + self.offset
        return out, new


@pytest.mark.parametrize("cell,reason", [
    (ReadsOutside(), r"reads a tensor of shape \(8,\)"),
    (ReadsOutside(host=True), "reads a tensor value on the host"),
])
def test_an_uncapturable_step_decodes_eagerly_with_a_warning(emulated, cell, reason):
    model = Model(cell=cell)
    decode(model, "greedy", 0, True)
    with pytest.warns(UserWarning, match=reason):
        got = decode(model, "greedy", 1, True)
    assert_identical(got, decode(model, "greedy", 1, False))
    with pytest.warns(UserWarning, match=reason):  # remembered: no second capture attempt
        decode(model, "greedy", 2, True)
    assert not entry_of(model).chunks


def test_a_capture_failing_mid_decode_finishes_eagerly(emulated, monkeypatch):
    cell = ReadsOutside(at_time=10**9, host=True)
    model = Model(cell=cell)
    decode(model, "greedy", 0, True)
    replayed = []
    real = decode_graphs.GraphedSteps._replay
    monkeypatch.setattr(decode_graphs.GraphedSteps, "_replay",
                        lambda self, chunk: replayed.append(chunk.time) or real(self, chunk))
    cell.t, cell.at_time = 0, 4  # the fifth step reads the host: chunk 0 captured, chunk 1 not
    with pytest.warns(UserWarning, match="on the host"):
        got = decode(model, "greedy", 1, True)
    assert replayed == [0]
    cell.t, cell.at_time = 0, 10**9
    assert_identical(got, decode(model, "greedy", 1, False))


@pytest.mark.parametrize("make,reason", [
    (lambda m, d: seq2seq.BasicDecoder(m.cell, seq2seq.CustomHelper(
        lambda: (torch.zeros(2, dtype=torch.bool), m.emb(d["start"])),
        lambda time, outputs, state: outputs.argmax(-1),
        lambda time, outputs, state, sample_ids: (sample_ids == END, m.emb(sample_ids), state)),
        m.cell.zero_state(2), m.out), "CustomHelper does not declare"),
    (lambda m, d: seq2seq.BasicDecoder(m.cell, seq2seq.GreedyEmbeddingHelper(
        lambda ids: m.emb(ids), d["start"], END), m.cell.zero_state(2), m.out),
     "the embedding is a callable"),
])
def test_opaque_helpers_decode_eagerly_with_a_warning(emulated, make, reason):
    model = Model()
    d = model.data(0)
    model.mech.setup_memory(d["memory"], d["lengths"])
    with torch.no_grad(), pytest.warns(UserWarning, match=reason):
        seq2seq.dynamic_decode(make(model, d), maximum_iterations=5, cuda_graph=True)


def test_without_cuda_or_with_autograd_the_decode_is_eager():
    model = Model()
    with pytest.warns(UserWarning, match="not on a CUDA device"):
        got = decode(model, "greedy", 0, True)
    assert_identical(got, decode(model, "greedy", 0, False))
    with pytest.raises(TypeError, match="cuda_graph must be a bool"):
        decode(model, "greedy", 0, "yes")
    assert not graph_engine.cache(model.cell, "dynamic_decode")


def test_autograd_recording_is_named(emulated):
    model = Model()
    with pytest.warns(UserWarning, match="autograd is recording"):
        seq2seq.dynamic_decode(model.decoder("greedy", 0), maximum_iterations=4,
                               cuda_graph=True)


def assert_close_on_cuda(got, want):
    """Ids exactly, floats within 1e-5 (issue 9's bar for real graphs)."""
    for a, b in zip(nest.flatten(got), nest.flatten(want), strict=True):
        if not isinstance(a, torch.Tensor):
            a, b = a.stack(), b.stack()
        if a.is_floating_point():
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        else:
            assert torch.equal(a, b)


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_graphs_give_the_eager_decode(name):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = Model("cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for seed in range(4):
            want = decode(model, name, seed, False)
            got = decode(model, name, seed, True)
            assert_close_on_cuda(got, want)
    assert graphs_of(model, name).chunks


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_cuda_charrnn_sampling_replays_graphs():
    from rnnkit.apps import charrnn
    from rnnkit.apps.data.vocab import CharVocab

    torch.manual_seed(0)
    vocab = CharVocab.from_text("abcdefgh ijk\n")
    model = charrnn.CharRNN(len(vocab), 32, 2).cuda()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        texts = [charrnn.sample(model, vocab, "ab", 40, 0.8, seed=5) for _ in range(3)]
        greedy = [charrnn.sample(model, vocab, "ab", 40, 0.0) for _ in range(3)]
    assert len(set(texts)) == 1 and len(set(greedy)) == 1
    assert graph_engine.cache(model.cell, "dynamic_decode")  # graphs were captured and replayed


class Shifted(seq2seq.GreedyEmbeddingHelper):
    """A user helper: greedy, but adds a per-decode bias to the logits (a declared slot)."""

    def __init__(self, embedding, start_tokens, end_token, bias):
        super().__init__(embedding, start_tokens, end_token)
        self.bias = bias

    def sample(self, time, outputs, state, name=None):
        return torch.argmax(outputs + self.bias, dim=-1)

    def graph_bindings(self):
        base = super().graph_bindings()
        return seq2seq.GraphBindings(key=base.key, slots=(*base.slots, (self, "bias")))


def test_a_user_helper_declaring_its_bindings_is_graphed(emulated):
    model = Model()
    results = []
    for seed in range(3):
        d = model.data(seed)
        bias = torch.randn(VOCAB, generator=torch.Generator().manual_seed(seed))
        for graph in (False, True):
            model.mech.setup_memory(d["memory"], d["lengths"])
            dec = seq2seq.BasicDecoder(model.cell, Shifted(model.emb, d["start"], END, bias),
                                       model.cell.zero_state(2), model.out)
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("error")
                results.append(seq2seq.dynamic_decode(dec, maximum_iterations=8,
                                                      cuda_graph=graph))
        assert_identical(results[-1], results[-2])
    assert entry_of(model).chunks


def test_graphs_are_freed_with_their_cell(emulated):
    import gc
    import weakref

    model = Model()
    for seed in range(2):
        decode(model, "beam_coverage", seed, True)
    private = weakref.ref(entry_of(model).privates[0])
    cell = weakref.ref(model.cell)
    gc.disable()  # reference counting alone must free them (no cycle through the cache)
    try:
        del model
        assert cell() is None and private() is None
    finally:
        gc.enable()


class UserGreedy(seq2seq.Decoder):
    """A decoder written from scratch that opts in to graphs."""

    def __init__(self, cell, emb, out, start, init):
        self.cell, self.emb, self.out = cell, emb, out
        self.start, self.init = start, init

    @property
    def batch_size(self):
        return self.start.shape[0]

    @property
    def output_size(self):
        return torch.Size([])

    @property
    def output_dtype(self):
        return torch.int64

    def initialize(self, name=None):
        return torch.zeros_like(self.start, dtype=torch.bool), self.emb(self.start), self.init

    def step(self, time, inputs, state, name=None):
        out, state = self.cell(inputs, state)
        ids = self.out(out).argmax(-1)
        return ids, state, self.emb(ids), ids == END

    def graph_bindings(self):
        return decode_graphs.combine(seq2seq.GraphBindings(slots=((self, "start"),)),
                                     decode_graphs.module_bindings(self.cell))


def test_a_user_decoder_declaring_its_bindings_is_graphed(emulated):
    model = Model()
    for seed in range(3):
        d = model.data(seed)
        model.mech.setup_memory(d["memory"], d["lengths"])
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("error")
            got, want = (seq2seq.dynamic_decode(
                UserGreedy(model.cell, model.emb, model.out, d["start"],
                           model.cell.zero_state(2)), maximum_iterations=7, cuda_graph=graph)
                for graph in (True, False))
        assert_identical(got, want)
    assert entry_of(model).chunks


@pytest.mark.parametrize("variational", [False, True])
def test_dropout_in_train_mode_draws_as_the_eager_decode(emulated, variational):
    """Masks come from the default generator inside the graph, anew at each replay."""
    cell = rnn.DropoutWrapper(rnn.LSTMCell(8, input_size=4 + 6), input_keep_prob=0.7,
                              output_keep_prob=0.6, state_keep_prob=0.8,
                              variational_recurrent=variational)
    model = Model(cell=cell)
    model.cell.train()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for seed in range(4):
            torch.manual_seed(seed)
            want = decode(model, "sample", seed, False)
            torch.manual_seed(seed)
            got = decode(model, "sample", seed, True)
            assert_identical(got, want)
    assert entry_of(model).chunks


def test_a_seeded_dropout_wrapper_decodes_eagerly_and_says_why(emulated):
    cell = rnn.DropoutWrapper(rnn.LSTMCell(8, input_size=4 + 6), output_keep_prob=0.6, seed=5)
    model = Model(cell=cell)
    model.cell.train()
    with pytest.warns(UserWarning, match=r"DropoutWrapper\(seed=...\) draws its masks"):
        got = decode(model, "greedy", 1, True)
    cell._random.reset()  # the same seeded draws again
    assert_identical(got, decode(model, "greedy", 1, False))


def test_a_cell_sized_at_its_first_decode_is_captured_after_it(emulated):
    """Each configuration's first decode runs eagerly: parameters sized at the first step
    are made there, never inside a capture (which would record their initialisation)."""
    decode(Model(), "greedy", 0, True)  # graphs have run on this device before
    model = Model(cell=rnn.LSTMCell(8))  # its weights are sized at its first step
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for seed in range(3):
            got = decode(model, "greedy", seed, True)
            assert_identical(got, decode(model, "greedy", seed, False))
            assert len(entry_of(model).chunks) == (0 if seed == 0 else 4)


def _random_decode_case(rng: random.Random, trial: int, device: str):
    """A decoder factory over a random cell, attention, helper and driver options."""
    torch.manual_seed(trial)
    batch = rng.choice([1, 2, 3])
    inner = rng.choice([lambda: rnn.LSTMCell(8), lambda: rnn.GRUCell(8),
                        lambda: rnn.BasicLSTMCell(8)])()
    if rng.random() < 0.3:
        inner = rnn.DropoutWrapper(inner, output_keep_prob=0.7)
    kind = rng.choice(["bahdanau", "luong", "monotonic", "none"])
    mech = {"bahdanau": lambda: seq2seq.BahdanauAttention(8, memory_depth=6,
                                                          normalize=rng.random() < 0.5),
            "luong": lambda: seq2seq.LuongAttention(8, memory_depth=6, scale=True),
            "monotonic": lambda: seq2seq.BahdanauMonotonicAttention(
                8, memory_depth=6, mode=rng.choice(["parallel", "recursive", "hard"])),
            "none": lambda: None}[kind]()
    cell = inner if mech is None else seq2seq.AttentionWrapper(
        inner, mech, attention_layer_size=rng.choice([None, 6]),
        alignment_history=rng.random() < 0.5, output_attention=rng.random() < 0.7)
    cell.to(device)
    out = nn.Linear(cell.output_size, VOCAB).to(device)
    emb = nn.Embedding(VOCAB, 4).to(device)
    cell.train(rng.random() < 0.3)
    name = rng.choice(["greedy", "sample", "beam", "training"])
    kw = dict(check_finished_every=rng.choice([1, 2, 3, 8]),
              impute_finished=rng.random() < 0.5 and name != "beam")  # refused for beams
    if name != "training":
        kw["maximum_iterations"] = rng.choice([1, 4, 9])
    beam = dict(length_penalty_weight=rng.choice([0.0, 0.6]), min_length=rng.choice([0, 2]),
                no_repeat_ngram_size=rng.choice([0, 2]),
                coverage_penalty_weight=rng.choice([0.0, 0.3]) if kind in ("bahdanau", "luong")
                else 0.0)
    top_k = rng.choice([None, 3])

    def decoder(seed):
        g = torch.Generator().manual_seed(seed)
        if mech is not None:
            mech.setup_memory(torch.randn(batch, 5, 6, generator=g).to(device),
                              torch.randint(1, 6, (batch,), generator=g).to(device))
        start = torch.randint(0, VOCAB, (batch,), generator=g).to(device)
        zero = cell.zero_state(batch, device=device)
        if name == "greedy":
            helper = seq2seq.GreedyEmbeddingHelper(emb, start, END)
        elif name == "sample":
            helper = seq2seq.SampleEmbeddingHelper(emb, start, END, seed=seed, top_k=top_k)
        elif name == "training":
            helper = seq2seq.TrainingHelper(torch.randn(batch, 5, 4, generator=g).to(device),
                                            torch.randint(0, 6, (batch,), generator=g)
                                            .to(device))
        else:
            return seq2seq.BeamSearchDecoder(cell, emb, start, END, zero, 3, output_layer=out,
                                             **beam)
        return seq2seq.BasicDecoder(cell, helper, zero, out)

    return cell, decoder, kw


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[
    pytest.mark.cuda, pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")])])
def test_random_decoders_replay_the_eager_decode(emulated, device):
    """Cells, attention mechanisms (monotonic too), dropout in train mode, helpers, beam
    options and driver options drawn at random: every decode is graphed and identical."""
    rng = random.Random(0)
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    for trial in range(40 if device == "cpu" else 16):
        cell, decoder, kw = _random_decode_case(rng, trial, device)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("error")
            seq2seq.dynamic_decode(decoder(0), **kw)  # sizes the cell
            for seed in range(1, 5):
                torch.manual_seed(seed)
                want = seq2seq.dynamic_decode(decoder(seed), **kw)
                torch.manual_seed(seed)
                got = seq2seq.dynamic_decode(decoder(seed), cuda_graph=True, **kw)
                if device == "cpu":
                    assert_identical(got, want)
                else:
                    assert_close_on_cuda(got, want)
        assert any(e.chunks for e in graph_engine.cache(cell, "dynamic_decode").values()), trial
