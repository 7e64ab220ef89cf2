"""Seed 004, "단어 자동완성": given 3 letters, predict the 4th of ten four-letter words.

BasicLSTMCell(128) with output dropout (keep 0.5) stacked on BasicLSTMCell(128) in a
MultiRNNCell, dynamic_rnn, the last output through W, b; sparse softmax cross-entropy,
Adam(0.01), 30 epochs.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit import rnn

char_arr = [c for c in "abcdefghijklmnopqrstuvwxyz"]
num_dic = {n: i for i, n in enumerate(char_arr)}
dic_len = len(num_dic)
seq_data = ["word", "wood", "deep", "dive", "cold", "cool", "load", "love", "kiss", "kind"]


def make_batch(seq_data):
    input_batch, target_batch = [], []
    for seq in seq_data:
        inp = [num_dic[n] for n in seq[:-1]]
        input_batch.append(np.eye(dic_len)[inp])
        target_batch.append(num_dic[seq[-1]])
    return (torch.tensor(np.array(input_batch), dtype=torch.float32),
            torch.tensor(target_batch))


def main(total_epoch=30, learning_rate=0.01, n_hidden=128):
    torch.manual_seed(0)
    n_input = n_class = dic_len
    cell1 = rnn.BasicLSTMCell(n_hidden, input_size=n_input)
    cell1 = rnn.DropoutWrapper(cell1, output_keep_prob=0.5)  # against over-fitting
    cell2 = rnn.BasicLSTMCell(n_hidden, input_size=n_hidden)
    multi_cell = rnn.MultiRNNCell([cell1, cell2])
    W = nn.Parameter(torch.randn(n_hidden, n_class))
    b = nn.Parameter(torch.randn(n_class))

    def model(X):
        outputs, states = rnn.dynamic_rnn(multi_cell, X, dtype=torch.float32)
        outputs = outputs.transpose(0, 1)[-1]  # [batch, n_hidden] at the last step
        return outputs @ W + b

    optimizer = torch.optim.Adam([*multi_cell.parameters(), W, b], lr=learning_rate)
    input_batch, target_batch = make_batch(seq_data)
    multi_cell.train()
    for epoch in range(total_epoch):
        loss = F.cross_entropy(model(input_batch), target_batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print("Epoch:", "%04d" % (epoch + 1), "cost =", "{:.6f}".format(loss.item()))
    print("최적화 완료!")

    multi_cell.eval()  # dropout only while training
    with torch.no_grad():
        prediction = model(input_batch).argmax(1)
    accuracy_val = (prediction == target_batch).float().mean().item()
    predict_words = [val[:3] + char_arr[prediction[i]] for i, val in enumerate(seq_data)]
    print("\n=== 예측 결과 ===")
    print("입력값:", [w[:3] + " " for w in seq_data])
    print("예측값:", predict_words)
    print("정확도:", accuracy_val)
    return accuracy_val, predict_words


if __name__ == "__main__":
    main()
