"""Bad input raises ValueError / TypeError naming the argument and the shapes."""

import pytest
import torch

from rnnkit import rnn

X = torch.randn(3, 5, 2)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: rnn.dynamic_rnn("cell", X), TypeError, "cell must be an rnnkit RNNCell"),
        (lambda: rnn.dynamic_rnn(rnn.GRUCell(3), "abc"), TypeError,
         "inputs must be a tensor or an array of numbers, received str"),
        (lambda: rnn.dynamic_rnn(rnn.GRUCell(3), X, sequence_length=[5.0, 2.0, 1.0]), TypeError,
         r"sequence_length must hold integers, received \[5.0, 2.0, 1.0\]"),
        (lambda: rnn.dynamic_rnn(rnn.GRUCell(3), X[0]), ValueError,
         r"inputs must have rank 3 \[batch, max_time, depth\] or more, received shape \(5, 2\)"),
        (lambda: rnn.dynamic_rnn(rnn.GRUCell(3), X.long()), TypeError,
         "GRUCell inputs must be floating-point .*received dtype torch.int64"),
        (lambda: rnn.dynamic_rnn(rnn.GRUCell(3), X, [5, 6, 1]), ValueError,
         r"sequence_length values must lie in \[0, 5\], received min 1 and max 6"),
        (lambda: rnn.dynamic_rnn(rnn.GRUCell(3), X, [5, -1, 1]), ValueError,
         r"must lie in \[0, 5\]"),
        (lambda: rnn.dynamic_rnn(rnn.GRUCell(3), X, [5, 1]), ValueError,
         r"sequence_length must have shape \[batch_size\]=\[3\], received shape \(2,\)"),
        (lambda: rnn.dynamic_rnn(rnn.GRUCell(3), X, torch.tensor([1.0, 2.0, 3.0])), TypeError,
         "sequence_length must hold integers"),
        (lambda: rnn.dynamic_rnn(rnn.BasicLSTMCell(3), X, initial_state=torch.zeros(3, 3)),
         ValueError, r"initial_state: Expected state to be a LSTMStateTuple of length 2 .*received "
         r"a tensor of shape \(3, 3\)"),
        (lambda: rnn.dynamic_rnn(rnn.GRUCell(3), X, initial_state=torch.zeros(2, 3)),
         ValueError, r"initial_state must have shape \(3, 3\), received \(2, 3\)"),
        (lambda: rnn.dynamic_rnn(rnn.GRUCell(3), X, dtype=torch.float64), TypeError,
         "dtype is torch.float64 but inputs have dtype torch.float32"),
        (lambda: rnn.BasicLSTMCell(0), ValueError, "num_units must be a positive int"),
        (lambda: rnn.GRUCell(3).zero_state(-1), ValueError, "batch_size must be"),
        (lambda: rnn.DropoutWrapper(rnn.GRUCell(3), output_keep_prob=0.0), ValueError,
         r"output_keep_prob must be in \(0, 1\]"),
        (lambda: rnn.MultiRNNCell([]), ValueError, "at least one cell"),
        (lambda: rnn.MultiRNNCell([rnn.BasicLSTMCell(2)], state_is_tuple=False), ValueError,
         "state_is_tuple=False needs flat cell states"),
        (lambda: rnn.static_rnn(rnn.GRUCell(3), [torch.randn(2, 3), torch.randn(3, 3)]),
         ValueError, r"inputs\[1\] has shape \(3, 3\), inputs\[0\] has \(2, 3\)"),
        (lambda: rnn.stack_bidirectional_dynamic_rnn([rnn.GRUCell(2)], [], X), ValueError,
         "non-empty"),
        (lambda: rnn.OutputProjectionWrapper(rnn.GRUCell(2), 0), ValueError,
         "output_size must be a positive int"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_input_depth_change_after_build():
    cell = rnn.BasicLSTMCell(3)
    rnn.dynamic_rnn(cell, X)
    with pytest.raises(ValueError, match=r"BasicLSTMCell expects inputs of depth 2, received "
                                         r"depth 4"):
        rnn.dynamic_rnn(cell, torch.randn(3, 5, 4), fused=True)
    with pytest.raises(ValueError, match=r"inputs must have shape \[batch, 2\], received"):
        rnn.dynamic_rnn(cell, torch.randn(3, 5, 4), fused=False)


def test_multi_state_wrong_arity():
    cell = rnn.MultiRNNCell([rnn.GRUCell(2), rnn.GRUCell(2)])
    with pytest.raises(ValueError, match="initial_state: Expected state to be a tuple of "
                                         "length 2 .*received a tuple of 1 entries"):
        rnn.dynamic_rnn(cell, X, initial_state=(torch.zeros(3, 2),))


def test_numpy_inputs_and_lengths_work_as_in_tf():
    """Seed 001 passes numpy ``x_data`` to dynamic_rnn; TF accepted numpy lengths too."""
    import numpy as np

    cell = rnn.GRUCell(3)
    x = np.random.default_rng(0).standard_normal((3, 5, 2))  # float64, as numpy makes it
    out_np, st_np = rnn.dynamic_rnn(cell, x, sequence_length=np.array([5, 2, 0]))
    out_t, st_t = rnn.dynamic_rnn(cell, torch.as_tensor(x, dtype=torch.float32), [5, 2, 0])
    torch.testing.assert_close(out_np, out_t)
    torch.testing.assert_close(st_np, st_t)


def _public_api():
    import inspect

    from rnnkit import compat, export, initializers, legacy_seq2seq, nest, seq2seq, tfa

    for module in (rnn, seq2seq, compat, nest, tfa.seq2seq, tfa.rnn, legacy_seq2seq, export,
                   initializers):
        for name in module.__all__:
            obj = getattr(module, name)
            yield f"{module.__name__}.{name}", inspect.getdoc(obj)
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    public = not attr.startswith("_")
                    if public and (callable(value) or isinstance(value, property)):
                        # an override is documented by the class it overrides
                        docs = [inspect.getdoc(vars(c)[attr]) for c in obj.__mro__
                                if attr in vars(c)]
                        yield f"{module.__name__}.{name}.{attr}", next(filter(None, docs), None)


def test_every_public_class_function_and_method_is_documented():
    """Help is where a TF user looks first: the extension points (``RNNCell.call``,
    ``Helper.sample``, ``Decoder.step``, ...) say what they take and return."""

    missing = [name for name, doc in _public_api() if not (doc or "").strip()]
    assert missing == []
