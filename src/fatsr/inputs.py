"""Inputs named on a command line or in a call: files, folders (their images, sorted) and
glob patterns, expanded to image paths."""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

from fatsr.errors import FatsrError
from fatsr.io import IMAGE_SUFFIXES


def collect_inputs(specs: list[str]) -> list[Path]:
    """Expand files, folders and glob patterns into image paths (first occurrence kept)."""
    if not specs:
        raise FatsrError("no input given; name image files, folders or glob patterns (fatsr upscale scene.png)")
    unique: dict[Path, Path] = {}
    for spec in specs:
        for path in _expand(spec):
            unique.setdefault(path.resolve(), path)
    return list(unique.values())


def _expand(spec: str) -> list[Path]:
    path = Path(spec)
    if path.is_dir():
        try:
            images = _image_files(path.iterdir())
        except OSError as exc:
            raise FatsrError(
                f"{spec}: cannot list this folder ({exc.strerror or exc}); check its permissions"
            ) from None
        if not images:
            raise FatsrError(f"{spec}: no images in this folder (looked for {', '.join(IMAGE_SUFFIXES)})")
        return images
    if path.exists():
        return [path]
    if any(ch in spec for ch in "*?["):
        images = _image_files(Path(p) for p in glob.glob(spec, recursive=True))
        if not images:
            raise FatsrError(f"{spec}: no image files match this pattern")
        return images
    raise FatsrError(f"{spec}: no such file or folder")


def _image_files(paths: Iterable[Path]) -> list[Path]:
    """Regular, non-hidden files with an image suffix, sorted."""
    return sorted(p for p in paths if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
