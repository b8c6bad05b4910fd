"""Rasters that GDAL reads (GeoTIFF, JPEG2000, VRT, ...) super-resolved window by window
(rasterio). The output is a Cloud-Optimized GeoTIFF (or a plain tiled one) that keeps what the
input had: CRS and transform (pixel size divided by the scale), or GCPs / RPCs rescaled to the
new pixel grid; nodata, the dataset mask, dtype, band order, descriptions, colour
interpretation and tags.

Pixel values are mapped to the network's [0, 1] with a recorded per-band linear mapping.
Values outside [0, 1] (the tails of a percentile stretch) are not fed to the network as they
are: it sees them softly compressed into [-0.05, 1.05] and the rest (the residual) is
upsampled bicubically and added back (:class:`TailSafe`). Invalid pixels (nodata, masked,
non-finite) are inpainted for the network (``rasterio.fill.fillnodata``) and put back after
(mask upsampled by nearest). The red, green and blue bands (:mod:`fatsr.inference.bands`)
go through the network together, every other band alone (bicubic, or the network as grey);
an alpha band is upsampled by nearest. A declared bit depth (``NBITS``) bounds the values
and is written back (:mod:`fatsr.inference.bitdepth`).
Palette and thematic rasters (class codes) are refused. Provenance goes into ``FATSR_*``
tags; stale ``STATISTICS_*`` are dropped.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import rasterio
import torch
import torch.nn.functional as F
from affine import Affine
from rasterio._err import CPLE_BaseError
from rasterio.control import GroundControlPoint
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.fill import fillnodata
from rasterio.io import DatasetReader, DatasetWriter, MemoryFile
from rasterio.rpc import RPC
from rasterio.shutil import copy as gdal_copy
from rasterio.windows import Window
from torch import Tensor, nn

from fatsr.errors import ArgumentError, FatsrError, SystemFailure, within
from fatsr.inference import sources
from fatsr.inference.bands import alpha_as_data, choose_bands
from fatsr.inference.bitdepth import BackProjection, nbits
from fatsr.inference.tiling import DEFAULT_TILING, Block, Tiling, upscale_blocks
from fatsr.inference.windows import BBox, PixelWindow, scene_window, window_profile
from fatsr.io import MAX_PICTURE_PIXELS, atomic_write, locked_file, private_temporary
from fatsr.models.contract import Interpolation, ModelInfo, Resampler
from fatsr.values import ValueMapping, value_bounds

SUFFIXES = (".tif", ".tiff")
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")  # plain pictures go through fatsr.io
SUPPORTED_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")
COMPRESSIONS = ("deflate", "zstd")
OTHER_BANDS = ("network", "bicubic")
STATS_SIZE = 1024  # longest side of the decimated read behind the stretch and fill values
PERCENTILES = (0.5, 99.5)
BLOCK = 256
WRITE_ROWS = 16  # LR rows mapped back and written at a time
TAIL = 0.05  # how far beyond [0, 1] the network sees values (the rest goes bicubic)
FILL_MARGIN = 32  # LR pixels read around a window so its inpainting sees valid pixels beyond
FILL_DISTANCE = 64  # LR pixels fillnodata searches for valid pixels; further ones get the band mean


def _check_compress(method: str) -> None:
    """Refuse a COMPRESS value this GDAL does not write (it would write the file uncompressed,
    with a warning at most): a tiny GeoTIFF in memory is written with it and read back."""
    if method.upper() == "NONE":
        return
    try:
        with _quiet(), MemoryFile() as mem:  # 3 bands of uint8: what WEBP and JPEG need
            with mem.open(driver="GTiff", width=16, height=16, count=3, dtype="uint8", compress=method) as ds:
                ds.write(np.zeros((3, 16, 16), np.uint8))
            with mem.open() as ds:
                applied = ds.tags(ns="IMAGE_STRUCTURE").get("COMPRESSION", "NONE")
    except RasterioError:
        applied = "NONE"
    if applied.upper() != method.upper():
        raise ArgumentError(
            "{arg}: this GDAL does not write that compression; use e.g. DEFLATE, LZW, ZSTD or NONE",
            "co",
            f"COMPRESS={method}",
        )


@dataclass(frozen=True)
class RasterOptions:
    """``bands``: 1-based bands fed to the network together (None: a multispectral model's
    training bands, else red, green, blue as the file declares them, see
    :func:`~fatsr.inference.bands.rgb_roles`); ``value_range``: (LO, HI) mapped to [0, 1] for
    every band (None: automatic); ``other_bands``: "bicubic" or "network" (each alone, as grey;
    None: bicubic, see :func:`~fatsr.inference.bands.choose_bands`); ``alpha_as_data``: alpha
    bands upscaled as data, not used as a mask; ``cog``: a Cloud-Optimized GeoTIFF (else a
    plain tiled one); ``overviews``: averaged internal overviews; ``back_project``: see
    :func:`~fatsr.inference.bitdepth.back_project`; ``creation_options``: GDAL creation
    options (KEY, VALUE) of the output GeoTIFF, replacing fatsr's own of the same name."""

    bands: tuple[int, ...] | None = None
    value_range: tuple[float, float] | None = None
    other_bands: str | None = None
    alpha_as_data: bool = False
    compress: str = "deflate"
    overviews: bool = True
    cog: bool = True
    back_project: bool = False
    creation_options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.other_bands is not None and self.other_bands not in OTHER_BANDS:
            raise FatsrError(f"other bands {self.other_bands!r}: choose one of {', '.join(OTHER_BANDS)}")
        if self.compress not in COMPRESSIONS:
            raise FatsrError(f"compression {self.compress!r}: choose one of {', '.join(COMPRESSIONS)}")
        for key, _ in self.creation_options:
            if not key or not key.replace("_", "").isalnum():
                raise ArgumentError("{arg}: give GDAL creation options as KEY=VALUE", "co", key)
        _check_compress(dict((k.upper(), v) for k, v in self.creation_options).get("COMPRESS", "NONE"))
        if self.value_range is not None and not all(map(math.isfinite, self.value_range)):
            raise ArgumentError("{arg}: give finite numbers", "value_range", self.value_range)
        if self.value_range is not None and not self.value_range[0] < self.value_range[1]:
            raise ArgumentError("{arg}: LO must be below HI", "value_range", self.value_range)


class Bicubic(Interpolation):
    """Bicubic interpolation with the :class:`~fatsr.models.wrapper.SRModel` calling convention."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)


class Nearest(Interpolation):
    """Nearest-neighbour enlargement (alpha bands)."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=self.scale, mode="nearest")


def soft_clip(x: Tensor, tail: float = TAIL) -> Tensor:
    """Identity on [0, 1]; beyond, ``tail * tanh(excess / tail)``: smooth (C1), monotonic,
    and never more than ``tail`` outside [0, 1]."""
    over = tail * torch.tanh(torch.clamp(x - 1, min=0) / tail)
    under = tail * torch.tanh(torch.clamp(-x, min=0) / tail)
    return torch.clamp(x, 0, 1) + over - under


class TailSafe(nn.Module):
    """A model that only ever sees values near [0, 1]: ``model(soft_clip(x)) +
    bicubic(x - soft_clip(x))``. In range the residual is zero and this is the model; a
    target far brighter than the stretch (a roof, a cloud, a glint) keeps its value through
    bicubic instead of driving the network where it was never trained."""

    def __init__(self, model: Resampler) -> None:
        super().__init__()
        self.model = model
        self.scale: int = model.scale

    @property
    def info(self) -> ModelInfo:
        return self.model.info

    def forward(self, x: Tensor) -> Tensor:
        inside = soft_clip(x)
        out = self.model(inside)
        residual = x - inside
        if bool((residual != 0).any()):
            out = out + F.interpolate(residual, scale_factor=self.scale, mode="bicubic", align_corners=False).to(
                out.dtype
            )
        return out


def georeferenced(ds: DatasetReader) -> bool:
    """Whether a dataset places its pixels on the Earth: a CRS, a non-identity transform,
    GCPs or RPCs."""
    return ds.crs is not None or not ds.transform.is_identity or bool(ds.gcps[0]) or ds.rpcs is not None


def _plain_picture(ds: DatasetReader, path: Path) -> bool:
    """A picture :mod:`fatsr.io` handles as well: PNG/JPEG/TIFF/..., 8 or 16-bit, grey, RGB,
    grey + alpha or RGBA, without georeference, nodata, mask or palette, small enough to be read
    whole (a TIFF over :data:`fatsr.io.MAX_PICTURE_PIXELS` is streamed as a raster)."""
    if path.suffix.lower() in (".tif", ".tiff") and ds.width * ds.height > MAX_PICTURE_PIXELS:
        return False
    alpha = ds.count in (2, 4) and ds.colorinterp[-1] == ColorInterp.alpha
    masked = any(MaskFlags.per_dataset in flags for flags in ds.mask_flag_enums) and not alpha
    return (
        path.suffix.lower() in PLAIN_SUFFIXES
        and not georeferenced(ds)
        and ds.nodata is None
        and not masked
        and len(set(ds.dtypes)) == 1
        and ds.dtypes[0] in ("uint8", "uint16")
        and (ds.count in (1, 3) or alpha)
        and ColorInterp.palette not in ds.colorinterp
    )


def is_raster(path: str | os.PathLike) -> bool:
    """Whether ``path`` goes through this module: GDAL reads it and it is more than a plain
    picture (georeferenced, JPEG2000/VRT/..., another dtype or band count, nodata, a mask or a
    palette). Files GDAL cannot read are left to :mod:`fatsr.io` and its error."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with _quiet(), rasterio.open(path) as ds:
            return not _plain_picture(ds, path)
    except RasterioError:
        return False


def upscale_raster(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    model: Resampler,
    *,
    model_file: str | os.PathLike | None = None,
    tiling: Tiling = DEFAULT_TILING,
    options: RasterOptions = RasterOptions(),
    autocast: torch.dtype | None = None,
    overwrite: bool = False,
    checkpoint_seconds: float = 60.0,
    window: PixelWindow | BBox | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """Write ``dst``, a Cloud-Optimized GeoTIFF (``options.cog``; else a plain tiled one):
    ``src`` super-resolved by ``model`` (an ``SRModel``), read and written one panel block at
    a time. ``src``: a file, or a path or URL GDAL reads over the network (see
    :mod:`fatsr.inference.sources`). ``window``: only that part of the scene (see
    :mod:`fatsr.inference.windows`), with the same pixels as the whole-scene output there;
    ``tags``: provenance tags to add.

    The work goes to a hidden partial tiled GeoTIFF beside ``dst``; at the end it is copied
    into a COG (GDAL's COG driver: overviews, then the image, in cloud-optimized order) that
    is renamed onto ``dst``. Every ``checkpoint_seconds`` the partial file is flushed and its
    progress recorded, so a run that crashes or is interrupted resumes there when started
    again with the same source, model and settings. A run that fails before its first
    checkpoint leaves nothing.
    """
    remote = sources.is_remote(src)
    src, dst = str(src) if remote else Path(src), Path(dst)
    name = sources.public(str(src)) if remote else str(src)
    if not remote and dst.resolve() == Path(src).resolve():
        raise FatsrError(f"{src}: its output {dst} would replace this input; choose another output")
    if dst.exists() and not overwrite:
        raise ArgumentError(f"{dst} exists; pass {{arg}} to replace it", "overwrite", True)
    if dst.is_dir():
        raise FatsrError(f"{dst} is a folder; give a file name")
    with _open(src) as ds:
        if dst.suffix.lower() not in SUFFIXES:
            picture = dst.suffix.lower() in PLAIN_SUFFIXES
            what = (
                "would lose its georeference" if georeferenced(ds) and picture else "is not what rasters are written as"
            )
            raise FatsrError(
                f"{dst}: {dst.suffix or 'a file without suffix'} {what}; give an output ending in .tif (a Cloud-Optimized GeoTIFF)"
            )
        area = scene_window(ds, window, name) if window is not None else None
        if options.alpha_as_data:
            ds = alpha_as_data(ds)
        options, fixed = _trained_bands(ds, name, model, options)
        options = choose_bands(ds, name, options, model.info.channels)
        groups = _band_groups(ds, options, model.info.channels)
        bits = nbits(ds)
        mapping, fills = _value_mapping(ds, options.value_range, fixed, bits)
        runners: dict[str, Resampler] = {
            "rgb": TailSafe(model),
            "network": TailSafe(model),
            "bicubic": Bicubic(model.scale),
            "nearest": Nearest(model.scale),
        }
        tags = _provenance(model, model_file, tiling, mapping, groups) | (tags or {})
        if area is not None:
            tags["FATSR_WINDOW"] = f"{area.describe()} (source column, row, width, height)"
        if options.back_project:
            tags["FATSR_BACK_PROJECT"] = (
                "each scale x scale output block's mean = its input pixel (to rounding; what clips at the range's "
                "ends goes to the block's other pixels)"
            )
        profile = _output_profile(ds, model.scale, options.compress)
        if bits is not None:  # libtiff's predictor takes whole bytes only
            profile.update(nbits=bits, predictor=1)
        if area is not None:
            profile = window_profile(profile, area, model.scale)
        if options.cog:  # the partial file is read once, by the COG copy: the fastest compression
            profile.update(compress="zstd", zstd_level=1)
        else:
            profile = with_creation_options(profile, options.creation_options)
        job = _job(src, tags, tiling, options, autocast)
        panel_width = min(profile["width"], tiling.panel * model.scale)
        block_row = BLOCK * panel_width * ds.count * np.dtype(ds.dtypes[0]).itemsize
        # Every write is checked (errors raise; the finished file is read back before it is
        # renamed), so a failure gives one clear line and libtiff's own messages are muted.
        with rasterio.Env(GDAL_CACHEMAX=2 * block_row + (16 << 20)):
            writer = PartialWriter(dst, profile, job, checkpoint_seconds)

            unmatched: dict[tuple[int, ...], BackProjection] = {}

            def write_all() -> None:
                unmatched.clear()
                for g, (indexes, kind) in enumerate(groups):
                    if g < writer.position[0]:
                        continue
                    resume = writer.position[1:] if g == writer.position[0] else (0, 0)
                    read = _read_bands(ds, indexes, mapping, fills, fill=kind != "nearest")
                    blocks = upscale_blocks(
                        runners[kind],
                        read,
                        ds.height,
                        ds.width,
                        tiling,
                        autocast=autocast,
                        resume=resume,
                        progress=f"{Path(name).name} band{'s' * (len(indexes) > 1)} {','.join(map(str, indexes))}",
                        window=None if area is None else area.area,
                    )
                    limits = mapping.unit_limits(indexes, np.dtype(ds.dtypes[0]), ds.nodata)
                    project = BackProjection(read, model.scale, limits) if options.back_project else None
                    if project is not None:
                        unmatched[indexes] = project
                    for block in blocks:
                        with _libtiff_quiet():
                            _write_block(
                                ds,
                                writer.dataset(),
                                indexes,
                                mapping,
                                block,
                                model.scale,
                                mask=g == 0,
                                project=project,
                                origin=(0, 0) if area is None else (area.row, area.col),
                            )
                            writer.progress(g, block.panel, block.top + block.data.shape[1])
                with _libtiff_quiet():
                    writer.finish(lambda out: _finish(ds, out, tags, options), options, overwrite=overwrite)

            try:
                try:
                    write_all()
                except (RasterioError, WriteFailed) as exc:
                    if not writer.resumed or _disk_full(dst.parent):
                        raise
                    writer.restart(f"it cannot be completed ({_reason(exc)})")
                    write_all()
                _report_unmatched(name, unmatched)
            except (RasterioError, WriteFailed, OSError) as exc:
                writer.discard()
                raise SystemFailure(_write_failure(dst, exc)) from None
            except FatsrError as exc:
                hint = writer.abandon()
                raise within(exc, suffix=f"; {hint}" if hint else "") from None
            except BaseException:
                hint = writer.abandon()
                if hint:
                    print(f"{dst}: {hint}", file=sys.stderr)
                raise
            finally:
                writer.release()


def _report_unmatched(src: str, projections: dict[tuple[int, ...], BackProjection]) -> None:
    """Warn about output blocks whose mean cannot equal their input pixel (an input value
    outside the declared bit depth's range)."""
    for indexes, projection in projections.items():
        if projection.off:
            print(f"warning: {src}: bands {','.join(map(str, indexes))}: {projection.off} of {projection.blocks} "
                  "output blocks cannot keep their input pixel's mean under --back-project (the input value is "
                  "outside the range the output can hold)", file=sys.stderr)  # fmt: skip


@contextmanager
def _libtiff_quiet() -> Iterator[None]:
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


def _reason(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def _disk_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False


def _write_failure(dst: Path, exc: BaseException) -> str:
    folder = dst.parent if str(dst.parent) else Path(".")
    if _disk_full(folder) or getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        why = f"no space left on the disk of {folder}"
    else:
        why = _reason(exc)
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
            with _quiet():
                self._out = rasterio.open(self.path, "w", **{k: v for k, v in self.profile.items() if k not in _POINTS})
            _set_georeference(self._out, self.profile)
        except (OSError, RasterioError) as exc:
            self.discard()
            self.release()
            raise SystemFailure(_write_failure(self.dst, exc)) from None

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
            with _quiet(), rasterio.open(self.path) as ds:
                shape = (ds.count, ds.height, ds.width, ds.dtypes[0])
        except RasterioError as exc:
            return None, f"it cannot be opened ({_reason(exc)})"
        p = self.profile
        if shape != (p["count"], p["height"], p["width"], p["dtype"]):
            return None, "its size does not match"
        return position, None

    @staticmethod
    def _describe(position: tuple[int, int, int]) -> str:
        return f"band group {position[0] + 1}, panel {position[1] + 1}, output row {position[2]}"

    def dataset(self) -> DatasetWriter:
        if self._out is None:
            with _quiet():
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
        if _disk_full(self.path.parent):  # what GDAL wrote since the last checkpoint may be lost
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
                raise WriteFailed(f"the COG copy failed ({_reason(exc)})") from None
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
        with _quiet(), rasterio.open(path) as ds:
            levels = len(ds.overviews(1))
        for level in [None, *range(levels)]:
            with _quiet(), rasterio.open(path, **({} if level is None else {"overview_level": level})) as ds:
                for _, window in ds.block_windows(1):
                    ds.read(window=window)
    except RasterioError as exc:
        raise WriteFailed(f"the written file does not read back ({_reason(exc)})") from None


def _job(
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


def _finish(ds: DatasetReader, out: DatasetWriter, tags: dict[str, str], options: RasterOptions) -> None:
    _copy_metadata(ds, out)
    out.update_tags(**tags)
    if options.overviews and not options.cog:  # the COG driver makes its own
        factors = overview_factors(out.width, out.height)
        if factors:
            out.build_overviews(factors, Resampling.average)
            out.update_tags(ns="rio_overview", resampling="average")


def overview_factors(width: int, height: int) -> list[int]:
    """2, 4, 8, ... until the smallest overview fits in one 256-pixel block."""
    factors, f = [], 2
    while max(width, height) / (f // 2) > BLOCK:
        factors.append(f)
        f *= 2
    return factors


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


@contextmanager
def _open(src: Path | str) -> Iterator[DatasetReader]:
    """Open a raster fatsr can upscale, or raise FatsrError saying why not."""
    if isinstance(src, Path) and not src.is_file():
        raise FatsrError(f"{src}: no such file")
    path = src if isinstance(src, Path) else sources.public(src)
    try:
        with _quiet(), sources.remote_env() if isinstance(src, str) else contextlib.nullcontext():
            ds = rasterio.open(src)
    except RasterioError as exc:
        if isinstance(src, str):
            raise sources.failure(src, str(exc)) from None
        raise FatsrError(f"{path}: not a readable raster ({str(exc).splitlines()[0]}); give a GeoTIFF") from None
    with ds:
        if ds.count == 0:
            raise FatsrError(f"{path}: the raster has no bands")
        if ds.width == 0 or ds.height == 0:
            raise FatsrError(f"{path}: the raster is {ds.width}x{ds.height} pixels; there is nothing to upscale")
        unsupported = sorted(set(ds.dtypes) - set(SUPPORTED_DTYPES))
        if unsupported:
            raise FatsrError(
                f"{path}: {unsupported[0]} pixels are not supported; convert to one of {', '.join(SUPPORTED_DTYPES)}"
            )
        if len(set(ds.dtypes)) > 1:
            raise FatsrError(
                f"{path}: bands of different dtypes ({', '.join(sorted(set(ds.dtypes)))}) are not supported"
            )
        thematic = [i for i in ds.indexes if str(ds.tags(i).get("LAYER_TYPE", "")).lower() == "thematic"]
        if ColorInterp.palette in ds.colorinterp or thematic:
            kind = "a palette" if ColorInterp.palette in ds.colorinterp else "a thematic (LAYER_TYPE=thematic)"
            raise FatsrError(
                f"{path}: {kind} raster holds class codes, not measurements, and super-resolution would invent "
                "classes; enlarge it by nearest neighbour instead (gdal_translate -r nearest -outsize 400% 400%)"
            )
        with _quiet():
            yield ds


def _read_source(ds: DatasetReader, *args: Any, how: str = "read", **kwargs: Any) -> np.ndarray:
    """``ds.read`` (or ``ds.read_masks``, ``ds.dataset_mask`` by ``how``); a damaged or
    truncated source, or a failed remote read, raises FatsrError."""
    try:
        return getattr(ds, how)(*args, **kwargs)
    except RasterioError as exc:
        if sources.is_remote(ds.name):
            raise sources.failure(ds.name, str(exc)) from None
        raise FatsrError(
            f"{ds.name}: cannot read the raster ({_reason(exc)}); the file is damaged or truncated: replace it"
        ) from None


def _band_groups(ds: DatasetReader, options: RasterOptions, channels: int) -> list[tuple[tuple[int, ...], str]]:
    """(1-based bands, how) per pass: "rgb" through the network together, then every
    other band alone ("network" or "bicubic"; an alpha band "nearest")."""
    count, rgb = ds.count, options.bands
    alpha = {i for i, ci in zip(ds.indexes, ds.colorinterp) if ci == ColorInterp.alpha}
    if rgb is not None:
        if len(rgb) != channels or len(set(rgb)) != len(rgb):
            raise ArgumentError(f"{{arg}}: give {channels} different band numbers, e.g. 3,2,1", "bands", rgb)
        if not all(1 <= b <= count for b in rgb):
            raise ArgumentError(f"{{arg}}: the raster has bands 1 to {count}", "bands", rgb)
    elif count - len(alpha) >= channels == 3:
        rgb = tuple([i for i in ds.indexes if i not in alpha][:3])
    groups = [(tuple(rgb), "rgb")] if rgb else []
    rest = [b for b in range(1, count + 1) if b not in (rgb or ())]
    other = options.other_bands or "bicubic"
    return groups + [((b,), "nearest" if b in alpha else other) for b in rest]


def valid_mask(
    ds: DatasetReader,
    indexes: tuple[int, ...],
    data: np.ndarray,
    window: Window | None = None,
    out_shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    """True where a pixel holds data: GDAL's mask (nodata, the dataset mask, alpha) and finite."""
    masks = _read_source(
        ds, list(indexes), how="read_masks", window=window, out_shape=out_shape, resampling=Resampling.nearest
    )
    return (masks > 0) & np.isfinite(data)


def _trained_bands(
    ds: DatasetReader, src: str, model: Resampler, options: RasterOptions
) -> tuple[RasterOptions, dict[int, tuple[float, float]]]:
    """A multispectral model (trained with ``--bands``) brings its bands and value mapping:
    its bands are the default ``bands`` and keep the training's (low, high) unless ``--range``
    is given; a raster they do not fit is refused. Bands outside the model go bicubic when it
    is not a 3-channel model (it cannot take one band alone)."""
    trained, channels = model.info.mapping, model.info.channels
    if channels != 3 and options.other_bands == "network":
        options = replace(options, other_bands="bicubic")
    if trained is None:
        if options.bands is None and channels != 3:
            raise ArgumentError(
                f"{src}: the model takes {channels} bands; choose them, e.g. {{arg}}",
                "bands",
                tuple(range(1, channels + 1)),
            )
        return options, {}
    listed = ",".join(map(str, trained.bands))
    if max(trained.bands) > ds.count and options.bands is None:
        raise ArgumentError(
            f"{src}: has {ds.count} band{'s' * (ds.count > 1)}, but the model was trained on bands {listed} "
            f"of {max(trained.bands)}+ band rasters; give a raster like those, or choose {channels}, e.g. {{arg}}",
            "bands",
            tuple(range(1, channels + 1)),
        )
    bands = options.bands or trained.bands
    options = replace(options, bands=bands)
    if options.value_range is not None:
        return options, {}
    return options, {b: (lo, hi) for b, lo, hi in zip(bands, trained.low, trained.high)}


def _value_mapping(
    ds: DatasetReader,
    value_range: tuple[float, float] | None,
    fixed: dict[int, tuple[float, float]] | None = None,
    bits: int | None = None,
) -> tuple[ValueMapping, np.ndarray]:
    """The mapping of every band to [0, 1], and each band's fill value (its valid mean) in
    unit space, both from a decimated read (an overview where the file has one). ``fixed``:
    (low, high) of some bands (a multispectral model's training mapping). ``bits``: the
    declared bit depth (``NBITS``): an 8-bit-or-narrower range maps whole, a wider one by the
    stretch, and outputs are clamped to it."""
    factor = max(1, math.ceil(max(ds.width, ds.height) / STATS_SIZE))
    shape = (ds.count, math.ceil(ds.height / factor), math.ceil(ds.width / factor))
    sample = _read_source(ds, out_shape=shape, resampling=Resampling.nearest).astype(np.float64)
    valid = [band[m] for band, m in zip(sample, valid_mask(ds, ds.indexes, sample, out_shape=shape))]
    dtype = np.dtype(ds.dtypes[0])
    if value_range is not None:
        method, low, high = "range", [value_range[0]] * ds.count, [value_range[1]] * ds.count
    elif dtype.itemsize == 1 or (bits is not None and bits <= 8):
        bottom, top = value_bounds(dtype, bits)
        method = "dtype range" if bits is None else f"NBITS={bits} range"
        low, high = [bottom] * ds.count, [top] * ds.count
    else:
        method = f"percentile {PERCENTILES[0]}-{PERCENTILES[1]} per band, read decimated by {factor}"
        bounds = [np.percentile(v, PERCENTILES) if v.size else (0.0, 1.0) for v in valid]
        low = [float(lo) for lo, _ in bounds]
        high = [float(hi) if hi > lo else float(lo) + 1.0 for lo, hi in bounds]
    if fixed:
        for band, (lo, hi) in fixed.items():
            low[band - 1], high[band - 1] = float(lo), float(hi)
        method = f"bands {','.join(map(str, fixed))}: the model's training mapping; others: {method}"
    if bits is not None:
        method += f"; outputs clamped to 0..{2**bits - 1} (NBITS={bits})"
    mapping = ValueMapping(method, tuple(low), tuple(high), value_bounds(dtype, bits) if bits is not None else None)
    means = np.array([v.mean() if v.size else lo for v, lo in zip(valid, low)])
    return mapping, (means - np.array(low)) / (np.array(high) - np.array(low))


def _read_bands(
    ds: DatasetReader, indexes: tuple[int, ...], mapping: ValueMapping, fills: np.ndarray, fill: bool = True
) -> Callable[..., np.ndarray]:
    """A window reader for the tiler: bands in [0, 1]; invalid pixels inpainted from the valid
    ones around them (``fillnodata``, reading ``FILL_MARGIN`` more pixels on each side), and
    those beyond ``FILL_DISTANCE`` of any set to the band's mean. ``fill=False``: left as read."""

    def read(top: int, bottom: int, left: int, right: int, strip: tuple[int, int] | None = None) -> np.ndarray:
        m = FILL_MARGIN if fill else 0
        t, b, l, r = max(top - m, 0), min(bottom + m, ds.height), max(left - m, 0), min(right + m, ds.width)
        window = Window(l, t, r - l, b - t)
        data = _read_source(ds, list(indexes), window=window).astype(np.float64)
        unit = mapping.to_unit(data, indexes)
        if fill:
            valid = valid_mask(ds, indexes, data, window)
            inside = valid[:, top - t : top - t + bottom - top, left - l : left - l + right - left]
            if strip is not None and not inside.all():  # inpainted pixels: as the whole-scene run's strip makes them
                return read(top, bottom, *strip)[:, :, left - strip[0] : right - strip[0]]
            for k, band_valid in enumerate(valid):
                if band_valid.all():
                    continue
                band = np.where(band_valid, unit[k], 0).astype(np.float32)
                if band_valid.any():
                    band = fillnodata(
                        band, band_valid.astype(np.uint8), max_search_distance=FILL_DISTANCE, smoothing_iterations=0
                    )
                    reached = fillnodata(band_valid.astype(np.float32), band_valid.astype(np.uint8),
                                         max_search_distance=FILL_DISTANCE, smoothing_iterations=0) > 0  # fmt: skip
                else:
                    reached = band_valid
                unit[k] = np.where(reached | band_valid, band, np.float32(fills[indexes[k] - 1]))
        return unit[:, top - t : top - t + bottom - top, left - l : left - l + right - left]

    return read


def _write_block(
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
            lr = _read_source(ds, list(indexes), window=window)
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
            lr_mask = _read_source(ds, how="dataset_mask", window=window)
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


def _output_profile(ds: DatasetReader, scale: int, compress: str) -> dict:
    """A tiled GeoTIFF ``scale`` times larger, with the input's georeference rescaled: CRS and
    transform, or GCPs (pixel and line times ``scale``), or RPCs (their image offsets and scales)."""
    profile = {
        "driver": "GTiff",
        "dtype": ds.dtypes[0],
        "count": ds.count,
        "width": ds.width * scale,
        "height": ds.height * scale,
        "nodata": ds.nodata,
        "crs": ds.crs,
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "interleave": "band",
        "compress": compress,
        "predictor": 3 if ds.dtypes[0].startswith("float") else 2,
        "BIGTIFF": "IF_SAFER",
    }
    if ds.crs is not None or not ds.transform.is_identity:
        profile["transform"] = ds.transform @ Affine.scale(1 / scale)
    gcps, gcps_crs = ds.gcps
    if gcps:
        profile["gcps"] = [
            GroundControlPoint(row=g.row * scale, col=g.col * scale, x=g.x, y=g.y, z=g.z, id=g.id, info=g.info)
            for g in gcps
        ]
        profile["gcps_crs"] = gcps_crs
    if ds.rpcs is not None:
        profile["rpcs"] = scaled_rpcs(ds.rpcs, scale)
    return profile


def scaled_rpcs(rpcs: RPC, scale: int) -> RPC:
    """RPCs of the image enlarged ``scale`` times. RPC image coordinates count from the
    centre of the first pixel, so line' = scale * line + (scale - 1) / 2 (and samples alike)."""
    values = rpcs.to_dict()
    for axis in ("line", "samp"):
        values[f"{axis}_off"] = rpcs.to_dict()[f"{axis}_off"] * scale + (scale - 1) / 2
        values[f"{axis}_scale"] = rpcs.to_dict()[f"{axis}_scale"] * scale
    return RPC(**values)


_POINTS = ("gcps", "gcps_crs", "rpcs")  # georeference set on the open dataset, not through the profile


def _set_georeference(out: DatasetWriter, profile: dict) -> None:
    """GCPs and RPCs, which ``rasterio.open`` does not take from a profile."""
    if "gcps" in profile:
        out.gcps = (profile["gcps"], profile["gcps_crs"])
    if "rpcs" in profile:
        out.rpcs = profile["rpcs"]


def _copy_metadata(ds: DatasetReader, out: DatasetWriter) -> None:
    """Tags, band descriptions, colour interpretation, scales/offsets/units; no STATISTICS_*."""
    out.update_tags(**_fresh(ds.tags()))
    for i in ds.indexes:
        out.update_tags(i, **_fresh(ds.tags(i)))
        if ds.descriptions[i - 1]:
            out.set_band_description(i, ds.descriptions[i - 1])
    out.colorinterp = ds.colorinterp
    out.scales, out.offsets, out.units = ds.scales, ds.offsets, ds.units


def _fresh(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if not k.startswith("STATISTICS_")}


def _provenance(
    model: Resampler,
    model_file: str | os.PathLike | None,
    tiling: Tiling,
    mapping: ValueMapping,
    groups: list[tuple[tuple[int, ...], str]],
) -> dict[str, str]:
    from fatsr.version import __version__

    return {
        "FATSR_VERSION": __version__,
        "FATSR_MODEL": model.info.name,
        "FATSR_MODEL_SHA256": _sha256(Path(model_file)) if model_file is not None else "unknown",
        "FATSR_SCALE": str(model.scale),
        "FATSR_TILE": str(tiling.tile),
        "FATSR_OVERLAP": str(tiling.overlap),
        "FATSR_SEED": "" if model.info.seed is None else str(model.info.seed),
        "FATSR_VALUE_MAPPING": mapping.describe(),
        "FATSR_BANDS": json.dumps({",".join(map(str, idx)): kind for idx, kind in groups}),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
