"""The machinery behind :func:`rnnkit.export.export_sampler`.

A sampling run (the prime read, then ``length`` characters drawn, each fed back) is split
into three parts, each a function of flat tensors traced with ``torch.onnx.export`` as
:mod:`rnnkit.export._seq2seq` traces its parts (and with its tools):

* ``start``: the cell's zero state and the prime's last id;
* ``prime step``: one cell step reading one prime id, the body of an ONNX ``Loop`` over all
  the prime but its last id;
* ``sample step``: one step of :class:`~rnnkit.seq2seq.BasicDecoder` with a
  :class:`~rnnkit.seq2seq.SampleEmbeddingHelper` (the cell, the output layer, then
  :func:`~rnnkit.seq2seq.sample_categorical` at the step's uniform, with the temperature,
  ``top_k`` and ``top_p`` as tensors), the body of an ONNX ``Loop`` over the uniforms.

The model is then run in onnxruntime for several primes, lengths and sampling options and
compared with the eager decode (``charrnn.sample``'s own).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit import seq2seq
from rnnkit.export import ExportError
from rnnkit.export._seq2seq import (
    _TRACE,
    _Builder,
    _onnx,
    _Part,
    _refill,
    _session,
    _tensors,
    _trace,
)
from rnnkit.rnn.cell import RNNCell, initial_state
from rnnkit.seq2seq.helper import EmbeddingLookup

#: the option sets the export is checked with: (prime length, length, temperature, top_k,
#: top_p); top_k 0 and top_p 1 keep every token
_CHECKS = ((1, 12, 0.0, 0, 1.0), (4, 12, 1.0, 0, 1.0), (3, 12, 0.7, 3, 1.0),
           (2, 12, 1.3, 0, 0.6), (3, 12, 0.9, 4, 0.8), (1, 0, 1.0, 0, 1.0))


class _Sampler:
    """The parts of one exported sampler and their eager composition."""

    def __init__(self, cell: Any, embedding: Any, output_layer: Any):
        if not isinstance(cell, RNNCell):
            raise ExportError(f"cell must be an RNNCell, received {type(cell).__name__}")
        if output_layer is not None and not callable(output_layer):
            raise ExportError(f"output_layer must be a module or callable, received "
                              f"{type(output_layer).__name__}")
        self.cell = cell
        self.embedding = embedding
        self.lookup = EmbeddingLookup(embedding)
        if self.lookup.vocab_size is None:
            raise ExportError("embedding must be a [vocab, dim] tensor or an nn.Embedding "
                              "(a function of ids has no vocabulary to check)")
        self.vocab = int(self.lookup.vocab_size)
        self.output_layer = output_layer
        self.template: Any = None
        self.parts = {
            "start": _Part("the start (zero state, the prime's last id)", self._start),
            "prime": _Part(f"the prime's step (cell {type(cell).__name__})", self._prime_step),
            "sample": _Part(f"the sampling step (cell {type(cell).__name__}, the output "
                            "layer, sample_categorical)", self._sample_step),
        }

    def modules(self) -> list[nn.Module]:
        found = [self.cell]
        for m in (self.output_layer, self.lookup.module):
            if isinstance(m, nn.Module):
                found.append(m)
        return found

    def _logits(self, out: torch.Tensor) -> torch.Tensor:
        return out if self.output_layer is None else self.output_layer(out)

    # -- the parts ------------------------------------------------------------------------
    def _start(self, prime):
        first = self.lookup(prime[:1])
        zero = initial_state(self.cell, 1, first.dtype, None)
        if self.template is None:
            self.template = zero
        return [*_tensors(zero), prime[-1:]]

    def _prime_step(self, t, *args):
        n = len(_tensors(self.template))
        state = _refill(self.template, list(args[:n]))
        prime = args[n]
        _, new = self.cell.step(self.lookup(prime.index_select(0, t.reshape(1))), state)
        return _tensors(new)

    def _sample_step(self, t, previous, *args):
        n = len(_tensors(self.template))
        state = _refill(self.template, list(args[:n]))
        uniforms, temperature, top_k, top_p = args[n:]
        out, new = self.cell.step(self.lookup(previous), state)
        if not isinstance(out, torch.Tensor):
            raise ExportError(f"the cell {type(self.cell).__name__} emits a structure; one "
                              "output tensor is exported")
        ids = seq2seq.sample_categorical(self._logits(out), None, temperature, top_k, top_p,
                                         uniform=uniforms.index_select(0, t.reshape(1)))
        return [ids, *_tensors(new), ids[0]]

    def run(self, run: str, prime, uniforms, temperature, top_k, top_p) -> torch.Tensor:
        """The parts composed eagerly (loops in Python): ``sample_ids [length]``."""
        start = self.parts["start"](run, prime)
        state, previous = start[:-1], start[-1]
        for t in range(prime.shape[0] - 1):
            state = self.parts["prime"](run, torch.tensor(t), *state, prime)
        ids = []
        for t in range(uniforms.shape[0]):
            previous, *state, drawn = self.parts["sample"](
                run, torch.tensor(t), previous, *state, uniforms, temperature, top_k, top_p)
            ids.append(drawn)
        return torch.stack(ids) if ids else torch.zeros(0, dtype=torch.long)

    def decode(self, prime, uniforms, temperature: float, top_k: int, top_p: float
               ) -> torch.Tensor:
        """The eager decode the export must match: the cell run over the prime, then a
        ``BasicDecoder`` with a ``GreedyEmbeddingHelper`` (temperature 0) or a
        ``SampleEmbeddingHelper`` reading ``uniforms`` (as ``charrnn.sample`` decodes)."""
        state = self.cell.zero_state(1, self.lookup(prime[:1]).dtype)
        for t in range(prime.shape[0] - 1):
            _, state = self.cell.step(self.lookup(prime[t:t + 1]), state)
        start = prime[-1:]
        if temperature == 0:
            helper = seq2seq.GreedyEmbeddingHelper(self.embedding, start, None)
        else:
            helper = seq2seq.SampleEmbeddingHelper(
                self.embedding, start, None, softmax_temperature=temperature,
                top_k=top_k or None, top_p=None if top_p >= 1 else top_p,
                uniforms=uniforms.reshape(-1, 1))
        decoder = seq2seq.BasicDecoder(self.cell, helper, state, self.output_layer)
        outputs, _, _ = seq2seq.dynamic_decode(decoder,
                                               maximum_iterations=int(uniforms.shape[0]))
        return outputs.sample_id[0]


def _inputs(prime_length: int, length: int, temperature: float, top_k: int, top_p: float,
            vocab: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"prime": torch.randint(vocab, (prime_length,), generator=g),
            "uniforms": torch.from_numpy(np.random.default_rng(seed).random(length)),
            "temperature": torch.tensor(temperature, dtype=torch.float32),
            "top_k": torch.tensor(top_k, dtype=torch.long),
            "top_p": torch.tensor(top_p, dtype=torch.float32)}


def _assemble(sampler: _Sampler, modules, opset: int):
    onnx = _onnx()
    helper = onnx.helper
    b = _Builder()
    graphs = {key: _trace(part, modules, opset) for key, part in sampler.parts.items()}
    calls = {key: part.calls[_TRACE][0] for key, part in sampler.parts.items()}
    start_like = calls["start"][1]
    start = [b.name("start_out") for _ in start_like]
    b.inline(graphs["start"], {"in0": "prime"}, {f"out{i}": n for i, n in enumerate(start)},
             b.nodes)
    zeros, last = start[:-1], start[-1]
    one = b.initializer(onnx.numpy_helper.from_array(np.array(1, np.int64), "one"))
    zero = b.initializer(onnx.numpy_helper.from_array(np.array(0, np.int64), "zero"))
    shape, count, steps = b.name("prime_shape"), b.name("prime_count"), b.name("prime_steps")
    b.nodes += [helper.make_node("Shape", ["prime"], [shape]),
                helper.make_node("Gather", [shape, zero], [count], axis=0),
                helper.make_node("Sub", [count, one], [steps])]
    state, _ = b.loop(graphs["prime"], steps, zeros, start_like[:-1], ["prime"], 0, [], False,
                      "prime")
    ushape, length = b.name("uniforms_shape"), b.name("length")
    b.nodes += [helper.make_node("Shape", ["uniforms"], [ushape]),
                helper.make_node("Gather", [ushape, zero], [length], axis=0)]
    _, res = calls["sample"]
    _, scans = b.loop(graphs["sample"], length, [last, *state], res[:-1],
                      ["uniforms", "temperature", "top_k", "top_p"], 1, res[-1:], False,
                      "sample")
    b.nodes.append(helper.make_node("Identity", [scans[0]], ["sample_ids"]))
    tensor = onnx.TensorProto
    inputs = [helper.make_tensor_value_info("prime", tensor.INT64, ["prime_length"]),
              helper.make_tensor_value_info("uniforms", tensor.DOUBLE, ["length"]),
              helper.make_tensor_value_info("temperature", tensor.FLOAT, []),
              helper.make_tensor_value_info("top_k", tensor.INT64, []),
              helper.make_tensor_value_info("top_p", tensor.FLOAT, [])]
    outputs = [helper.make_tensor_value_info("sample_ids", tensor.INT64, ["length"])]
    graph = helper.make_graph(b.nodes, "rnnkit_sampler", inputs, outputs, b.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="rnnkit.export")
    helper.set_model_props(model, {"vocab_size": str(sampler.vocab),
                                   "uniforms": "(PCG64(seed).random_raw(length) >> 11) * "
                                               "2**-53 (rnnkit.generators.stable_uniforms)"})
    model.ir_version = min(model.ir_version, 9)
    onnx.checker.check_model(model)
    return model


def _feed(inputs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in inputs.items()}


def export_sampler(cell: Any, embedding: Any, output_layer: Any, f: Any, *,
                   opset_version: int, verify: bool):
    onnx = _onnx()
    sampler = _Sampler(cell, embedding, output_layer)
    modules = sampler.modules()
    modes = [(m, m.training) for mod in modules for m in mod.modules()]
    try:
        for mod in modules:
            mod.eval()
        with torch.no_grad():
            sampler.run(_TRACE, **_inputs(3, 4, 0.8, 3, 0.9, sampler.vocab, 0))
            model = _assemble(sampler, modules, opset_version)
            if verify:
                sess = _session(model.SerializeToString())
                for i, check in enumerate(_CHECKS):
                    inputs = _inputs(*check, sampler.vocab, 1 + i)
                    want = sampler.decode(inputs["prime"], inputs["uniforms"], *check[2:])
                    got = sess.run(["sample_ids"], _feed(inputs))[0]
                    if got.shape != tuple(want.shape) or not (got == want.numpy()).all():
                        raise ExportError(
                            f"the exported sampler differs from the eager decode (prime "
                            f"length {check[0]}, length {check[1]}, temperature {check[2]}, "
                            f"top_k {check[3]}, top_p {check[4]}): got {got.tolist()}, "
                            f"expected {want.tolist()}")
    finally:
        for m, training in modes:
            m.train(training)
    if f is not None:
        if isinstance(f, (str, os.PathLike)):
            onnx.save(model, os.fspath(f))
        else:
            f.write(model.SerializeToString())
    return model
