"""Seed 000, "2. User Defined Helper".

* MyRnnHelper: a hand-written TrainingHelper-like helper feeding embedded argmax samples.
* TacoTestHelper: Tacotron-style inference; the decoder emits ``r`` frames of ``output_dim``
  per step and the last frame feeds the next step; it stops on an all-zero output.
* TacoTrainingHelper: its teacher-forcing counterpart (feeds the last ground-truth frame of
  each group of ``r``).
"""

import torch

from rnnkit import rnn, seq2seq

SOS_token = 0


class MyRnnHelper(seq2seq.Helper):
    # properties batch_size, sample_ids_dtype, sample_ids_shape and methods
    # initialize, sample, next_inputs
    def __init__(self, embedding, batch_size, output_dim, sequence_length):
        self._embedding = embedding
        self._batch_size = batch_size
        self._output_dim = output_dim
        self._sequence_length = torch.as_tensor(sequence_length)

    @property
    def batch_size(self):
        return self._batch_size

    @property
    def sample_ids_dtype(self):
        return torch.int64

    @property
    def sample_ids_shape(self):
        return torch.Size([])  # sample_ids are [batch_size]: without the batch, "[]"

    def next_inputs(self, time, outputs, state, sample_ids, name=None):
        # inputs for time + 1 from this step's outputs / sample_ids
        next_time = time + 1
        finished = next_time >= self._sequence_length
        next_inputs = self._embedding[sample_ids]
        return (finished, next_inputs, state)  # when finished, next_inputs/state don't matter

    def initialize(self, name=None):
        finished = torch.zeros(self._batch_size, dtype=torch.bool)
        return finished, self._embedding[torch.full((self._batch_size,), SOS_token)]

    def sample(self, time, outputs, state, name=None):
        return torch.argmax(outputs, dim=-1)


class TacoTestHelper(seq2seq.Helper):
    def __init__(self, batch_size, output_dim, r):
        self._batch_size = batch_size
        self._output_dim = output_dim
        self._end_token = torch.zeros(output_dim * r)  # [0.0, 0.0, ...]

    @property
    def batch_size(self):
        return self._batch_size

    @property
    def sample_ids_dtype(self):
        return torch.int64

    @property
    def sample_ids_shape(self):
        return torch.Size([])

    def initialize(self, name=None):
        return (torch.zeros(self._batch_size, dtype=torch.bool),
                torch.zeros(self._batch_size, self._output_dim))

    def sample(self, time, outputs, state, name=None):
        return torch.zeros(self._batch_size, dtype=torch.int64)  # ignored

    def next_inputs(self, time, outputs, state, sample_ids, name=None):
        """Stop on an all-zero output; else feed the last output frame."""
        finished = torch.all(outputs == self._end_token, dim=1)
        # outputs: (batch_size, output_dim * r); keep the last output_dim values
        next_inputs = outputs[:, -self._output_dim:]
        return (finished, next_inputs, state)


class TacoTrainingHelper(seq2seq.Helper):
    def __init__(self, targets, output_dim, r):
        # targets: [batch, time, output_dim] with time a multiple of r
        self._batch_size = targets.shape[0]
        self._output_dim = output_dim
        self._targets = targets[:, r - 1::r, :]  # last frame of each group of r
        self._steps = self._targets.shape[1]

    @property
    def batch_size(self):
        return self._batch_size

    @property
    def sample_ids_dtype(self):
        return torch.int64

    @property
    def sample_ids_shape(self):
        return torch.Size([])

    def max_steps(self):
        return self._steps

    def initialize(self, name=None):
        return (torch.zeros(self._batch_size, dtype=torch.bool),
                torch.zeros(self._batch_size, self._output_dim))

    def sample(self, time, outputs, state, name=None):
        return torch.zeros(self._batch_size, dtype=torch.int64)

    def next_inputs(self, time, outputs, state, sample_ids, name=None):
        finished = torch.full((self._batch_size,), time + 1 >= self._steps)
        next_inputs = self._targets[:, min(time, self._steps - 1)]
        return (finished, next_inputs, state)


def main():
    torch.manual_seed(0)
    vocab_size, embedding_dim, batch_size = 5, 8, 3
    embedding = torch.randn(vocab_size, embedding_dim)
    cell = rnn.OutputProjectionWrapper(rnn.GRUCell(6), vocab_size)
    helper = MyRnnHelper(embedding, batch_size, vocab_size, [6, 4, 2])
    out, _, lengths = seq2seq.dynamic_decode(
        seq2seq.BasicDecoder(cell, helper, cell.zero_state(batch_size)), impute_finished=True)
    print("MyRnnHelper sample_id:\n", out.sample_id.numpy(), "\nlengths:", lengths.tolist())

    output_dim, r, frames = 4, 3, 12
    taco = rnn.OutputProjectionWrapper(rnn.GRUCell(16), output_dim * r)
    targets = torch.randn(batch_size, frames, output_dim)
    rnn.dynamic_rnn(taco, targets[:, :1])  # build the parameters before the optimizer
    opt = torch.optim.Adam(taco.parameters(), lr=1e-2)
    for _ in range(30):
        helper = TacoTrainingHelper(targets, output_dim, r)
        out, _, _ = seq2seq.dynamic_decode(
            seq2seq.BasicDecoder(taco, helper, taco.zero_state(batch_size)))
        pred = out.rnn_output.reshape(batch_size, frames, output_dim)
        loss = torch.nn.functional.l1_loss(pred, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"TacoTrainingHelper: frames {tuple(pred.shape)}, L1 loss after 30 steps "
          f"{loss.item():.4f}")
    with torch.no_grad():
        test = TacoTestHelper(batch_size, output_dim, r)
        out, _, lengths = seq2seq.dynamic_decode(
            seq2seq.BasicDecoder(taco, test, taco.zero_state(batch_size)), maximum_iterations=4)
    print(f"TacoTestHelper: rnn_output {tuple(out.rnn_output.shape)} "
          f"(batch, steps, output_dim * r), lengths {lengths.tolist()}")
    return out


if __name__ == "__main__":
    main()
