"""rnnkit.legacy_seq2seq beyond the upstream port: TF's variable names, reuse across calls,
a closed-form attention step, and a char-RNN written the TF way that trains."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit import compat, legacy_seq2seq, rnn


def test_embedding_attention_seq2seq_tf_variable_names_and_reuse():
    enc = [torch.tensor([1, 2]), torch.tensor([0, 1])]
    dec = [torch.tensor([0, 0]), torch.tensor([3, 1]), torch.tensor([2, 2])]
    with legacy_seq2seq.VariableStore() as store:
        cell = rnn.GRUCell(3)
        out, _ = legacy_seq2seq.embedding_attention_seq2seq(enc, dec, cell, 4, 5, 2)
        names = compat.tf_variable_names({"": store})
        n_params = len(list(store.parameters()))
        # a second call (next training step) and a new cell object reuse the variables
        again, _ = legacy_seq2seq.embedding_attention_seq2seq(enc, dec, cell, 4, 5, 2)
        other, _ = legacy_seq2seq.embedding_attention_seq2seq(enc, dec, rnn.GRUCell(3), 4, 5,
                                                              2)
    assert len(list(store.parameters())) == n_params
    torch.testing.assert_close(torch.stack(out), torch.stack(again))
    torch.testing.assert_close(torch.stack(out), torch.stack(other))
    s, d = "embedding_attention_seq2seq", "embedding_attention_decoder/attention_decoder"
    gru = ["gru_cell/candidate/bias", "gru_cell/candidate/kernel", "gru_cell/gates/bias",
           "gru_cell/gates/kernel"]
    expected = (
        [f"{s}/{d}/{n}" for n in ("AttnOutputProjection/bias", "AttnOutputProjection/kernel",
                                  "AttnV_0", "AttnW_0", "Attention_0/bias",
                                  "Attention_0/kernel", "bias", "kernel")]
        + [f"{s}/{d}/output_projection_wrapper/{n}" for n in ["bias", *gru, "kernel"]]
        + [f"{s}/embedding_attention_decoder/embedding"]
        + [f"{s}/rnn/embedding_wrapper/{n}" for n in ["embedding", *gru]])
    assert names == sorted(expected)
    shapes = {n: v.shape for n, v in compat.tf_variables_of({"": store}).items()}
    assert shapes[f"{s}/{d}/AttnW_0"] == (1, 1, 3, 3)
    assert shapes[f"{s}/{d}/kernel"] == (2 + 3, 2)   # [input + heads * attn_size, input]
    assert shapes[f"{s}/{d}/AttnOutputProjection/kernel"] == (5 + 3, 5)


def test_attention_decoder_step_matches_tf_equations():
    """One step of attention_decoder written out from TF's equations (two heads)."""
    torch.manual_seed(0)
    batch, length, attn_size, heads = 2, 4, 3, 2
    states = torch.randn(batch, length, attn_size, dtype=torch.float64)
    h0 = torch.randn(batch, 3, dtype=torch.float64)
    x = torch.randn(batch, 2, dtype=torch.float64)
    cell = rnn.BasicRNNCell(3, dtype=torch.float64)
    with legacy_seq2seq.VariableStore() as store, torch.no_grad():
        out, h1 = legacy_seq2seq.attention_decoder([x], h0, states, cell, output_size=4,
                                                   num_heads=heads)
    v = {n.split("attention_decoder/", 1)[1]: a
         for n, a in compat.tf_variables_of({"": store}).items()}
    np_states = states.numpy()

    def attend(q):
        reads = []
        for a in range(heads):
            feats = np_states @ v[f"AttnW_{a}"][0, 0]
            y = q @ v[f"Attention_{a}/kernel"] + v[f"Attention_{a}/bias"]
            s = (v[f"AttnV_{a}"] * np.tanh(feats + y[:, None])).sum(-1)
            w = np.exp(s - s.max(1, keepdims=True))
            w /= w.sum(1, keepdims=True)
            reads.append((w[..., None] * np_states).sum(1))
        return reads

    zeros = [np.zeros((batch, attn_size))] * heads
    cell_in = np.concatenate([x.numpy(), *zeros], 1) @ v["kernel"] + v["bias"]
    new_h = np.tanh(np.concatenate([cell_in, h0.numpy()], 1) @ v["basic_rnn_cell/kernel"]
                    + v["basic_rnn_cell/bias"])
    output = (np.concatenate([new_h, *attend(new_h)], 1) @ v["AttnOutputProjection/kernel"]
              + v["AttnOutputProjection/bias"])
    np.testing.assert_allclose(h1.numpy(), new_h, rtol=1e-10)
    # TF takes the attention softmax in float32 whatever the dtype: so does rnnkit
    np.testing.assert_allclose(out[0].numpy(), output, rtol=1e-6)


def test_reuse_with_another_kind_of_cell_is_refused():
    with legacy_seq2seq.VariableStore():
        legacy_seq2seq.rnn_decoder([torch.zeros(1, 2)], torch.zeros(1, 3), rnn.GRUCell(3))
        with pytest.raises(ValueError, match="already holds"):
            legacy_seq2seq.rnn_decoder([torch.zeros(1, 2)], torch.zeros(1, 4), rnn.GRUCell(4))


def test_loss_arguments_are_checked():
    with pytest.raises(ValueError, match="must be the same"):
        legacy_seq2seq.sequence_loss_by_example([torch.zeros(2, 3)], [], [torch.ones(2)])
    with pytest.raises(ValueError, match="last bucket"):
        legacy_seq2seq.model_with_buckets([torch.zeros(2)], [], [], [], [(2, 2)],
                                          lambda a, b: None)


class CharRNN(torch.nn.Module):
    """sherjilozair/char-rnn-tensorflow's model, the TF way: an embedding split into steps,
    ``legacy_seq2seq.rnn_decoder`` (with the argmax loop function when sampling) and
    ``sequence_loss_by_example``."""

    def __init__(self, vocab_size, rnn_size=32, num_layers=2):
        super().__init__()
        self.cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(rnn_size) for _ in range(num_layers)])
        self.embedding = torch.nn.Parameter(torch.randn(vocab_size, rnn_size) * 0.1)
        self.softmax_w = torch.nn.Parameter(torch.randn(rnn_size, vocab_size) * 0.1)
        self.softmax_b = torch.nn.Parameter(torch.zeros(vocab_size))
        rnn.build(self.cell, torch.zeros(1, rnn_size), self.cell.zero_state(1))

    def forward(self, input_data, targets, infer=False):
        batch_size, seq_length = input_data.shape
        inputs = list(torch.nn.functional.embedding(input_data, self.embedding).unbind(1))

        def loop(prev, _):
            prev_symbol = (prev @ self.softmax_w + self.softmax_b).argmax(1)
            return torch.nn.functional.embedding(prev_symbol, self.embedding).detach()

        initial_state = self.cell.zero_state(batch_size)
        outputs, last_state = legacy_seq2seq.rnn_decoder(
            inputs, initial_state, self.cell, loop_function=loop if infer else None,
            scope="rnnlm")
        output = torch.cat(outputs, 1).reshape(-1, self.cell.output_size)
        logits = output @ self.softmax_w + self.softmax_b
        loss = legacy_seq2seq.sequence_loss_by_example(
            [logits], [targets.reshape(-1)], [torch.ones(batch_size * seq_length)])
        return loss.sum() / batch_size / seq_length, last_state


def test_char_rnn_written_with_legacy_seq2seq_trains():
    torch.manual_seed(0)
    text = "the quick brown fox jumps over the lazy dog. " * 40
    chars = sorted(set(text))
    data = torch.tensor([chars.index(c) for c in text])
    batch_size, seq_length = 16, 20
    with legacy_seq2seq.VariableStore():
        model = CharRNN(len(chars))
        optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
        losses = []
        for _ in range(60):
            starts = torch.randint(len(data) - seq_length - 1, (batch_size,))
            x = torch.stack([data[s:s + seq_length] for s in starts])
            y = torch.stack([data[s + 1:s + seq_length + 1] for s in starts])
            cost, _ = model(x, y)
            optimizer.zero_grad()
            cost.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            losses.append(cost.item())
        with torch.no_grad():
            greedy, _ = model(x[:1], y[:1], infer=True)
    assert np.mean(losses[:10]) > 2.5
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])
    assert torch.isfinite(greedy)
