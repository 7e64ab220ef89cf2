"""Subword tokenisation for translation: a SentencePiece model trained on the user's data.

The model is trained at ``translate train`` on the training side of the pairs (unigram
pieces, every character of the data kept, no normalisation, byte fallback), so any script
round-trips exactly: ``decode(encode(text)) == text`` for Korean, accented Latin, emoji or
anything else, and a character never seen in training is read as its UTF-8 bytes (and
reported by :meth:`SubwordTokenizer.unseen_characters`) instead of vanishing.

Ids: ``<pad>`` 0, ``<s>`` 1, ``</s>`` 2, ``<unk>`` 3, then the pieces.  Needs the
``sentencepiece`` package (``pip install 'rnnkit[apps]'``).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["SubwordTokenizer"]


class SubwordTokenizer:
    """Text <-> ids through a SentencePiece model (its serialized bytes: ``model_proto``)."""

    PAD, SOS, EOS, UNK = 0, 1, 2, 3
    WORD = "\u2581"  # SentencePiece's word-start mark

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm

        self.model_proto = bytes(model_proto)
        self._sp = spm.SentencePieceProcessor(model_proto=self.model_proto)
        if [self._sp.pad_id(), self._sp.bos_id(), self._sp.eos_id(), self._sp.unk_id()] != [
                self.PAD, self.SOS, self.EOS, self.UNK]:
            raise ValueError("the SentencePiece model does not use rnnkit's ids "
                             "(<pad> 0, <s> 1, </s> 2, <unk> 3)")

    @classmethod
    def train(cls, sentences: Iterable[str], vocab_size: int) -> SubwordTokenizer:
        """A unigram model of at most ``vocab_size`` pieces (fewer if the data holds fewer;
        at least every character of ``sentences`` plus 256 byte pieces and 4 specials)."""
        import sentencepiece as spm

        lines = [s for s in sentences if s]
        if not lines:
            raise ValueError("no text to train the tokenizer on")
        needed = len({c for s in lines for c in s if not c.isspace()}) + 261
        buf = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines), model_writer=buf,
                vocab_size=max(vocab_size, needed), model_type="unigram",
                character_coverage=1.0, normalization_rule_name="identity",
                remove_extra_whitespaces=False, byte_fallback=True, hard_vocab_limit=False,
                split_digits=True, pad_id=cls.PAD, bos_id=cls.SOS, eos_id=cls.EOS,
                unk_id=cls.UNK, unk_surface="<unk>", num_threads=1, minloglevel=2,
                max_sentence_length=1 << 16)
        except RuntimeError as e:
            raise ValueError(f"the tokenizer cannot be trained on this data ({e})") from None
        return cls(buf.getvalue())

    # -- files ----------------------------------------------------------------------------
    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.model_proto).hexdigest()

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model atomically (temporary file, fsync, rename)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as f:
            f.write(self.model_proto)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, sha256: str | None = None) -> SubwordTokenizer:
        """Read a model file; with ``sha256``, refuse a file whose digest differs."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path} is missing (the run's tokenizer)")
        data = path.read_bytes()
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError(f"{path} does not match the SHA-256 recorded in config.json "
                             "(truncated or modified)")
        try:
            return cls(data)
        except RuntimeError as e:
            raise ValueError(f"{path} is not a SentencePiece model ({e})") from None

    # -- text <-> ids ---------------------------------------------------------------------
    def __len__(self) -> int:
        return self._sp.get_piece_size()

    def encode(self, text: str, add_eos: bool = False) -> list[int]:
        ids = list(self._sp.encode(text))
        return ids + [self.EOS] if add_eos else ids

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids`` up to the first ``</s>`` (``<pad>`` / ``<s>`` skipped);
        an ``<unk>`` shows as ``<unk>``."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.EOS:
                break
            if i not in (self.PAD, self.SOS):
                out.append(i)
        return self._sp.decode(out)

    def pieces(self, ids: Sequence[int]) -> list[str]:
        return [self._sp.id_to_piece(int(i)) for i in ids]

    def piece_text(self, piece: str) -> str:
        """What a piece stands for in the text (its word-start mark as a space)."""
        return piece.replace(self.WORD, " ")

    def unseen_characters(self, text: str) -> list[str]:
        """Characters of ``text`` that have no piece: never seen in training (the model
        reads them as bytes it has not learnt)."""
        return sorted({c for c in text if not c.isspace()
                       and self._sp.piece_to_id(c) == self.UNK})
