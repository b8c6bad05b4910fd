"""Batches of images degraded into LR (and mod-cropped HR) files, in worker processes:
what ``fatsr degrade`` and ``fatsr prepare pairs`` run."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from fatsr.data.datasets import find_images
from fatsr.data.degrade import degrade, image_rng
from fatsr.data.prepare import mod_crop
from fatsr.errors import ArgumentError, FatsrError
from fatsr.io import read_image, remove_stale_parts, write_image


@dataclass(frozen=True)
class Job:
    """One image: read ``source``, write its LR to ``lr_path``; with ``hr_path``, mod-crop
    the HR to the scale first and write it there too."""

    source: Path
    lr_path: Path
    hr_path: Path | None = None


def input_images(folder: Path) -> list[Path]:
    """The images of an input folder; FatsrError if it is missing or has none."""
    if not folder.is_dir():
        raise FatsrError(f"{folder}: no such folder; give a folder of images")
    files = find_images(folder)
    if not files:
        raise FatsrError(f"{folder}: no images found; give a folder of .png/.jpg/.tif images")
    return files


def refuse_existing(paths: list[Path], overwrite: bool) -> None:
    """FatsrError before any work if outputs exist and ``overwrite`` is false."""
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise ArgumentError(
            f"{len(existing)} output file(s) already exist, e.g. {existing[0]}; pass {{arg}} to replace them",
            "overwrite",
            True,
        )


def _run_job(job: Job, scale: int, preset: dict, seed: int, overwrite: bool) -> None:
    torch.set_num_threads(1)
    hr = read_image(job.source)
    if job.hr_path is not None:
        hr = mod_crop(hr, scale)
        write_image(job.hr_path, hr, overwrite=overwrite)
    lr = degrade(hr, scale, preset, image_rng(seed, job.source.name))
    write_image(job.lr_path, lr, overwrite=overwrite)


def run_jobs(jobs: list[Job], *, scale: int, preset: dict, seed: int, workers: int, overwrite: bool) -> None:
    """Run ``jobs`` in ``workers`` processes with a progress bar; the first error stops the rest.
    The temporary files a killed run left for these outputs are removed first."""
    names: dict[Path, list[str]] = {}
    for job in jobs:
        for path in (job.lr_path, job.hr_path):
            if path is not None:
                names.setdefault(path.parent, []).append(path.name)
    for folder, mine in names.items():
        if folder.is_dir():
            remove_stale_parts(folder, mine)
    bar = tqdm(total=len(jobs), unit="img", desc="degrade", disable=None)  # terminal only: no residue in logs
    with bar:
        if workers == 1:
            for job in jobs:
                _run_job(job, scale, preset, seed, overwrite)
                bar.update()
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
            pending = {pool.submit(_run_job, job, scale, preset, seed, overwrite) for job in jobs}
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                bar.update(len(done))
                failed = [f for f in done if f.exception() is not None]
                if failed:
                    for future in pending:
                        future.cancel()
                    raise failed[0].exception()  # type: ignore[misc]
