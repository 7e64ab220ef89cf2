"""Seed 004, "Sequence to Sequence": four-letter English words to two-letter Korean words.

Encoder and decoder are BasicRNNCell(128) with output dropout (keep 0.5); the encoder's
final state is the decoder's initial state; one-hot inputs; Adam(0.01) for 100 epochs.
``translate`` mirrors the seed (decoder fed 'P' padding, argmax, cut at 'E'); ``greedy``
decodes properly with GreedyEmbeddingHelper, feeding back each predicted symbol.
"""

import numpy as np
import torch
from torch import nn

from rnnkit import rnn, seq2seq

# S: start of decoding, E: end of decoding, P: padding
char_arr = [c for c in "SEPabcdefghijklmnopqrstuvwxyz단어나무놀이소녀키스사랑"]
num_dic = {n: i for i, n in enumerate(char_arr)}
dic_len = len(num_dic)
seq_data = [["word", "단어"], ["wood", "나무"], ["game", "놀이"], ["girl", "소녀"],
            ["kiss", "키스"], ["love", "사랑"]]


def make_batch(seq_data):
    input_batch, output_batch, target_batch = [], [], []
    for seq in seq_data:
        inp = [num_dic[n] for n in seq[0]]
        out = [num_dic[n] for n in ("S" + seq[1])]
        target = [num_dic[n] for n in (seq[1] + "E")]
        input_batch.append(np.eye(dic_len)[inp])
        output_batch.append(np.eye(dic_len)[out])
        target_batch.append(target)
    return (torch.tensor(np.array(input_batch), dtype=torch.float32),
            torch.tensor(np.array(output_batch), dtype=torch.float32),
            torch.tensor(np.array(target_batch)))


class Seq2Seq(nn.Module):
    def __init__(self, n_hidden=128):
        super().__init__()
        self.enc_cell = rnn.DropoutWrapper(rnn.BasicRNNCell(n_hidden, input_size=dic_len),
                                           output_keep_prob=0.5)
        self.dec_cell = rnn.DropoutWrapper(rnn.BasicRNNCell(n_hidden, input_size=dic_len),
                                           output_keep_prob=0.5)
        self.dense = nn.Linear(n_hidden, dic_len)

    def encode(self, enc_input):
        _, enc_states = rnn.dynamic_rnn(self.enc_cell, enc_input, dtype=torch.float32)
        return enc_states

    def forward(self, enc_input, dec_input):
        enc_states = self.encode(enc_input)
        outputs, _ = rnn.dynamic_rnn(self.dec_cell, dec_input, initial_state=enc_states)
        return self.dense(outputs)

    def greedy(self, enc_input, max_len=3):
        helper = seq2seq.GreedyEmbeddingHelper(torch.eye(dic_len),
                                               torch.full((enc_input.shape[0],), num_dic["S"]),
                                               num_dic["E"])
        decoder = seq2seq.BasicDecoder(self.dec_cell, helper, self.encode(enc_input), self.dense)
        outputs, _, _ = seq2seq.dynamic_decode(decoder, maximum_iterations=max_len)
        return outputs.sample_id


def decode_ids(ids):
    decoded = [char_arr[i] for i in ids]
    return "".join(decoded[: decoded.index("E")] if "E" in decoded else decoded)


def main(total_epoch=100):
    torch.manual_seed(0)
    model = Seq2Seq()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    input_batch, output_batch, target_batch = make_batch(seq_data)
    for epoch in range(total_epoch):
        model.train()
        logits = model(input_batch, output_batch)
        loss = nn.functional.cross_entropy(logits.reshape(-1, dic_len), target_batch.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print("Epoch:", "%04d" % (epoch + 1), "cost =", "{:.6f}".format(loss.item()))
    print("최적화 완료!")

    model.eval()

    def translate(word):
        # as the seed: the decoder reads 'P' padding because the translation is unknown
        inp, out, _ = make_batch([[word, "P" * len(word)]])
        with torch.no_grad():
            return decode_ids(model(inp, out).argmax(2)[0].tolist())

    def greedy(word):
        inp, _, _ = make_batch([[word, "PP"]])
        with torch.no_grad():
            return decode_ids(model.greedy(inp)[0].tolist())

    print("\n=== 번역 테스트 ===")
    results = {}
    for word in ("word", "wodr", "love", "loev", "abcd"):
        results[word] = (translate(word), greedy(word))
        print(f"{word} -> {results[word][0]}    (greedy decode: {results[word][1]})")
    return loss.item(), results


if __name__ == "__main__":
    main()
