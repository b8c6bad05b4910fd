"""``check_dataset``: find what would spoil a training run before it starts.

Every image under the root is decoded. Problems: unreadable files, identical images (same
pixels, wherever they are), HR/LR pairs with a missing partner or whose sizes are not one
integer scale apart, no images at all. Also summarised per folder: count, sizes, bit depths,
band counts. Recognised layouts: the FAT release's ``datasets/train/{HR,LR}`` +
``datasets/test`` and RSSR25's ``train/alter/test/testorigin``.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fatsr.data.datasets import find_images
from fatsr.errors import FatsrError
from fatsr.io import read_image

_SHOWN = 3  # examples listed per line
RSSR25_SETS = ("train", "alter", "test", "testorigin")


@dataclass(frozen=True)
class _Image:
    path: Path
    height: int
    width: int
    kind: str  # "8-bit", "16-bit", or the dtype of other rasters (int16, float32, ...)
    bands: int


@dataclass
class CheckReport:
    """Summary lines, notes, and problems (each kind -> list of descriptions)."""

    layout: str
    lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def problem_count(self) -> int:
        return sum(len(v) for v in self.problems.values())


def _layout(root: Path) -> tuple[str, list[str]]:
    names = {p.name for p in root.iterdir() if p.is_dir()}
    if {"HR", "LR"} <= names and root.name == "train":
        return "FAT release (datasets/train/{HR,LR})", []
    if (root / "train" / "HR").is_dir() or (root / "train" / "GT").is_dir():
        missing = [] if (root / "test").is_dir() else ["no test/ folder beside train/"]
        return "FAT release (datasets/train/{HR,LR}, datasets/test)", missing
    found = [s for s in RSSR25_SETS if s in names]
    if len(found) >= 3:
        notes = ["testorigin/ is RSSR25's real test set; report results on it"]
        notes += [f"RSSR25 folder {s}/ is missing" for s in RSSR25_SETS if s not in names]
        return "RSSR25 (train/alter/test/testorigin)", notes
    return "plain folders", []


def _limited(items: list[str]) -> str:
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def _tally(values: list[str]) -> str:
    """The most common values with their counts."""
    counts = Counter(values).most_common()
    more = f" and {len(counts) - _SHOWN} other values" if len(counts) > _SHOWN else ""
    return ", ".join(f"{v} ({n})" for v, n in counts[:_SHOWN]) + more


def _scan(root: Path, report: CheckReport) -> dict[Path, list[_Image]]:
    """Decode every image; record unreadable files and duplicates."""
    folders: dict[Path, list[_Image]] = {}
    by_digest: dict[str, list[Path]] = defaultdict(list)
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        images = []
        for path in find_images(Path(dirpath)):
            try:
                pixels = read_image(path, any_dtype=True)
            except FatsrError as exc:
                report.problems["unreadable"].append(str(exc))
                continue
            digest = hashlib.sha256(f"{pixels.shape}{pixels.dtype}".encode() + pixels.tobytes()).hexdigest()
            by_digest[digest].append(path)
            h, w, bands = pixels.shape
            kind = f"{pixels.dtype.itemsize * 8}-bit" if pixels.dtype in (np.uint8, np.uint16) else pixels.dtype.name
            images.append(_Image(path, h, w, kind, bands))
        if images:
            folders[Path(dirpath)] = images
    for paths in by_digest.values():
        if len(paths) > 1:
            report.problems["duplicate"].append(" = ".join(str(p.relative_to(root)) for p in paths))
    return folders


def _check_pairs(root: Path, folders: dict[Path, list[_Image]], scale: int | None, report: CheckReport) -> None:
    for folder, images in folders.items():
        lr_dir = folder.parent / "LR"
        if folder.name not in ("HR", "GT") or not lr_dir.is_dir():
            continue  # an HR-only folder is fine: training synthesises its LR
        where = f"{folder.parent.relative_to(root)}/{{{folder.name},LR}}"
        hr = {i.path.stem: i for i in images}
        lr = {i.path.stem: i for i in folders.get(lr_dir, [])}
        for stem in sorted(set(hr) ^ set(lr)):
            side = "HR without LR" if stem in hr else "LR without HR"
            report.problems["unpaired"].append(f"{where}: {side}: {stem}")
        scales = []
        for stem in sorted(set(hr) & set(lr)):
            a, b = hr[stem], lr[stem]
            ratio = a.height // b.height if b.height else 0
            if ratio < 1 or (a.height, a.width) != (b.height * ratio, b.width * ratio) or (scale and ratio != scale):
                want = f"x{scale}" if scale else "an integer scale"
                report.problems["mismatched pair"].append(
                    f"{where}: {stem} HR {a.width}x{a.height}, LR {b.width}x{b.height} (not {want})"
                )
            else:
                scales.append(f"x{ratio}")
        if len(set(scales)) > 1:
            report.problems["mixed scales"].append(f"{where}: {_tally(scales)}")
        report.lines.append(f"{where}: {len(set(hr) & set(lr))} pairs, scale {_tally(scales) or '-'}")


def check_dataset(root: Path, scale: int | None = None) -> CheckReport:
    """Check the dataset under ``root`` (pairs must be ``scale`` apart if given)."""
    if not root.is_dir():
        raise FatsrError(f"{root}: no such folder; give a dataset folder")
    layout, notes = _layout(root)
    report = CheckReport(layout=layout, notes=notes)
    folders = _scan(root, report)
    if not folders and not report.problems:
        report.problems["empty"].append(f"{root}: no images in it or its sub-folders")
    for folder, images in folders.items():
        sizes = _tally([f"{i.width}x{i.height}" for i in images])
        bits = _tally([i.kind for i in images])
        bands = _tally([f"{i.bands} band{'s' if i.bands > 1 else ''}" for i in images])
        report.lines.append(f"{folder.relative_to(root)}: {len(images)} images; sizes {sizes}; {bits}; {bands}")
    _check_pairs(root, folders, scale, report)
    return report


def format_problems(report: CheckReport) -> list[str]:
    """One line per problem kind, with a few examples."""
    return [f"{kind} ({len(items)}): {_limited(items)}" for kind, items in report.problems.items() if items]
