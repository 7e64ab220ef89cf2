"""The applications' ONNX export directories (``charrnn export`` / ``translate export``
with a directory ``OUT``): one way to write them.

The files are written into a directory beside ``OUT`` and renamed into place (an
interrupted export leaves no half directory), get the mode the user's umask gives new
files, and are listed in ``manifest.json`` with each one's size and SHA-256 (the serving
clients refuse a file that does not match).  ``--overwrite`` replaces only a directory
whose manifest names the same format: never another directory of the user's.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from rnnkit.apps.checkpoint import sha256_file, write_json_atomic
from rnnkit.apps.runs import RunError

__all__ = ["write_export_dir"]


def _format_of(path: Path) -> str | None:
    """The ``format`` the manifest of directory ``path`` names (``None``: not an export)."""
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest.get("format") if isinstance(manifest, dict) else None


def write_export_dir(out_dir: str | Path, fmt: str, what: str, overwrite: bool,
                     fill: Callable[[Path], dict]) -> Path:
    """Write the export directory ``out_dir`` of format ``fmt`` (``what``: its name in
    messages, such as "char-RNN ONNX export").

    ``fill(tmp)`` writes the export's files into the directory ``tmp`` and returns the
    manifest's own fields; ``manifest.json`` then holds ``format``, those fields and
    ``files`` (each file's ``bytes`` and ``sha256``, merged into any entry the fields give
    for it under ``files``).  An existing ``out_dir`` is replaced only with ``overwrite``
    and only when it is an export of ``fmt``."""
    out_dir = Path(out_dir)
    if out_dir.suffix == ".safetensors":
        raise RunError(f"{out_dir}: an ONNX export is a directory")
    if out_dir.exists() and not overwrite:
        raise RunError(f"{out_dir} exists; choose another directory or pass --overwrite")
    if out_dir.exists() and _format_of(out_dir) != fmt:
        raise RunError(f"{out_dir} exists and is not a {what}; --overwrite replaces only such "
                       "a directory (choose another directory)")
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        fields = dict(fill(tmp))
        umask = os.umask(0)
        os.umask(umask)
        described = fields.pop("files", {})
        listing = {}
        for name in sorted(p.name for p in tmp.iterdir()):
            path = tmp / name
            os.chmod(path, 0o666 & ~umask)
            listing[name] = {**described.get(name, {}), "bytes": path.stat().st_size,
                             "sha256": sha256_file(path)}
        write_json_atomic(tmp / "manifest.json", {"format": fmt, **fields, "files": listing})
        os.chmod(tmp / "manifest.json", 0o666 & ~umask)
        os.chmod(tmp, 0o777 & ~umask)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
