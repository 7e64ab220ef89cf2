"""Seed 000, "1. RNNWrapper": user-defined cells passed to BasicDecoder.

* MyRnnWrapper: output = input, state + 0.1 per step (last state 0.6 after 6 steps);
* MyBasicRNNWrapper: BasicRNNCell written by hand with build()/call();
* MyBasicRNNWrapper2: a true wrapper around another cell (here a residual variant).
"""

import numpy as np
import torch

from rnnkit import rnn, seq2seq


class MyRnnWrapper(rnn.RNNCell):
    # define the two properties output_size, state_size and call()
    def __init__(self, state_dim, name=None):
        super().__init__(name=name)
        self.sate_size = state_dim

    @property
    def output_size(self):
        return self.sate_size

    @property
    def state_size(self):
        return self.sate_size

    def call(self, inputs, state):
        cell_output = inputs
        next_state = state + 0.1
        return cell_output, next_state


class MyBasicRNNWrapper(rnn.RNNCell):
    def __init__(self, state_dim, name=None):
        super().__init__(name=name)
        self.sate_size = state_dim

    @property
    def output_size(self):
        return self.sate_size

    @property
    def state_size(self):
        return self.sate_size

    def build(self, inputs_shape):
        # create the trainable variables here; they exist after the first call
        input_depth = inputs_shape[1]
        self._kernel = self.add_variable("kernel", shape=[input_depth + self.sate_size,
                                                          self.sate_size])
        self._bias = self.add_variable("bias", shape=[self.sate_size],
                                       initializer=torch.nn.init.zeros_)

    def call(self, inputs, state):
        gate_inputs = torch.cat((inputs, state), dim=1) @ self._kernel
        gate_inputs = gate_inputs + self._bias
        cell_output = torch.tanh(gate_inputs)
        next_state = cell_output
        return cell_output, next_state


class MyBasicRNNWrapper2(rnn.RNNCell):
    def __init__(self, cell, name=None):
        super().__init__(name=name)
        self.cell = cell

    @property
    def output_size(self):
        return self.cell.output_size

    @property
    def state_size(self):
        return self.cell.state_size

    def call(self, inputs, state):
        # work 1: prepare inputs/state for self.cell; work 2: post-process its results
        cell_output, next_state = self.cell(inputs, state)
        if cell_output.shape == inputs.shape:
            cell_output = inputs + cell_output  # residual rnn
        return cell_output, next_state


def decode(cell, inputs, batch_size, seq_length):
    initial_state = cell.zero_state(batch_size, torch.float32)
    helper = seq2seq.TrainingHelper(inputs, np.array([seq_length] * batch_size))
    decoder = seq2seq.BasicDecoder(cell=cell, helper=helper, initial_state=initial_state,
                                   output_layer=None)
    return seq2seq.dynamic_decode(decoder=decoder, output_time_major=False, impute_finished=True,
                                  maximum_iterations=10)


def main():
    torch.manual_seed(0)
    SOS_token, vocab_size = 0, 5
    x_data = np.array([[SOS_token, 3, 3, 2, 3, 2], [SOS_token, 3, 1, 2, 3, 1],
                       [SOS_token, 1, 3, 2, 2, 1]])
    print("data shape: ", x_data.shape)
    batch_size, seq_length, embedding_dim = len(x_data), x_data.shape[1], 2
    init = np.arange(vocab_size * embedding_dim).reshape(vocab_size, -1)
    embedding = torch.tensor(init, dtype=torch.float32)
    inputs = embedding[torch.from_numpy(x_data)]  # batch_size x seq_length x embedding_dim

    cell = MyRnnWrapper(embedding_dim, "xxx")
    outputs, last_state, _ = decode(cell, inputs, batch_size, seq_length)
    print("\ninputs: ", tuple(inputs.shape))
    print("\n", inputs.numpy())
    print("\noutputs: ", type(outputs).__name__)
    print("\n", outputs.rnn_output.numpy())
    print("\nlast state: ", tuple(last_state.shape))
    print("\n", last_state.numpy())  # 0.6 = 6 steps x 0.1

    hidden_dim = 4
    for cell in (MyBasicRNNWrapper(hidden_dim, "xxx"),
                 MyBasicRNNWrapper2(rnn.BasicRNNCell(hidden_dim), "xxx")):
        outputs, last_state, lengths = decode(cell, inputs, batch_size, seq_length)
        print(f"\n{type(cell).__name__}: rnn_output {tuple(outputs.rnn_output.shape)}, "
              f"last state {tuple(last_state.shape)}, lengths {lengths.tolist()}")
    return last_state, cell, inputs


if __name__ == "__main__":
    main()
