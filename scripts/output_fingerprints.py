"""SHA-256 of what the shipped models write through the public commands on the test fixtures.

Runs ``fatsr upscale`` (PNG and GeoTIFF inputs, a window, a bbox, --tta, --back-project, a plain
GeoTIFF), ``fatsr evaluate``, ``fatsr compare`` and ``fatsr lam`` with fatsr-x4, fatsr-real-x4,
fatsr-x2 and bicubic, one thread, and prints one line per output: ``<run>/<file> <sha256>``.
JSON reports are hashed by their numbers only (timings, paths, dates and versions left out), a
compare page by its data block (layers as PNG data URIs, scores, names); the rest (PNG, GeoTIFF,
CSV) by its whole bytes. The hashes are of float computations on this CPU kind.

    python scripts/output_fingerprints.py > tests/fixtures/output-fingerprints.txt

tests/test_output_fingerprints.py compares a run against that file: a change that alters any
output shows there.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
PNG = FIXTURES / "ucmerced" / "val48" / "harbor05.png"
HR_FOLDER = FIXTURES / "ucmerced" / "val48"
RGB_TIF = FIXTURES / "rasters" / "RGB.byte_crop512.tif"
SIX_BAND = FIXTURES / "rasters" / "LC08_232066_20190727_sr_int16_6band.tif"
UINT16 = FIXTURES / "rasters" / "LC08_L1TP_224078_20200518_uint16_3band_crop512.tif"
ONE = ["--threads", "1", "-q"]

# (run name, argv): "{out}" stands for the run's folder, "{bbox}" for a bbox of the uint16 raster
RUNS: list[tuple[str, list[str]]] = [
    ("upscale-x4-png", ["upscale", str(PNG), "--model", "fatsr-x4", "-o", "{out}"]),
    ("upscale-real-x4-png", ["upscale", str(PNG), "--model", "fatsr-real-x4", "-o", "{out}"]),
    ("upscale-x2-png-tta", ["upscale", str(PNG), "--model", "fatsr-x2", "--tta", "-o", "{out}"]),
    ("upscale-bicubic-png", ["upscale", str(PNG), "--model", "bicubic", "-o", "{out}"]),
    ("upscale-x4-rgb-tif", ["upscale", str(RGB_TIF), "--model", "fatsr-x4", "-o", "{out}"]),
    ("upscale-x2-uint16-tif", ["upscale", str(UINT16), "--model", "fatsr-x2", "-o", "{out}"]),
    ("upscale-real-x4-6band", ["upscale", str(SIX_BAND), "--model", "fatsr-real-x4", "-o", "{out}"]),
    ("upscale-bicubic-6band", ["upscale", str(SIX_BAND), "--model", "bicubic", "-o", "{out}"]),
    (
        "upscale-x4-window",
        ["upscale", str(RGB_TIF), "--model", "fatsr-x4", "--window", "30", "20", "60", "40", "-o", "{out}"],
    ),
    (
        "upscale-x2-bbox-plain",
        ["upscale", str(UINT16), "--model", "fatsr-x2", "--bbox", "{bbox}", "--no-cog", "-o", "{out}"],
    ),
    (
        "upscale-x2-back-project-no-cog",
        ["upscale", str(RGB_TIF), "--model", "fatsr-x2", "--back-project", "--no-cog", "-o", "{out}"],
    ),
    ("evaluate-x4", ["evaluate", str(HR_FOLDER), "--model", "fatsr-x4", "-o", "{out}"]),
    (
        "evaluate-real-x4-val",
        ["evaluate", str(FIXTURES / "ucmerced" / "val"), "--model", "fatsr-real-x4", "-o", "{out}"],
    ),
    ("evaluate-bicubic", ["evaluate", str(HR_FOLDER), "--model", "bicubic", "-o", "{out}"]),
    ("evaluate-x2-tif", ["evaluate", str(RGB_TIF), "--model", "fatsr-x2", "--border", "2", "-o", "{out}"]),
    ("compare-x4-png", ["compare", "--hr", str(HR_FOLDER), "--model", "fatsr-x4", "-o", "{out}/page.html"]),
    (
        "compare-x2-tif",
        ["compare", str(RGB_TIF), "--model", "fatsr-x2", "--model", "bicubic", "-o", "{out}/page.html"],
    ),
    ("lam-x4", ["lam", str(PNG), "--model", "fatsr-x4", "--steps", "8", "-o", "{out}"]),
]


def _bbox_of_window(path: Path, col: int, row: int, width: int, height: int) -> list[str]:
    """WEST SOUTH EAST NORTH --bbox-crs CRS of a pixel window, in the raster's CRS (inside the
    pixels' edges)."""
    import rasterio

    with rasterio.open(path) as ds:
        west, north = ds.transform @ (col + 0.25, row + 0.25)
        east, south = ds.transform @ (col + width - 0.25, row + height - 0.25)
        crs = ds.crs.to_string()
    return [*(repr(float(v)) for v in (west, south, east, north)), "--bbox-crs", crs]


def _numbers(value: object) -> Iterator[str]:
    """The numbers of a JSON document in order, with their keys; keys naming timings, paths,
    dates or versions are left out."""
    skip = re.compile(r"time|second|path|date|version|file|folder|output|source|hr$|lr$|sr$", re.I)
    if isinstance(value, dict):
        for key, item in value.items():
            if not skip.search(str(key)):
                yield from (f"{key}.{n}" for n in _numbers(item))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from (f"{i}.{n}" for n in _numbers(item))
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        yield repr(value)


def _page_data(html: str) -> str:
    """The compare page's data block (layers as PNG data URIs, scores, names), without the
    command that made it (it names the output's path)."""
    found = re.search(r'<script type="application/json" id="fatsr-data">(.*?)</script>', html, re.S)
    if found is None:
        raise SystemExit("a compare page without its data block")
    return json.dumps(_without(json.loads(found.group(1).replace("<\\/", "</")), "command"), sort_keys=True)


def _without(value: object, key: str) -> object:
    if isinstance(value, dict):
        return {k: _without(v, key) for k, v in value.items() if k != key}
    if isinstance(value, list):
        return [_without(v, key) for v in value]
    return value


def fingerprint(path: Path) -> str:
    if path.suffix == ".json":
        text = "\n".join(_numbers(json.loads(path.read_text())))
        return hashlib.sha256(text.encode()).hexdigest()
    if path.suffix == ".html":
        return hashlib.sha256(_page_data(path.read_text()).encode()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprints(runs: list[tuple[str, list[str]]] = RUNS) -> list[str]:
    """Run each command into a fresh folder; ``<run>/<file> <sha256>`` per output file, sorted."""
    from fatsr.cli import main

    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in runs:
            out = Path(tmp) / name
            out.mkdir()
            if "{bbox}" in argv:
                at = argv.index("{bbox}")
                argv = [*argv[:at], *_bbox_of_window(UINT16, 40, 60, 50, 70), *argv[at + 1 :]]
            command = [a.replace("{out}", str(out)) for a in argv] + ONE
            code = main(command)
            if code != 0:
                raise SystemExit(f"{name}: fatsr {' '.join(command)} exited {code}")
            for path in sorted(p for p in out.rglob("*") if p.is_file()):
                lines.append(f"{name}/{path.relative_to(out)} {fingerprint(path)}")
    return lines


if __name__ == "__main__":
    print("\n".join(fingerprints()))
    sys.exit(0)
