"""Checkpoints: safetensors tensors + a JSON document, committed atomically.

A checkpoint is a directory ``<root>/step-00001234/`` holding ``state.safetensors``,
``meta.json`` and ``manifest.json``.  It is written under a temporary name and renamed into
place, so a crash leaves either the previous checkpoints or a complete new one (temporary
directories are ignored and cleaned up).  The manifest records the SHA-256 of every file
of the checkpoint and of the run configuration it belongs to (``depends_on``); loading
verifies all of them and the step, so a truncated or edited file, or a step directory
copied from another run, is refused with the file named.  No pickle is ever loaded.
A write that fails (a full disk: safetensors' own error becomes the ``OSError`` it wraps)
or is interrupted removes its temporary files and leaves every committed file as it was.
Needs the ``safetensors`` package (``pip install 'rnnkit[apps]'``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "CheckpointError",
    "export_state_dict",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "module_from_tensors",
    "module_to_tensors",
    "optimizer_from_tensors",
    "optimizer_to_tensors",
    "params_digest",
    "save_checkpoint",
    "sha256_file",
    "write_json_atomic",
    "write_text_atomic",
]

_STEP_DIR = re.compile(r"^step-(\d{8})$")


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete, corrupt or does not fit the model."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: str | os.PathLike, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        _name(e, path)
    _fsync_dir(path.parent)


def _name(e: BaseException, path: Path):
    """Re-raise ``e``; an ``OSError`` that names no file (``fsync``) names ``path``."""
    if isinstance(e, OSError) and e.filename is None and e.errno is not None:
        raise OSError(e.errno, e.strerror, str(path)) from e
    raise e


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and an atomic rename (on failure or
    Ctrl-C the temporary file is removed and ``path`` is as it was)."""
    _write_atomic(path, lambda f: json.dump(data, f, indent=2, sort_keys=True))


def write_text_atomic(path: str | os.PathLike, content: str) -> None:
    """Write UTF-8 ``content`` to ``path`` as :func:`write_json_atomic` does."""
    _write_atomic(path, lambda f: f.write(content))


def _save_file(tensors: dict, filename: Path, metadata: dict | None = None) -> None:
    """safetensors' ``save_file``, its I/O failures as the ``OSError`` they are (safetensors
    raises its own ``SafetensorError`` carrying ``os error N``)."""
    from safetensors.torch import save_file

    try:
        save_file(tensors, str(filename), metadata=metadata)
    except OSError:
        raise
    except Exception as e:  # SafetensorError is no OSError
        found = re.search(r"os error (\d+)", str(e))
        if found is None:
            raise
        code = int(found.group(1))
        raise OSError(code, os.strerror(code), str(filename)) from None


def export_state_dict(module: nn.Module, config: dict, out: str | os.PathLike,
                      overwrite: bool = False) -> Path:
    """Write ``module``'s ``state_dict`` alone as one safetensors file, ``config`` as JSON
    metadata under ``"rnnkit_config"``: through a temporary file and an atomic rename, so an
    interrupted or failed export (a full disk) leaves no file (and any previous one intact).
    An existing ``out`` is refused unless ``overwrite``; ``out`` must end in
    ``.safetensors``; the file gets the mode the user's umask gives new files."""
    from rnnkit.apps.interrupts import pause_point

    out = Path(out)
    if out.is_dir():
        raise CheckpointError(f"{out} is a directory; name the .safetensors file to write")
    if out.suffix != ".safetensors":
        raise CheckpointError(f"{out}: an export is a safetensors file; name it "
                              f"{out.with_suffix('.safetensors').name}")
    if out.exists() and not overwrite:
        raise CheckpointError(f"{out} exists; choose another path or pass --overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        _save_file({k: v.detach().contiguous() for k, v in module.state_dict().items()},
                   tmp, metadata={"rnnkit_config": json.dumps(config)})
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        pause_point("export")
        os.replace(tmp, out)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        _name(e, out)
    _fsync_dir(out.parent)
    return out


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes (hex)."""
    return _sha256(Path(path))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


FORMAT = "rnnkit-checkpoint-2"


def save_checkpoint(root: str | os.PathLike, step: int, tensors: dict[str, torch.Tensor],
                    meta: dict[str, Any], keep: int = 2,
                    depends_on: str | os.PathLike | None = None) -> Path:
    """Write checkpoint ``step`` under ``root`` and keep only the newest ``keep``.

    ``depends_on``: a file (the run's ``config.json``) whose SHA-256 the manifest records;
    :func:`load_checkpoint` refuses the checkpoint if that file changed.
    """
    from rnnkit.apps.interrupts import pause_point

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        _write_checkpoint(tmp, step, tensors, meta, depends_on)
        pause_point("checkpoint")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException as e:  # a full disk or Ctrl-C: the committed checkpoints stay
        shutil.rmtree(tmp, ignore_errors=True)
        _name(e, final)
    _fsync_dir(root)
    for old in _step_dirs(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".tmp-step-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return final


def _write_checkpoint(tmp: Path, step: int, tensors: dict[str, torch.Tensor],
                      meta: dict[str, Any], depends_on: str | os.PathLike | None) -> None:
    tmp.mkdir()
    tensor_file = tmp / "state.safetensors"
    _save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tensor_file)
    with open(tensor_file, "rb+") as f:
        os.fsync(f.fileno())
    doc = dict(meta, step=step)
    with open(tmp / "meta.json", "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    manifest = {"format": FORMAT, "step": step,
                "files": {name: _sha256(tmp / name) for name in ("state.safetensors",
                                                                 "meta.json")}}
    if depends_on is not None:
        dep = Path(depends_on)
        manifest["depends_on"] = {dep.name: _sha256(dep)}
    with open(tmp / "manifest.json", "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(tmp)


def _step_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and _STEP_DIR.match(p.name))


def list_checkpoints(root: str | os.PathLike) -> list[Path]:
    """The committed checkpoint directories under ``root``, oldest first."""
    return _step_dirs(Path(root))


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    """The newest committed checkpoint directory under ``root`` (or ``None``)."""
    dirs = _step_dirs(Path(root))
    return dirs[-1] if dirs else None


def load_checkpoint(path: str | os.PathLike, depends_on: str | os.PathLike | None = None
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(tensors, meta)`` of a checkpoint directory, after verifying its integrity.

    Every file listed in ``manifest.json`` must match its SHA-256, the step must match the
    directory's name, and ``depends_on`` (the run's ``config.json``) must be the file the
    checkpoint was written with.  Any mismatch raises :class:`CheckpointError` naming the file.
    """
    from safetensors.torch import load_file

    path = Path(path)
    manifest_file = path / "manifest.json"
    if not manifest_file.is_file():
        raise CheckpointError(f"{path} is not a complete checkpoint (no manifest.json)")
    manifest = _read_json(manifest_file)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{manifest_file}: unknown checkpoint format "
                              f"{manifest.get('format') if isinstance(manifest, dict) else None!r}")
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != {"state.safetensors", "meta.json"}:
        raise CheckpointError(f"{manifest_file}: the file list is damaged")
    for name, digest in sorted(files.items()):
        _verify(path / name, digest, path)
    match = _STEP_DIR.match(path.name)
    step = manifest.get("step")
    if match and step != int(match.group(1)):
        raise CheckpointError(f"{manifest_file}: step {step!r} does not match the directory "
                              f"name {path.name}")
    if depends_on is not None:
        dep = Path(depends_on)
        recorded = (manifest.get("depends_on") or {}).get(dep.name)
        if recorded is None or _sha256(dep) != recorded:
            raise CheckpointError(
                f"{dep} is not the file {path} was written with (it was edited, or the "
                "checkpoint comes from another run)")
    meta = _read_json(path / "meta.json")
    if not isinstance(meta, dict) or meta.get("step") != step:
        raise CheckpointError(f"{path / 'meta.json'}: step does not match the manifest")
    try:
        tensors = load_file(str(path / "state.safetensors"))
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{path / 'state.safetensors'} cannot be read: {e}") from e
    return tensors, meta


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from e
    except OSError as e:
        raise CheckpointError(f"{path} cannot be read: {e.strerror}") from e


def _verify(file: Path, digest: str, ckpt: Path) -> None:
    if not file.is_file():
        raise CheckpointError(f"{ckpt} is not a complete checkpoint ({file.name} is missing)")
    found = _sha256(file)
    if found != digest:
        raise CheckpointError(
            f"{file} does not match the SHA-256 recorded in manifest.json (truncated or "
            f"modified): expected {digest}, found {found}. Delete {ckpt} to fall back to an "
            "older checkpoint.")


def optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into tensors (for safetensors) and JSON."""
    sd = opt.state_dict()
    tensors, json_state = {}, {}
    for pid, st in sd["state"].items():
        json_state[str(pid)] = {}
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optimizer.{pid}.{k}"] = v
            else:
                json_state[str(pid)][k] = v
    return tensors, {"state": json_state, "param_groups": sd["param_groups"]}


def optimizer_from_tensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                           doc: Any) -> None:
    """Inverse of :func:`optimizer_to_tensors`."""
    if (not isinstance(doc, dict) or not isinstance(doc.get("state"), dict)
            or not isinstance(doc.get("param_groups"), list)):
        raise CheckpointError("the checkpoint's optimizer record is missing or damaged")
    state: dict[int, dict] = {}
    for pid, extra in doc["state"].items():
        state[int(pid)] = dict(extra)
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    try:
        opt.load_state_dict({"state": state, "param_groups": doc["param_groups"]})
    except (ValueError, KeyError) as e:
        raise CheckpointError(f"optimizer state does not fit the model: {e}") from e


def params_digest(module: nn.Module) -> str:
    """SHA-256 of a module's state (names and values, in name order): equal on every process
    of a ``torchrun`` run, which each prints."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def module_to_tensors(module: nn.Module, prefix: str = "model.") -> dict[str, torch.Tensor]:
    """``module``'s state dict with ``prefix`` on every key, ready for :func:`save_checkpoint`."""
    return {f"{prefix}{k}": v for k, v in module.state_dict().items()}


def module_from_tensors(module: nn.Module, tensors: dict[str, torch.Tensor], where: str,
                        prefix: str = "model.") -> None:
    """Load the ``prefix``-ed entries of ``tensors`` into ``module``; a missing, unexpected or
    wrongly shaped entry raises :class:`CheckpointError` naming ``where`` and the key."""
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{where} does not fit the model: missing {missing}, "
                              f"unexpected {extra}")
    for k, v in state.items():
        if v.shape != expected[k].shape:
            raise CheckpointError(f"{where}: {k} has shape {tuple(v.shape)}, the model "
                                  f"expects {tuple(expected[k].shape)}")
    module.load_state_dict(state)
