"""One path for writing files: everything fatsr writes goes through :func:`atomic_write`,
so an interrupted run never leaves a half-written file and nothing of the user's is
overwritten unless they asked for it."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from fatsr.errors import ArgumentError, FatsrError, SystemFailure, os_error_class

try:
    import fcntl
except ImportError:  # Windows: no locks
    fcntl = None  # type: ignore[assignment]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a planted FIFO must not block the open


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    The temporary file has an unpredictable name (``.NAME.<random>.part<suffix>``, created
    exclusively, never through a link). ``.NAME.part<suffix>``, a lock opened without
    following links, is held while it is written: a second run writing the same ``path``
    meanwhile is refused at once (FatsrError). On any exception the temporary file is removed
    and ``path`` is left untouched. The final rename replaces a link at ``path``, never the
    link's target. Raises :class:`FatsrError` if ``path`` exists (or appears meanwhile) and
    ``overwrite`` is false, or if its folder cannot be written.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise ArgumentError(f"{path} exists; pass {{arg}} to replace it", "overwrite", True)
    if path.is_dir():
        raise FatsrError(f"{path} is a folder; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error_class(exc)(
            f"cannot write to {folder}: {exc.strerror or exc}; choose a writable output folder"
        ) from None
    with locked_file(part_path(path), f"{path}: another run is writing it now", remove=True):
        with private_temporary(path) as tmp_path:
            try:
                yield tmp_path
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp_path, 0o666 & ~umask)
                _rename(tmp_path, path, overwrite)
            except OSError as exc:  # a full disk, an I/O error: say which file
                raise write_error(path, exc) from None


@contextlib.contextmanager
def private_temporary(path: Path, suffix: str | None = None) -> Iterator[Path]:
    """A new empty file beside ``path`` with an unpredictable name (``.NAME.<random>.part<suffix>``),
    created exclusively (``mkstemp``: never through a planted link) and locked while it is in
    use, so that :func:`remove_stale_parts` of a concurrent run leaves it alone. Removed on exit
    unless it was renamed away."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=f".part{path.suffix if suffix is None else suffix}", dir=folder
        )
    except OSError as exc:
        raise os_error_class(exc)(
            f"cannot write to {folder}: {exc.strerror or exc}; choose a writable output folder"
        ) from None
    tmp = Path(name)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            if os.lstat(tmp).st_ino == os.fstat(fd).st_ino:
                tmp.unlink()
        os.close(fd)


def write_error(path: str | os.PathLike, exc: BaseException) -> SystemFailure:
    """A library's failure to write ``path`` (torch, safetensors: a full disk, an I/O error) as
    one line."""
    reason = getattr(exc, "strerror", None) or (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    folder = Path(path).parent if str(Path(path).parent) else Path(".")
    with contextlib.suppress(OSError):
        if getattr(exc, "errno", None) != errno.ENOSPC and shutil.disk_usage(folder).free < (64 << 10):
            reason = f"No space left on device, {reason}"  # torch and others say it in their own words
    return SystemFailure(f"{path}: could not write it ({reason}); free some space or choose another place")


def part_path(path: str | os.PathLike) -> Path:
    """The lock :func:`atomic_write` holds while it writes ``path``: ``.NAME.part<suffix>``."""
    path = Path(path)
    return path.with_name(f".{path.name}.part{path.suffix}")


class Busy(FatsrError):
    """Another process holds the lock of an output: it is writing that file now."""


_HELD: dict[Path, int] = {}  # locks this process holds: path -> descriptor


@contextlib.contextmanager
def locked_file(path: Path, busy: str, *, remove: bool = False) -> Iterator[int]:
    """Open (create) ``path`` and hold an exclusive lock on it: FatsrError ``busy...`` at once
    when another process holds it. Yields the descriptor; the lock goes with it on exit
    (``remove``: and the file, if it is still there). Re-entrant: a lock this process already
    holds is simply used."""
    key = Path(os.path.abspath(path))
    if key in _HELD:
        yield _HELD[key]
        return
    while True:
        fd = open_private(path)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.lexists(path) and os.lstat(path).st_ino == os.fstat(fd).st_ino:
                break  # still the file at ``path`` (not one a finishing run just renamed or removed)
        except BlockingIOError:
            os.close(fd)
            raise Busy(f"{busy} (it holds {path.name}); wait for that run to finish or choose another output") from None
        os.close(fd)
    _HELD[key] = fd
    try:
        yield fd
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            if remove and os.lstat(path).st_ino == os.fstat(fd).st_ino:
                os.unlink(path)
        os.close(fd)


def open_private(path: Path) -> int:
    """Open (create) ``path`` read-write without following a link: FatsrError (one line) if it is
    a link, or not a regular file of this user's with one name (a planted hard link, a FIFO,
    another user's file), so nobody can make fatsr write through a name it uses."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _NONBLOCK, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise FatsrError(
                f"{path} is a symbolic link where fatsr keeps a temporary file; nothing was written; remove the link"
            ) from None
        raise FatsrError(
            f"cannot write to {path.parent}: {exc.strerror or exc}; choose a writable output folder"
        ) from None
    st = os.fstat(fd)
    owner = os.geteuid() if hasattr(os, "geteuid") else st.st_uid
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_uid != owner:
        os.close(fd)
        what = (
            "not a regular file"
            if not stat.S_ISREG(st.st_mode)
            else "another user's file"
            if st.st_uid != owner
            else "a file with another name (a hard link)"
        )
        raise FatsrError(f"{path} is {what} where fatsr keeps a temporary file; nothing was written; remove it")
    return fd


def _rename(tmp: Path, path: Path, overwrite: bool) -> None:
    """``tmp`` becomes ``path``; without ``overwrite`` a ``path`` made meanwhile is never replaced."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if path exists, atomically
    except FileExistsError:
        raise ArgumentError(
            f"{path} appeared while it was being written; pass {{arg}} to replace it", "overwrite", True
        ) from None
    except OSError:  # a file system without hard links
        if path.exists():
            raise ArgumentError(
                f"{path} appeared while it was being written; pass {{arg}} to replace it", "overwrite", True
            ) from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def remove_stale_parts(folder: Path, names: list[str] | None = None) -> list[Path]:
    """Remove the temporary files killed runs left in ``folder`` (``.NAME.part*`` and older
    ``.NAME.*.part*`` of ``names``, or of any name), except those a running process holds."""
    removed: list[Path] = []
    wanted = set(names or ())
    try:
        candidates = list(folder.glob(".*.part*"))
    except OSError:
        return removed
    for tmp in candidates:
        stem = tmp.name[1:].split(".part", 1)[0]
        if names is not None and stem not in wanted and stem.rsplit(".", 1)[0] not in wanted:
            continue
        with contextlib.suppress(OSError, FatsrError), locked_file(tmp, "busy"):
            tmp.unlink()
            removed.append(tmp)
    return removed


_BUDGET = os.environ.get("FATSR_MAX_PICTURE_PIXELS", "89478485")
MAX_PICTURE_PIXELS = int(_BUDGET) if _BUDGET.strip().isdigit() else 89_478_485
"""The most pixels a picture read whole may have (Pillow's own default, made a hard limit; the
environment variable FATSR_MAX_PICTURE_PIXELS changes it). A header claiming more (a
decompression bomb, or just a huge PNG) is refused in one line before anything is allocated;
TIFFs over it are streamed window by window as rasters instead (:func:`fatsr.inference.reading.is_raster`)."""
Image.MAX_IMAGE_PIXELS = MAX_PICTURE_PIXELS  # Pillow's guard, wherever else it opens a picture


def check_picture_size(path: str | os.PathLike, height: int, width: int) -> None:
    """FatsrError (one line) when a picture of ``height`` x ``width`` is over the budget."""
    if not _BUDGET.strip().isdigit():
        raise FatsrError(
            f"FATSR_MAX_PICTURE_PIXELS={_BUDGET!r} is not a whole number of pixels; unset it or give e.g. 200000000"
        )
    if height * width > MAX_PICTURE_PIXELS:
        raise _too_big(path, f"{width}x{height} pixels ({height * width / 1e6:.0f} Mpx)")


def _too_big(path: str | os.PathLike, size: str) -> FatsrError:
    return FatsrError(
        f"{path}: {size} is over the {MAX_PICTURE_PIXELS / 1e6:.0f} Mpx fatsr reads whole into memory; "
        "fatsr upscale streams such a picture as a TIFF (gdal_translate IN OUT.tif), other commands need it cut "
        "into smaller pictures; FATSR_MAX_PICTURE_PIXELS raises the limit where the memory is there"
    )


PILLOW_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")  # decoded by Pillow (OpenCV for 16-bit colour)
GDAL_SUFFIXES = (".tif", ".tiff", ".jp2", ".j2k", ".vrt", ".img")  # decoded by GDAL (rasterio)
IMAGE_SUFFIXES = PILLOW_SUFFIXES + GDAL_SUFFIXES  # what folders and glob patterns are searched for


def open_picture(path: str | os.PathLike) -> Image.Image:
    """``Image.open``, with Pillow's decompression-bomb warning and error turned into the one-line
    budget refusal of :func:`check_picture_size`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        claimed = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_big(
            path, f"{int(claimed.group(1)) / 1e6:.0f} Mpx" if claimed else "the size its header claims"
        ) from None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) as shown (EXIF orientation applied) from the file header; FatsrError if unreadable."""
    if Path(path).suffix.lower() not in PILLOW_SUFFIXES:
        opened = _open_raster(Path(path))
        if opened is not None:
            with opened as ds:
                return ds.height, ds.width
    try:
        with open_picture(path) as im:
            turned = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # Orientation: a quarter turn
            return (im.width, im.height) if turned else (im.height, im.width)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise FatsrError(f"{path}: not a readable image ({exc}); replace or remove it") from None


def read_image(path: str | os.PathLike, *, any_dtype: bool = False) -> np.ndarray:
    """Read an image file as an HWC array: uint8 or uint16, with 1, 3 or 4 channels (any
    number of bands from GDAL), turned upright by its EXIF orientation (as viewers show it).

    TIFF, JPEG2000, VRT, ... are decoded by GDAL (rasterio; a palette is expanded by Pillow,
    as for PNG). Pillow decodes PNG, JPEG, ... (and reports truncated or foreign files
    clearly) but reduces 16-bit colour to 8 bits, so those files are decoded by OpenCV instead.
    ``any_dtype``: GDAL rasters of other dtypes (int16, float32, ...) are returned as they are.
    """
    path = Path(path)
    if not path.is_file():
        raise FatsrError(f"{path}: no such file")
    if path.suffix.lower() not in PILLOW_SUFFIXES:
        array = _read_with_rasterio(path, any_dtype)
        if array is not None:
            return array
    try:
        with open_picture(path) as im:
            check_picture_size(path, im.height, im.width)
            sixteen_bit_colour = im.mode in ("RGB", "RGBA") and any("16" in str(t.args) for t in im.tile)
            im.load()
            array = _pil_to_array(ImageOps.exif_transpose(im) or im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        reason = "cannot identify the image format" if isinstance(exc, Image.UnidentifiedImageError) else str(exc)
        raise FatsrError(f"{path}: not a readable image ({reason}); give a PNG, JPEG or TIFF file") from None
    if sixteen_bit_colour:
        array = _read_with_opencv(path)
    return array


def _open_raster(path: Path) -> Any:
    """The rasterio dataset of ``path``, or None where GDAL cannot read it."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioError:
        return None


def _read_with_rasterio(path: Path, any_dtype: bool = False) -> np.ndarray | None:
    """HWC uint8/uint16 (any dtype with ``any_dtype``) from GDAL; None where GDAL cannot read
    it or it has a palette."""
    from rasterio.enums import ColorInterp
    from rasterio.errors import RasterioError

    opened = _open_raster(path)
    if opened is None:
        return None
    with opened as ds:
        if ds.count == 0 or ColorInterp.palette in ds.colorinterp:
            return None
        check_picture_size(path, ds.height, ds.width)
        if len(set(ds.dtypes)) > 1 or not (any_dtype or ds.dtypes[0] in ("uint8", "uint16")):
            raise FatsrError(
                f"{path}: {', '.join(sorted(set(ds.dtypes)))} pixels; this step reads 8- or 16-bit unsigned images"
            )
        try:
            data = ds.read()
        except RasterioError as exc:
            raise FatsrError(
                f"{path}: not a readable image ({str(exc).splitlines()[0]}); replace or remove it"
            ) from None
    return np.ascontiguousarray(data.transpose(1, 2, 0))


def _read_with_opencv(path: Path) -> np.ndarray:
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if array is None:
        raise FatsrError(f"{path}: not a readable image; give a PNG, JPEG or TIFF file")
    if array.ndim == 2:
        return array[:, :, None]
    order = [2, 1, 0, 3][: array.shape[2]]  # OpenCV stores BGR(A)
    return np.ascontiguousarray(array[:, :, order])


def _pil_to_array(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(im)
        if array.dtype != np.uint16:
            if array.min() < 0 or array.max() > 65535:
                raise FatsrError(f"{im.mode} image with values outside 0..65535 is not supported")
            array = array.astype(np.uint16)
    elif im.mode in ("L", "RGB", "RGBA"):
        array = np.asarray(im)
    elif im.mode in ("LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        array = np.asarray(im.convert("RGBA"))
    elif im.mode == "1":
        array = np.asarray(im.convert("L"))
    else:
        array = np.asarray(im.convert("RGB"))
    if array.ndim == 2:
        array = array[:, :, None]
    return np.array(array, copy=True, order="C")  # writable, C-contiguous


def write_image(
    path: str | os.PathLike, array: np.ndarray, overwrite: bool = False, quality: int | None = None
) -> None:
    """Write an HWC uint8/uint16 array (1, 3 or 4 channels) atomically; format from the suffix;
    ``quality`` (1-100) for JPEG and WebP (None: Pillow's default, 75).

    16-bit colour goes through OpenCV (Pillow cannot encode it); everything else through Pillow.
    """
    path = Path(path)
    if array.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"write_image needs uint8 or uint16, got {array.dtype}")
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise FatsrError(f"{path}: unknown image suffix; use .png, .jpg or .tif")
    channels = array.shape[2]
    with atomic_write(path, overwrite=overwrite) as tmp:
        if array.dtype == np.uint16 and channels > 1:
            import cv2

            if fmt not in ("PNG", "TIFF"):
                raise FatsrError(f"{path}: 16-bit colour can be written as PNG or TIFF only")
            order = [2, 1, 0, 3][:channels]
            ok, encoded = cv2.imencode(path.suffix.lower(), np.ascontiguousarray(array[:, :, order]))
            if not ok:
                raise FatsrError(f"{path}: could not encode the image")
            tmp.write_bytes(encoded.tobytes())
        elif array.dtype == np.uint16:
            Image.fromarray(np.ascontiguousarray(array[:, :, 0])).save(tmp, format=fmt)
        else:
            lossy = {"quality": quality} if quality is not None and fmt in ("JPEG", "WEBP") else {}
            Image.fromarray(array[:, :, 0] if channels == 1 else array).save(tmp, format=fmt, **lossy)
