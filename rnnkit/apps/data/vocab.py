"""Character and word vocabularies (JSON-serialisable)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

__all__ = ["CharVocab", "WordVocab"]


class CharVocab:
    """Characters <-> ids, ordered by first appearance-independent sorted order."""

    def __init__(self, chars: Sequence[str]):
        if len(set(chars)) != len(chars):
            raise ValueError("CharVocab characters must be unique")
        self.chars = list(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        missing = sorted({c for c in text if c not in self.index})
        if missing:
            raise ValueError(f"characters not in the vocabulary: {missing!r}")
        return [self.index[c] for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def to_json(self) -> dict:
        return {"chars": self.chars}

    @classmethod
    def from_json(cls, data: dict) -> CharVocab:
        return cls(data["chars"])


class WordVocab:
    """Words <-> ids with ``<pad>`` 0, ``<s>`` 1, ``</s>`` 2, ``<unk>`` 3."""

    PAD, SOS, EOS, UNK = 0, 1, 2, 3
    SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")

    def __init__(self, words: Sequence[str]):
        self.words = list(self.SPECIALS) + [w for w in words if w not in self.SPECIALS]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], max_size: int | None = None,
              min_count: int = 1) -> WordVocab:
        counts = Counter(w for s in sentences for w in s)
        ranked = sorted((w for w, c in counts.items() if c >= min_count),
                        key=lambda w: (-counts[w], w))
        if max_size is not None:
            ranked = ranked[: max(0, max_size - len(cls.SPECIALS))]
        return cls(ranked)

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, tokens: Sequence[str], add_eos: bool = False) -> list[int]:
        ids = [self.index.get(t, self.UNK) for t in tokens]
        return ids + [self.EOS] if add_eos else ids

    def decode(self, ids: Iterable[int], strip: bool = True) -> list[str]:
        out = []
        for i in ids:
            i = int(i)
            if strip and i == self.EOS:
                break
            if strip and i in (self.PAD, self.SOS):
                continue
            out.append(self.words[i])
        return out

    def to_json(self) -> dict:
        return {"words": self.words[len(self.SPECIALS):]}

    @classmethod
    def from_json(cls, data: dict) -> WordVocab:
        return cls(data["words"])
