"""Export of a seq2seq decode (encoder, attention decoder, greedy or beam search) to ONNX,
the decode loop inside the graph: served by onnxruntime without PyTorch.

rnnkit does not import onnx until an export runs (``pip install 'rnnkit[export]'``)::

    from rnnkit import export
    encoder = export.Encoder(cell_fw, cell_bw, embedding=src_embedding, bridge=bridge)
    export.export_seq2seq(encoder, decoder, "model.onnx", maximum_iterations=40)

``decoder`` is the decoder one would give :func:`rnnkit.seq2seq.dynamic_decode` (a
:class:`~rnnkit.seq2seq.BasicDecoder` with a :class:`~rnnkit.seq2seq.GreedyEmbeddingHelper`,
or a :class:`~rnnkit.seq2seq.BeamSearchDecoder`), built for any one batch: its cell, helper
or embedding, output layer, end token and search options are exported; its initial state is
replaced by what ``bridge`` makes from the encoder's outputs.  How: each part (the encoder's
embedding, one encoder step per direction, the bridge with the decoder's ``initialize``, one
decoder step, the final reordering) is traced with ``torch.onnx.export`` and the loops are
ONNX ``Loop`` nodes built around the traced steps; every part is then checked in
onnxruntime at another batch size and source length against the same code run eagerly, and
a part that does not trace (a step that reads a value on the host or bakes a size in) is
refused naming it (:class:`ExportError`).

:func:`export_sampler` exports free-running sampling from a language model (the char-RNN's
``rnnkit charrnn sample``), the loop in the graph, its draws reproducible outside PyTorch::

    export.export_sampler(model.cell, torch.eye(vocab), model.output, "sampler.onnx")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Encoder", "ExportError", "export_sampler", "export_seq2seq"]


class ExportError(ValueError):
    """A part of the model or decode that cannot be exported (the message names it)."""


@dataclass
class Encoder:
    """The encoder half of an exported model: ``dynamic_rnn(cell, embedding(source),
    sequence_length)``, or with ``cell_bw`` ``bidirectional_dynamic_rnn(cell, cell_bw, ...)``.

    Attributes:
        cell: the (forward) :class:`~rnnkit.rnn.RNNCell`: a built-in cell, a stack or any cell
            whose step traces.
        cell_bw: the backward cell, or ``None``.
        embedding: ``nn.Embedding`` (or ``[vocab, dim]`` tensor) looking up the int64
            ``source [batch, time]`` ids; ``None``: the source is float
            ``[batch, time, input_depth]``.
        bridge: ``(outputs, final_state, sequence_length) -> decoder initial state``, with
            ``outputs`` / ``final_state`` as the driver returns them (pairs with
            ``cell_bw``).  It binds the attention memory (``mechanism.setup_memory(memory,
            sequence_length)``) and returns the decoder cell's state, as eager code does
            before :func:`~rnnkit.seq2seq.dynamic_decode`.
        input_depth: the source depth when there is no embedding.
        modules: the modules whose parameters the bridge uses (or the whole model): their
            weights are exported, and they are put in ``eval()`` mode for the export.
    """

    cell: Any
    cell_bw: Any = None
    embedding: Any = None
    bridge: Callable | None = None
    input_depth: int | None = None
    modules: tuple = ()


def export_seq2seq(encoder: Encoder, decoder: Any, f: Any = None, *,
                   maximum_iterations: int = 100, opset_version: int = 17,
                   verify: bool = True, alignments: bool = False) -> Any:
    """Export ``encoder`` + ``decoder`` as one ONNX model; returns the ``onnx.ModelProto``
    (also written to ``f``, a path or binary file, when given).

    The model's inputs: ``source`` (``[batch, time]`` int64 ids, or float with no
    embedding), ``source_length [batch]`` int64 and ``maximum_iterations`` (an int64
    scalar; the model's metadata ``maximum_iterations`` holds the value given here, beside
    ``end_token`` and ``beam_width``).  A ``BeamSearchDecoder``'s model also reads two
    optional int64 scalars, its decoding constraints, computed inside the graph by the
    decoder's own step: ``min_length`` (no end token before that many tokens) and
    ``no_repeat_ngram_size`` (no hypothesis repeats one of its n-grams); 0 turns either off,
    and when one is not fed it is the decoder's value (also in the metadata under the same
    names), so one export serves every value.  Its outputs are what
    :func:`~rnnkit.seq2seq.dynamic_decode` returns, batch-major:

    * greedy (``BasicDecoder`` + ``GreedyEmbeddingHelper``): ``sample_id [batch, time]`` and
      ``sequence_length [batch]``;
    * ``BeamSearchDecoder``: ``predicted_ids [batch, time, beam]`` (best first),
      ``scores`` / ``parent_ids [batch, time, beam]`` (each step's raw outputs),
      ``sequence_length [batch, beam]`` and ``log_probs [batch, beam]`` (final state);
    * with ``alignments=True``, last: ``alignments`` (float), each step's attention
      probabilities over the source as the eager decode's final state holds them in its
      alignment history (``AttentionWrapper(alignment_history=True)``, one attention
      mechanism, needed): ``[batch, time, memory_time]`` greedy, ``[batch, time, beam,
      memory_time]`` beam search, reordered along the beams like ``predicted_ids``
      (``reorder_tensor_arrays=True``, the decoder's default).  The metadata's
      ``alignments`` is ``"1"`` then (else ``"0"``).

    The loop stops when every entry (every hypothesis) has finished, or after
    ``maximum_iterations`` steps.  The modules are exported in ``eval()`` mode (dropout
    off).  ``verify``: check every part in onnxruntime at a second batch size and source
    length against the eager computation (needs onnxruntime); a mismatch raises
    :class:`ExportError` naming the part.  Not exported (refused by name):
    ``BeamSearchDecoder(output_all_scores=True)``, sampling helpers.
    """
    from rnnkit.export import _seq2seq

    return _seq2seq.export_seq2seq(encoder, decoder, f, maximum_iterations=maximum_iterations,
                                   opset_version=opset_version, verify=verify,
                                   alignments=alignments)


def export_sampler(cell: Any, embedding: Any, output_layer: Any = None, f: Any = None, *,
                   opset_version: int = 17, verify: bool = True) -> Any:
    """Export sampling from a language model as one ONNX model (the loop in the graph);
    returns the ``onnx.ModelProto`` (also written to ``f``, a path or binary file, when
    given).

    The model is the decode :func:`rnnkit.apps.charrnn.sample` runs: ``cell`` (an
    :class:`~rnnkit.rnn.RNNCell`, batch 1, from its zero state) reads the prime's ids but
    the last, then a :class:`~rnnkit.seq2seq.BasicDecoder` with a
    :class:`~rnnkit.seq2seq.SampleEmbeddingHelper` feeds ``embedding`` (a ``[vocab, dim]``
    tensor or ``nn.Embedding``: the char-RNN's one-hot rows are ``torch.eye(vocab)``) of the
    prime's last id, and each step's ``output_layer(output)`` logits give the next id, drawn
    by :func:`~rnnkit.seq2seq.sample_categorical` at the step's uniform.

    Inputs: ``prime [prime_length]`` int64 (at least one id); ``uniforms [length]`` float64
    in ``[0, 1)``, one a step (``length`` ids are drawn; ``charrnn.sample`` uses
    :func:`rnnkit.generators.stable_uniforms`); ``temperature`` (float32 scalar, 0:
    greedy), ``top_k`` (int64 scalar, 0: all tokens) and ``top_p`` (float32 scalar, 1: all
    tokens), the options of :class:`~rnnkit.seq2seq.SampleEmbeddingHelper`.  Output:
    ``sample_ids [length]`` int64.  The modules are exported in ``eval()`` mode.
    ``verify``: run the model in onnxruntime for several primes, lengths and options
    against the eager decode; a difference raises :class:`ExportError`.
    """
    from rnnkit.export import _sampler

    return _sampler.export_sampler(cell, embedding, output_layer, f,
                                   opset_version=opset_version, verify=verify)
