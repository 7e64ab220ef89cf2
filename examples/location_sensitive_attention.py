"""A user-defined attention mechanism: location-sensitive attention (Tacotron 2).

``e_ij = v . tanh(W s_i + V h_j + U f_ij + b)`` where ``f_i = conv1d(cumulative alignments)``
(Chorowski et al. 2015; Shen et al. 2018).  The mechanism subclasses BahdanauAttention,
keeps the cumulative alignments as its state, and plugs into AttentionWrapper unchanged.

The demo learns to copy a sequence of vectors through attention (the decoder must read the
memory left to right), then writes the alignment heatmap: a monotonic diagonal.
"""

import sys

import torch
from torch import nn

from rnnkit import rnn, seq2seq
from rnnkit.apps import plot


class LocationSensitiveAttention(seq2seq.BahdanauAttention):
    """Bahdanau attention with location features from the cumulative alignments."""

    def __init__(self, num_units, memory=None, memory_sequence_length=None, filters=8,
                 kernel_size=7, query_depth=None):
        super().__init__(num_units, memory, memory_sequence_length, query_depth=query_depth)
        self.location_conv = nn.Conv1d(1, filters, kernel_size, padding=kernel_size // 2,
                                       bias=False)
        self.location_layer = nn.Linear(filters, num_units, bias=False)
        self.attention_bias = nn.Parameter(torch.zeros(num_units))

    def forward(self, query, state):
        # state: cumulative alignments [batch, memory_time]
        if self.query_layer is None:
            self.build_query_layer(query.shape[-1])
        processed_query = self.query_layer(query)[:, None, :]        # [B, 1, U]
        f = self.location_conv(state[:, None, :]).transpose(1, 2)      # [B, T, filters]
        processed_location = self.location_layer(f)                     # [B, T, U]
        energy = torch.tanh(self.keys + processed_query + processed_location
                            + self.attention_bias)
        score = (self.attention_v * energy).sum(-1)                     # [B, T]
        alignments = self.probability_fn(score, state)
        return alignments, state + alignments                           # cumulative


def main(steps=800, heatmap="runs/examples/location_sensitive.png"):
    torch.manual_seed(0)
    batch, length, depth = 16, 8, 6

    def data():
        x = torch.randn(batch, length, depth)
        return x, x  # copy task: target step t = memory step t

    encoder = nn.Linear(depth, 16)
    mech = LocationSensitiveAttention(16, query_depth=24)
    cell = seq2seq.AttentionWrapper(rnn.GRUCell(24, input_size=depth + 16), mech,
                                    alignment_history=True)
    head = nn.Linear(16, depth)
    x, _ = data()
    mech.setup_memory(encoder(x))
    params = [*encoder.parameters(), *cell.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=1e-2)
    for step in range(steps):
        x, y = data()
        mech.setup_memory(encoder(x))
        dec_in = torch.cat([torch.zeros(batch, 1, depth), y[:, :-1]], 1)  # teacher forcing
        helper = seq2seq.TrainingHelper(dec_in, [length] * batch)
        out, state, _ = seq2seq.dynamic_decode(
            seq2seq.BasicDecoder(cell, helper, cell.zero_state(batch), head))
        loss = nn.functional.mse_loss(out.rnn_output, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step}: copy loss {loss.item():.4f}")
    history = state.alignment_history.stack()[:, 0].detach()  # [target, source]
    diagonal = history.diagonal().mean().item()
    print(f"mean weight on the diagonal: {diagonal:.3f}")
    if heatmap:
        print("alignment heatmap:", plot.alignment(history, heatmap,
                                                   title="location-sensitive attention"))
    return loss.item(), diagonal


if __name__ == "__main__":
    main(heatmap=sys.argv[1] if len(sys.argv) > 1 else "runs/examples/location_sensitive.png")
