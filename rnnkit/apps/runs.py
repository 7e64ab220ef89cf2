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
the application lists as not changing the training trajectory (``may_change``).
Errors are :class:`RunError` (a ``ValueError``): the CLI prints them as one line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rnnkit.apps.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    write_json_atomic,
)

__all__ = ["Run", "RunError", "StopRequest", "stop_on_interrupt"]

MARKER = ".rnnkit-run"


class RunError(ValueError):
    """A run directory cannot be used as asked (the message says why and what to do)."""


def _checked_dir(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise RunError(f"{path} exists and is not a directory; choose another --out")
    return path


class Run:
    """One application's run directory (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, app: str):
        self.path = Path(path)
        self.app = app
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

    def read_config(self) -> dict:
        """The saved settings; a missing or damaged file is an error naming it."""
        if not self.config_file.is_file():
            raise RunError(f"{self.path} is not a {self.app} run (no config.json)")
        try:
            cfg = json.loads(self.config_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunError(f"{self.config_file} is not valid JSON ({e})") from e
        if not isinstance(cfg, dict):
            raise RunError(f"{self.config_file} does not hold a settings object")
        made_by = self._made_by() or cfg.get("app")
        if made_by is not None and made_by != self.app:
            raise RunError(f"{self.path} is a {made_by} run, not a {self.app} run")
        return cfg

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
              may_change: frozenset[str] = frozenset()) -> Path | None:
        """Prepare the directory for training and take its lock.

        New run: the directory must be absent or empty (``overwrite`` first removes a run
        directory this application made, and nothing else).  ``resume``: the saved settings
        must equal ``config`` except for ``may_change``; returns the newest checkpoint.
        """
        if resume and overwrite:
            raise RunError("--resume and --overwrite exclude each other")
        _checked_dir(self.path)
        if overwrite and self.path.exists():
            made_by = self._made_by()
            if made_by != self.app:
                what = f"a {made_by} run" if made_by else "not a directory rnnkit made"
                raise RunError(f"--overwrite: {self.path} is {what}; nothing was deleted")
            self.lock()  # never delete a run another process is writing
            self.unlock()
            shutil.rmtree(self.path)
        self.lock()
        try:
            return self._prepare(config, resume, may_change)
        except BaseException:
            self.unlock()
            raise

    def _prepare(self, config: dict, resume: bool, may_change: frozenset[str]) -> Path | None:
        existing = [p.name for p in self.path.iterdir() if p.name != ".lock"]
        config = dict(config, app=self.app)
        if resume:
            saved = self.read_config()
            changed = sorted(k for k in set(saved) | set(config)
                             if k not in may_change and saved.get(k) != config.get(k))
            if changed:  # vocabularies are named, not printed
                parts = [f"{k} differ" if k.endswith("vocab")
                         else f"{k}: {saved.get(k)!r} -> {config.get(k)!r}" for k in changed]
                raise RunError("--resume: the run was made with different settings: "
                               + "; ".join(parts))
            latest = latest_checkpoint(self.checkpoints)
            if latest is None:
                raise RunError(f"--resume: {self.checkpoints} holds no checkpoint")
            return latest
        if existing:
            if latest_checkpoint(self.checkpoints) is not None:
                raise RunError(f"{self.path} already holds checkpoints; pass --resume to "
                               "continue it, --overwrite to replace it, or choose another --out")
            raise RunError(f"{self.path} is not empty; choose another --out (or --overwrite "
                           "a run directory rnnkit made)")
        write_json_atomic(self.path / MARKER, {"app": self.app})
        write_json_atomic(self.config_file, config)
        return None

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


class StopRequest:
    """Set by the first Ctrl-C inside :func:`stop_on_interrupt`; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def stop_on_interrupt() -> Iterator[StopRequest]:
    """Turn the first SIGINT into a request the training loop honours at a step boundary
    (it then writes a checkpoint); the second SIGINT interrupts at once."""
    stop = StopRequest()
    try:
        previous = signal.getsignal(signal.SIGINT)
    except ValueError:  # not the main thread: nothing to install
        yield stop
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.requested:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        stop.requested = True

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:
        yield stop
        return
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
