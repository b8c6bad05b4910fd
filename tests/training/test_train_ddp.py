"""Two CPU processes (torchrun, gloo) train like one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from fatsr.cli import main
from fatsr.models.fat import FAT


@pytest.mark.parametrize("degradation", [[], ["--degradation", "fat"]], ids=["pairs", "degradation"])
def test_two_gloo_processes_match_one_process(tmp_path, make_flags, capsys, degradation):
    steps = [
        *degradation,
        "--batch-size",
        "4",
        "--steps",
        "4",
        "--val-every",
        "100",
        "--ema-decay",
        "0.5",
        "--lr",
        "1e-4",
        "--log-every",
        "1",
    ]
    single = tmp_path / "single"
    assert main(["train", *make_flags(single), *steps]) == 0
    capsys.readouterr()

    ddp = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "fatsr", "train", *make_flags(ddp), *steps]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("training FAT") == 1  # rank 0 alone logs
    assert "x2 processes" in done.stdout

    a = torch.load(single / "last.pt", weights_only=True)
    b = torch.load(ddp / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 4
    for weights_a, weights_b in ((a["model"], b["model"]), (a["ema"]["weights"], b["ema"]["weights"])):
        for key, value in weights_a.items():
            torch.testing.assert_close(weights_b[key], value, atol=1e-5, rtol=0, msg=key)
    losses = [[r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
               if r["kind"] == "train"] for run in (single, ddp)]  # fmt: skip
    assert len(losses[0]) == 4 and losses[1] == pytest.approx(losses[0], rel=1e-5)  # averaged over processes
    torch.manual_seed(0)  # the run's seed: the initial weights
    start = FAT(**yaml.safe_load((single / "config.yaml").read_text())["network"], scale=2).state_dict()
    assert max((a["model"][k] - start[k]).abs().max() for k in start) > 2e-4  # 20x the tolerance
    assert sorted(p.name for p in single.iterdir()) == sorted(p.name for p in ddp.iterdir())
