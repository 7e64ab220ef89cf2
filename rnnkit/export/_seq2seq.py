"""The machinery behind :func:`rnnkit.export.export_seq2seq`.

A decode is split into parts, each a function of flat tensors:

* ``source``: the embedding lookup, the reversed source (bidirectional) and the encoder
  cells' zero states;
* ``encoder step`` (per direction): one masked step of ``dynamic_rnn`` (state kept and
  output zero past each length), the body of an ONNX ``Loop`` over the source time;
* ``bridge``: the user's bridge, the decoder's ``initialize()`` and the attention memory
  (keys, values, mask; tiled for the beams), computed once;
* ``decoder step``: one ``decoder.step`` (the eager code itself) with ``dynamic_decode``'s
  bookkeeping, the body of an ONNX ``Loop`` whose condition is "not all finished".  Beam
  search: the decoder's ``min_length`` and ``no_repeat_ngram_size`` are set to the model's
  scalar inputs (read by the body from the outer scope), its state always keeps the
  hypotheses' tokens (``token_history``, a carried value growing a column a step), and two
  more carried values follow the beams: the ids so far and (``alignments``) each step's
  beam slot on each hypothesis's path, both gathered by the step's parents while the entry
  has a hypothesis running (as ``gather_tree`` traces an entry from its own last step);
* ``output``: the batch-major outputs (beam search: the hypotheses traced back, and the
  alignments of every step picked along those paths as ``gather_tree_from_array`` does).

The parts are run eagerly in Python (loops included) once at the tracing size, traced one
by one with ``torch.onnx.export`` (TorchScript tracer: a step is a straight line of tensor
ops; ``torch.export`` would refuse the library's Python-level shape checks on symbolic
sizes and cannot export a loop whose stop depends on the data), and the ONNX graph is put
together here with ``onnx.helper``.  Then every part and the whole model are run in
onnxruntime at another batch size and source length and compared with the eager run.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import os
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit import nest
from rnnkit.export import Encoder, ExportError
from rnnkit.masking import select_rows
from rnnkit.rnn.cell import RNNCell, initial_state
from rnnkit.rnn.driver import reverse_sequence
from rnnkit.seq2seq.attention import AttentionMechanism
from rnnkit.seq2seq.beam_search import BeamSearchDecoder
from rnnkit.seq2seq.decoder import BasicDecoder
from rnnkit.seq2seq.helper import GreedyEmbeddingHelper
from rnnkit.tensor_array import TensorArray

_TRACE, _VERIFY = "trace", "verify"


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("rnnkit.export needs onnx (and onnxruntime to verify): "
                          "pip install 'rnnkit[export]'") from None
    return onnx


def _tensors(structure: Any) -> list[torch.Tensor]:
    return [x for x in nest.flatten(structure) if isinstance(x, torch.Tensor)]


def _refill(template: Any, tensors: list[torch.Tensor]) -> Any:
    """``template`` with its tensor leaves replaced by ``tensors`` (other leaves kept)."""
    it = iter(tensors)
    flat = [next(it) if isinstance(x, torch.Tensor) else x for x in nest.flatten(template)]
    return nest.pack_sequence_as(template, flat)


class _Part:
    """One traced piece: a function of flat tensors returning a list of tensors."""

    def __init__(self, name: str, fn):
        self.name = name
        self.fn = fn
        self.calls: dict[str, list] = {}

    def __call__(self, run: str, *args: torch.Tensor) -> list[torch.Tensor]:
        try:
            out = list(self.fn(*args))
        except ExportError:
            raise
        except Exception as e:
            raise ExportError(f"{self.name}: {type(e).__name__}: {e}") from e
        for i, o in enumerate(out):
            if not isinstance(o, torch.Tensor):
                raise ExportError(f"{self.name}: output {i} is a {type(o).__name__}, not a "
                                  "tensor")
        calls = self.calls.setdefault(run, [])
        record = (tuple(a.detach().clone() for a in args), [o.detach().clone() for o in out])
        if len(calls) < 2:
            calls.append(record)
        else:
            calls[1] = record  # the first and the latest call are checked
        return out


class _Wrapper(nn.Module):
    def __init__(self, fn, modules):
        super().__init__()
        self.fn = fn
        self.held = nn.ModuleList(modules)

    def forward(self, *args):
        return tuple(self.fn(*args))


def _mechanisms(cell: nn.Module) -> list[AttentionMechanism]:
    return [m for m in cell.modules() if isinstance(m, AttentionMechanism)]


_MECH_FIELDS = ("_memory", "_mask", "_lengths", "_empty_rows", "_beams", "_cache")


@contextlib.contextmanager
def _bound(mechanisms, spec, memory):
    """Within the block each mechanism reads the given keys, values, mask and lengths (the
    memory computed once, outside the decode loop)."""
    saved = [{k: getattr(m, k) for k in _MECH_FIELDS} for m in mechanisms]
    it = iter(memory)
    try:
        for m, (has_mask, has_lengths) in zip(mechanisms, spec, strict=True):
            keys, values = next(it), next(it)
            m._mask = next(it) if has_mask else None
            m._lengths = next(it) if has_lengths else None
            m._memory, m._empty_rows, m._beams, m._cache = values, [], 1, {}
            m._processed = lambda k=keys, v=values: (k, v)
        yield
    finally:
        for m, fields in zip(mechanisms, saved, strict=True):
            m.__dict__.pop("_processed", None)
            for k, v in fields.items():
                setattr(m, k, v)


class _Plan:
    """The parts of one exported decode and their eager composition."""

    def __init__(self, encoder: Encoder, decoder: Any, maximum_iterations: int,
                 alignments: bool = False):
        self.encoder = encoder
        self.decoder = decoder
        self.maximum_iterations = maximum_iterations
        self.alignments = bool(alignments)
        self._check()
        self.beam = decoder.beam_width if isinstance(decoder, BeamSearchDecoder) else None
        self.mechanisms = _mechanisms(decoder.cell)
        self.templates: dict[str, Any] = {}
        self.memory_spec: list[tuple[bool, bool]] | None = None
        self.cells = [("forward", encoder.cell)] + (
            [("backward", encoder.cell_bw)] if encoder.cell_bw is not None else [])
        self.parts = {"source": _Part("the source (embedding, zero states)", self._source)}
        for direction, cell in self.cells:
            self.parts[direction] = _Part(
                f"the encoder's {direction} cell {type(cell).__name__} (one step)",
                self._encoder_step(direction, cell))
        self.parts["bridge"] = _Part("the bridge (encoder outputs -> decoder state, "
                                     "attention memory)", self._bridge)
        self.parts["decoder"] = _Part(
            f"the decoder's step ({type(decoder).__name__}, cell "
            f"{type(decoder.cell).__name__})", self._decoder_step)
        self.parts["output"] = _Part("the decode's outputs", self._output)

    # -- what is refused ----------------------------------------------------------------
    def _check(self) -> None:
        enc, dec = self.encoder, self.decoder
        if not isinstance(enc, Encoder):
            raise TypeError(f"encoder must be an rnnkit.export.Encoder, received "
                            f"{type(enc).__name__}")
        for name in ("cell", "cell_bw"):
            cell = getattr(enc, name)
            if cell is not None and not isinstance(cell, RNNCell):
                raise ExportError(f"Encoder.{name} must be an RNNCell, received "
                                  f"{type(cell).__name__}")
        if enc.bridge is None or not callable(enc.bridge):
            raise ExportError("Encoder.bridge is needed: (outputs, final_state, "
                              "sequence_length) -> the decoder's initial state")
        if enc.embedding is None and not enc.input_depth:
            raise ExportError("Encoder: give embedding= (int64 source ids) or input_depth= "
                              "(float source vectors)")
        if isinstance(dec, BeamSearchDecoder):
            if dec._all_scores:
                raise ExportError("BeamSearchDecoder(output_all_scores=True) is not exported")
            starts = dec._start_tokens
        elif isinstance(dec, BasicDecoder):
            helper = dec.helper
            if type(helper) is not GreedyEmbeddingHelper:
                what = type(helper).__name__
                why = ("it samples with a random generator: a graph would replay one draw"
                       if "Sample" in what else "only greedy decoding and beam search are "
                       "exported")
                raise ExportError(f"BasicDecoder with a {what}: {why} (use a "
                                  "GreedyEmbeddingHelper or a BeamSearchDecoder)")
            if helper._end_token is None:
                raise ExportError("GreedyEmbeddingHelper(end_token=None) is not exported: "
                                  "the graph stops when every entry has its end token")
            starts = helper._start_tokens
        else:
            raise ExportError(f"decoder {type(dec).__name__} is not exported: give a "
                              "BasicDecoder (GreedyEmbeddingHelper) or a BeamSearchDecoder")
        if not isinstance(dec.cell, RNNCell):
            raise ExportError(f"the decoder's cell must be an RNNCell, received "
                              f"{type(dec.cell).__name__}")
        values = set(torch.as_tensor(starts).tolist())
        if len(values) != 1:
            raise ExportError(f"start_tokens must hold one token for every entry, received "
                              f"{sorted(values)}")
        self.start_token = values.pop()
        if self.maximum_iterations < 1:
            raise ExportError(f"maximum_iterations must be >= 1, received "
                              f"{self.maximum_iterations}")

    def modules(self) -> list[nn.Module]:
        enc, dec = self.encoder, self.decoder
        found = [*enc.modules, enc.cell, dec.cell]
        if enc.cell_bw is not None:
            found.append(enc.cell_bw)
        for m in (enc.embedding, getattr(dec, "output_layer", None)):
            if isinstance(m, nn.Module):
                found.append(m)
        lookup = dec._embedding_fn if isinstance(dec, BeamSearchDecoder) \
            else dec.helper._embedding_fn
        if lookup.module is not None:
            found.append(lookup.module)
        return found

    # -- the parts ------------------------------------------------------------------------
    def _source(self, source, lengths):
        enc = self.encoder
        if enc.embedding is None:
            x = source
        elif isinstance(enc.embedding, nn.Module):
            x = enc.embedding(source)
        else:
            x = torch.as_tensor(enc.embedding)[source]
        batch = source.shape[0]
        out = [x]
        if enc.cell_bw is not None:
            out.append(reverse_sequence(x, lengths, seq_axis=1, batch_axis=0))
        for direction, cell in self.cells:
            zero = initial_state(cell, batch, x.dtype, None)
            self.templates.setdefault(direction, zero)
            out += _tensors(zero)
        return out

    def _encoder_step(self, direction: str, cell: RNNCell):
        def step(t, *args):
            template = self.templates[direction]
            n = len(_tensors(template))
            state = _refill(template, list(args[:n]))
            x, lengths = args[n:]
            x_t = x.index_select(1, t.reshape(1)).squeeze(1)
            out, new = cell.step(x_t, state)
            if not isinstance(out, torch.Tensor):
                raise ExportError(f"the encoder's {direction} cell {type(cell).__name__} "
                                  "emits a structure; one output tensor is exported")
            running = t < lengths
            new = select_rows(running, new, state)
            return [*_tensors(new), select_rows(running, out, 0.0)]
        return step

    def _rebind(self, lengths, initial=None):
        """A copy of the decoder for the batch of ``lengths`` (start tokens, and the
        initial state when given), as its constructor would have made it; a beam search
        keeps its hypotheses' tokens in the state whatever its ``no_repeat_ngram_size``
        (the exported model reads the size as an input)."""
        dec = copy.copy(self.decoder)
        start = torch.full_like(lengths, self.start_token)
        if isinstance(dec, BeamSearchDecoder):
            dec._start_tokens, dec._batch, dec._masks = start, start.shape[0], None
            dec._history = True
            dec._start_inputs = dec._start_embedded()
            if initial is not None:
                rows = next(x for x in nest.flatten(initial)
                            if isinstance(x, torch.Tensor) and x.dim() >= 1).shape[0]
                if int(rows) == int(dec._batch) and dec._beam > 1:
                    tile = torch.arange(dec._batch).repeat_interleave(dec._beam)
                    initial = dec.cell.reorder_state(initial, tile)
                dec._initial_cell_state = nest.map_structure(dec._split, initial)
        else:
            helper = copy.copy(dec.helper)
            helper._start_tokens, helper._batch = start, start.shape[0]
            helper._start_inputs = helper._embedding_fn(start)
            dec.helper = helper
            if initial is not None:
                dec.initial_state = initial
        return dec

    def _bridge(self, *args):
        enc = self.encoder
        k = len(self.cells)
        outs_tm, lengths, rest = args[:k], args[k], list(args[k + 1:])
        outputs = [o.transpose(0, 1) for o in outs_tm]
        finals = []
        for direction, _ in self.cells:
            n = len(_tensors(self.templates[direction]))
            finals.append(_refill(self.templates[direction], rest[:n]))
            rest = rest[n:]
        if enc.cell_bw is not None:
            outputs[1] = reverse_sequence(outputs[1], lengths, seq_axis=1, batch_axis=0)
            init = enc.bridge(tuple(outputs), tuple(finals), lengths)
        else:
            init = enc.bridge(outputs[0], finals[0], lengths)
        dec = self._rebind(lengths, init)
        finished, inputs, state = dec.initialize()
        self.templates.setdefault("inputs", inputs)
        self.templates.setdefault("state", state)
        memory, spec = [], []
        batch = lengths.shape[0]
        tiled = dec.cell.tiled_for_beams(batch, self.beam) if self.beam \
            else contextlib.nullcontext()
        with tiled:
            for m in self.mechanisms:
                m._require_memory()
                mask, lens = m.mask_for_rows(0), m.memory_sequence_length
                memory += [m.keys, m.values] + [x for x in (mask, lens) if x is not None]
                spec.append((mask is not None, lens is not None))
        if self.memory_spec is None:
            self.memory_spec = spec
        if self.beam:
            # [batch, beam, 1 + steps]: a first column (dropped at the end) keeps it non-empty
            history = torch.zeros_like(finished, dtype=torch.long)[..., None]
            carried = [*_tensors(inputs), *_tensors(state), history]
            if self.alignments:  # each step's beam slot on each hypothesis's path, likewise
                carried.append(history.clone())
        else:
            carried = [finished, torch.zeros_like(finished, dtype=torch.long),
                       *_tensors(inputs), *_tensors(state)]
        self.carried_count = len(carried)
        return carried + memory

    def constraints(self) -> list[torch.Tensor]:
        """The decoder's ``min_length`` and ``no_repeat_ngram_size`` as int64 scalars (the
        model inputs' default values); none for greedy decoding."""
        if not self.beam:
            return []
        return [torch.tensor(int(self.decoder._min_length)),
                torch.tensor(int(self.decoder._ngram))]

    def _step_alignments(self, cell_state) -> torch.Tensor:
        """This step's alignments, the entry the step wrote to the cell state's alignment
        history: ``[batch, memory_time]``, or beam search's ``[batch, beam, memory_time]``
        in the cell's row order before the beams are reordered."""
        found = [x for x in nest.flatten(cell_state) if isinstance(x, TensorArray)]
        if len(found) != 1:
            raise ExportError(
                "alignments=True needs the decoder cell to keep one alignment history "
                "(AttentionWrapper(alignment_history=True) with one attention mechanism); "
                f"the state of {type(self.decoder.cell).__name__} holds {len(found)}")
        history = found[0]
        step = history.read(len(history) - 1)
        return step.reshape(-1, self.beam, step.shape[-1]) if self.beam else step

    def _decoder_step(self, t, *args):
        n_in = len(_tensors(self.templates["inputs"]))
        n_state = len(_tensors(self.templates["state"]))
        carried = list(args[:self.carried_count])
        n_constraints = len(self.constraints())
        memory = args[self.carried_count:len(args) - n_constraints]
        with _bound(self.mechanisms, self.memory_spec, memory):
            if self.beam:
                inputs = _refill(self.templates["inputs"], carried[:n_in])
                state = _refill(self.templates["state"], carried[n_in:n_in + n_state])
                dec = self._rebind(state.lengths[:, 0])
                # the constraints the model reads as inputs, computed by the eager code
                dec._min_length, dec._ngram = args[len(args) - n_constraints:]
                out, next_state, next_inputs, finished = dec.step(0, inputs, state)
                # an entry whose hypotheses had all finished is no longer followed (as
                # gather_tree traces each entry from its own last step)
                slots = torch.arange(self.beam).expand_as(out.parent_ids)
                running = ~state.finished.all(1, keepdim=True)
                parents = torch.where(running, out.parent_ids, slots)

                def follow(h: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
                    idx = parents[..., None].expand(-1, -1, h.shape[-1])
                    return torch.cat([h.gather(1, idx), step[..., None]], -1)

                paths = [follow(carried[n_in + n_state], out.predicted_ids)]
                scans = [out.scores, out.predicted_ids, out.parent_ids]
                if self.alignments:
                    paths.append(follow(carried[n_in + n_state + 1], slots))
                    scans.append(self._step_alignments(next_state.cell_state))
                return [~finished.all(), *_tensors(next_inputs), *_tensors(next_state),
                        *paths, *scans]
            finished, lengths = carried[:2]
            inputs = _refill(self.templates["inputs"], carried[2:2 + n_in])
            state = _refill(self.templates["state"], carried[2 + n_in:])
            dec = self._rebind(lengths)
            out, next_state, next_inputs, step_finished = dec.step(0, inputs, state)
            next_finished = step_finished | finished
            lengths = torch.where(finished, lengths, t + 1)
            scans = [out.sample_id]
            if self.alignments:
                scans.append(self._step_alignments(next_state))
            return [~next_finished.all(), next_finished, lengths, *_tensors(next_inputs),
                    *_tensors(next_state), *scans]

    def output_inputs(self) -> list[int]:
        """Which final carried values the output part takes (then every scan output)."""
        if not self.beam:
            return [1]
        n_in = len(_tensors(self.templates["inputs"]))
        n_state = len(_tensors(self.templates["state"]))
        n_cell = len(_tensors(self.templates["state"].cell_state))
        log_probs, lengths = n_in + n_cell, n_in + n_cell + 2
        paths = [n_in + n_state] + ([n_in + n_state + 1] if self.alignments else [])
        return [*paths, lengths, log_probs]

    def output_names(self) -> list[str]:
        names = (["predicted_ids", "scores", "parent_ids", "sequence_length", "log_probs"]
                 if self.beam else ["sample_id", "sequence_length"])
        return names + (["alignments"] if self.alignments else [])

    def _output(self, *args):
        if not self.beam:
            lengths, ids, *align = args
            return [ids.transpose(0, 1), lengths] + [a.transpose(0, 1) for a in align]
        if self.alignments:
            history, slots, lengths, log_probs, scores, ids, parents, align = args
        else:
            history, lengths, log_probs, scores, ids, parents = args
        end = self.decoder._end_token
        out = history[..., 1:].transpose(1, 2)  # [batch, time, beam]
        steps = torch.arange(out.shape[1])[None, :, None]
        out = torch.where(steps < lengths.max(1).values[:, None, None], out,
                          torch.full_like(out, end))
        is_end = (out == end).long()
        out = out.masked_fill((is_end.cumsum(1) - is_end) > 0, end)
        results = [out, scores.transpose(0, 1), parents.transpose(0, 1), lengths, log_probs]
        if self.alignments:
            align = align.transpose(0, 1)  # [batch, time, beam, memory_time]
            if self.decoder._reorder:  # gather_tree_from_array with the final lengths
                order = slots[..., 1:].transpose(1, 2)  # [batch, time, beam]
                own = torch.arange(self.beam).expand_as(order)
                order = torch.where(steps < lengths[:, None, :], order, own)
                align = align.gather(2, order[..., None].expand_as(align))
            results.append(align)
        return results

    # -- eager composition ----------------------------------------------------------------
    def run(self, tag: str, source: torch.Tensor, lengths: torch.Tensor,
            maximum_iterations: int) -> list[torch.Tensor]:
        constraints = self.constraints()
        p = self.parts
        src = p["source"](tag, source, lengths)
        xs, zeros = src[:len(self.cells)], src[len(self.cells):]
        finals, outs = [], []
        for (direction, _), x in zip(self.cells, xs, strict=True):
            n = len(_tensors(self.templates[direction]))
            carried, zeros = zeros[:n], zeros[n:]
            steps = []
            for t in range(x.shape[1]):
                res = p[direction](tag, torch.tensor(t), *carried, x, lengths)
                carried, y = res[:n], res[n]
                steps.append(y)
            finals += carried
            outs.append(torch.stack(steps))
        res = p["bridge"](tag, *outs, lengths, *finals)
        carried, memory = res[:self.carried_count], res[self.carried_count:]
        scans: list[list[torch.Tensor]] = []
        for t in range(maximum_iterations):
            res = p["decoder"](tag, torch.tensor(t), *carried, *memory, *constraints)
            carried = res[1:1 + self.carried_count]
            scans.append(res[1 + self.carried_count:])
            if not bool(res[0]):
                break
        stacked = [torch.stack(s) for s in zip(*scans, strict=True)]
        return p["output"](tag, *[carried[i] for i in self.output_inputs()], *stacked)


# -- ONNX -------------------------------------------------------------------------------
def _elem(dtype: torch.dtype) -> int:
    onnx = _onnx()
    table = {torch.float32: onnx.TensorProto.FLOAT, torch.float64: onnx.TensorProto.DOUBLE,
             torch.float16: onnx.TensorProto.FLOAT16, torch.int64: onnx.TensorProto.INT64,
             torch.int32: onnx.TensorProto.INT32, torch.bool: onnx.TensorProto.BOOL}
    if dtype not in table:
        raise ExportError(f"tensors of dtype {dtype} are not exported")
    return table[dtype]


def _info(name: str, t: torch.Tensor):
    return _onnx().helper.make_tensor_value_info(name, _elem(t.dtype), [None] * t.dim())


def _trace(part: _Part, modules, opset: int):
    """The ONNX graph of ``part`` traced at its first recorded call."""
    onnx = _onnx()
    args, outs = part.calls[_TRACE][0]
    names_in = [f"in{i}" for i in range(len(args))]
    names_out = [f"out{i}" for i in range(len(outs))]
    axes = {n: list(range(t.dim())) for n, t in zip(names_in + names_out, [*args, *outs],
                                                    strict=True) if t.dim()}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation; tracer warnings
        try:
            # eval(): the exporter restores the wrapper's mode afterwards, and train() would
            # reach every module it holds
            torch.onnx.export(_Wrapper(part.fn, modules).eval(), tuple(args), buf,
                              dynamo=False,
                              input_names=names_in, output_names=names_out,
                              dynamic_axes=axes, opset_version=opset,
                              do_constant_folding=True)
        except ExportError:
            raise
        except Exception as e:
            if "requires grad as a constant" in str(e):
                raise ExportError(f"{part.name} uses a parameter of a module the export was "
                                  "not given: list the modules the bridge uses (or the whole "
                                  "model) in Encoder(modules=...)") from e
            raise ExportError(f"{part.name} does not trace: {type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}") from e
    return onnx.load_from_string(buf.getvalue()).graph


class _Builder:
    """Collects the main graph's nodes and initializers."""

    def __init__(self):
        self.nodes: list = []
        self.initializers: list = []
        self._seen: dict[tuple, str] = {}
        self._count = 0

    def name(self, base: str) -> str:
        self._count += 1
        return f"{base}_{self._count}"

    def initializer(self, tensor) -> str:
        """Add ``tensor`` (a TensorProto), or return the name of an equal one."""
        onnx = _onnx()
        array = onnx.numpy_helper.to_array(tensor)
        key = (array.dtype.str, array.shape, hashlib.sha256(array.tobytes()).hexdigest())
        if key not in self._seen:
            name = self.name("w")
            self.initializers.append(onnx.numpy_helper.from_array(array, name))
            self._seen[key] = name
        return self._seen[key]

    def inline(self, graph, in_map: dict[str, str], out_map: dict[str, str], nodes: list):
        """Append ``graph``'s nodes to ``nodes`` with ``graph``'s inputs read from
        ``in_map``'s names and its outputs written to ``out_map``'s; its weights go to the
        main graph (a loop body reads them from the outer scope)."""
        helper = _onnx().helper
        prefix = self.name("p") + "/"
        rename = {}
        for init in graph.initializer:
            rename[init.name] = self.initializer(init)
        for i in graph.input:
            if i.name not in rename:
                rename[i.name] = in_map[i.name]
        produced = set()
        for node in graph.node:
            for o in node.output:
                if o:
                    produced.add(o)
                    rename[o] = out_map.get(o, prefix + o) if o not in rename else rename[o]
        for node in graph.node:
            for a in node.attribute:
                if a.type in (a.GRAPH, a.GRAPHS):
                    raise ExportError(f"a traced step holds a {node.op_type} with a subgraph")
            new = copy.deepcopy(node)
            new.name = prefix + node.name
            new.input[:] = [rename[x] if x else "" for x in node.input]
            new.output[:] = [rename[x] if x else "" for x in node.output]
            nodes.append(new)
        written = {rename[o] for o in produced}
        for o in graph.output:
            target = out_map[o.name]
            if target not in written:  # an input, a weight or a duplicate passed through
                nodes.append(helper.make_node("Identity", [rename[o.name]], [target]))
                written.add(target)

    def loop(self, body_graph, trip_count: str, carried: list[str], carried_like,
             outer: list[str], scans: int, scan_like, has_cond: bool, body_name: str):
        """A ``Loop`` over ``body_graph`` (inputs ``[t, *carried, *outer]``, outputs
        ``[cond?, *carried, *scans]``); returns the final carried and the scan names."""
        onnx = _onnx()
        helper = onnx.helper
        tag = self.name("loop")
        it, cond_in, cond_out = f"{tag}/t", f"{tag}/cond_in", f"{tag}/cond_out"
        body_in = [f"{tag}/c{i}" for i in range(len(carried))]
        body_out = [f"{tag}/c{i}_out" for i in range(len(carried))]
        scan_out = [f"{tag}/s{i}_out" for i in range(scans)]
        in_map = {"in0": it}
        for i, name in enumerate(body_in + outer):
            in_map[f"in{i + 1}"] = name
        outs = ([cond_out] if has_cond else []) + body_out + scan_out
        out_map = {f"out{i}": name for i, name in enumerate(outs)}
        nodes: list = []
        self.inline(body_graph, in_map, out_map, nodes)
        if not has_cond:
            nodes.append(helper.make_node("Identity", [cond_in], [cond_out]))
        body = helper.make_graph(
            nodes, body_name,
            [helper.make_tensor_value_info(it, onnx.TensorProto.INT64, []),
             helper.make_tensor_value_info(cond_in, onnx.TensorProto.BOOL, [])]
            + [_info(n, t) for n, t in zip(body_in, carried_like, strict=True)],
            [helper.make_tensor_value_info(cond_out, onnx.TensorProto.BOOL, [])]
            + [_info(n, t) for n, t in zip(body_out, carried_like, strict=True)]
            + [_info(n, t) for n, t in zip(scan_out, scan_like, strict=True)])
        true = self.name("true")
        self.nodes.append(helper.make_node("Constant", [], [true],
                                           value=helper.make_tensor("v", onnx.TensorProto.BOOL,
                                                                    [], [True])))
        finals = [self.name(f"{body_name}_final") for _ in carried]
        stacked = [self.name(f"{body_name}_scan") for _ in range(scans)]
        self.nodes.append(helper.make_node("Loop", [trip_count, true, *carried],
                                           finals + stacked, name=tag, body=body))
        return finals, stacked


def _assemble(plan: _Plan, modules, opset: int):
    onnx = _onnx()
    helper = onnx.helper
    b = _Builder()
    graphs = {key: _trace(part, modules, opset) for key, part in plan.parts.items()}
    calls = {key: part.calls[_TRACE][0] for key, part in plan.parts.items()}
    source_arg, lengths_arg = calls["source"][0]
    # the source part
    k = len(plan.cells)
    src_outs = [b.name("source_out") for _ in calls["source"][1]]
    b.inline(graphs["source"], {"in0": "source", "in1": "source_length"},
             {f"out{i}": n for i, n in enumerate(src_outs)}, b.nodes)
    xs, zeros = src_outs[:k], src_outs[k:]
    zeros_like = calls["source"][1][k:]
    # encoder loops over the source time
    shape, time = b.name("source_shape"), b.name("source_time")
    one = b.initializer(onnx.numpy_helper.from_array(np.array(1, np.int64), "one"))
    b.nodes += [helper.make_node("Shape", [xs[0]], [shape]),
                helper.make_node("Gather", [shape, one], [time], axis=0)]
    finals, outs = [], []
    for (direction, _), x in zip(plan.cells, xs, strict=True):
        n = len(_tensors(plan.templates[direction]))
        args, res = calls[direction]
        carried, zeros = zeros[:n], zeros[n:]
        fin, scan = b.loop(graphs[direction], time, carried, zeros_like[:n],
                           [x, "source_length"], 1, res[n:], False, f"encoder_{direction}")
        zeros_like = zeros_like[n:]
        finals += fin
        outs += scan
    # the bridge
    bridge_out = [b.name("bridge_out") for _ in calls["bridge"][1]]
    names = [*outs, "source_length", *finals]
    b.inline(graphs["bridge"], {f"in{i}": n for i, n in enumerate(names)},
             {f"out{i}": n for i, n in enumerate(bridge_out)}, b.nodes)
    c = plan.carried_count
    carried, memory = bridge_out[:c], bridge_out[c:]
    args, res = calls["decoder"]
    constraint_names = ["min_length", "no_repeat_ngram_size"] if plan.beam else []
    fin, scan = b.loop(graphs["decoder"], "maximum_iterations", carried, res[1:1 + c],
                       memory + constraint_names, len(res) - 1 - c, res[1 + c:], True,
                       "decoder")
    # the outputs
    out_names = plan.output_names()
    b.inline(graphs["output"],
             {f"in{i}": n for i, n in enumerate([fin[i] for i in plan.output_inputs()] + scan)},
             {f"out{i}": n for i, n in enumerate(out_names)}, b.nodes)
    src_dims = ["batch", "time"] + ([] if source_arg.dim() == 2 else ["depth"])
    inputs = [helper.make_tensor_value_info("source", _elem(source_arg.dtype), src_dims),
              helper.make_tensor_value_info("source_length", onnx.TensorProto.INT64,
                                            ["batch"]),
              helper.make_tensor_value_info("maximum_iterations", onnx.TensorProto.INT64, [])]
    # optional inputs: an initializer of the same name is the value when none is fed
    defaults = [int(v) for v in plan.constraints()]
    for name, value in zip(constraint_names, defaults, strict=True):
        inputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.INT64, []))
        b.initializers.append(onnx.numpy_helper.from_array(np.array(value, np.int64), name))
    results = calls["output"][1]
    outputs = [_info(n, t) for n, t in zip(out_names, results, strict=True)]
    graph = helper.make_graph(b.nodes, "rnnkit_seq2seq", inputs, outputs,
                              b.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="rnnkit.export")
    props = {"maximum_iterations": str(plan.maximum_iterations),
             "end_token": str(_end_token(plan.decoder)), "beam_width": str(plan.beam or 0)}
    props.update({name: str(v) for name, v in zip(constraint_names, defaults, strict=True)})
    props["alignments"] = str(int(plan.alignments))
    helper.set_model_props(model, props)
    model.ir_version = min(model.ir_version, 9)
    onnx.checker.check_model(model)
    return model, graphs


def _end_token(decoder) -> int:
    return decoder._end_token if isinstance(decoder, BeamSearchDecoder) \
        else decoder.helper._end_token


# -- verification ---------------------------------------------------------------------------
def _session(model_bytes: bytes):
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("verify=True needs onnxruntime: pip install 'rnnkit[export]' (or "
                          "pass verify=False)") from None
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def _same(a: np.ndarray, b: torch.Tensor) -> bool:
    b = b.numpy()
    if a.shape != b.shape:
        return False
    if b.dtype.kind == "f":
        return bool(np.allclose(a, b, rtol=1e-4, atol=1e-5))
    return bool((a == b).all())


def _verify_part(part: _Part, graph, opset: int) -> None:
    helper = _onnx().helper
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 9)
    sess = _session(model.SerializeToString())
    wanted = [i.name for i in sess.get_inputs()]
    for args, outs in part.calls[_VERIFY]:
        feed = {f"in{i}": a.numpy() for i, a in enumerate(args) if f"in{i}" in wanted}
        try:
            got = sess.run(None, feed)
        except Exception as e:
            raise ExportError(f"{part.name} does not trace: at batch {_batch_of(args)} the "
                              f"exported step fails ({str(e).splitlines()[0]})") from e
        for i, (g, want) in enumerate(zip(got, outs, strict=True)):
            if not _same(g, want):
                raise ExportError(
                    f"{part.name} does not trace: at batch {_batch_of(args)} its exported "
                    f"output {i} differs from the eager step (a value read on the host, or a "
                    "size built into the step)")


def _batch_of(args) -> int:
    return next((a.shape[0] for a in args if a.dim() >= 1), 0)


def _examples(plan: _Plan, batch: int, time: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    enc = plan.encoder
    if enc.embedding is None:
        source = torch.randn(batch, time, enc.input_depth, generator=g)
    else:
        table = enc.embedding.weight if isinstance(enc.embedding, nn.Module) \
            else torch.as_tensor(enc.embedding)
        source = torch.randint(table.shape[0], (batch, time), generator=g)
    lengths = torch.randint(1, time + 1, (batch,), generator=g)
    lengths[0] = time
    return source, lengths


def export_seq2seq(encoder: Encoder, decoder: Any, f: Any, *, maximum_iterations: int,
                   opset_version: int, verify: bool, alignments: bool = False):
    onnx = _onnx()
    if not isinstance(alignments, bool):
        raise TypeError(f"alignments must be a bool, received {type(alignments).__name__}")
    plan = _Plan(encoder, decoder, int(maximum_iterations), alignments)
    modules = plan.modules()
    modes = [(m, m.training) for mod in modules for m in mod.modules()]
    saved = [{k: getattr(m, k) for k in _MECH_FIELDS} for m in plan.mechanisms]
    try:
        for mod in modules:
            mod.eval()
        with torch.no_grad():
            plan.run(_TRACE, *_examples(plan, 2, 5, 0), plan.maximum_iterations)
            model, graphs = _assemble(plan, modules, opset_version)
            if verify:
                source, lengths = _examples(plan, 3, 7, 1)
                want = plan.run(_VERIFY, source, lengths, plan.maximum_iterations)
                for key, part in plan.parts.items():
                    _verify_part(part, graphs[key], opset_version)
                sess = _session(model.SerializeToString())
                got = sess.run(None, {"source": source.numpy(),
                                      "source_length": lengths.numpy(),
                                      "maximum_iterations": np.array(
                                          plan.maximum_iterations, np.int64)})
                for name, g, w in zip([o.name for o in sess.get_outputs()], got, want,
                                      strict=True):
                    if not _same(g, w):
                        raise ExportError(f"the exported decode's {name} differs from the "
                                          "eager decode at batch 3")
    finally:
        for m, training in modes:
            m.train(training)
        for m, fields in zip(plan.mechanisms, saved, strict=True):
            for k, v in fields.items():
                setattr(m, k, v)
    if f is not None:
        if isinstance(f, (str, os.PathLike)):
            onnx.save(model, os.fspath(f))
        else:
            f.write(model.SerializeToString())
    return model
