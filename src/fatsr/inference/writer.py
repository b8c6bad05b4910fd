"""The output GeoTIFF while it is written: a hidden partial file beside the destination that a
rerun resumes (:class:`PartialWriter`), blocks mapped back to the raster's values with its
nodata and mask put back (:func:`write_block`), and the final copy into a Cloud-Optimized
GeoTIFF, read back whole before it is renamed."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar, cast

import numpy as np
import rasterio
import torch
from rasterio._err import CPLE_BaseError
from rasterio.enums import MaskFlags
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader, DatasetWriter
from rasterio.shutil import copy as gdal_copy
from rasterio.windows import Window

from fatsr.errors import ArgumentError, FatsrError, SystemFailure, within
from fatsr.inference import sources
from fatsr.inference.bitdepth import BackProjection
from fatsr.inference.georef import POINTS, set_georeference
from fatsr.inference.options import BLOCK, RasterOptions
from fatsr.inference.reading import quiet, read_source, reason
from fatsr.inference.tiling import Block, Tiling
from fatsr.io import atomic_write, locked_file, private_temporary
from fatsr.values import ValueMapping

T = TypeVar("T")

WRITE_ROWS = 16  # LR rows mapped back and written at a time


@contextmanager
def libtiff_quiet() -> Iterator[None]:
    """Mute the C-level stderr (libtiff prints I/O errors such as a full disk straight to it)
    while GDAL writes; fatsr checks those writes and reports failures itself."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class WriteFailed(Exception):
    """The output GeoTIFF on disk is not what was written (full disk, I/O error)."""


def disk_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False


def write_failure(dst: Path, exc: BaseException) -> str:
    folder = dst.parent if str(dst.parent) else Path(".")
    if disk_full(folder) or getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        why = f"no space left on the disk of {folder}"
    else:
        why = reason(exc)
    return f"{dst}: could not write the GeoTIFF ({why}); nothing was kept; free some space or choose another output"


class PartialWriter:
    """The output GeoTIFF while it is being written: a hidden partial file beside the
    destination, locked while this process works on it, and a JSON journal of how far it got
    (group, panel, output row)."""

    def __init__(self, dst: Path, profile: dict, job: dict, checkpoint_seconds: float) -> None:
        self.dst, self.profile, self.job, self.every = dst, profile, job, checkpoint_seconds
        self.path = dst.with_name(f".{dst.name}.fatsr-partial.tif")
        self.journal = dst.with_name(f".{dst.name}.fatsr-partial.json")
        self.position: tuple[int, int, int] = (0, 0, 0)
        self.resumed = False
        self._out: DatasetWriter | None = None
        self._last = time.monotonic()
        self._pending: tuple[int, int, int] | None = None
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FatsrError(
                f"{dst}: could not write the GeoTIFF ({exc.strerror or exc}); choose a writable output"
            ) from None
        if self.journal.is_symlink():
            raise FatsrError(
                f"{self.journal} is a symbolic link where fatsr keeps its progress; nothing was written; remove the link"
            )
        self._lock = contextlib.ExitStack()
        # the partial file keeps its name (a rerun resumes it): opened without following links
        # and refused unless it is a regular file of this user's
        self._lock.enter_context(locked_file(self.path, f"{dst}: another fatsr run is upscaling into it now"))
        recorded, problem = self._recorded_position()
        if recorded is not None:
            self.position, self.resumed = recorded, True
            print(f"{dst}: resuming an interrupted run at {self._describe(self.position)}", file=sys.stderr)
        elif problem:
            self.restart(problem)
        else:
            self._create()

    def _create(self) -> None:
        self.journal.unlink(missing_ok=True)
        try:
            with quiet():
                self._out = rasterio.open(self.path, "w", **{k: v for k, v in self.profile.items() if k not in POINTS})
            set_georeference(self._out, self.profile)
        except (OSError, RasterioError) as exc:
            self.discard()
            self.release()
            raise SystemFailure(write_failure(self.dst, exc)) from None

    def restart(self, why: str) -> None:
        """Discard the partial file of an interrupted run (with a warning) and start afresh."""
        print(f"warning: {self.dst}: the partial file of an interrupted run is discarded: {why}; starting again",
              file=sys.stderr)  # fmt: skip
        with contextlib.suppress(OSError, RasterioError):
            self._close()
        self.position, self.resumed, self._pending = (0, 0, 0), False, None
        self._create()

    def _recorded_position(self) -> tuple[tuple[int, int, int] | None, str | None]:
        """The journal's position when the partial file was made by this same job and opens
        with the expected size; else (None, why it cannot be resumed, or None)."""
        try:
            journal = json.loads(self.journal.read_text())
            if journal["job"] != self.job:
                return None, None
            # (group, row, column) as written by this class
            position = cast("tuple[int, int, int]", tuple(int(v) for v in journal["position"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None, None
        try:
            with quiet(), rasterio.open(self.path) as ds:
                shape = (ds.count, ds.height, ds.width, ds.dtypes[0])
        except RasterioError as exc:
            return None, f"it cannot be opened ({reason(exc)})"
        p = self.profile
        if shape != (p["count"], p["height"], p["width"], p["dtype"]):
            return None, "its size does not match"
        return position, None

    @staticmethod
    def _describe(position: tuple[int, int, int]) -> str:
        return f"band group {position[0] + 1}, panel {position[1] + 1}, output row {position[2]}"

    def dataset(self) -> DatasetWriter:
        if self._out is None:
            with quiet():
                self._out = rasterio.open(self.path, "r+")
        return self._out

    def progress(self, group: int, panel: int, row: int) -> None:
        """Note that everything before ``row`` of ``panel`` in ``group`` is written; record it
        on disk when the last checkpoint is ``checkpoint_seconds`` old."""
        self._pending = (group, panel, row)
        if time.monotonic() - self._last >= self.every:
            self.checkpoint()

    def checkpoint(self) -> None:
        if self._pending is None:
            return
        self._close()
        if disk_full(self.path.parent):  # what GDAL wrote since the last checkpoint may be lost
            raise WriteFailed(f"no space left on the disk of {self.path.parent}")
        with atomic_write(self.journal, overwrite=True) as tmp:
            tmp.write_text(json.dumps({"job": self.job, "position": self._pending}))
        self.position, self._pending, self._last = self._pending, None, time.monotonic()

    def finish(self, last_steps: Callable[[DatasetWriter], None], options: RasterOptions, *, overwrite: bool) -> None:
        """Metadata (and, for a plain GeoTIFF, overviews), then the partial file becomes the
        destination, copied into a COG first when ``options.cog``; the result is read back
        whole before it is renamed."""
        last_steps(self.dataset())
        self._close()
        if self.dst.exists() and not overwrite:
            raise ArgumentError(f"{self.dst} appeared while upscaling; pass {{arg}} to replace it", "overwrite", True)
        if not options.cog:
            _read_back(self.path)
            self._install(self.path)
            return
        # the COG copy goes to a new file of an unpredictable name (never through a planted link)
        with private_temporary(self.dst, suffix=".tif") as result:
            try:
                cog = {
                    "driver": "COG",
                    "COMPRESS": options.compress.upper(),
                    "PREDICTOR": "NO" if self.profile.get("nbits") else "YES",  # NBITS: whole bytes only
                    "BLOCKSIZE": BLOCK,
                    "BIGTIFF": "IF_SAFER",
                    "OVERVIEWS": "AUTO" if options.overviews else "NONE",
                    "OVERVIEW_RESAMPLING": "AVERAGE",
                    "NUM_THREADS": str(torch.get_num_threads()),  # blocks compressed in parallel, same bytes
                }
                gdal_copy(self.path, result, **with_creation_options(cog, options.creation_options))
                _read_back(result)
            except (RasterioError, CPLE_BaseError) as exc:
                raise WriteFailed(f"the COG copy failed ({reason(exc)})") from None
            self._install(result)
        self.path.unlink(missing_ok=True)

    def _install(self, result: Path) -> None:
        """``result`` becomes the destination (a link there is replaced, never its target)."""
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(result, 0o666 & ~umask)
        self.journal.unlink(missing_ok=True)
        os.replace(result, self.dst)

    def abandon(self) -> str | None:
        """On failure: keep the partial file when progress was recorded (and say how to resume),
        else remove it."""
        try:
            self.checkpoint() if self.journal.exists() else self._close()
        except (OSError, RasterioError, WriteFailed, FatsrError):
            self.discard()
            return None
        if self.journal.exists():
            return f"stopped at {self._describe(self.position)}; run the same command again to resume"
        self.path.unlink(missing_ok=True)
        return None

    def discard(self) -> None:
        """Remove the partial file and its journal."""
        with contextlib.suppress(OSError, RasterioError):
            self._close()
        self.journal.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)

    @contextmanager
    def guarded(self) -> Iterator[None]:
        """The writing, with what a failure leaves: a write error (full disk, I/O) removes the
        partial file and raises SystemFailure; any other error or an interruption keeps the
        progress a checkpoint recorded (and says how to resume). The lock is released in any case."""
        try:
            yield
        except (RasterioError, WriteFailed, OSError) as exc:
            self.discard()
            raise SystemFailure(write_failure(self.dst, exc)) from None
        except FatsrError as exc:
            hint = self.abandon()
            raise within(exc, suffix=f"; {hint}" if hint else "") from None
        except BaseException:
            hint = self.abandon()
            if hint:
                print(f"{self.dst}: {hint}", file=sys.stderr)
            raise
        finally:
            self.release()

    def write_or_restart(self, write: Callable[[], T]) -> T:
        """``write()``; where a resumed run's partial file cannot be completed (a read or write
        error, the disk not full), the partial file is discarded and ``write()`` runs once more
        from the start."""
        try:
            return write()
        except (RasterioError, WriteFailed) as exc:
            if not self.resumed or disk_full(self.dst.parent):
                raise
            self.restart(f"it cannot be completed ({reason(exc)})")
            return write()

    def release(self) -> None:
        """Let other runs at this output (the lock goes with the partial file's descriptor)."""
        self._lock.close()

    def _close(self) -> None:
        if self._out is not None:
            out, self._out = self._out, None
            out.close()


def with_creation_options(options: dict, extra: tuple[tuple[str, str], ...]) -> dict:
    """GDAL creation ``options`` with ``extra`` (KEY, VALUE) replacing those of the same name (any case)."""
    names = {key.upper() for key, _ in extra}
    return {**{k: v for k, v in options.items() if k.upper() not in names}, **dict(extra)}


def _read_back(path: Path) -> None:
    """Read every block (and overview) of a written GeoTIFF: WriteFailed if any is unreadable."""
    try:
        with quiet(), rasterio.open(path) as ds:
            levels = len(ds.overviews(1))
        for level in [None, *range(levels)]:
            with quiet(), rasterio.open(path, **({} if level is None else {"overview_level": level})) as ds:
                for _, window in ds.block_windows(1):
                    ds.read(window=window)
    except RasterioError as exc:
        raise WriteFailed(f"the written file does not read back ({reason(exc)})") from None


def write_block(
    ds: DatasetReader,
    out: DatasetWriter,
    indexes: tuple[int, ...],
    mapping: ValueMapping,
    block: Block,
    scale: int,
    mask: bool = False,
    project: BackProjection | None = None,
    origin: tuple[int, int] = (0, 0),
) -> None:
    """Map a finished block back to the dtype, put nodata (and non-finite values) back where
    the input had them, write it (in chunks of ``WRITE_ROWS`` LR rows, so the temporaries
    stay small); with ``mask``, also the dataset mask of an input that has one. ``project``:
    the back-projection of these bands. ``origin``: the LR (row, column) of the output's
    pixel (0, 0) (a window's)."""
    dtype = np.dtype(out.dtypes[0])
    cols = block.data.shape[2]
    floating = np.issubdtype(dtype, np.floating)
    for first in range(0, block.data.shape[1], WRITE_ROWS * scale):
        unit, top = block.data[:, first : first + WRITE_ROWS * scale], block.top + first
        t, l = origin[0] + top // scale, origin[1] + block.left // scale
        if project is not None:
            unit = project(unit, t, l)
        values = mapping.from_unit(unit, indexes, dtype)
        window = Window(l, t, cols // scale, unit.shape[1] // scale)
        out_window = Window(block.left, top, cols, unit.shape[1])
        if ds.nodata is not None or floating:
            lr = read_source(ds, list(indexes), window=window)
            put_back = ~np.isfinite(lr) if floating else np.zeros(lr.shape, bool)
            if ds.nodata is not None:
                put_back |= _nodata(lr, ds.nodata)
            big = put_back.repeat(scale, axis=1).repeat(scale, axis=2)
            if ds.nodata is not None:
                values[~big & _nodata(values, ds.nodata)] = _beside(ds.nodata, dtype)
                values[big] = ds.nodata
            else:
                values[big] = lr.repeat(scale, axis=1).repeat(scale, axis=2)[big]
        out.write(values, indexes=list(indexes), window=out_window)
        if mask and _has_dataset_mask(ds):
            lr_mask = read_source(ds, how="dataset_mask", window=window)
            out.write_mask(lr_mask.repeat(scale, axis=0).repeat(scale, axis=1), window=out_window)


def _has_dataset_mask(ds: DatasetReader) -> bool:
    """A mask band of its own (internal or a .msk sidecar), not derived from nodata or alpha."""
    return any(flags == [MaskFlags.per_dataset] for flags in ds.mask_flag_enums)


def _nodata(data: np.ndarray, nodata: float) -> np.ndarray:
    return np.isnan(data) if math.isnan(nodata) else data == nodata


def _beside(nodata: float, dtype: np.dtype) -> float:
    """The representable value next to ``nodata``, for valid pixels that landed on it."""
    if np.issubdtype(dtype, np.integer):
        return nodata + 1 if nodata < np.iinfo(dtype).max else nodata - 1
    return float(np.nextafter(dtype.type(nodata), dtype.type(np.inf)))


def job_record(
    src: Path | str, tags: dict[str, str], tiling: Tiling, options: RasterOptions, autocast: torch.dtype | None
) -> dict:
    """What a partial output was made from: a resumed run must match it exactly (a remote
    source by its URL)."""
    stat = src.stat() if isinstance(src, Path) else None
    return {
        "source": str(src.resolve()) if isinstance(src, Path) else sources.public(src),  # no credentials on disk
        "bytes": stat.st_size if stat else None,
        "mtime_ns": stat.st_mtime_ns if stat else None,
        "tags": tags,
        "tiling": [tiling.tile, tiling.overlap, tiling.batch, tiling.panel],
        "compress": options.compress,
        "autocast": str(autocast),
        "cog": options.cog,
        "overviews": options.overviews,
        "back_project": options.back_project,
        "alpha_as_data": options.alpha_as_data,
        "creation_options": [list(pair) for pair in options.creation_options],
    }
