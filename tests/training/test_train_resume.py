"""Exact resume: a run stopped by a signal and resumed equals an uninterrupted run bit for bit."""

from __future__ import annotations

import dataclasses
import json
import os
import signal

import pytest
import torch

from fatsr.cli import main
from fatsr.data import TrainDataset
from fatsr.training import train


def _tensors(obj, prefix=""):
    """Every tensor inside nested dicts/lists, by path."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _tensors(v, f"{prefix}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}/{i}")


def _train_losses(run):
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"], r["l1"], r["lev"]) for r in records if r["kind"] == "train"]


def test_interrupted_and_resumed_run_equals_straight_run(tmp_path, make_config, monkeypatch):
    # cosine schedule with warm-up, clipping and EMA, 8 steps over 3 epochs (6 images, batch 2)
    config = make_config(
        tmp_path / "straight", steps=8, schedule="cosine", warmup_steps=2, grad_clip=0.5, ema_decay=0.9,
        save_every=100, val_every=4,
    )  # fmt: skip
    straight = train(config)
    assert straight.steps == 8

    original = TrainDataset.__getitem__
    calls = {"n": 0}

    def interrupting(self, index):  # Ctrl-C while loading the first sample of step 5
        calls["n"] += 1
        if calls["n"] == 9:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, index)

    monkeypatch.setattr(TrainDataset, "__getitem__", interrupting)
    stopped = dataclasses.replace(config, save_dir=str(tmp_path / "resumed"))
    with pytest.raises(KeyboardInterrupt):
        train(stopped)
    monkeypatch.setattr(TrainDataset, "__getitem__", original)
    saved = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert (saved["step"], saved["epoch"], saved["position"]) == (4, 1, 1)  # mid-epoch, before step 5
    assert not list((tmp_path / "resumed").glob(".*.part*"))  # no temporary leftovers

    resumed = train(dataclasses.replace(stopped, resume="auto"))
    assert resumed.steps == 8

    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    for part in ("model", "ema", "optimizer", "lsh_generator", "rng"):
        pairs = list(_tensors(a[part]))
        assert pairs, part
        other = dict(_tensors(b[part]))
        for name, tensor in pairs:
            assert torch.equal(tensor, other[name]), f"{part}{name} differs"
    assert a["scheduler"] == b["scheduler"] and a["rng"]["python"] == b["rng"]["python"]
    assert a["best_psnr"] == b["best_psnr"] and a["last_val_step"] == b["last_val_step"] == 8
    assert _train_losses(tmp_path / "straight") == _train_losses(tmp_path / "resumed")
    model_a = dict(_tensors(a["ema"]))
    assert any(not torch.equal(t, dict(_tensors(saved["ema"]))[n]) for n, t in model_a.items())  # it did train on


def test_cli_interrupt_exits_130_and_resume_auto_continues(tmp_path, make_flags, monkeypatch, capsys):
    run = tmp_path / "run"
    original = TrainDataset.__getitem__
    calls = {"n": 0}

    def interrupting(self, index):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, index)

    monkeypatch.setattr(TrainDataset, "__getitem__", interrupting)
    assert main(["train", *make_flags(run), "--steps", "4", "--val-every", "100"]) == 130
    err = capsys.readouterr()
    assert "SIGTERM: stopping at the end of this step" in err.out and "saved" in err.out
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 1
    monkeypatch.setattr(TrainDataset, "__getitem__", original)

    # the saved config is the base of a resumed run: no other flag is needed
    assert main(["train", "--save-dir", str(run), "--resume", "auto", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"resumed {run / 'last.pt'} at step 1" in out and "done: 4 steps" in out
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 4
