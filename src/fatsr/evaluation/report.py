"""``fatsr evaluate``'s whole report for Python callers as for the command: every image scored
beside bicubic (:func:`~fatsr.evaluation.evaluate.evaluate`), the summary and its table, and the
files ``metrics.csv``, ``summary.json``, ``crops.png`` and ``report.html`` (the compare page of
every image, worst gain first), written all or none."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from fatsr.errors import ArgumentError, FatsrError
from fatsr.evaluation.compare import Item, image_item, page_data, write_page
from fatsr.evaluation.evaluate import (
    DOWNSCALES,
    ImageResult,
    Masks,
    Pair,
    evaluate,
    format_table,
    pair_files,
    summarize,
    write_crops,
    write_csv,
    write_json,
)
from fatsr.evaluation.lpips import load_lpips
from fatsr.io import read_image
from fatsr.models.contract import Model


@dataclass
class EvaluationReport:
    """The scores of every image (``results``), the ``summary`` that ``summary.json`` holds
    and, with ``html``, the compare page's ``items``."""

    results: list[ImageResult]
    summary: dict
    items: list[Item] = field(default_factory=list)

    @property
    def heading(self) -> str:
        settings = self.summary["settings"]
        return (
            f"LR: {settings['lr']}; bicubic: Pillow bicubic upscale of the LR; "
            f"x{settings['scale']}, border {settings['border']}"
        )

    def table(self) -> str:
        """Every image's scores, the bicubic baseline's PSNR and the gain, and the means."""
        return format_table(self.results, self.summary)

    def write(self, files: dict[str, Path], *, overwrite: bool = False) -> None:
        """The report files of :func:`report_files` ("csv", "json", "crops", "html"): all of
        them or none."""
        written: list[Path] = []
        try:
            for key, path in files.items():
                self._write(key, path, overwrite)
                written.append(path)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise

    def _write(self, key: str, path: Path, overwrite: bool) -> None:
        if key == "csv":
            write_csv(path, self.results, overwrite=overwrite)
        elif key == "json":
            write_json(path, self.summary, overwrite=overwrite)
        elif key == "crops":
            write_crops(path, self.results, overwrite=overwrite)
        elif key == "html":
            settings = self.summary["settings"]
            title = f"fatsr evaluate: {settings['source']} on {settings['hr']}, x{settings['scale']}"
            notes = [f"Sorted by gain of PSNR-Y over bicubic, worst first. Scores: {settings['y']}, border {settings['border']}."]  # fmt: skip
            items = sorted(self.items, key=_gain)
            write_page(path, page_data(items, title=title, scale=settings["scale"], table=True, notes=notes),
                       overwrite=overwrite)  # fmt: skip


def report_files(
    folder: str | os.PathLike, *, crops: bool = False, html: bool = False, overwrite: bool = False
) -> dict[str, Path]:
    """The files a report writes into ``folder``; one that exists is refused unless ``overwrite``."""
    folder = Path(folder)
    files = {"csv": folder / "metrics.csv", "json": folder / "summary.json"}
    if crops:
        files["crops"] = folder / "crops.png"
    if html:
        files["html"] = folder / "report.html"
    for path in files.values():
        if path.exists() and not overwrite:
            raise ArgumentError(f"{path} exists; pass {{arg}} to replace it", "overwrite", True)
    return files


def evaluation_report(
    hr: str | os.PathLike,
    *,
    sr: str | os.PathLike | None = None,
    lr: str | os.PathLike | None = None,
    model: Model | None = None,
    scale: int | None = None,
    border: int | None = None,
    lpips: Sequence[str] = (),
    lpips_weights: str | os.PathLike | None = None,
    crop_size: int | None = None,
    html: bool = False,
    downscale: str = "pillow",
    value_range: tuple[float, float] | None = None,
    device: torch.device = torch.device("cpu"),
) -> EvaluationReport:
    """Score the SR images ``sr`` (or ``model`` run on the LR images) against the HR images
    ``hr``, matched by name (see :func:`~fatsr.evaluation.evaluate.pair_files` and
    :func:`~fatsr.evaluation.evaluate.evaluate`). ``scale``: the model's, else given, else
    from the LR files' size; ``border``: default the scale; ``lpips``: LPIPS backbones to add
    (weights from ``lpips_weights``); ``crop_size``: keep crops of the worst region of each
    image; ``html``: keep the compare page's layers of every image."""
    if model is None and sr is None:
        raise FatsrError("give SR images or a model to score")
    pairs = pair_files(hr, sr=sr, lr=lr)
    if model is not None:
        scale = model.scale
    elif scale is None:
        scale = _scale_from_lr(pairs[0])
    border = scale if border is None else border
    networks = [load_lpips(net, lpips_weights).to(device) for net in dict.fromkeys(lpips)]
    sr_name = model.info.name if model is not None else "SR"
    items: list[Item] = []

    def keep(
        name: str, lr_image: Any, sr_image: Any, hr_image: Any, masks: Masks
    ) -> None:  # the page's layers, while at hand
        item = image_item(name, lr_image, [(sr_name, sr_image)], hr_image, scale=scale, border=border, masks=masks)
        items.append(item.encode())

    progress = tqdm(total=len(pairs), desc="evaluate", unit="image", file=sys.stderr, disable=None)
    results = []
    for result in evaluate(pairs, scale=scale, border=border, model=model, device=device, lpips=networks,
                           crop_size=crop_size, downscale=downscale, on_images=keep if html else None,
                           value_range=value_range):  # fmt: skip
        results.append(result)
        progress.update()
    progress.close()
    settings = {
        "source": f"model {model.name}" if model is not None else f"SR files {sr}",
        "hr": str(hr), "lr": str(lr) if lr else DOWNSCALES[downscale], "scale": scale, "border": border,
        "baseline": "bicubic: Pillow bicubic upscale of the LR (a = -0.5, MATLAB imresize kernel)",
        "y": "BT.601 MATLAB luma 16..235 (BasicSR/SwinIR/HAT)", "range": "0..255 (each image's values, see summary 'values', scaled)",
        "texture_strata": "thirds of pixels by 7x7 local variance of HR (Y)",
    }  # fmt: skip
    return EvaluationReport(results, summarize(results, settings), items)


def _gain(item: Item) -> float:
    """An evaluated item's gain over bicubic (always set: every item has its HR)."""
    assert item.gain is not None
    return item.gain


def _scale_from_lr(pair: Pair) -> int:
    if pair.lr is None:
        raise ArgumentError(
            "the scale is unknown; give {arg} (or {lr}, to read it from the LR size)", "scale", None, lr=("lr", None)
        )
    hr, lr = read_image(pair.hr, any_dtype=True), read_image(pair.lr, any_dtype=True)
    scale = hr.shape[1] // lr.shape[1]
    if scale < 1 or hr.shape[0] // lr.shape[0] != scale:
        raise ArgumentError(f"{pair.name}: HR {hr.shape[1]}x{hr.shape[0]} is no multiple of LR "
                            f"{lr.shape[1]}x{lr.shape[0]}; give {{arg}}", "scale", None)  # fmt: skip
    return scale
