"""Run directories of the applications: one policy for creating, resuming and reading them.

A run directory holds:

* ``.rnnkit-run``: the marker saying which application made it (``--overwrite`` deletes only
  directories that carry it);
* ``.lock``: an exclusive ``flock`` held by the one process writing the run (the kernel
  releases it when that process dies, so a crashed run's lock is simply taken over);
* ``config.json``: the run's settings (and vocabularies), written atomically;
* ``checkpoints/step-XXXXXXXX/``: checkpoints whose manifest covers every file and the
  ``config.json`` they were written with (:mod:`rnnkit.apps.checkpoint`).

Resuming compares the new settings with the saved ones: every key must match except those
the application lists as not changing the training trajectory (``may_change``), and the
data must be the data the run trained on: ``config.json`` records the SHA-256 of each data
file (``data_sha256``), so the same content at another path is accepted and any other
content is refused, naming the file.

Everything read back from a run is verified before it is used: ``config.json`` against the
digest the newest checkpoint's manifest records, then each setting the application reads
against its bounds (``spec``), before any model is built.  Ctrl-C outside the training loop
(start-up, evaluation, plotting, export) raises :class:`Interrupted`, whose message says how
to continue; writes are atomic, so nothing half-written is left.
Errors are :class:`RunError` (a ``ValueError``): the CLI prints them as one line.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rnnkit.apps.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    sha256_file,
    write_json_atomic,
)
from rnnkit.apps.interrupts import Interrupted

__all__ = ["Run", "RunError", "check_settings", "check_shapes"]


MARKER = ".rnnkit-run"
#: the largest ``config.json`` read back (vocabularies included)
MAX_CONFIG_BYTES = 64 << 20


class RunError(ValueError):
    """A run directory cannot be used as asked (the message says why and what to do)."""


def _checked_dir(path: Path) -> Path:
    if path.is_symlink() and not path.exists():
        raise RunError(f"{path} is a symbolic link to {os.readlink(path)}, which does not "
                       "exist; choose another --out")
    if path.exists() and not path.is_dir():
        raise RunError(f"{path} exists and is not a directory; choose another --out")
    return path


# -- settings read from disk: bounds, checked before use ------------------------------------
Check = Callable[[Any], str | None]  # None: valid; else what the value must be


def int_in(lo: int, hi: int) -> Check:
    def check(v: Any) -> str | None:
        ok = isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi
        return None if ok else f"an integer in [{lo}, {hi}]"
    return check


def float_in(lo: float, hi: float) -> Check:
    def check(v: Any) -> str | None:
        ok = (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
              and lo <= v <= hi)
        return None if ok else f"a finite number in [{lo}, {hi}]"
    return check


MISSING = object()


def optional(check: Check) -> Check:
    """``check``, or the key absent (the application then uses its default)."""
    return lambda v: None if v is MISSING else check(v)


def boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else "true or false"


def text(max_chars: int, optional: bool = False) -> Check:
    def check(v: Any) -> str | None:
        if v is None and optional:
            return None
        ok = isinstance(v, str) and 0 < len(v) <= max_chars
        return None if ok else f"a non-empty string of at most {max_chars} characters"
    return check


def file_or_pair(max_chars: int) -> Check:
    """``None``, a file name, or ``[source_file, target_file]`` (``--valid`` / ``--test``)."""
    name = text(max_chars)

    def check(v: Any) -> str | None:
        if v is None or name(v) is None:
            return None
        if isinstance(v, list) and len(v) == 2 and all(name(x) is None for x in v):
            return None
        return (f"a file name or a [source, target] pair of file names of at most "
                f"{max_chars} characters")
    return check


def string_list(field: str, max_items: int, max_chars: int) -> Check:
    """``{field: [distinct non-empty strings of at most max_chars]}`` (a vocabulary)."""
    def check(v: Any) -> str | None:
        items = v.get(field) if isinstance(v, dict) else None
        ok = (isinstance(items, list) and len(items) <= max_items
              and all(isinstance(w, str) and 0 < len(w) <= max_chars for w in items)
              and len(set(items)) == len(items))
        return None if ok else (f'{{"{field}": [...]}} of at most {max_items} distinct '
                                f"strings of 1 to {max_chars} characters")
    return check


def check_settings(cfg: Mapping[str, Any], spec: Mapping[str, Check], where: Path) -> None:
    """Every key of ``spec`` present in ``cfg`` and valid, or a :class:`RunError` naming the
    file and the key (the value shown cut short)."""
    for key, check in spec.items():
        wanted = check(cfg.get(key, MISSING))
        if wanted is not None and key not in cfg:
            raise RunError(f"{where}: {key} is missing")
        if wanted is not None:
            shown = repr(cfg[key])
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise RunError(f"{where}: {key} must be {wanted}, received {shown}")


def check_shapes(tensors: Mapping[str, Any],
                 shapes: Mapping[str, tuple[tuple[int, ...] | None, str]], where: str,
                 holder: str, held_by: str) -> None:
    """Every tensor ``shapes`` names has the shape the settings give (``None``: absent), or a
    :class:`RunError`: "``where``: SETTING does not match ``holder`` (KEY: the settings give
    ..., ``held_by`` holds ...)"."""
    for key, (shape, setting) in shapes.items():
        found = tensors.get(key)
        have = None if found is None else tuple(found.shape)
        if have != (None if shape is None else tuple(shape)):
            raise RunError(f"{where}: {setting} does not match {holder} ({key}: the settings "
                           f"give {'none' if shape is None else shape}, {held_by} holds "
                           f"{'none' if have is None else have})")


def sha256_text(content: str) -> str:
    """The SHA-256 of ``content`` as UTF-8 (the digest a run records of built-in data)."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


class Run:
    """One application's run directory (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, app: str,
                 spec: Mapping[str, Check] | None = None):
        self.path = Path(path)
        self.app = app
        #: bounds of the settings the application reads back (:func:`check_settings`)
        self.spec = dict(spec or {})
        self._lock_fd: int | None = None

    # -- files --------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def _made_by(self) -> str | None:
        marker = self.path / MARKER
        if not marker.is_file():
            return None
        try:
            return json.loads(marker.read_text(encoding="utf-8")).get("app")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            return None

    def read_config(self, verify: bool = False) -> dict:
        """The saved settings, checked against ``spec``; a missing, damaged or out-of-bounds
        file is an error naming it (and the key).  ``verify``: first check that
        ``config.json`` is the file the newest checkpoint was written with (its manifest
        records the SHA-256), so that an edited file is refused before any value is used."""
        if not self.config_file.is_file():
            raise RunError(f"{self.path} is not a {self.app} run (no config.json)")
        if self.config_file.stat().st_size > MAX_CONFIG_BYTES:
            raise RunError(f"{self.config_file} is larger than {MAX_CONFIG_BYTES >> 20} MiB; "
                           "it is not a config.json rnnkit wrote")
        try:
            cfg = json.loads(self.config_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunError(f"{self.config_file} is not valid JSON ({e})") from e
        except RecursionError:
            raise RunError(f"{self.config_file} is nested too deeply") from None
        if not isinstance(cfg, dict):
            raise RunError(f"{self.config_file} does not hold a settings object")
        made_by = self._made_by() or cfg.get("app")
        if made_by is not None and made_by != self.app:
            raise RunError(f"{self.path} is a {made_by} run, not a {self.app} run")
        if verify:
            self._verify_config()
        check_settings(cfg, self.spec, self.config_file)
        return cfg

    def _verify_config(self) -> None:
        latest = latest_checkpoint(self.checkpoints)
        if latest is None:
            raise RunError(f"{self.path} has no checkpoint yet")
        manifest = latest / "manifest.json"
        try:
            if manifest.stat().st_size > 1 << 20:
                raise ValueError("larger than 1 MiB")
            recorded = json.loads(manifest.read_text(encoding="utf-8"))["depends_on"][
                self.config_file.name]
        except FileNotFoundError:
            raise RunError(f"{latest} is not a complete checkpoint (no manifest.json)") \
                from None
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise RunError(f"{manifest} is damaged ({e!r:.60})") from None
        if sha256_file(self.config_file) != recorded:
            raise RunError(f"{self.config_file} is not the file {latest} was written with (it "
                           "was edited, or the checkpoint comes from another run)")

    # -- writing ------------------------------------------------------------------------
    def lock(self) -> None:
        """Take the run's exclusive lock, or refuse: another process is writing it."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunError(f"{self.path} is being written by {holder}; wait for it to finish "
                           "or choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()}".encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def start(self, config: dict, resume: bool, overwrite: bool,
              may_change: frozenset[str] = frozenset(),
              data: Mapping[str, tuple[str, str]] | None = None,
              continuable: bool = True) -> Path | None:
        """Prepare the directory for training and take its lock.

        New run: the directory must be absent or empty (``overwrite`` first empties a run
        directory this application made, and nothing else; ``--out`` may be a symbolic link
        to one: the link stays, the directory it points to is emptied, and links inside the
        run are removed, never followed).  ``resume``: the saved settings must equal
        ``config`` except for ``may_change``, and ``data`` (``{setting: (what to name,
        SHA-256)}``, recorded as ``data_sha256``) must match: the settings naming the data
        may then differ (the same content at another path).  Returns the newest checkpoint
        (``None``: start at step 0, also on ``resume`` of a run stopped before its first).
        ``continuable``: the command offers ``--resume`` / ``--overwrite`` (the messages name
        them only then).
        """
        if resume and overwrite:
            raise RunError("--resume and --overwrite exclude each other")
        _checked_dir(self.path)
        data = dict(data or {})
        config = dict(config, data_sha256={k: d for k, (_, d) in sorted(data.items())})
        if overwrite and self.path.exists():
            made_by = self._made_by()
            if made_by != self.app:
                what = f"a {made_by} run" if made_by else "not a directory rnnkit made"
                raise RunError(f"--overwrite: {self.path} is {what}; nothing was deleted")
            self.lock()  # never delete a run another process is writing
            try:
                self._empty()
            except BaseException:
                self.unlock()
                raise
        else:
            self.lock()
        try:
            return self._prepare(config, resume, may_change | set(data), data, continuable)
        except BaseException:
            self.unlock()
            raise

    def _empty(self) -> None:
        """Delete what the run directory holds (its lock aside), the directory itself kept:
        links are removed, never followed, so nothing outside the run is touched."""
        for entry in sorted(self.path.iterdir(), key=lambda p: p.name == MARKER):
            if entry.name == ".lock":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def _prepare(self, config: dict, resume: bool, may_change: frozenset[str],
                 data: Mapping[str, tuple[str, str]], continuable: bool) -> Path | None:
        existing = [p.name for p in self.path.iterdir() if p.name != ".lock"]
        config = dict(config, app=self.app)
        if resume:
            saved = self.read_config()
            self._check_data(saved, config, data)
            changed = sorted(k for k in set(saved) | set(config)
                             if k not in may_change and k != "data_sha256"
                             and saved.get(k) != config.get(k))
            if changed:  # vocabularies are named, not printed
                parts = [f"{k} differ" if k.endswith("vocab")
                         else f"{k}: {saved.get(k)!r} -> {config.get(k)!r}" for k in changed]
                raise RunError("--resume: the run was made with different settings: "
                               + "; ".join(parts))
            return latest_checkpoint(self.checkpoints)
        if existing:
            if not continuable:
                raise RunError(f"{self.path} is not empty; choose another --out")
            if latest_checkpoint(self.checkpoints) is not None:
                raise RunError(f"{self.path} already holds checkpoints; pass --resume to "
                               "continue it, --overwrite to replace it, or choose another --out")
            if MARKER in existing or "config.json" in existing:
                raise RunError(f"{self.path} holds a run stopped before its first checkpoint; "
                               "pass --resume to continue it or --overwrite to replace it")
            raise RunError(f"{self.path} is not empty; choose another --out (or --overwrite "
                           "a run directory rnnkit made)")
        try:  # config.json first: a run interrupted in between is resumable
            write_json_atomic(self.config_file, config)
            write_json_atomic(self.path / MARKER, {"app": self.app})
        except BaseException:
            for name in (MARKER, "config.json"):
                (self.path / name).unlink(missing_ok=True)
            raise
        return None

    def _check_data(self, saved: dict, config: dict,
                    data: Mapping[str, tuple[str, str]]) -> None:
        recorded = saved.get("data_sha256")
        if not isinstance(recorded, dict):
            raise RunError(f"--resume: {self.config_file} records no digest of the data the "
                           "run trained on (an older rnnkit made it), so a resume cannot be "
                           "checked; start a new run")
        for key in sorted(set(recorded) | set(data)):
            if recorded.get(key) != config["data_sha256"].get(key):
                what = data[key][0] if key in data else f"{key} {saved.get(key)!r}"
                raise RunError(f"--resume: {what} is not the data the run trained on (its "
                               f"SHA-256 differs from the one {self.config_file} records); "
                               "resume with that data, or start a new run")

    def interrupted(self, command: str) -> Interrupted:
        """The :class:`Interrupted` to raise for Ctrl-C outside the training loop."""
        step = self.latest_step() if self.checkpoints.is_dir() else None
        if self.config_file.is_file():
            kept = (f"checkpoint step {step} is kept" if step is not None
                    else "no checkpoint yet")
            return Interrupted(f"interrupted; {kept}; continue with: {command} --out "
                               f"{self.path} --resume (and the same settings)")
        return Interrupted("interrupted; nothing was written")

    # -- checkpoints --------------------------------------------------------------------
    def save(self, step: int, tensors: dict, meta: dict) -> Path:
        return save_checkpoint(self.checkpoints, step, tensors, meta,
                               depends_on=self.config_file)

    def latest_step(self) -> int | None:
        """The step of the newest checkpoint (``None``: none yet)."""
        latest = latest_checkpoint(self.checkpoints)
        return int(latest.name[5:]) if latest is not None else None

    def load(self, ckpt: Path | None = None) -> tuple[dict, dict, Path]:
        """``(tensors, meta, path)`` of ``ckpt`` (default: the newest), fully verified."""
        ckpt = ckpt or latest_checkpoint(self.checkpoints)
        if ckpt is None:
            raise RunError(f"{self.path} has no checkpoint yet")
        try:
            tensors, meta = load_checkpoint(ckpt, depends_on=self.config_file)
        except CheckpointError as e:
            raise RunError(str(e)) from None
        _check_meta(meta, ckpt)
        return tensors, meta, ckpt

    def check_shapes(self, tensors: Mapping[str, Any], ckpt: Path,
                     shapes: Mapping[str, tuple[tuple[int, ...] | None, str]]) -> None:
        """The settings agree with the (verified) checkpoint before a model is built from
        them: ``shapes`` maps tensor names to the shape the settings give (``None``: the
        tensor must be absent) and the setting that fixes it, named in the error."""
        check_shapes(tensors, shapes, str(self.config_file), str(ckpt), "the checkpoint")


def _check_meta(meta: dict, ckpt: Path) -> None:
    step = meta.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise RunError(f"{ckpt / 'meta.json'}: step must be a non-negative int, received "
                       f"{step!r}")
    history = meta.get("history", [])
    if not isinstance(history, list) or len(history) != step or not all(
            isinstance(v, (int, float)) for v in history):
        raise RunError(f"{ckpt / 'meta.json'}: history must hold one loss per step "
                       f"({step}), received {type(history).__name__} of "
                       f"{len(history) if isinstance(history, list) else '?'}")
