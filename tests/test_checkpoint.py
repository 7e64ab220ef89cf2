"""Atomic, verified checkpoints."""

import json

import pytest
import torch

from rnnkit.apps.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    optimizer_from_tensors,
    optimizer_to_tensors,
    save_checkpoint,
)


def test_roundtrip_keep_and_ignore_temporaries(tmp_path):
    t = {"w": torch.randn(3, 4), "b": torch.arange(5)}
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, step, t, {"note": step}, keep=2)
    (tmp_path / ".tmp-step-00000040-999").mkdir()  # a crash mid-write
    latest = latest_checkpoint(tmp_path)
    assert latest.name == "step-00000030"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "step-00000020", "step-00000030"]
    tensors, meta = load_checkpoint(latest)
    assert meta["note"] == 30 and meta["step"] == 30
    torch.testing.assert_close(tensors["w"], t["w"])


def test_truncated_and_tampered_are_refused(tmp_path):
    path = save_checkpoint(tmp_path, 1, {"w": torch.randn(100)}, {})
    data = (path / "state.safetensors").read_bytes()
    (path / "state.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or modified"):
        load_checkpoint(path)
    path = save_checkpoint(tmp_path, 2, {"w": torch.randn(100)}, {})
    data = bytearray((path / "state.safetensors").read_bytes())
    data[-3] ^= 0xFF
    (path / "state.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(path)
    path = save_checkpoint(tmp_path, 3, {"w": torch.randn(100)}, {})
    (path / "meta.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="meta.json does not match the SHA-256"):
        load_checkpoint(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="manifest.json is not valid JSON"):
        load_checkpoint(path)
    (path / "meta.json").unlink()
    (path / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("edit", [
    lambda m: m.update(step=45),
    lambda m: m["optimizer"]["param_groups"][0].update(lr=0.5),
    lambda m: m.update(step=-1),
    lambda m: m.pop("optimizer"),
    lambda m: m.update(step="fifty"),
])
def test_every_edit_of_the_metadata_is_refused(tmp_path, edit):
    path = save_checkpoint(tmp_path, 50, {"w": torch.randn(3)},
                           {"optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]},
                            "history": [1.0] * 50})
    meta = json.loads((path / "meta.json").read_text())
    edit(meta)
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="meta.json does not match the SHA-256"):
        load_checkpoint(path)


def test_config_and_step_directories_are_bound(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text('{"hidden": 32}')
    path = save_checkpoint(tmp_path / "a", 10, {"w": torch.randn(3)}, {}, depends_on=cfg)
    load_checkpoint(path, depends_on=cfg)
    cfg.write_text('{"hidden": 33}')
    with pytest.raises(CheckpointError, match="config.json is not the file .* was written "
                                              "with"):
        load_checkpoint(path, depends_on=cfg)
    moved = tmp_path / "a" / "step-00000020"
    path.rename(moved)  # a step directory renamed or copied in from elsewhere
    with pytest.raises(CheckpointError, match="step 10 does not match the directory name "
                                              "step-00000020"):
        load_checkpoint(moved)


def test_optimizer_state_roundtrip(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors, doc = optimizer_to_tensors(opt)
    json.dumps(doc)  # JSON-able
    opt2 = torch.optim.Adam(model.parameters(), lr=0.01)
    optimizer_from_tensors(opt2, tensors, doc)
    for a, b in zip(opt.state.values(), opt2.state.values(), strict=True):
        torch.testing.assert_close(a["exp_avg"], b["exp_avg"])
