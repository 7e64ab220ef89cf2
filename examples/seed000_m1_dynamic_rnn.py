"""Seed 000, "-1. Tensorflow RNN Basic of Basic": dynamic_rnn + OutputProjectionWrapper.

Five-word vocabulary (SOS, three words, EOS), embedding initialised to 0, 1, 2, ...,
BasicRNNCell(6) wrapped in OutputProjectionWrapper(5), sequence_loss checked against the
loss computed by hand.
"""

import numpy as np
import torch

from rnnkit import rnn, seq2seq


def dynamic_rnn_test():
    torch.manual_seed(0)
    vocab_size, SOS_token, EOS_token = 5, 0, 4
    x_data = np.array([[SOS_token, 3, 1, 2, 3, 2], [SOS_token, 3, 1, 2, 3, 1],
                       [SOS_token, 1, 3, 2, 2, 1]])
    y_data = np.array([[1, 2, 0, 3, 2, EOS_token], [3, 2, 3, 3, 1, EOS_token],
                       [3, 1, 1, 2, 0, EOS_token]])
    Y = torch.from_numpy(y_data)
    print("data shape: ", x_data.shape)

    output_dim, batch_size, hidden_dim = vocab_size, len(x_data), 6
    seq_length, embedding_dim = x_data.shape[1], 8
    init = np.arange(vocab_size * embedding_dim).reshape(vocab_size, -1)

    cell = rnn.BasicRNNCell(num_units=hidden_dim)
    cell = rnn.OutputProjectionWrapper(cell, output_dim)
    embedding = torch.tensor(init, dtype=torch.float32)
    inputs = embedding[torch.from_numpy(x_data)]  # batch_size x seq_length x embedding_dim

    initial_state = cell.zero_state(batch_size, torch.float32)  # batch_size x hidden_dim
    outputs, last_state = rnn.dynamic_rnn(cell, inputs, sequence_length=[seq_length] * batch_size,
                                          initial_state=initial_state)
    weights = torch.ones(batch_size, seq_length)
    loss = seq2seq.sequence_loss(logits=outputs, targets=Y, weights=weights)

    print("initial_state: ", initial_state)
    print("\n\noutputs: ", tuple(outputs.shape))
    with torch.no_grad():
        print("\n", outputs.numpy(), outputs.argmax(-1).numpy())
        print("\n\nlast_state: ", tuple(last_state.shape))
        print(last_state.numpy())
        p = torch.softmax(outputs, -1).reshape(-1, output_dim).numpy()
        manual = np.average(-np.log(p[np.arange(y_data.size), y_data.flatten()]))
        print("loss: {:20.6f}".format(loss.item()))
        print("manual cal. loss: {:0.6f} ".format(manual))
    assert abs(loss.item() - manual) < 1e-5
    return loss.item(), manual


if __name__ == "__main__":
    dynamic_rnn_test()
    print("Done")
