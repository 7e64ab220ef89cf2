"""Seed 001, "RNN with Tensorflow": cells, batches, lengths, initial state, MultiRNNCell,
bidirectional RNN, flattened softmax, sequence_loss values, and the hello-RNN.

Weights are random (as in the seed), so printed activations differ from the seed's; shapes,
masking (zeros past sequence_length) and the sequence_loss values are the same.
"""

import copy
import pprint

import numpy as np
import torch

from rnnkit import rnn, seq2seq

pp = pprint.PrettyPrinter(indent=4)

# One hot encoding for each char in 'hello'
h = [1, 0, 0, 0]
e = [0, 1, 0, 0]
l = [0, 0, 1, 0]
o = [0, 0, 0, 1]


def one_cell():
    hidden_size = 2
    cell = rnn.BasicRNNCell(num_units=hidden_size)
    print(cell.output_size, cell.state_size)
    x_data = torch.tensor([[h]], dtype=torch.float32)  # [[[1,0,0,0]]]
    pp.pprint(x_data.numpy())
    outputs, _states = rnn.dynamic_rnn(cell, x_data, dtype=torch.float32)
    pp.pprint(outputs.detach().numpy())
    return outputs


def two_sequences():
    cell = rnn.BasicRNNCell(num_units=2)
    x_data = torch.tensor([[h, e, l, l, o]], dtype=torch.float32)
    print(tuple(x_data.shape))
    outputs, states = rnn.dynamic_rnn(cell, x_data, dtype=torch.float32)
    pp.pprint(outputs.detach().numpy())
    return outputs


X3 = torch.tensor([[h, e, l, l, o], [e, o, l, l, l], [l, l, e, e, l]], dtype=torch.float32)


def three_batches():
    cell = rnn.BasicLSTMCell(num_units=2, state_is_tuple=True)
    outputs, _states = rnn.dynamic_rnn(cell, X3, dtype=torch.float32)
    pp.pprint(outputs.detach().numpy())
    return outputs


def dynamic_length():
    cell = rnn.BasicLSTMCell(num_units=2, state_is_tuple=True)
    outputs, _states = rnn.dynamic_rnn(cell, X3, dtype=torch.float32, sequence_length=[5, 4, 3])
    pp.pprint(outputs.detach().numpy())  # zeros past each length
    return outputs


def initial_state():
    batch_size = 3
    cell = rnn.BasicLSTMCell(num_units=2, state_is_tuple=True)
    init = cell.zero_state(batch_size, torch.float32)
    outputs, _states = rnn.dynamic_rnn(cell, X3, initial_state=init, dtype=torch.float32)
    pp.pprint(outputs.detach().numpy())
    return outputs


X45 = torch.arange(45, dtype=torch.float32).reshape(3, 5, 3)  # batch, sequence_length, input


def multi_rnn():
    pp.pprint(X45.numpy())
    cell = rnn.BasicLSTMCell(num_units=5, state_is_tuple=True)
    cell.zero_state(3, torch.float32)
    multi_cell = rnn.MultiRNNCell([copy.copy(cell) for _ in range(3)], state_is_tuple=True)
    outputs, _states = rnn.dynamic_rnn(multi_cell, X45, dtype=torch.float32)
    print("dynamic rnn: ", tuple(outputs.shape))
    pp.pprint(outputs.detach().numpy())  # batch size, unrolling (time), hidden_size
    return outputs


def bidirectional():
    cell_fw = rnn.BasicLSTMCell(num_units=5, state_is_tuple=True)
    cell_bw = rnn.BasicLSTMCell(num_units=5, state_is_tuple=True)
    outputs, states = rnn.bidirectional_dynamic_rnn(cell_fw, cell_bw, X45,
                                                    sequence_length=[2, 3, 1],
                                                    dtype=torch.float32)
    pp.pprint([t.detach().numpy() for t in outputs])
    pp.pprint(states)
    return outputs, states


def flatten_softmax():
    hidden_size, num_classes, sequence_length = 3, 5, 5
    x_data = X45.numpy().reshape(-1, hidden_size)
    pp.pprint(x_data)
    print(x_data.shape)
    softmax_w = np.arange(15, dtype=np.float32).reshape(hidden_size, num_classes)
    pp.pprint(softmax_w)
    outputs = np.matmul(x_data, softmax_w).reshape(-1, sequence_length, num_classes)
    pp.pprint(outputs)  # (batch, seq, class)
    return outputs


def sequence_losses():
    y_data = torch.tensor([[1, 1, 1]])
    weights = torch.ones(1, 3)
    prediction = torch.tensor([[[0.2, 0.7], [0.6, 0.2], [0.2, 0.9]]])
    loss0 = seq2seq.sequence_loss(logits=prediction, targets=y_data, weights=weights)
    print("Loss: ", f"{loss0.item():.6f}")  # 0.596759
    preds = [torch.tensor([[[0.3, 0.7]] * 3]), torch.tensor([[[0.1, 0.9]] * 3]),
             torch.tensor([[[1.0, 0.0]] * 3]), torch.tensor([[[0.0, 1.0], [1.0, 0.0],
                                                              [0.0, 1.0]]])]
    losses = [seq2seq.sequence_loss(p, y_data, weights).item() for p in preds]
    print("Loss1: ", f"{losses[0]:.6f}", "Loss2: ", f"{losses[1]:.6f}",
          "Loss3: ", f"{losses[2]:.6f}", "Loss4: ", f"{losses[3]:.6f}")
    return [loss0.item()] + losses


def hello_rnn(epochs=50):
    torch.manual_seed(777)  # reproducibility
    idx2char = ["h", "i", "e", "l", "o"]
    x_data = [[0, 1, 0, 2, 3, 3]]  # hihell
    x_one_hot = torch.eye(5)[torch.tensor(x_data)]
    y_data = torch.tensor([[1, 0, 2, 3, 3, 4]])  # ihello
    num_classes, hidden_size, batch_size, sequence_length = 5, 5, 1, 6
    cell = rnn.BasicLSTMCell(num_units=hidden_size, state_is_tuple=True, input_size=5)
    fc = torch.nn.Linear(hidden_size, num_classes)  # fully_connected, no activation
    opt = torch.optim.Adam([*cell.parameters(), *fc.parameters()], lr=0.1)
    result_str = ""
    for i in range(epochs):
        initial_state = cell.zero_state(batch_size, torch.float32)
        outputs, _states = rnn.dynamic_rnn(cell, x_one_hot, initial_state=initial_state,
                                           dtype=torch.float32)
        outputs = fc(outputs.reshape(-1, hidden_size)).reshape(batch_size, sequence_length,
                                                               num_classes)
        weights = torch.ones(batch_size, sequence_length)
        loss = seq2seq.sequence_loss(logits=outputs, targets=y_data, weights=weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
        result = outputs.argmax(2)
        print(i, "loss:", f"{loss.item():.6g}", "prediction: ", result.numpy(), "true Y: ",
              y_data.tolist())
        result_str = "".join(idx2char[c] for c in result[0].tolist())
        print("\tPrediction str: ", result_str)
    return result_str


def main():
    torch.manual_seed(0)
    print("## Only 1 Cell")
    one_cell()
    print("\n## 2 sequances")
    two_sequences()
    print("\n# 3 batches")
    three_batches()
    print("\n## 3 Batches with dynamic length")
    dynamic_length()
    print("\n## Initial State(Usually Zero)")
    initial_state()
    print("\n## Multi-RNN")
    multi_rnn()
    print("\n## Bi-Directional")
    bidirectional()
    print("\n## Flatten Based SoftMax")
    flatten_softmax()
    print("\n## Sequence-to-Sequence, Sequence Loss")
    sequence_losses()
    print("\n## Hello RNN")
    return hello_rnn()


if __name__ == "__main__":
    main()
