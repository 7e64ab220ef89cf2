"""Seed 000, "4. Attention with Tensorflow".

BasicRNNCell(6) wrapped in AttentionWrapper(BahdanauAttention(num_units=11) over a random
memory [N, 20, 30] with memory_sequence_length [5, 10, 20], attention_layer_size=13,
alignment_history=True, output_attention=True) and OutputProjectionWrapper(5); TrainingHelper
+ BasicDecoder + dynamic_decode + sequence_loss + Adam(0.01) for 100 steps.  Prints the
state's fields and writes the alignment heatmap of entry 1.
"""

import sys

import numpy as np
import torch

from rnnkit import rnn, seq2seq
from rnnkit.apps import plot


def attention_test(steps=100, heatmap="runs/examples/attention_seed.png"):
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
    embedding = torch.tensor(init, dtype=torch.float32)
    inputs = embedding[torch.from_numpy(x_data)]  # batch_size x seq_length x embedding_dim

    # encoder_outputs is the memory; a toy model, so random values. 20: encoder length,
    # 30: encoder hidden dim
    encoder_outputs = torch.randn(batch_size, 20, 30)
    input_lengths = [5, 10, 20]  # no attention on the padding
    attention_mechanism = seq2seq.BahdanauAttention(num_units=11, memory=encoder_outputs,
                                                    memory_sequence_length=input_lengths,
                                                    normalize=False)
    attention_initial_state = cell.zero_state(batch_size, torch.float32)
    cell = seq2seq.AttentionWrapper(cell, attention_mechanism, attention_layer_size=13,
                                    initial_cell_state=attention_initial_state,
                                    alignment_history=True, output_attention=True)
    cell = rnn.OutputProjectionWrapper(cell, output_dim)
    # zero_state returns an AttentionWrapperState whose cell_state is the state given above
    initial_state = cell.zero_state(batch_size, torch.float32)

    def run():
        helper = seq2seq.TrainingHelper(inputs, np.array([seq_length] * batch_size))
        decoder = seq2seq.BasicDecoder(cell=cell, helper=helper, initial_state=initial_state)
        return seq2seq.dynamic_decode(decoder=decoder, output_time_major=False,
                                      impute_finished=True)

    weights = torch.ones(batch_size, seq_length)
    run()  # create the lazily built parameters
    opt = torch.optim.Adam(cell.parameters(), lr=0.01)
    for i in range(steps):
        attention_mechanism.setup_memory(encoder_outputs, input_lengths)  # new graph per step
        outputs, last_state, last_sequence_lengths = run()
        loss = seq2seq.sequence_loss(logits=outputs.rnn_output, targets=Y, weights=weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"{i} loss: = {loss.item()}")

    with torch.no_grad():
        attention_mechanism.setup_memory(encoder_outputs, input_lengths)
        outputs, last_state, last_sequence_lengths = run()
        print("\n\noutputs: ", type(outputs).__name__, tuple(outputs.rnn_output.shape))
        print("\n", outputs.rnn_output.argmax(-1).numpy())
        print("\n\nlast_state: ", type(last_state).__name__)
        alignment_history_ = last_state.alignment_history.stack().numpy()
        print("alignment_history: ", alignment_history_.shape)  # [time, batch, 20]
        print("alignment_history sum: ", np.sum(alignment_history_, axis=-1))
        print("cell_state: ", last_state.cell_state.numpy())
        print("attention: ", tuple(last_state.attention.shape))
        print("time: ", int(last_state.time))
        alignments_ = last_state.alignments.numpy()
        print("alignments: ", alignments_.round(3))
        print("alignments sum: ", np.sum(alignments_, axis=1))  # each row sums to 1
        print("attention_state: ", tuple(last_state.attention_state.shape))
        print("\n\nlast_sequence_lengths: ", last_sequence_lengths.numpy())
        p = torch.softmax(outputs.rnn_output, -1).reshape(-1, output_dim).numpy()
        loss = seq2seq.sequence_loss(outputs.rnn_output, Y, weights).item()
        manual = np.average(-np.log(p[np.arange(y_data.size), y_data.flatten()]))
        print("loss: {:20.6f}".format(loss))
        print("manual cal. loss: {:0.6f} ".format(manual))
    if heatmap:
        path = plot.alignment(alignment_history_[:, 1, :12], heatmap,
                              source_tokens=[f"m{j}" for j in range(12)],
                              target_tokens=[str(t) for t in x_data[1]],
                              title="entry 1 (memory length 10)")
        print("alignment heatmap:", path)
    return loss, manual, last_state


if __name__ == "__main__":
    attention_test(heatmap=sys.argv[1] if len(sys.argv) > 1 else
                   "runs/examples/attention_seed.png")
