"""scripts/compare_table.py reads equal-CPU comparison runs: --at MINUTES takes each run's last
validation within that CPU budget."""

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from checks import script

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "configs" / "compare-x4.yaml"


def _script():
    return script("compare_table")


def _run(folder: Path) -> Path:
    folder.mkdir()
    (folder / "config.yaml").write_text("preset: rcnn\nbatch_size: 16\ncpu_budget_min: 120\n")
    save_file({"w": torch.zeros(3, 4), "b": torch.zeros(5)}, str(folder / "last.safetensors"))  # 17 parameters
    records = [{"kind": "bicubic", "psnr": 27.1, "ssim": 0.7}]
    records += [
        {"kind": "val", "step": s, "psnr": 27.0 + s / 1000, "ssim": 0.75, "cpu_time": 2.5 * s} for s in (100, 200, 300)
    ]
    (folder / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return folder


def test_at_reads_the_last_validation_within_the_budget(tmp_path, capsys):
    run = _run(tmp_path / "rcnn120")
    assert (
        _script().main([str(run), "--at", "10", "--recipe", str(RECIPE)]) == 0
    )  # 600 CPU-s: step 200 (500 s), not 300 (750 s)
    row = capsys.readouterr().out.splitlines()[2]
    assert (
        row
        == "| `rcnn120` | `--preset rcnn --batch-size 16 --cpu-budget-min 120` | 17 | 200 (500 CPU-s) | 27.200 | 0.7500 | +0.100 |"
    )
    assert _script().main([str(run), "--recipe", str(RECIPE)]) == 0
    assert "| 300 | 27.300 |" in capsys.readouterr().out.splitlines()[2]
