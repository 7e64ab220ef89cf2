"""Seed 000, "3. User Defined Decoder".

BasicDecoder assumes ``cell(inputs, state) -> (outputs, state)`` and the standard helper
signature.  Here the cell returns ``((frames, stop_token), state)`` (Tacotron 2) and the
helper's ``next_inputs`` takes an extra argument, so the decoder's ``step`` is customised.
"""

from typing import NamedTuple

import torch
from torch import nn

from rnnkit import rnn, seq2seq


class StopTokenCell(rnn.RNNCell):
    """LSTM whose step emits ``r`` frames and a stop-token logit."""

    def __init__(self, num_units, output_dim, r):
        super().__init__()
        self.lstm = rnn.BasicLSTMCell(num_units, input_size=output_dim)
        self.frames = nn.Linear(num_units, output_dim * r)
        self.stop = nn.Linear(num_units, 1)
        self.built = True

    @property
    def state_size(self):
        return self.lstm.state_size

    @property
    def output_size(self):
        return (self.frames.out_features, 1)

    def call(self, inputs, state):
        h, state = self.lstm(inputs, state)
        return (self.frames(h), self.stop(h)[:, 0]), state


class StopTokenHelper(seq2seq.Helper):
    """Inference helper with an extra ``stop_token`` argument in ``next_inputs``."""

    def __init__(self, batch_size, output_dim):
        self._batch, self._dim = batch_size, output_dim

    @property
    def batch_size(self):
        return self._batch

    @property
    def sample_ids_shape(self):
        return torch.Size([])

    @property
    def sample_ids_dtype(self):
        return torch.int64

    def initialize(self, name=None):
        return torch.zeros(self._batch, dtype=torch.bool), torch.zeros(self._batch, self._dim)

    def sample(self, time, outputs, state, name=None):
        return torch.zeros(self._batch, dtype=torch.int64)

    def next_inputs(self, time, outputs, state, stop_token, sample_ids, name=None):
        finished = torch.sigmoid(stop_token) > 0.5
        return finished, outputs[:, -self._dim:], state


class StopTokenDecoderOutput(NamedTuple):
    rnn_output: torch.Tensor  # [batch, (time,) output_dim * r]
    stop_token: torch.Tensor  # [batch, (time,)] logits
    sample_id: torch.Tensor


class StopTokenDecoder(seq2seq.BasicDecoder):
    """BasicDecoder with its ``step`` adapted to the cell's two outputs."""

    @property
    def output_size(self):
        frames, _ = self.cell.output_size
        return StopTokenDecoderOutput(frames, torch.Size([]), self.helper.sample_ids_shape)

    @property
    def output_dtype(self):
        return StopTokenDecoderOutput(torch.float32, torch.float32, torch.int64)

    def step(self, time, inputs, state, name=None):
        (cell_outputs, stop_token), cell_state = self.cell(inputs, state)
        sample_ids = self.helper.sample(time=time, outputs=cell_outputs, state=cell_state)
        finished, next_inputs, next_state = self.helper.next_inputs(
            time=time, outputs=cell_outputs, state=cell_state, stop_token=stop_token,
            sample_ids=sample_ids)
        outputs = StopTokenDecoderOutput(cell_outputs, stop_token, sample_ids)
        return outputs, next_state, next_inputs, finished


def main():
    torch.manual_seed(0)
    batch, output_dim, r = 2, 4, 2
    cell = StopTokenCell(16, output_dim, r)
    with torch.no_grad():  # the stop logit follows the memory: entry 0 stops first
        cell.stop.weight.fill_(1.0)
        cell.stop.bias.fill_(-2.0)
    init = rnn.LSTMStateTuple(torch.tensor([[4.0] * 16, [-4.0] * 16]), torch.zeros(batch, 16))
    decoder = StopTokenDecoder(cell, StopTokenHelper(batch, output_dim), init)
    outputs, state, lengths = seq2seq.dynamic_decode(decoder, impute_finished=True,
                                                     maximum_iterations=8)
    print("rnn_output:", tuple(outputs.rnn_output.shape), "stop_token:",
          tuple(outputs.stop_token.shape))
    print("stop probabilities:\n", torch.sigmoid(outputs.stop_token).detach().numpy().round(3))
    print("lengths:", lengths.tolist())
    return outputs, lengths


if __name__ == "__main__":
    main()
