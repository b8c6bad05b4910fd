"""What a run leaves for its user besides weights: ``metrics.jsonl``, ``progress.png`` and
optional TensorBoard events."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from fatsr.errors import ArgumentError
from fatsr.io import atomic_write


class MetricsLog:
    """Records (dicts with ``kind`` and ``step``) kept in memory and rewritten atomically to a
    JSONL file; on resume, records after the checkpoint's step are dropped."""

    def __init__(self, path: str | os.PathLike, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.records: list[dict[str, Any]] = []
        if resume_step is not None and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                if record.get("step", 0) <= resume_step:
                    self.records.append(record)

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        with atomic_write(self.path, overwrite=True) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in self.records), encoding="utf-8")

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == kind]


def plot_progress(log: MetricsLog, path: str | os.PathLike) -> None:
    """Loss terms (left) and validation PSNR/SSIM (right) against the step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = log.of_kind("train")
    val = log.of_kind("val")
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(11, 4))
    try:
        terms = [k for k in ("loss", "l1", "lev", "perceptual") if any(k in r for r in train)]
        for term in terms:
            points = [(r["step"], r[term]) for r in train if term in r and r[term] > 0 and math.isfinite(r[term])]
            if points:
                ax_loss.plot(*zip(*points, strict=True), label="total (weighted)" if term == "loss" else term)
        ax_loss.set(xlabel="step", ylabel="loss", title="training loss")
        if any(ax_loss.get_lines()):
            ax_loss.set_yscale("log")
            ax_loss.legend()
        if val:
            steps = [r["step"] for r in val]
            ax_psnr.plot(steps, [r["psnr"] for r in val], "o-", color="C0", label="PSNR-Y (EMA)")
            for ref in log.of_kind("bicubic"):
                ax_psnr.axhline(ref["psnr"], color="C0", linestyle=":", label="PSNR-Y bicubic")
            ax_ssim = ax_psnr.twinx()
            ax_ssim.plot(steps, [r["ssim"] for r in val], "s--", color="C1", label="SSIM-Y (EMA)")
            ax_ssim.set_ylabel("SSIM-Y", color="C1")
            handles = ax_psnr.get_legend_handles_labels()[0] + ax_ssim.get_legend_handles_labels()[0]
            ax_psnr.legend(handles=handles, loc="lower right")
        ax_psnr.set(xlabel="step", ylabel="PSNR-Y (dB)", title="validation")
        fig.tight_layout()
        with atomic_write(path, overwrite=True) as tmp:
            fig.savefig(tmp, format="png", dpi=90)
    finally:
        plt.close(fig)


class TensorBoard:
    """Scalars to TensorBoard (``<save_dir>/tensorboard``); needs the tensorboard package."""

    def __init__(self, folder: str | os.PathLike) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ArgumentError(
                "{arg} needs the tensorboard package: pip install tensorboard", "tensorboard", True
            ) from None
        self.writer = SummaryWriter(os.fspath(folder))

    def add(self, record: dict[str, Any]) -> None:
        for key, value in record.items():
            if key not in ("kind", "step", "epoch") and isinstance(value, (int, float)):
                self.writer.add_scalar(f"{record['kind']}/{key}", value, record["step"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
