"""Seed 002, "RNN in TensorFlow" in three steps: one BasicLSTMCell(2) over one input, over a
sequence of 5, and over a batch of 3 (output shape [batch, sequence, hidden_size])."""

import pprint

import numpy as np
import torch

from rnnkit import rnn

pp = pprint.PrettyPrinter(indent=4)
h, e, l, o = [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]


def main():
    torch.manual_seed(0)
    # step 1: one cell, input_dim (4) -> output_dim (2)
    hidden_size = 2
    cell = rnn.BasicLSTMCell(num_units=hidden_size)
    x_data = np.array([[[1, 0, 0, 0]]], dtype=np.float32)
    outputs, _states = rnn.dynamic_rnn(cell, torch.from_numpy(x_data), dtype=torch.float32)
    pp.pprint(outputs.detach().numpy())
    # step 2: the sequence length follows the input's shape
    cell = rnn.BasicLSTMCell(num_units=hidden_size)
    x_data = np.array([[h, e, l, l, o]], dtype=np.float32)
    print(x_data.shape)
    outputs, states = rnn.dynamic_rnn(cell, torch.from_numpy(x_data), dtype=torch.float32)
    pp.pprint(outputs.detach().numpy())
    # step 3: a batch of 3 sequences: 'hello', 'eolll', 'lleel'
    x_data = np.array([[h, e, l, l, o], [e, o, l, l, l], [l, l, e, e, l]], dtype=np.float32)
    pp.pprint(x_data)
    cell = rnn.BasicLSTMCell(num_units=2, state_is_tuple=True)
    outputs, _states = rnn.dynamic_rnn(cell, torch.from_numpy(x_data), dtype=torch.float32)
    pp.pprint(outputs.detach().numpy())
    return outputs, cell, x_data


if __name__ == "__main__":
    main()
