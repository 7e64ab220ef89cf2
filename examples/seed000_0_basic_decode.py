"""Seed 000, "0. Basic": BasicDecoder + dynamic_decode, trained with TrainingHelper and run
with GreedyEmbeddingHelper.

Two stacked BasicLSTMCell(6), a Dense output layer (``output_projection``), Adam(0.01) for
100 steps; then greedy inference from SOS with the trained weights.
"""

import numpy as np
import torch
from torch import nn

from rnnkit import rnn, seq2seq

vocab_size, SOS_token, EOS_token = 5, 0, 4
x_data = np.array([[SOS_token, 2, 1, 2, 3, 2], [SOS_token, 3, 1, 2, 3, 1],
                   [SOS_token, 1, 3, 2, 2, 1]])
y_data = np.array([[2, 1, 2, 3, 2, EOS_token], [3, 1, 2, 3, 1, EOS_token],
                   [1, 3, 2, 2, 1, EOS_token]])


class Model(nn.Module):
    def __init__(self, hidden_dim=6, num_layers=2, embedding_dim=8, state_tuple_mode=True):
        super().__init__()
        cells = [rnn.BasicLSTMCell(num_units=hidden_dim, state_is_tuple=state_tuple_mode,
                                   input_size=embedding_dim if i == 0 else hidden_dim)
                 for i in range(num_layers)]
        self.cell = rnn.MultiRNNCell(cells)
        self.embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(vocab_size,
                                                                          embedding_dim)))
        self.output_layer = nn.Linear(hidden_dim, vocab_size)  # Dense(output_dim)

    def forward(self, x=None, train_mode=True, batch_size=3, seq_length=6):
        initial_state = self.cell.zero_state(batch_size, torch.float32)
        if train_mode:
            inputs = self.embedding[x]  # batch_size x seq_length x embedding_dim
            helper = seq2seq.TrainingHelper(inputs, [seq_length] * batch_size)
        else:
            helper = seq2seq.GreedyEmbeddingHelper(
                self.embedding, start_tokens=torch.full((batch_size,), SOS_token),
                end_token=EOS_token)
        decoder = seq2seq.BasicDecoder(cell=self.cell, helper=helper,
                                       initial_state=initial_state,
                                       output_layer=self.output_layer)
        # without maximum_iterations an inference decode that never meets EOS would not stop
        return seq2seq.dynamic_decode(decoder=decoder, output_time_major=False,
                                      impute_finished=True, maximum_iterations=10)


def main(steps=100):
    torch.manual_seed(1)
    print("data shape: ", x_data.shape)
    model = Model()
    X, Y = torch.from_numpy(x_data), torch.from_numpy(y_data)
    weights = torch.ones(*Y.shape)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for step in range(steps):
        outputs, last_state, last_sequence_lengths = model(X)
        loss = seq2seq.sequence_loss(logits=outputs.rnn_output, targets=Y, weights=weights)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 0:
            print("step: {}, loss: {}".format(step, loss.item()))
    with torch.no_grad():
        outputs, last_state, last_sequence_lengths = model(X)
        loss = seq2seq.sequence_loss(outputs.rnn_output, Y, weights)
        p = torch.softmax(outputs.rnn_output, -1).reshape(-1, vocab_size).numpy()
        print("loss: {:20.6f}".format(loss.item()))
        print("manual cal. loss: {:0.6f} ".format(
            np.average(-np.log(p[np.arange(y_data.size), y_data.flatten()]))))
        print("\n\noutputs: ", type(outputs).__name__, tuple(outputs.rnn_output.shape))
        print("\n", outputs.rnn_output.argmax(-1).numpy())
        print("\n\nlast_state: ", [tuple(s.c.shape) for s in last_state])
        print("\n\nlast_sequence_lengths: ", last_sequence_lengths.numpy())
        print("kernel(weight)", model.output_layer.weight.T.numpy())
        print("bias", model.output_layer.bias.numpy())

        outputs, _, lengths = model(train_mode=False)
        print("\ninference (GreedyEmbeddingHelper):")
        print("sample_id:", outputs.sample_id.numpy())
        print("targets:  ", y_data)
        print("lengths:  ", lengths.numpy())
    return loss.item(), outputs.sample_id, lengths


if __name__ == "__main__":
    main()
