"""Code shaped like real TF 1.x programs runs as written (issue: TF 1.x programs run as
written).  Each class of deviation found in public programs has its tests here: a user's
override is what runs, TF-shaped wrapper cells need no rnnkit-only changes, construction
arguments take effect, lazily sized layers train, wrappers add no names, the coverage penalty
sees attention nested in a stack, decoders keep TF's input contract, TF's
construct-then-initialise order works."""

import functools

import pytest
import torch
from torch import nn

from rnnkit import initializers, rnn, seq2seq


def _inputs(batch=3, time=5, depth=4):
    torch.manual_seed(1)
    return torch.randn(batch, time, depth)


def _step_by_hand(cell, x, state):
    outs = []
    for t in range(x.shape[1]):
        out, state = cell(x[:, t], state)
        outs.append(out)
    return torch.stack(outs, 1), state


# -- 1. a user's override is what runs ------------------------------------------------------------

class ScaledStack(rnn.MultiRNNCell):
    """A stack overriding TF's ``__call__(inputs, state, scope=None)``."""

    calls = 0

    def __call__(self, inputs, state, scope=None):
        type(self).calls += 1
        x, new = inputs, []
        for i, cell in enumerate(self._cells):  # TF's attribute
            out, s = cell(x, state[i])
            x = 0.5 * out + (x if i else 0)
            new.append(s)
        return x, tuple(new)


class HalvedStack(rnn.MultiRNNCell):
    """A stack overriding ``call``."""

    def call(self, inputs, state):
        out, new = super().call(inputs, state)
        return 0.5 * out, new


class DoubledLSTM(rnn.LSTMCell):
    """A built-in cell whose subclass overrides ``__call__``."""

    def __call__(self, inputs, state, scope=None):
        out, new = super().__call__(2.0 * inputs, state)
        return out, new


def _stack(kind):
    torch.manual_seed(0)
    return kind([rnn.LSTMCell(4, input_size=4), rnn.LSTMCell(4, input_size=4)])


@pytest.mark.parametrize("kind", [ScaledStack, HalvedStack])
@pytest.mark.parametrize("fused", ["auto", False])
def test_dynamic_and_static_rnn_run_a_stack_subclass_as_written(kind, fused):
    cell, x = _stack(kind), _inputs()
    want, want_state = _step_by_hand(cell, x, cell.zero_state(3))
    got, got_state = rnn.dynamic_rnn(cell, x, dtype=torch.float32, fused=fused)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_state, want_state)
    outs, state = rnn.static_rnn(cell, list(x.unbind(1)), dtype=torch.float32)
    torch.testing.assert_close(torch.stack(outs, 1), want)


def test_a_stack_subclass_refuses_fused_true_naming_the_override():
    with pytest.raises(ValueError, match="HalvedStack"):
        rnn.dynamic_rnn(_stack(HalvedStack), _inputs(), dtype=torch.float32, fused=True)


def test_a_built_in_cell_subclass_overriding_call_is_not_fused_around():
    torch.manual_seed(0)
    cell, x = DoubledLSTM(4, input_size=4), _inputs()
    want, _ = _step_by_hand(cell, x, cell.zero_state(3))
    got, _ = rnn.dynamic_rnn(cell, x, dtype=torch.float32)
    torch.testing.assert_close(got, want)
    assert rnn.plan(cell, x).fused_layers == 0


def test_decoders_call_the_stacks_own_call():
    cell = _stack(ScaledStack)
    emb, proj = torch.randn(6, 4), nn.Linear(4, 6)
    ScaledStack.calls = 0
    helper = seq2seq.GreedyEmbeddingHelper(emb, torch.tensor([0, 1]), 5)
    seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell, helper, cell.zero_state(2), proj),
                           maximum_iterations=3)
    assert ScaledStack.calls == 3
    dec = seq2seq.BeamSearchDecoder(cell, emb, torch.tensor([0]), 5, cell.zero_state(1), 2,
                                    output_layer=proj)
    seq2seq.dynamic_decode(dec, maximum_iterations=2)
    assert ScaledStack.calls == 5


# -- 2. TF-shaped wrapper cells ------------------------------------------------------------------

class TFWrapper(rnn.RNNCell):
    """A wrapper as TF programs write it: TF's zero_state signature, state passed through."""

    def __init__(self, cell):
        super().__init__()
        self._cell = cell

    @property
    def state_size(self):
        return self._cell.state_size

    @property
    def output_size(self):
        return self._cell.output_size

    def zero_state(self, batch_size, dtype):
        return self._cell.zero_state(batch_size, dtype)

    def __call__(self, inputs, state, scope=None):
        return self._cell(inputs, state)


def test_a_wrapper_with_tfs_zero_state_signature_works_inside_containers():
    stack = rnn.MultiRNNCell([TFWrapper(rnn.GRUCell(4, input_size=4)), rnn.GRUCell(4)])
    state = stack.zero_state(3, torch.float32)
    assert [s.shape for s in state] == [(3, 4), (3, 4)]
    out, _ = rnn.dynamic_rnn(stack, _inputs(), dtype=torch.float32)
    assert out.shape == (3, 5, 4)


def test_a_wrapper_passing_an_attention_state_through_passes_the_state_check():
    mech = seq2seq.LuongAttention(4, torch.randn(3, 6, 4), [6, 2, 4])
    cell = TFWrapper(seq2seq.AttentionWrapper(rnn.GRUCell(4), mech, attention_layer_size=4))
    out, state = rnn.dynamic_rnn(cell, _inputs(), initial_state=cell.zero_state(3, torch.float32))
    assert isinstance(state, seq2seq.AttentionWrapperState) and int(state.time) == 5
    bad = cell.zero_state(3, torch.float32)._replace(attention=torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"initial_state\.attention must have shape \(3, 4\)"):
        rnn.dynamic_rnn(cell, _inputs(), initial_state=bad)


# -- 3. construction arguments take effect ------------------------------------------------------

def test_lstm_initializer_sets_the_kernel_as_tf_does():
    torch.manual_seed(0)
    cell = rnn.LSTMCell(8, initializer=initializers.random_uniform_initializer(-0.02, 0.02),
                        input_size=6)
    for name in ("weight_ih", "weight_hh"):
        w = getattr(cell, name)
        assert w.abs().max() <= 0.02 and w.abs().max() > 0.015
    assert (cell.bias == 0).all()


def test_lstm_shards_partition_storage_only():
    torch.manual_seed(0)
    plain = rnn.LSTMCell(6, num_proj=3, input_size=4)
    sharded = rnn.LSTMCell(6, num_proj=3, num_unit_shards=2, num_proj_shards=2, input_size=4)
    sharded.load_state_dict(plain.state_dict())
    x = _inputs()
    torch.testing.assert_close(rnn.dynamic_rnn(sharded, x, dtype=torch.float32)[0],
                               rnn.dynamic_rnn(plain, x, dtype=torch.float32)[0])
    with pytest.raises(ValueError, match="num_unit_shards must be a positive int"):
        rnn.LSTMCell(6, num_unit_shards=0)


def test_gru_kernel_and_bias_initializers_apply_where_tf_applies_them():
    cell = rnn.GRUCell(5, kernel_initializer=initializers.constant_initializer(0.25),
                       bias_initializer=initializers.constant_initializer(-0.5), input_size=3)
    for name, p in cell.named_parameters():
        expected = -0.5 if "bias" in name else 0.25
        assert (p == expected).all(), name
    cell = rnn.GRUCell(5, kernel_initializer=functools.partial(nn.init.constant_, val=0.1),
                       input_size=3)
    assert all((p == 0.1).all() for n, p in cell.named_parameters() if "bias" not in n)


def test_mechanism_dtype_is_honoured():
    memory = torch.randn(2, 3, 4, dtype=torch.float64)
    mech = seq2seq.BahdanauAttention(5, memory, dtype=torch.float64)
    alignments, _ = mech(torch.randn(2, 5, dtype=torch.float64), mech.initial_state(2))
    assert alignments.dtype == torch.float64
    assert [p.dtype for p in mech.parameters()] == [torch.float64] * 3  # query layer sized now


def test_dropout_wrapper_input_size_is_checked_against_the_inputs():
    cell = rnn.DropoutWrapper(rnn.GRUCell(3), input_keep_prob=0.5, variational_recurrent=True,
                              input_size=7, dtype=torch.float32)
    with pytest.raises(ValueError, match="input_size"):
        rnn.dynamic_rnn(cell, _inputs(), dtype=torch.float32)


# -- 4. lazily sized layers train --------------------------------------------------------------

def test_layers_sized_at_the_first_batch_train_with_an_optimizer_made_first():
    mech = seq2seq.BahdanauAttention(4)  # no memory, no memory_depth
    cell = seq2seq.AttentionWrapper(rnn.GRUCell(4), mech, attention_layer_size=4)
    opt = torch.optim.SGD(cell.parameters(), lr=0.5)
    mech.setup_memory(torch.randn(2, 3, 5))
    out, _ = rnn.dynamic_rnn(cell, torch.randn(2, 4, 3), dtype=torch.float32)
    before = {n: p.detach().clone() for n, p in cell.named_parameters()}
    out.pow(2).sum().backward()
    opt.step()
    unchanged = [n for n, p in cell.named_parameters() if torch.equal(p, before[n])]
    assert unchanged == []


# -- 5. variable-free wrappers add no names -------------------------------------------------------

def test_training_and_inference_models_load_each_others_weights_strictly():
    def model(training):
        layers = [rnn.GRUCell(4, input_size=4), rnn.GRUCell(4)]
        if training:
            layers = [rnn.DropoutWrapper(c, output_keep_prob=0.5) for c in layers]
            layers[1] = rnn.ResidualWrapper(layers[1])
        else:
            layers[1] = rnn.ResidualWrapper(layers[1])
        return rnn.MultiRNNCell(layers)

    train, infer = model(True), model(False)
    for m in (train, infer):  # TF builds both graphs
        rnn.dynamic_rnn(m, _inputs(), dtype=torch.float32)
    assert list(train.state_dict()) == list(infer.state_dict())
    infer.load_state_dict(train.state_dict(), strict=True)
    train.load_state_dict(infer.state_dict(), strict=True)


# -- 6. coverage over attention nested in a stack ------------------------------------------------

def test_coverage_penalty_sees_an_attention_wrapper_inside_a_stack():
    torch.manual_seed(0)
    memory = torch.randn(1, 4, 3)
    mech = seq2seq.LuongAttention(4, memory_depth=3)
    stack = rnn.MultiRNNCell([rnn.GRUCell(4, input_size=2),
                              seq2seq.AttentionWrapper(rnn.GRUCell(4), mech,
                                                       attention_layer_size=4)])
    mech.setup_memory(memory, [3])
    emb, proj = torch.randn(5, 2), nn.Linear(4, 5)
    dec = seq2seq.BeamSearchDecoder(stack, emb, torch.tensor([0]), 4, stack.zero_state(1), 3,
                                    output_layer=proj, coverage_penalty_weight=0.4)
    _, state, _ = seq2seq.dynamic_decode(dec, maximum_iterations=4)
    acc = state.accumulated_attention_probs
    assert acc.shape == (1, 3, 4) and (acc[..., 3] == 0).all() and (acc[..., :3] > 0).all()


# -- 7. decoders keep TF's input contract ---------------------------------------------------------

def test_basic_decoder_initialize_and_step_return_the_helpers_inputs():
    torch.manual_seed(0)
    cell, emb, proj = rnn.LSTMCell(4, input_size=3), torch.randn(6, 3), nn.Linear(4, 6)
    helper = seq2seq.GreedyEmbeddingHelper(emb, torch.tensor([1, 2]), 5)
    dec = seq2seq.BasicDecoder(cell, helper, cell.zero_state(2), proj)
    finished, inputs, state = dec.initialize()
    torch.testing.assert_close(inputs, emb[[1, 2]])  # the embeddings, as TF returns them
    out, state, inputs, finished = dec.step(0, inputs, state)
    torch.testing.assert_close(inputs, emb[out.sample_id])
    assert helper.embedding is emb or torch.equal(helper.embedding, emb)  # not mutated


# -- 8. TF's construct-then-initialise order -------------------------------------------------------

def test_initialising_every_parameter_before_the_first_call_works_after_build():
    model = nn.ModuleDict({"enc": rnn.LSTMCell(4), "dec": rnn.GRUCell(4)})
    with pytest.raises(rnn.LazyParameterError, match=r"rnnkit\.rnn\.build\(model"):
        for p in model.parameters():
            nn.init.uniform_(p, -0.1, 0.1)
    with pytest.raises(rnn.LazyParameterError, match=r"state_dict\(\)"):
        model.state_dict()
    rnn.build(model["enc"], torch.randn(2, 3), model["enc"].zero_state(2))
    rnn.build(model["dec"], torch.randn(2, 5), model["dec"].zero_state(2))
    for p in model.parameters():
        nn.init.uniform_(p, -0.1, 0.1)
    assert all(p.abs().max() <= 0.1 for p in model.parameters())
    assert len(model.state_dict()) == 3 + 6  # LSTM: 3 tensors; GRU: gates and candidate
