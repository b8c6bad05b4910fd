"""``fatsr evaluate`` end to end: numbers against scikit-image, model runs, outputs, user errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from fatsr.cli import main
from fatsr.models.fat import FAT
from fatsr.models.files import save_model

VAL = Path(__file__).resolve().parents[1] / "fixtures" / "ucmerced" / "val"
NAMES = ["harbor55", "forest05", "denseresidential05"]


def y_of(img: np.ndarray) -> np.ndarray:
    r, g, b = (img[:, :, i].astype(np.float64) / 255 for i in range(3))
    return 16 + 65.481 * r + 128.553 * g + 24.966 * b


def sk_ssim(a: np.ndarray, b: np.ndarray, channel_axis: int | None = None) -> float:
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, channel_axis=channel_axis)  # fmt: skip


@pytest.fixture
def sr_folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    """HR crops (96x96) of real images, their PIL bicubic x4 LR and down-and-up SR (named <stem>_x4)."""
    hr_dir, lr_dir, sr_dir = (tmp_path / d for d in ("hr", "lr", "sr"))
    for d in (hr_dir, lr_dir, sr_dir):
        d.mkdir()
    for name in NAMES:
        with Image.open(VAL / f"{name}.png") as im:
            hr = im.convert("RGB").crop((40, 40, 136, 136))
        lr = hr.resize((24, 24), Image.BICUBIC)
        hr.save(hr_dir / f"{name}.png")
        lr.save(lr_dir / f"{name}.png")
        lr.resize((96, 96), Image.BICUBIC).save(sr_dir / f"{name}_x4.png")
    return hr_dir, lr_dir, sr_dir


def read_csv(path: Path) -> dict[str, dict[str, float]]:
    with path.open() as f:
        return {row.pop("name"): {k: float(v) for k, v in row.items()} for row in csv.DictReader(f)}


def test_scores_match_scikit_image(sr_folders, tmp_path, capsys):
    hr_dir, lr_dir, sr_dir = sr_folders
    out = tmp_path / "out"
    assert main(["evaluate", str(hr_dir), "--sr", str(sr_dir), "--lr", str(lr_dir), "-o", str(out), "--crops"]) == 0
    rows = read_csv(out / "metrics.csv")
    assert sorted(rows) == sorted(NAMES)
    for name, row in rows.items():
        hr = np.asarray(Image.open(hr_dir / f"{name}.png"))[4:-4, 4:-4]  # border = scale, read from --lr
        sr = np.asarray(Image.open(sr_dir / f"{name}_x4.png"))[4:-4, 4:-4]
        assert row["psnr_y"] == pytest.approx(peak_signal_noise_ratio(y_of(hr), y_of(sr), data_range=255), abs=1e-3)
        assert row["ssim_y"] == pytest.approx(sk_ssim(y_of(sr), y_of(hr)), abs=1e-4)
        rgb_psnr = peak_signal_noise_ratio(hr.astype(float), sr.astype(float), data_range=255)
        assert row["psnr_rgb"] == pytest.approx(rgb_psnr, abs=1e-3)
        assert row["ssim_rgb"] == pytest.approx(sk_ssim(sr.astype(float), hr.astype(float), channel_axis=2), abs=1e-4)
        assert row["psnr_low"] > row["psnr_mid"] > row["psnr_high"]  # bicubic fails on texture
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 3 and summary["settings"]["scale"] == 4
    assert summary["mean"]["psnr_y"] == pytest.approx(np.mean([r["psnr_y"] for r in rows.values()]), abs=1e-4)
    worst = min(rows, key=lambda n: rows[n]["psnr_y"])
    assert summary["worst"] == worst
    with Image.open(out / "crops.png") as im:
        assert im.format == "PNG" and im.width > 300
    table = capsys.readouterr().out
    assert "PSNR-Y" in table and "mean" in table and worst in table


def test_model_runs(tmp_path, sr_folders, capsys):
    hr_dir = sr_folders[0]
    torch.manual_seed(0)
    save_model(
        tmp_path / "tiny.safetensors", FAT(dim=16, num_blocks=1, num_layers=1, num_heads=2, scale=2), name="tiny"
    )
    out = tmp_path / "out"
    assert (
        main(
            ["evaluate", str(hr_dir), "--model", str(tmp_path / "tiny.safetensors"), "-o", str(out), "--device", "cpu"]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["scale"] == 2 and summary["settings"]["source"] == "model tiny"
    assert all(np.isfinite(v) for v in summary["mean"].values())
    # bicubic from the HR-synthesised LR is well-defined and beats a random network
    assert main(["evaluate", str(hr_dir), "--model", "bicubic", "--scale", "2", "-o", str(out), "--overwrite"]) == 0
    bicubic = json.loads((out / "summary.json").read_text())
    assert bicubic["mean"]["psnr_y"] > summary["mean"]["psnr_y"]
    assert bicubic["mean"]["lr_psnr"] > 30  # downscaling the output gives the input back


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sr", "{sr}", "--crops"], "--crops needs an output folder"),
        (["--sr", "{sr}"], "give --scale"),
        (
            ["--model", "bicubic", "--lpips", "alex", "--lpips-weights", "{tmp}"],
            "alexnet-owt-7be5be79.pth and alex.pth",
        ),
        (["--sr", "{tmp}"], "no images in this folder"),
        (["--model", "bicubic", "--scale", "4", "--lr", "{hr}"], "is not the HR"),
    ],
)
def test_user_errors(sr_folders, tmp_path, capsys, extra, message):
    hr_dir, _, sr_dir = sr_folders
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [a.format(sr=sr_dir, tmp=empty, hr=hr_dir) for a in extra]
    assert main(["evaluate", str(hr_dir), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_refuses_to_overwrite(sr_folders, tmp_path, capsys):
    hr_dir, _, sr_dir = sr_folders
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("keep")
    assert main(["evaluate", str(hr_dir), "--sr", str(sr_dir), "--scale", "4", "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "summary.json").read_text() == "keep" and not (out / "metrics.csv").exists()
