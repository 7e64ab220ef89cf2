import numpy as np
import pytest
import torch
from conftest import load_fixture

from rnnkit import seq2seq


def _seed_loss(pred):
    return seq2seq.sequence_loss(torch.tensor(pred, dtype=torch.float32),
                                 torch.tensor([[1, 1, 1]]), torch.ones(1, 3)).item()


def test_seed_001_values():
    assert _seed_loss([[[0.2, 0.7], [0.6, 0.2], [0.2, 0.9]]]) == pytest.approx(0.596759, abs=1e-5)
    assert _seed_loss([[[0.3, 0.7]] * 3]) == pytest.approx(0.513015, abs=1e-5)
    assert _seed_loss([[[0.1, 0.9]] * 3]) == pytest.approx(0.371101, abs=1e-5)
    assert _seed_loss([[[1, 0]] * 3]) == pytest.approx(1.31326, abs=1e-5)
    assert _seed_loss([[[0, 1], [1, 0], [0, 1]]]) == pytest.approx(0.646595, abs=1e-5)


@pytest.mark.parametrize("key", ["loss_0000", "loss_0001", "loss_0010", "loss_0011",
                                 "loss_0100", "loss_1000", "loss_1100"])
def test_flags_match_tfa(key):
    fx = load_fixture("sequence_loss.npz")
    at, ab, st, sb = (bool(int(c)) for c in key[-4:])
    got = seq2seq.sequence_loss(torch.from_numpy(fx["logits"]), torch.from_numpy(fx["targets"]),
                                torch.from_numpy(fx["weights"]), average_across_timesteps=at,
                                average_across_batch=ab, sum_over_timesteps=st,
                                sum_over_batch=sb)
    np.testing.assert_allclose(got.numpy(), fx[key], rtol=1e-5, atol=1e-6)


def test_closed_form_and_custom_loss_function():
    logits = torch.randn(2, 3, 4)
    targets = torch.randint(0, 4, (2, 3))
    weights = torch.tensor([[1.0, 1.0, 0.0], [2.0, 0.0, 0.0]])
    logp = torch.log_softmax(logits, -1).gather(-1, targets[..., None])[..., 0]
    want = (-logp * weights).sum() / weights.sum()
    assert torch.allclose(seq2seq.sequence_loss(logits, targets, weights), want)

    def hinge(labels, logits):
        return logits.gather(-1, labels[:, None])[:, 0] * 0 + 1.0

    got = seq2seq.sequence_loss(logits, targets, weights, softmax_loss_function=hinge)
    assert got.item() == pytest.approx(1.0)


def test_all_zero_weights_gives_zero_not_nan():
    loss = seq2seq.sequence_loss(torch.randn(2, 3, 4), torch.zeros(2, 3, dtype=torch.long),
                                 torch.zeros(2, 3))
    assert loss.item() == 0.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(logits=torch.randn(2, 3), targets=torch.zeros(2, 3, dtype=torch.long),
              weights=torch.ones(2, 3)), "logits must have rank 3"),
        (dict(logits=torch.randn(2, 3, 4), targets=torch.zeros(2, 4, dtype=torch.long),
              weights=torch.ones(2, 3)), r"targets must have shape \(2, 3\)"),
        (dict(logits=torch.randn(2, 3, 4), targets=torch.zeros(2, 3, dtype=torch.long),
              weights=torch.ones(3, 2)), r"weights must have shape \(2, 3\)"),
        (dict(logits=torch.randn(2, 3, 4), targets=torch.full((2, 3), 4),
              weights=torch.ones(2, 3)), r"targets must lie in \[0, 4\)"),
        (dict(logits=torch.randn(2, 3, 4), targets=torch.zeros(2, 3, dtype=torch.long),
              weights=torch.ones(2, 3), average_across_batch=True, sum_over_batch=True),
         "cannot both"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        seq2seq.sequence_loss(**kwargs)


def test_float_targets_rejected():
    with pytest.raises(TypeError, match="targets must hold integers, received dtype "
                                        "torch.float32"):
        seq2seq.sequence_loss(torch.randn(2, 3, 4), torch.zeros(2, 3), torch.ones(2, 3))


def test_numpy_arguments_as_in_tf():
    import numpy as np

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 3, 4)).astype(np.float32)
    targets = rng.integers(0, 4, (2, 3))
    weights = np.array([[1, 1, 0], [1, 0, 0]], np.float32)
    want = seq2seq.sequence_loss(torch.from_numpy(logits), torch.from_numpy(targets),
                                 torch.from_numpy(weights))
    torch.testing.assert_close(seq2seq.sequence_loss(logits, targets, weights), want)
