import pathlib

import numpy as np
import pytest
import torch

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


def load_fixture(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / name) as f:
        return {k: f[k] for k in f.files}


def tf_vars(fx: dict) -> dict[str, np.ndarray]:
    return {k[4:]: v for k, v in fx.items() if k.startswith("var:")}


def leaves(fx: dict, prefix: str) -> list[np.ndarray]:
    keys = sorted((k for k in fx if k.startswith(prefix)), key=lambda k: int(k.split(":")[1]))
    return [fx[k] for k in keys]


def _user_lstm_class():
    from rnnkit import rnn

    class _UserLSTM(rnn.RNNCell):
        """An LSTM as the seeds write a cell: ``concat([x, h]) @ kernel`` in ``call``;
        its parameters declared in ``__init__`` (TF's optimizer-first order works)."""

        def __init__(self, n):
            super().__init__()
            self.n = n
            self.declare_variables("kernel", "bias")

        @property
        def state_size(self):
            return rnn.LSTMStateTuple(self.n, self.n)

        @property
        def output_size(self):
            return self.n

        def build(self, inputs_shape):
            self.kernel = self.add_variable("kernel", [inputs_shape[1] + self.n, 4 * self.n])
            self.bias = self.add_variable("bias", [4 * self.n], initializer=0.0)

        def call(self, inputs, state):
            c, h = state
            i, j, f, o = (torch.cat([inputs, h], 1) @ self.kernel + self.bias).chunk(4, 1)
            c = c * torch.sigmoid(f + 1.0) + torch.sigmoid(i) * torch.tanh(j)
            h = torch.tanh(c) * torch.sigmoid(o)
            return h, rnn.LSTMStateTuple(c, h)

    return _UserLSTM


UserLSTM = _user_lstm_class()
