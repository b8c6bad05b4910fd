"""How well the ``--uncertainty`` layer (the spread of the x8 ensemble) predicts the actual error.

For every HR image of a folder: LR made by Pillow bicubic (as ``fatsr evaluate``), SR = the
``--tta`` output (8-bit, as ``fatsr upscale --uncertainty`` writes it) and its spread (as the
sidecar holds it, in 0..1 units, averaged over the bands), both from one set of the 8 outputs
(``--two-pass``: through ``Upscaler.picture`` and ``Upscaler.spread``, 16 forward passes, as
the command runs them; the same numbers, the LR being one tile), the error |SR - HR| in 0..1 units
averaged over the three bands, ``scale`` pixels cropped from every side (as ``fatsr evaluate``).
Prints per model the Pearson and Spearman correlations of spread and error

* per pixel, over the pixels of all images pooled, and the mean over images of the per-image
  Pearson correlation (which leaves out how the images differ from one another);
* per tile: the mean spread against the mean error of each 32x32 block of the cropped HR.

    python benchmarks/eval_uncertainty.py ../shared/data/ucmerced/val --models fatsr-x4 fatsr-real-x4
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

from fatsr.data.resize import pillow_bicubic_downscale
from fatsr.inference.pipeline import Upscaler
from fatsr.io import read_image
from fatsr.models.ensemble import SYMMETRIES, SelfEnsemble, _backward, _forward


def one_pass(job: Upscaler, lr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(8-bit SR, spread) of an LR image that fits one tile, from one set of the 8 outputs,
    computed as :class:`SelfEnsemble` computes its mean and its spread."""
    assert isinstance(job.model, SelfEnsemble) and max(lr.shape[:2]) <= job.tiling.tile
    x = torch.from_numpy(np.ascontiguousarray(lr.transpose(2, 0, 1), dtype=np.float32) / np.float32(255))[None]
    with torch.inference_mode():
        outputs = [_backward(job.model.model(_forward(x, k, flip)), k, flip) for k, flip in SYMMETRIES]
        total = outputs[0]
        for y in outputs[1:]:
            total = total + y
        mean = (total / len(outputs))[0].float().numpy().transpose(1, 2, 0)
        spread = torch.stack(outputs).std(dim=0, unbiased=False).mean(dim=1)[0].float().numpy()
    return np.rint(np.clip(mean, 0.0, 1.0) * 255).astype(np.uint8), spread


def blocks(a: np.ndarray, size: int) -> np.ndarray:
    """Means of the whole ``size`` x ``size`` blocks of a 2-D array (the remainder left out)."""
    h, w = a.shape[0] // size * size, a.shape[1] // size * size
    return a[:h, :w].reshape(h // size, size, w // size, size).mean(axis=(1, 3)).ravel()


def measure(model: str, files: list[Path], scale: int, tile: int, two_pass: bool) -> dict[str, float]:
    job = Upscaler.prepare(model, uncertainty=True)
    spreads, errors, tile_spreads, tile_errors, per_image = [], [], [], [], []
    start = time.perf_counter()
    for path in files:
        hr = read_image(path)[:, :, :3]
        h, w = hr.shape[0] // scale * scale, hr.shape[1] // scale * scale
        hr = hr[:h, :w]
        lr = pillow_bicubic_downscale(hr, scale)
        sr, spread = (job.picture(lr), job.spread(lr)) if two_pass else one_pass(job, lr)
        crop = (slice(scale, h - scale), slice(scale, w - scale))
        error = np.abs(sr.astype(np.float64) - hr.astype(np.float64)).mean(axis=2)[crop] / 255.0
        spread = spread[crop].astype(np.float64)
        spreads.append(spread.ravel())
        errors.append(error.ravel())
        per_image.append(pearsonr(spread.ravel(), error.ravel())[0])
        tile_spreads.append(blocks(spread, tile))
        tile_errors.append(blocks(error, tile))
    seconds = time.perf_counter() - start
    s, e = np.concatenate(spreads), np.concatenate(errors)
    ts, te = np.concatenate(tile_spreads), np.concatenate(tile_errors)
    return {
        "pixels": s.size, "tiles": ts.size, "seconds": seconds,
        "pixel_pearson": pearsonr(s, e)[0], "pixel_spearman": spearmanr(s, e)[0],
        "image_pearson": float(np.mean(per_image)),
        "tile_pearson": pearsonr(ts, te)[0], "tile_spearman": spearmanr(ts, te)[0],
        "mean_spread": float(s.mean()), "mean_error": float(e.mean()),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("hr", type=Path, help="folder of HR images")
    parser.add_argument("--models", nargs="+", default=["fatsr-x4", "fatsr-real-x4"])
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--tile", type=int, default=32, help="block side in HR pixels")
    parser.add_argument("--two-pass", action="store_true", help="SR and spread as the command computes them")
    parser.add_argument("--limit", type=int, default=0, help="first N images only (0: all)")
    args = parser.parse_args()
    files = sorted(p for p in args.hr.iterdir() if p.suffix.lower() in (".png", ".tif", ".tiff", ".jpg"))
    files = files[: args.limit] if args.limit else files
    print(f"{args.hr}: {len(files)} images, x{args.scale}, LR by Pillow bicubic; error = |SR - HR| (0..1, mean "
          f"over bands), border {args.scale} cropped; tiles {args.tile}x{args.tile} HR pixels")  # fmt: skip
    print("| model | pixel Pearson | pixel Spearman | per-image pixel Pearson (mean) | tile Pearson | tile Spearman "
          "| mean spread | mean error | seconds |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for model in args.models:
        r = measure(model, files, args.scale, args.tile, args.two_pass)
        print(f"| `{model}` | {r['pixel_pearson']:.3f} | {r['pixel_spearman']:.3f} | {r['image_pearson']:.3f} "
              f"| {r['tile_pearson']:.3f} | {r['tile_spearman']:.3f} | {r['mean_spread']:.4f} | {r['mean_error']:.4f} "
              f"| {r['seconds']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
