"""``fatsr evaluate`` reports bicubic beside every model, with the gain: the baseline and the
default LR are checked against Pillow's resize and scikit-image's PSNR computed here."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from fatsr.cli import main
from fatsr.models.fat import FAT
from fatsr.models.files import save_model

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "harbor55.png"


def y_of(img: np.ndarray) -> np.ndarray:
    r, g, b = (img[:, :, i].astype(np.float64) / 255 for i in range(3))
    return 16 + 65.481 * r + 128.553 * g + 24.966 * b


def psnr_y(a: np.ndarray, b: np.ndarray, border: int) -> float:
    crop = (slice(border, -border), slice(border, -border))
    return peak_signal_noise_ratio(y_of(a[crop]), y_of(b[crop]), data_range=255)


def read_csv(path: Path) -> dict[str, dict[str, float]]:
    with path.open() as f:
        return {row.pop("name"): {k: float(v) for k, v in row.items()} for row in csv.DictReader(f)}


@pytest.fixture
def hr_dir(tmp_path: Path) -> Path:
    """Two 96x96 crops of the example image."""
    folder = tmp_path / "hr"
    folder.mkdir()
    with Image.open(EXAMPLE) as im:
        rgb = im.convert("RGB")
        rgb.crop((0, 0, 96, 96)).save(folder / "a.png")
        rgb.crop((120, 100, 216, 196)).save(folder / "b.png")
    return folder


def pillow_baseline(hr: Image.Image, scale: int, lr: Image.Image | None = None) -> np.ndarray:
    lr = lr or hr.resize((hr.width // scale, hr.height // scale), Image.BICUBIC)
    return np.asarray(lr.resize(hr.size, Image.BICUBIC))


def test_model_beside_bicubic(hr_dir, tmp_path, capsys):
    torch.manual_seed(0)
    save_model(
        tmp_path / "tiny.safetensors", FAT(dim=16, num_blocks=1, num_layers=1, num_heads=2, scale=2), name="tiny"
    )
    out = tmp_path / "out"
    assert main(["evaluate", str(hr_dir), "--model", str(tmp_path / "tiny.safetensors"), "-o", str(out),
                 "--device", "cpu"]) == 0  # fmt: skip
    rows = read_csv(out / "metrics.csv")
    for name, row in rows.items():
        with Image.open(hr_dir / f"{name}.png") as hr:
            expected = psnr_y(pillow_baseline(hr, 2), np.asarray(hr), border=2)
        assert row["bicubic_psnr_y"] == pytest.approx(expected, abs=1e-3)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bicubic"]["psnr_y"] == pytest.approx(
        np.mean([r["bicubic_psnr_y"] for r in rows.values()]), abs=1e-4
    )
    for key in ("psnr_y", "ssim_y", "ergas"):
        assert summary["gain"][key] == pytest.approx(summary["mean"][key] - summary["bicubic"][key], abs=1e-9)
    assert "Pillow bicubic" in summary["settings"]["lr"]
    table = capsys.readouterr().out
    gain_line = next(line for line in table.splitlines() if line.startswith("gain "))
    assert f"{summary['gain']['psnr_y']:+.2f}" in gain_line
    assert "bicubic PSNR-Y" in table and "model tiny" in table
    # --model bicubic is the baseline itself: the same numbers, gain 0
    assert main(["evaluate", str(hr_dir), "--model", "bicubic", "--scale", "2", "-o", str(out), "--overwrite"]) == 0
    bicubic = json.loads((out / "summary.json").read_text())
    assert bicubic["mean"]["psnr_y"] == pytest.approx(summary["bicubic"]["psnr_y"], abs=1e-9)
    assert bicubic["gain"]["psnr_y"] == 0


def test_torch_downscale_and_given_lr(hr_dir, tmp_path):
    out = tmp_path / "out"
    assert (
        main(["evaluate", str(hr_dir), "--model", "bicubic", "--scale", "4", "--downscale", "torch", "-o", str(out)])
        == 0
    )
    rows = read_csv(out / "metrics.csv")
    with Image.open(hr_dir / "a.png") as hr:
        x = torch.from_numpy(np.asarray(hr).astype(np.float32) / 255).permute(2, 0, 1)[None]
        lr = F.interpolate(x, size=(24, 24), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
        lr_image = Image.fromarray((lr[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        expected = psnr_y(pillow_baseline(hr, 4, lr_image), np.asarray(hr), border=4)
        pillow_lr = psnr_y(pillow_baseline(hr, 4), np.asarray(hr), border=4)
    assert rows["a"]["psnr_y"] == pytest.approx(expected, abs=1e-3)
    assert abs(expected - pillow_lr) > 1e-3  # the two conventions give different figures
    assert "torch" in json.loads((out / "summary.json").read_text())["settings"]["lr"]
    # scoring files: the baseline comes from the given LR
    lr_dir, sr_dir = tmp_path / "lr", tmp_path / "sr"
    lr_dir.mkdir()
    sr_dir.mkdir()
    lr_image.save(lr_dir / "a.png")
    lr_image.resize((96, 96), Image.BICUBIC).save(sr_dir / "a.png")  # "SR" = the baseline itself
    assert main(["evaluate", str(hr_dir / "a.png"), "--sr", str(sr_dir / "a.png"), "--lr", str(lr_dir / "a.png"),
                 "-o", str(out), "--overwrite"]) == 0  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bicubic"]["psnr_y"] == pytest.approx(expected, abs=1e-3)
    assert summary["mean"]["psnr_y"] == pytest.approx(expected, abs=1e-3) and summary["gain"]["psnr_y"] == 0
