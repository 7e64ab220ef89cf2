"""Attention seq2seq translation: King James English -> Basic English (Bible verse pairs), or
your own sentence pairs (``TranslateConfig.pairs`` / ``src`` + ``tgt``).

Encoder: embedding + bidirectional GRU (``bidirectional_dynamic_rnn``, fused kernels).
Decoder: GRUCell (in a ``DropoutWrapper`` when ``dropout > 0``) inside
``AttentionWrapper(LuongAttention)``, trained with
``TrainingHelper`` + ``BasicDecoder`` + ``dynamic_decode`` + ``sequence_loss``; translation
with ``BeamSearchDecoder`` (which tiles the batch-sized state and memory itself).  Text is
read and written as the user wrote it: SentencePiece models trained on the training pairs
(:class:`~rnnkit.apps.data.subword.SubwordTokenizer`: any script, exact round-trip) cut it
into pieces and join the translations back.  Reports corpus BLEU (sacreBLEU, its standard
``13a`` tokenizer, on the detokenised text, with its signature) on held-out pairs and writes
alignment heatmaps.

Run directory: ``config.json`` (settings, and the SHA-256 of each tokenizer file),
``src.spm.model`` / ``tgt.spm.model`` (``spm.model`` with ``shared_vocab``),
``checkpoints/`` (atomic, every ``checkpoint_every`` steps; ``--resume`` continues from the
newest with the same results), ``loss.png``, ``bleu.json``, ``translations.txt``,
``alignment-*.png``.

From Python::

    from rnnkit.apps import translate
    model, src_tok, tgt_tok, config = translate.load_model("runs/translate")
    hyps, _ = translate.translate(model, ["And God said"], src_tok, tgt_tok)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import re
import shlex
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from rnnkit import rnn, seq2seq
from rnnkit.apps import distributed, interrupts, plot, runs
from rnnkit.apps.checkpoint import (
    export_state_dict,
    latest_checkpoint,
    list_checkpoints,
    module_from_tensors,
    module_to_tensors,
    optimizer_from_tensors,
    optimizer_to_tensors,
    params_digest,
    save_checkpoint,
    sha256_file,
    write_json_atomic,
    write_text_atomic,
)
from rnnkit.apps.data.batching import bucket_batches, pad_batch
from rnnkit.apps.data.pairs import load_bible_pairs, load_pair_files
from rnnkit.apps.data.subword import SubwordTokenizer
from rnnkit.apps.device import resolve_device
from rnnkit.apps.interrupts import pause_point, stop_on_interrupt
from rnnkit.apps.metrics import Metrics
from rnnkit.apps.runs import Run, RunError
from rnnkit.apps.settings import TRANSLATE as APP
from rnnkit.apps.settings import TRANSLATE_RESUME_MAY_CHANGE as RESUME_MAY_CHANGE
from rnnkit.apps.settings import TranslateConfig

#: On CUDA, source batches are padded to a multiple of this many positions before beam
#: search (padding changes no result: the encoder reads lengths, attention masks the rest),
#: so that a few decode configurations cover all batches and their CUDA graphs are reused.
GRAPH_SOURCE_BUCKET = 8

__all__ = ["Seq2SeqAttention", "TranslateConfig", "average_checkpoints", "bleu", "corpus_bleu",
           "export_weights",
           "load_model", "load_pairs", "train", "translate", "translate_n_best"]

PAD, SOS, EOS, UNK = (SubwordTokenizer.PAD, SubwordTokenizer.SOS, SubwordTokenizer.EOS,
                      SubwordTokenizer.UNK)


def _even_size(v) -> str | None:
    ok = runs.int_in(2, 65536)(v) is None and v % 2 == 0
    return None if ok else "an even integer in [2, 65536]"


_BIG = 10**9
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _tokenizer_check(v) -> str | None:
    """The tokenizer record of config.json: each side's file (one of the names a run writes,
    so no path outside the run is ever read) and its SHA-256."""
    names = {"spm.model", "src.spm.model", "tgt.spm.model"}
    ok = isinstance(v, dict) and all(
        isinstance(v.get(side), dict) and v[side].get("file") in names
        and isinstance(v[side].get("sha256"), str) and _SHA256.fullmatch(v[side]["sha256"])
        for side in ("src", "tgt"))
    return None if ok else ('{"src": {"file": ..., "sha256": ...}, "tgt": {...}} naming '
                            f"{', '.join(sorted(names))}")


def _opt(check):
    return runs.optional(check)


#: the bounds of the settings read back from a run's config.json (before any use), and from
#: an export's metadata; the keys after ``max_decode`` are optional (absent: the default)
SPEC = {"hidden": _even_size, "embedding": runs.int_in(1, 65536),
        "dropout": _opt(runs.float_in(0.0, 0.95)),
        "shared_vocab": _opt(runs.boolean), "max_decode": runs.int_in(1, 10_000),
        "tokenizer": _opt(_tokenizer_check), "vocab_size": _opt(runs.int_in(1, 1_000_000)),
        "steps": _opt(runs.int_in(1, _BIG)), "batch_size": _opt(runs.int_in(1, 65536)),
        "lr": _opt(runs.float_in(0.0, 10.0)), "max_words": _opt(runs.int_in(1, 1000)),
        "checkpoint_every": _opt(runs.int_in(1, _BIG)),
        "test_every": _opt(runs.int_in(1, _BIG)), "min_length": _opt(runs.int_in(0, 1000)),
        "no_repeat_ngram": _opt(runs.int_in(0, 100)), "replace_unk": _opt(runs.boolean),
        **{k: _opt(runs.text(4096, optional=True)) for k in ("pairs", "src", "tgt")},
        **{k: _opt(runs.file_or_pair(4096)) for k in ("valid", "test")},
        "beam_width": _opt(runs.int_in(1, 256)), "seed": _opt(runs.int_in(0, 2**63 - 1)),
        "log_every": _opt(runs.int_in(1, _BIG)), "keep": _opt(runs.int_in(1, 10_000)),
        "patience": _opt(runs.int_in(0, _BIG)), "bleu_every": _opt(runs.int_in(0, _BIG))}


class Seq2SeqAttention(nn.Module):
    """Shapes: ``src [batch, src_time]`` ids, ``src_len [batch]``; ``tgt_in [batch, time]``."""

    def __init__(self, src_vocab: int, tgt_vocab: int, embedding: int, hidden: int,
                 shared_embedding: bool = False, dropout: float = 0.0):
        super().__init__()
        if hidden % 2:
            raise ValueError(f"hidden must be even (two encoder directions), received {hidden}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), received {dropout}")
        if shared_embedding and src_vocab != tgt_vocab:
            raise ValueError("shared_embedding needs one vocabulary for both sides")
        self.src_embedding = nn.Embedding(src_vocab, embedding, padding_idx=PAD)
        self._own_tgt = None if shared_embedding else nn.Embedding(
            tgt_vocab, embedding, padding_idx=PAD)
        half = hidden // 2
        self.enc_fw = rnn.GRUCell(half, reset_after=True, input_size=embedding)
        self.enc_bw = rnn.GRUCell(half, reset_after=True, input_size=embedding)
        self.bridge = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        gru = rnn.GRUCell(hidden, input_size=embedding + hidden)
        if dropout > 0:
            gru = rnn.DropoutWrapper(gru, output_keep_prob=1.0 - dropout)
        self.decoder_cell = seq2seq.AttentionWrapper(
            gru,
            seq2seq.LuongAttention(hidden, scale=True, memory_depth=hidden),
            attention_layer_size=hidden, alignment_history=True)
        self.output_layer = nn.Linear(hidden, tgt_vocab)

    @property
    def attention(self) -> seq2seq.LuongAttention:
        return self.decoder_cell.attention_mechanisms[0]

    @property
    def tgt_embedding(self) -> nn.Embedding:
        return self._own_tgt if self._own_tgt is not None else self.src_embedding

    def encode(self, src, src_len):
        (fw, bw), (sf, sb) = rnn.bidirectional_dynamic_rnn(
            self.enc_fw, self.enc_bw, self.dropout(self.src_embedding(src)),
            sequence_length=src_len)
        memory = torch.cat([fw, bw], -1)
        init = torch.tanh(self.bridge(torch.cat([sf, sb], -1)))
        self.attention.setup_memory(memory, src_len)
        return self.decoder_cell.zero_state(init.shape[0]).clone(cell_state=init)

    def forward(self, src, src_len, tgt_in, tgt_len):
        state = self.encode(src, src_len)
        helper = seq2seq.TrainingHelper(self.dropout(self.tgt_embedding(tgt_in)), tgt_len)
        decoder = seq2seq.BasicDecoder(self.decoder_cell, helper, state, self.output_layer)
        outputs, _, _ = seq2seq.dynamic_decode(decoder, impute_finished=True)
        return outputs.rnn_output

    @torch.no_grad()
    def beam_search(self, src, src_len, beam_width: int, max_len: int, min_length: int = 0,
                    no_repeat_ngram: int = 0):
        """``(ids [batch, time, beam] best first, alignments [time, batch, beam, src_time],
        scores [batch, beam])``; the scores are the length-normalised log-probabilities the
        beams are ranked by.

        The memory is bound at the batch's size; the decoder tiles it for the beams."""
        state = self.encode(src, src_len)
        start = torch.full((src.shape[0],), SOS, dtype=torch.long, device=src.device)
        decoder = seq2seq.BeamSearchDecoder(
            self.decoder_cell, self.tgt_embedding, start, EOS, state, beam_width,
            output_layer=self.output_layer, length_penalty_weight=0.6, min_length=min_length,
            no_repeat_ngram_size=no_repeat_ngram)
        outputs, final, _ = seq2seq.dynamic_decode(decoder, maximum_iterations=max_len,
                                                   cuda_graph=src.is_cuda)
        history = final.cell_state.alignment_history.stack()
        alignments = history.reshape(history.shape[0], src.shape[0], beam_width, -1)
        return (outputs.predicted_ids, alignments,
                outputs.beam_search_decoder_output.scores[:, -1])


def _eval_sets(cfg, pairs):
    """``(train, valid, test)`` pairs: with ``cfg.valid`` / ``cfg.test`` (a file of
    ``source<TAB>target`` lines, or ``[source_file, target_file]``) all ``pairs`` train,
    the validation loss is computed on ``valid`` and BLEU on ``test`` (either one serves
    for both when alone); without them every ``cfg.test_every``-th pair is held out for both."""
    if cfg.valid is None and cfg.test is None:
        train, held = _split(pairs, cfg.test_every)
        return train, held, held
    sets = {}
    for name in ("valid", "test"):
        files = getattr(cfg, name)
        if isinstance(files, str):
            sets[name] = load_pair_files(files, max_words=10**9, tokenized=False,
                                         option=f"--{name}", minimum=1)
        elif files is not None:  # [source file, target file]
            sets[name] = load_pair_files(None, *files, max_words=10**9, tokenized=False,
                                         option=f"--{name}", minimum=1)
    return pairs, sets.get("valid", sets.get("test")), sets.get("test", sets.get("valid"))


def _split(pairs, every: int):
    train = [p for i, p in enumerate(pairs) if i % every != every - 1]
    test = [p for i, p in enumerate(pairs) if i % every == every - 1]
    return train, test


def _tensors(batch, src_tok: SubwordTokenizer, tgt_tok: SubwordTokenizer):
    """Padded ids of ``(source, target)`` text pairs: source, its lengths, decoder inputs
    (``<s>`` first), their lengths, decoder targets (``</s>`` last)."""
    tgt = [tgt_tok.encode(t) for _, t in batch]
    src, src_len = pad_batch([src_tok.encode(s) or [UNK] for s, _ in batch])
    tgt_in, tgt_len = pad_batch([[SOS] + t for t in tgt])
    tgt_out, _ = pad_batch([t + [EOS] for t in tgt])
    return src, src_len, tgt_in, tgt_len, tgt_out


def _with_unk_replaced(ids: list[int], align, src_ids: list[int], src_tok, tgt_tok) -> str:
    """The text of ``ids`` with each ``<unk>`` replaced by the source piece the attention
    weighted most at that step."""
    text, run = [], []
    for t, i in enumerate(ids):
        if i == UNK and src_ids:
            text.append(tgt_tok.decode(run))
            run = []
            piece = src_tok.pieces([src_ids[int(align[t].argmax())]])[0]
            text.append(src_tok.piece_text(piece) if not (text and text[-1] == "")
                        else src_tok.piece_text(piece).lstrip())
        else:
            run.append(i)
    text.append(tgt_tok.decode(run))
    return "".join(text).strip() if len(text) > 1 else text[0]


def translate_n_best(model: Seq2SeqAttention, sentences: list[str], src_tok: SubwordTokenizer,
                     tgt_tok: SubwordTokenizer, beam_width: int = 5, max_len: int = 80,
                     batch: int = 64, min_length: int = 0, no_repeat_ngram: int = 0,
                     replace_unk: bool = False, n_best: int = 1):
    """For each sentence its ``n_best`` translations ``[(text, score), ...]`` best first
    (``score``: the beam's length-normalised log-probability it was ranked by), and the
    best one's alignments ``[target_pieces + 1, source_pieces]`` and its pieces
``(source_pieces, target_pieces)`` (for heatmap labels).

    ``min_length`` / ``no_repeat_ngram``: :class:`~rnnkit.seq2seq.BeamSearchDecoder`'s
    constraints (in pieces).  ``replace_unk``: each ``<unk>`` of a translation becomes the
    source piece the attention weighted most at that step (OpenNMT's ``replace_unk``).
    An empty sentence is read as one ``<unk>``.
    """
    if not 1 <= n_best <= beam_width:
        raise ValueError(f"n_best must be in [1, beam width {beam_width}], received {n_best}")
    model.eval()
    device = model.output_layer.weight.device
    results, aligns, labels = [], [], []
    for i in range(0, len(sentences), batch):
        chunk = [src_tok.encode(s) or [UNK] for s in sentences[i:i + batch]]
        src, src_len = pad_batch(chunk)
        if device.type == "cuda":  # a few source widths: the decode graphs are reused
            src = F.pad(src, (0, -src.shape[1] % GRAPH_SOURCE_BUCKET), value=PAD)
        ids, al, scores = model.beam_search(src.to(device), src_len.to(device), beam_width,
                                            max_len, min_length, no_repeat_ngram)
        ids, al, scores = ids.cpu(), al.float().cpu(), scores.float().cpu()
        for b, src_ids in enumerate(chunk):
            options = []
            for k in range(n_best):
                out = ids[b, :, k].tolist()
                out = out[: out.index(EOS)] if EOS in out else out
                align = al[: len(out) + 1, b, k, : len(src_ids)]
                text = (_with_unk_replaced(out, align, src_ids, src_tok, tgt_tok)
                        if replace_unk else tgt_tok.decode(out))
                options.append((text, float(scores[b, k])))
                if k == 0:
                    aligns.append(align)
                    labels.append((src_tok.pieces(src_ids), tgt_tok.pieces(out)))
            results.append(options)
    model.train()
    return results, aligns, labels


def translate(model: Seq2SeqAttention, sentences: list[str], src_tok: SubwordTokenizer,
              tgt_tok: SubwordTokenizer, beam_width: int = 5, max_len: int = 80, batch: int = 64,
              min_length: int = 0, no_repeat_ngram: int = 0, replace_unk: bool = False):
    """Beam-search translations (detokenised text) and each one's alignments: as
    :func:`translate_n_best` with ``n_best=1``."""
    results, aligns, _ = translate_n_best(model, sentences, src_tok, tgt_tok, beam_width,
                                          max_len, batch, min_length, no_repeat_ngram,
                                          replace_unk)
    return [r[0][0] for r in results], aligns


def corpus_bleu(hyps: list[str], refs: list[str]) -> tuple[float, str]:
    """``(score, signature)``: sacreBLEU's corpus BLEU of detokenised text with its standard
    tokenizer (``13a``) and the signature that says so."""
    from sacrebleu.metrics import BLEU

    metric = BLEU()
    score = metric.corpus_score(list(hyps), [list(refs)])
    return score.score, str(metric.get_signature())


def bleu(hyps: list[str], refs: list[str]) -> float:
    """sacreBLEU corpus BLEU of detokenised text (:func:`corpus_bleu` without the signature)."""
    return corpus_bleu(hyps, refs)[0]


def _model_from_config(cfg: dict, src_vocab: SubwordTokenizer, tgt_vocab: SubwordTokenizer):
    return Seq2SeqAttention(len(src_vocab), len(tgt_vocab), cfg["embedding"], cfg["hidden"],
                            shared_embedding=cfg.get("shared_vocab", False),
                            dropout=cfg.get("dropout", 0.0))


def load_model(run_dir: str | Path, device: str | None = "cpu", checkpoint: str = "last"):
    """``(model, src_tokenizer, tgt_tokenizer, config)`` of a trained run: its newest
    checkpoint (``checkpoint="best"``: the one of the lowest validation loss, in ``best/``;
    ``"averaged"``: what :func:`average_checkpoints` wrote, in ``averaged/``),
    verified against the run's config; the model on ``device`` (``None``: cuda when
    available) in ``eval()`` mode."""
    if checkpoint not in ("last", "best", "averaged"):
        raise ValueError(f"checkpoint must be 'last', 'best' or 'averaged', received "
                         f"{checkpoint!r}")
    if Path(run_dir).is_file():  # an export
        cfg, tensors, src_vocab, tgt_vocab = _load_export(Path(run_dir))
        _check_shapes(None, tensors, run_dir, cfg, src_vocab, tgt_vocab)
        try:
            model = _model_from_config(cfg, src_vocab, tgt_vocab)
        except (KeyError, TypeError, ValueError) as e:
            raise RunError(f"{run_dir} does not describe a translation model ({e})") from None
        module_from_tensors(model, tensors, str(run_dir), prefix="")
        return model.to(resolve_device(device)).eval(), src_vocab, tgt_vocab, cfg
    dev = resolve_device(device)
    run = Run(run_dir, APP, SPEC)
    cfg = run.read_config(verify=True)  # integrity, then bounds
    src_vocab, tgt_vocab = _load_tokenizers(run, cfg)
    chosen = None
    if checkpoint != "last":
        chosen = latest_checkpoint(run.path / checkpoint)
        if chosen is None:
            raise RunError(f"{run.path} has no {checkpoint} checkpoint (" + (
                "best/ is written at the first validation" if checkpoint == "best" else
                f"rnnkit translate average {shlex.quote(str(run.path))} writes it") + ")")
    tensors, _, ckpt = run.load(chosen)
    _check_shapes(run, tensors, ckpt, cfg, src_vocab, tgt_vocab)
    try:
        model = _model_from_config(cfg, src_vocab, tgt_vocab)
    except (KeyError, TypeError, ValueError) as e:
        raise RunError(f"{run.config_file} does not describe a translation model ({e})") \
            from None
    module_from_tensors(model, tensors, str(ckpt))
    return model.to(dev).eval(), src_vocab, tgt_vocab, cfg


def average_checkpoints(run_dir: str | Path, last: int | None = None) -> tuple[Path, list[int]]:
    """Checkpoint averaging (as OpenNMT-py's ``average_models`` and fairseq's
    ``average_checkpoints``): the element-wise mean of the model weights of the run's newest
    ``last`` checkpoints (``None``: all it keeps, at least 2), each verified, written as the
    run's ``averaged/`` checkpoint; returns ``(its directory, the steps averaged)``.
    ``load_model(run, checkpoint="averaged")`` and ``translate run --checkpoint averaged``
    read it.  The sum is taken in float64, then cast to each weight's dtype."""
    run = Run(run_dir, APP, SPEC)
    cfg = run.read_config(verify=True)
    kept = list_checkpoints(run.checkpoints)
    want = len(kept) if last is None else last
    if isinstance(want, bool) or not isinstance(want, int) or want < 2:
        raise ValueError(f"last must be an int >= 2, received {last!r}")
    if len(kept) < want:
        steps = ", ".join(str(int(p.name[5:])) for p in kept) or "none"
        raise RunError(f"{run.checkpoints} keeps {len(kept)} checkpoint"
                       f"{'s' if len(kept) != 1 else ''} (steps {steps}): averaging "
                       + (f"{want} needs a run trained with --keep {want} or more" if last
                          else "needs 2 (train with --keep 2 or more)"))
    src_vocab, tgt_vocab = _load_tokenizers(run, cfg)
    total, steps, meta = {}, [], None
    for ckpt in kept[-want:]:
        tensors, meta, _ = run.load(ckpt)
        _check_shapes(run, tensors, ckpt, cfg, src_vocab, tgt_vocab)
        weights = {k: v for k, v in tensors.items() if k.startswith("model.")}
        if total and set(weights) != set(total):
            raise RunError(f"{ckpt} holds other weights than {kept[-want]}")
        for k, v in weights.items():
            total[k] = total.get(k, 0) + v.double()
        steps.append(meta["step"])
    dtypes = {k: v.dtype for k, v in weights.items()}
    averaged = {k: (v / want).to(dtypes[k]) for k, v in total.items()}
    run.lock()
    try:
        out = save_checkpoint(run.path / "averaged", meta["step"], averaged,
                              {"history": meta["history"], "averaged_steps": steps}, keep=1,
                              depends_on=run.config_file)
    finally:
        run.unlock()
    return out, steps


def _check_shapes(run: Run | None, tensors, where, cfg, src_vocab, tgt_vocab) -> None:
    """The settings and tokenizers agree with the (verified) weights before a model is built
    from them (``run=None``: an export, whose tensors carry no ``model.`` prefix)."""
    prefix = "model." if run is not None else ""
    hidden, emb, shared = cfg["hidden"], cfg["embedding"], cfg.get("shared_vocab", False)
    shapes = {
        f"{prefix}src_embedding.weight": ((len(src_vocab), emb), "the src tokenizer or embedding"),
        f"{prefix}_own_tgt.weight": (None if shared else (len(tgt_vocab), emb), "shared_vocab"),
        f"{prefix}output_layer.weight": ((len(tgt_vocab), hidden), "hidden or the tgt tokenizer")}
    if run is not None:
        run.check_shapes(tensors, where, shapes)
        return
    runs.check_shapes(tensors, shapes, str(where), "the weights it holds", "the file")


def export_weights(run_dir: str | Path, out: str | Path, overwrite: bool = False,
                   checkpoint: str = "last") -> Path:
    """Write the run's model weights alone as a safetensors ``state_dict`` (the config and
    both tokenizer models as JSON metadata under ``"rnnkit_config"``): ``load_model(out)``
    and ``translate run out`` read it.  ``checkpoint``: as :func:`load_model`.  An existing
    ``out`` is replaced only with ``overwrite``."""
    import base64

    model, src_tok, tgt_tok, cfg = load_model(run_dir, checkpoint=checkpoint)
    models = {side: base64.b64encode(tok.model_proto).decode("ascii")
              for side, tok in (("src", src_tok), ("tgt", tgt_tok))}
    return export_state_dict(model, dict(cfg, tokenizer_models=models), out, overwrite)


def _load_export(path: Path):
    """``(config, state_dict, src_tok, tgt_tok)`` of a file :func:`export_weights` wrote."""
    import base64
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), "pt") as f:
            cfg = json.loads((f.metadata() or {})["rnnkit_config"])
        if not isinstance(cfg, dict) or cfg.get("app", APP) != APP:
            raise ValueError("it holds no translation model")
        runs.check_settings(cfg, SPEC, path)  # bounded before any use, as config.json
        tensors = load_file(str(path))
        record, models = cfg["tokenizer"], cfg["tokenizer_models"]
        toks = []
        for side in ("src", "tgt"):
            tok = SubwordTokenizer(base64.b64decode(models[side]))
            if tok.sha256 != record[side]["sha256"]:
                raise ValueError(f"the {side} tokenizer does not match its SHA-256")
            toks.append(tok)
    except RunError:
        raise
    except (KeyError, TypeError, ValueError, OSError, RuntimeError, RecursionError) as e:
        raise RunError(f"{path} is not a translation model rnnkit exported ({e})") from None
    return cfg, tensors, toks[0], toks[1]


def load_pairs(cfg: TranslateConfig):
    """The training data as ``(source, target)`` text pairs: the Bible verses, or the files
    named in ``cfg``."""
    if cfg.pairs is None and cfg.src is None and cfg.tgt is None:
        return load_bible_pairs(cfg.max_words, tokenized=False)
    return load_pair_files(cfg.pairs, cfg.src, cfg.tgt, cfg.max_words, tokenized=False)


def _tokenizer_files(shared: bool) -> dict[str, str]:
    return {"src": "spm.model", "tgt": "spm.model"} if shared else {
        "src": "src.spm.model", "tgt": "tgt.spm.model"}


def _train_tokenizers(cfg: TranslateConfig, train_pairs):
    if cfg.shared_vocab:
        tok = SubwordTokenizer.train((side for pair in train_pairs for side in pair),
                                     cfg.vocab_size)
        return tok, tok
    return (SubwordTokenizer.train((s for s, _ in train_pairs), cfg.vocab_size),
            SubwordTokenizer.train((t for _, t in train_pairs), cfg.vocab_size))


def _tokenizer_record(src_tok: SubwordTokenizer, tgt_tok: SubwordTokenizer, shared: bool):
    import sentencepiece

    files = _tokenizer_files(shared)
    return {"library": f"sentencepiece {sentencepiece.__version__}",
            "src": {"file": files["src"], "sha256": src_tok.sha256},
            "tgt": {"file": files["tgt"], "sha256": tgt_tok.sha256}}


def _load_tokenizers(run: Run, cfg: dict):
    """The run's two tokenizers, each file verified against the SHA-256 in config.json
    (which every checkpoint's manifest covers)."""
    record = cfg.get("tokenizer")
    if not isinstance(record, dict):
        if "src_vocab" in cfg:
            raise RunError(f"{run.path} was made by an earlier rnnkit (word vocabularies); "
                           "train it again with this version")
        raise RunError(f"{run.config_file} does not describe a translation model (no "
                       "tokenizer)")
    try:
        src, tgt = (SubwordTokenizer.load(run.path / record[k]["file"], record[k]["sha256"])
                    for k in ("src", "tgt"))
    except (KeyError, TypeError) as e:
        raise RunError(f"{run.config_file}: the tokenizer record is damaged ({e})") from None
    except ValueError as e:
        raise RunError(str(e)) from None
    return src, tgt


def _batch_schedule(lengths: list[int], batch_size: int, seed: int):
    """Training batches (index lists) forever: shuffled length buckets, epoch after epoch."""
    g = torch.Generator().manual_seed(seed)
    while True:
        yield from reversed(bucket_batches(lengths, batch_size, g))


def _lr_factor(step: int, steps: int) -> float:
    """Constant, then linear decay over the second half of training (to 5%)."""
    return min(1.0, 2.0 * (1 - step / max(steps, 1)) + 0.05)


def train(cfg: TranslateConfig, out_dir: str | Path, resume: bool = False, log=tqdm.write,
          progress=None, device: str | None = None, overwrite: bool = False) -> dict:
    """Train (or, with ``resume``, continue) a translation run in ``out_dir``, then score it.

    A checkpoint (model, optimizer, random-number state, loss history) is written atomically
    every ``cfg.checkpoint_every`` steps; a resumed run reproduces the uninterrupted one (on
    the same device).  ``device``: as :func:`rnnkit.apps.device.resolve_device`.

    Launched by ``torchrun`` (``WORLD_SIZE`` > 1) each process trains on its own batches
    (``world_size`` batches of ``cfg.batch_size`` per step) through
    ``DistributedDataParallel`` (gloo on CPU, NCCL on GPU); rank 0 writes the run, validates
    and scores, and the run resumes with the same number of processes.
    """
    _check_config(cfg)
    ddp = distributed.setup(device)
    try:
        return _train_process(cfg, out_dir, resume, log if ddp.is_main else _silent, progress,
                              ddp, overwrite)
    finally:
        ddp.close()


def _silent(*_args, **_kw) -> None:
    """The log of the processes other than rank 0."""


def _check_config(cfg: TranslateConfig) -> None:
    for name in ("steps", "checkpoint_every", "batch_size", "max_words", "beam_width",
                 "hidden", "embedding", "vocab_size", "log_every", "keep"):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int, received {value!r}")
    for name in ("patience", "bleu_every"):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, received {value!r}")
    if cfg.max_decode is not None and (isinstance(cfg.max_decode, bool) or not isinstance(
            cfg.max_decode, int) or cfg.max_decode <= 0):
        raise ValueError(f"max_decode must be a positive int or None, received "
                         f"{cfg.max_decode!r}")


def _train_process(cfg, out_dir, resume, log, progress, ddp, overwrite) -> dict:
    torch.manual_seed(cfg.seed)
    pairs = load_pairs(cfg)
    train_pairs, valid_pairs, test_pairs = _eval_sets(cfg, pairs)
    run = Run(out_dir, APP, SPEC)
    try:
        if ddp.is_main:  # the run directory, its tokenizers and config.json
            src_vocab, tgt_vocab, max_decode = _start_run(cfg, run, resume, overwrite, pairs,
                                                          train_pairs)
        ddp.barrier()
        if not ddp.is_main:  # the tokenizers rank 0 wrote, verified
            saved = run.read_config()
            src_vocab, tgt_vocab = _load_tokenizers(run, saved)
            max_decode = saved["max_decode"]
        log(f"{len(train_pairs)} training / {len(valid_pairs)} validation / "
            f"{len(test_pairs)} test sentence pairs ({_title(cfg, '')}, <= {cfg.max_words} "
            f"words); SentencePiece vocabularies {len(src_vocab)} / {len(tgt_vocab)} pieces"
            + (f"; {ddp.world_size} processes" if ddp.enabled else ""))
        model = _model_from_config(dataclasses.asdict(cfg), src_vocab, tgt_vocab).to(ddp.device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        if ddp.enabled:  # each process its own dropout draws (the weights are rank 0's)
            torch.manual_seed(cfg.seed * 1_000_003 + ddp.rank)
        cfg = dataclasses.replace(cfg, max_decode=max_decode)
        pause_point("start-up")
        return _train(cfg, run, resume, model, opt, ddp, train_pairs,
                      (valid_pairs, test_pairs), src_vocab, tgt_vocab, log, progress)
    except KeyboardInterrupt as e:  # outside the training loop: say how to continue
        if isinstance(e, interrupts.Interrupted):
            raise
        raise run.interrupted("rnnkit translate train") from None
    finally:
        run.unlock()


def _start_run(cfg, run, resume, overwrite, pairs, train_pairs):
    """Rank 0: the tokenizers (the run's own on ``resume``: config.json verified against the
    newest checkpoint, if any, then bounded, then each file against the SHA-256 it records;
    else trained on ``train_pairs``), then ``run.start`` with config.json, then the
    tokenizer files.  Returns ``(src_tokenizer, tgt_tokenizer, max_decode)``."""
    loaded = False
    if resume and not overwrite and run.config_file.is_file():
        saved = run.read_config(verify=run.latest_step() is not None)
        if run.latest_step() is not None or all(
                (run.path / f).is_file() for f in _tokenizer_files(cfg.shared_vocab).values()):
            src_vocab, tgt_vocab = _load_tokenizers(run, saved)
            loaded = True
    if not loaded:  # (a run stopped before its tokenizers were written trains them again)
        src_vocab, tgt_vocab = _train_tokenizers(cfg, train_pairs)
    longest = max(len(tgt_vocab.encode(t)) for _, t in train_pairs)
    max_decode = cfg.max_decode or math.ceil(1.5 * longest) + 5
    run_cfg = dict(dataclasses.asdict(cfg), max_decode=max_decode,
                   tokenizer=_tokenizer_record(src_vocab, tgt_vocab, cfg.shared_vocab))
    run.start(run_cfg, resume, overwrite, RESUME_MAY_CHANGE, _data_digests(cfg, pairs))
    if not loaded:
        for side, tok in (("src", src_vocab), ("tgt", tgt_vocab)):
            tok.save(run.path / run_cfg["tokenizer"][side]["file"])
    return src_vocab, tgt_vocab, max_decode


def _data_digests(cfg: TranslateConfig, pairs) -> dict[str, tuple[str, str]]:
    """What the run records of its data: each file's SHA-256 (the training data, and the
    --valid / --test files), or the built-in pairs'."""
    files = {k: getattr(cfg, k) for k in ("pairs", "src", "tgt") if getattr(cfg, k) is not None}
    if not files:
        digests = {"pairs": ("the King James -> Basic English pairs",
                             runs.sha256_text(json.dumps(pairs)))}
    else:
        digests = {k: (f"--{k} {name}", sha256_file(name)) for k, name in files.items()}
    for k in ("valid", "test"):
        files = getattr(cfg, k)
        if isinstance(files, str):
            digests[k] = (f"--{k} {files}", sha256_file(files))
        elif files is not None:  # a source and a target file: both digests
            digests[k] = (f"--{k} {' '.join(files)}",
                          runs.sha256_text(" ".join(sha256_file(f) for f in files)))
    return digests


def _train(cfg, run, resume, model, opt, ddp, train_pairs, eval_pairs, src_vocab, tgt_vocab,
           log, progress) -> dict:
    dev = ddp.device
    start, history, valid = 0, [], []
    if resume and run.latest_step() is not None:  # else: stopped before its first checkpoint
        tensors, meta, latest = run.load()
        ddp.check_resume(meta, latest)
        module_from_tensors(model, tensors, str(latest))
        optimizer_from_tensors(opt, tensors, meta.get("optimizer"))
        suffix = f".rank{ddp.rank}" if ddp.enabled else ""
        if f"rng_state{suffix}" not in tensors:
            raise RunError(f"{latest}: the random-number state is missing")
        torch.set_rng_state(tensors[f"rng_state{suffix}"])
        if dev.type == "cuda" and f"cuda_rng_state{suffix}" in tensors:
            torch.cuda.set_rng_state(tensors[f"cuda_rng_state{suffix}"], dev)
        start, history = meta["step"], meta["history"]
        valid = [list(v) for v in meta.get("valid_history", [])]
        log(f"resumed from {latest} at step {start}")
    metrics = Metrics(run.path, start if resume else None, log) if ddp.is_main else None
    try:
        return _train_loop(cfg, run, model, opt, ddp, train_pairs, eval_pairs, src_vocab,
                           tgt_vocab, log, progress, start, history, valid, metrics)
    finally:
        if metrics is not None:
            metrics.close()


def _valid_loss(model, pairs, src_vocab, tgt_vocab, dev, batch_size: int) -> float:
    """Cross-entropy per target piece (``</s>`` included) of ``pairs``, teacher-forced, in
    ``eval()`` mode (no dropout, no random draw)."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(pairs), batch_size):
            src, src_len, tgt_in, tgt_len, tgt_out = (
                t.to(dev) for t in _tensors(pairs[i:i + batch_size], src_vocab, tgt_vocab))
            logits = model(src, src_len, tgt_in, tgt_len)
            mask = torch.arange(tgt_out.shape[1], device=dev)[None] < tgt_len[:, None]
            nll = F.cross_entropy(logits.float().transpose(1, 2), tgt_out, reduction="none")
            total += float((nll * mask).sum())
            count += int(mask.sum())
    model.train()
    return total / max(count, 1)


def _train_loop(cfg, run, model, opt, ddp, train_pairs, eval_pairs, src_vocab, tgt_vocab,
                log, progress, start, history, valid, metrics) -> dict:
    out_dir, dev = run.path, ddp.device
    valid_pairs, test_pairs = eval_pairs
    net = model
    if ddp.enabled:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None)

    def checkpoint(step: int) -> None:
        rng = _rng_states(ddp)  # every process takes part
        if not ddp.is_main:
            return
        opt_tensors, opt_doc = optimizer_to_tensors(opt)
        save_checkpoint(run.checkpoints, step, {**module_to_tensors(model), **opt_tensors, **rng},
                        {"optimizer": opt_doc, "history": history, "valid_history": valid,
                         "world_size": ddp.world_size},
                        keep=cfg.keep, depends_on=run.config_file)
        log(f"checkpoint: step {step}")

    def validate(step: int) -> bool:
        """Rank 0: validation loss at ``step``, the best checkpoint; True: stop early."""
        loss = _valid_loss(model, valid_pairs, src_vocab, tgt_vocab, dev, cfg.batch_size)
        best = min((v for _, v in valid), default=math.inf)
        valid.append([step, round(loss, 5)])
        metrics.log(step, **{"valid/loss": loss, "valid/perplexity": math.exp(min(loss, 50))})
        if loss < best:
            save_checkpoint(out_dir / "best", step, module_to_tensors(model),
                            {"history": history, "valid_history": valid}, keep=1,
                            depends_on=run.config_file)
        log(f"step {step}: validation loss {loss:.3f} per piece"
            + (" (best so far: saved in best/)" if loss < best else f" (best {best:.3f})"))
        return bool(cfg.patience) and _checks_since_best(valid) >= cfg.patience

    lengths = [len(src_vocab.encode(s)) for s, _ in train_pairs]
    schedule = _batch_schedule(lengths, cfg.batch_size, cfg.seed)
    for _ in range(start * ddp.world_size):  # the batches the resumed run has seen already
        next(schedule)
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, unit="step",
               desc="translate", disable=True if not ddp.is_main else (
                   None if progress is None else not progress))
    window = {"t": time.perf_counter(), "tokens": 0, "losses": []}
    done, early = start, bool(cfg.patience) and _checks_since_best(valid) >= cfg.patience
    # under torchrun, Ctrl-C reaches every process and torchrun stops them all
    with stop_on_interrupt() if not ddp.enabled else contextlib.nullcontext() as stop:
        for step in bar:
            if (stop is not None and stop.requested) or early:
                break
            done = _step(cfg, step, net, model, opt, ddp, train_pairs, schedule, src_vocab,
                         tgt_vocab, history, bar, window, metrics, log)
            if ddp.is_main and cfg.bleu_every and done % cfg.bleu_every == 0:
                _log_valid_bleu(cfg, done, model, valid_pairs, src_vocab, tgt_vocab, metrics,
                                log)
            if done % cfg.checkpoint_every == 0 or done == cfg.steps:
                early = ddp.broadcast_flag(validate(done) if ddp.is_main else False)
                checkpoint(done)
    bar.close()
    if early:
        best_step, best = min(valid, key=lambda v: v[1]) if valid else (done, math.nan)
        log(f"early stop after step {done}: no better validation loss in {cfg.patience} "
            f"checks (best {best:.3f} at step {best_step})")
    elif done < cfg.steps:
        if done % cfg.checkpoint_every != 0:
            checkpoint(done)
        log(f"\ninterrupted after step {done}: checkpoint written; continue with\n  "
            f"rnnkit translate train --out {shlex.quote(str(out_dir))} --resume")
        return {"steps": done, "interrupted": True}
    if ddp.enabled:
        print(f"rank {ddp.rank} weights sha256 {params_digest(model)}", flush=True)
    if not ddp.is_main:
        ddp.barrier()  # until rank 0 has scored the run
        return {"steps": done, "rank": ddp.rank}
    scores = _score(cfg, model, out_dir, history, test_pairs, src_vocab, tgt_vocab, log, valid,
                    {"stopped_early_at": done} if early else {})
    for png in sorted(out_dir.glob("alignment-*.png")):
        metrics.image(f"alignment/{png.stem}", png, done)
    metrics.log(done, **{f"test/{k}": v for k, v in scores.items() if k.startswith("bleu_")
                         and isinstance(v, float)})
    ddp.barrier()
    return scores


def _rng_states(ddp) -> dict[str, torch.Tensor]:
    """The random-number states a checkpoint keeps: this process's, or under torchrun every
    process's (``rng_state.rank{r}``; a collective: all processes call it)."""
    states = {"rng_state": torch.get_rng_state()}
    if ddp.device.type == "cuda":  # dropout draws from the GPU's generator there
        states["cuda_rng_state"] = torch.cuda.get_rng_state(ddp.device)
    if not ddp.enabled:
        return states
    return {f"{name}.rank{r}": t for name, state in states.items()
            for r, t in enumerate(ddp.all_gather(state))}


def _log_valid_bleu(cfg, step, model, valid_pairs, src_vocab, tgt_vocab, metrics, log) -> None:
    """Greedy BLEU on the validation pairs at ``step`` (``--bleu-every``): no random draw,
    so the training trajectory is the same with or without it."""
    hyps, _ = translate(model, [s for s, _ in valid_pairs], src_vocab, tgt_vocab, 1,
                        cfg.max_decode, batch=cfg.batch_size, min_length=cfg.min_length,
                        no_repeat_ngram=cfg.no_repeat_ngram, replace_unk=cfg.replace_unk)
    score = bleu(hyps, [t for _, t in valid_pairs])
    metrics.log(step, **{"valid/bleu": score})
    log(f"step {step}: validation BLEU {score:.2f} (greedy, {len(valid_pairs)} pairs)")


def _checks_since_best(valid: list) -> int:
    """Validations since the best one (0: the last was the best)."""
    if not valid:
        return 0
    best = min(range(len(valid)), key=lambda i: (valid[i][1], i))
    return len(valid) - 1 - best


def _step(cfg, step, net, model, opt, ddp, train_pairs, schedule, src_vocab, tgt_vocab,
          history, bar, window, metrics, log) -> int:
    """One training step (under torchrun: this process's batch of the step's
    ``world_size``); returns the number of steps done."""
    dev = ddp.device
    batches = [next(schedule) for _ in range(ddp.world_size)]
    batch = [train_pairs[i] for i in batches[ddp.rank]]
    src, src_len, tgt_in, tgt_len, tgt_out = (
        t.to(dev, non_blocking=True) for t in _tensors(batch, src_vocab, tgt_vocab))
    logits = net(src, src_len, tgt_in, tgt_len)
    weights = (torch.arange(tgt_out.shape[1], device=dev)[None] < tgt_len[:, None]).float()
    loss = seq2seq.sequence_loss(logits, tgt_out, weights)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    lr = cfg.lr * _lr_factor(step, cfg.steps)
    for group in opt.param_groups:
        group["lr"] = lr
    opt.step()
    history.append(round(ddp.all_mean(loss.item()), 4))
    bar.set_postfix(loss=f"{history[-1]:.3f}")
    done = step + 1
    window["tokens"] += int(tgt_len.sum()) + len(batch)  # with each </s>
    window["losses"].append(history[-1])
    if done % cfg.log_every == 0 or done == cfg.steps:
        seconds = max(time.perf_counter() - window["t"], 1e-9)
        mean = sum(window["losses"]) / len(window["losses"])
        speed = ddp.all_mean(window["tokens"]) * ddp.world_size / seconds
        if metrics is not None:
            metrics.log(done, **{"train/loss": mean, "train/lr": lr,
                                 "train/tokens_per_s": speed})
        log(f"step {done}: loss {mean:.3f} (mean of {len(window['losses'])} steps), lr "
            f"{lr:.2e}, {speed:,.0f} target tokens/s")
        window.update(t=time.perf_counter(), tokens=0, losses=[])
    return done


def _score(cfg, model, out_dir, history, test_pairs, src_vocab, tgt_vocab, log,
           valid=(), extra=None) -> dict:
    """Held-out BLEU (beam, greedy, copying the source), translations and heatmaps."""
    plot.loss_curve(range(1, len(history) + 1), history, out_dir / "loss.png",
                    [s for s, _ in valid], [v for _, v in valid],
                    title=_title(cfg, "attention seq2seq"))

    sources = [s for s, _ in test_pairs]
    refs = [t for _, t in test_pairs]
    options = dict(min_length=cfg.min_length, no_repeat_ngram=cfg.no_repeat_ngram,
                   replace_unk=cfg.replace_unk)
    pause_point("evaluation")
    best, aligns, labels = translate_n_best(model, sources, src_vocab, tgt_vocab,
                                            cfg.beam_width, cfg.max_decode, **options)
    hyps = [b[0][0] for b in best]
    greedy_hyps, _ = translate(model, sources, src_vocab, tgt_vocab, 1, cfg.max_decode,
                               **options)
    beam_bleu, signature = corpus_bleu(hyps, refs)
    copy_bleu = bleu(sources, refs)  # baseline: output the source unchanged
    scores = {"bleu_beam": round(beam_bleu, 2),
              "bleu_greedy": round(bleu(greedy_hyps, refs), 2),
              "bleu_copy_source_baseline": round(copy_bleu, 2), "bleu_signature": signature,
              "held_out_pairs": len(test_pairs), "beam_width": cfg.beam_width, **options,
              **(extra or {})}
    write_json_atomic(out_dir / "bleu.json", scores)
    write_text_atomic(out_dir / "translations.txt", "".join(
        f"SRC: {src}\nREF: {ref}\nOUT: {hyp}\n\n"
        for src, ref, hyp in zip(sources, refs, hyps, strict=True)))
    shown = min(3, len(sources))  # 40 pairs (the fewest accepted) hold out 2
    for k in range(shown):
        plot.alignment(aligns[k], out_dir / f"alignment-{k}.png", source_tokens=labels[k][0],
                       target_tokens=(labels[k][1] + ["</s>"])[: aligns[k].shape[0]],
                       title=_title(cfg, ""))
    log(f"held-out BLEU: beam({cfg.beam_width}) {scores['bleu_beam']:.2f}, greedy "
        f"{scores['bleu_greedy']:.2f} (copying the source scores {copy_bleu:.2f}); "
        f"sacreBLEU {signature}")
    for k in range(shown):
        log(f"  SRC: {sources[k]}\n  REF: {refs[k]}\n  OUT: {hyps[k]}")
    log(f"run written to {out_dir}: config.json, checkpoints/, bleu.json, translations.txt, "
        "loss.png, alignment-*.png")
    return scores


def _title(cfg, what: str) -> str:
    data = "KJV -> BBE" if cfg.pairs is None and cfg.src is None else "own pairs"
    return f"{data} {what}".strip()
