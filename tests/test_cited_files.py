"""The files and Python names that the code and docs cite exist: repository paths
(``docs/training.md``, ``configs/recipes/fatsr-x4.yaml``, ``inference/raster.py`` in the
package, ...) and dotted names (``fatsr.inference.windows.BBox``). Paths a user supplies
(``runs/...``, ``UCMerced/train``, a data folder beside the clone) start with no folder of the repository
and are not looked at."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = [ROOT / "README.md"] + [
    path
    for folder in ("src", "scripts", "benchmarks", "configs", "docs")
    for path in sorted((ROOT / folder).rglob("*"))
    if path.suffix in (".py", ".md", ".yaml", ".yml", ".sh", ".txt")
    and not any(part == "__pycache__" or part.endswith(".egg-info") for part in path.parts)  # built, not written
]
FOLDERS = ("benchmarks", "configs", "constraints", "docs", "examples", "scripts", "src", "tests", ".ci")
SUBPACKAGES = ("cli", "data", "evaluation", "inference", "models", "training")  # of src/fatsr
REPO_PATH = re.compile(rf"(?<![\w./$-])((?:{'|'.join(re.escape(f) for f in FOLDERS)})/[\w.*{{}}<>/-]*[\w*}}>])")
MODULE_PATH = re.compile(rf"(?<![\w./$-])((?:{'|'.join(SUBPACKAGES)})/\w+\.py)\b")
DOTTED = re.compile(r"(?<![\w./-])fatsr(?:\.[A-Za-z_]\w*)+")
PLACEHOLDER = re.compile(r"[*{<]|(?:^|/)[A-Z][A-Z_]*(?:\.\w+)?$")  # a glob, {name}, <name> or NAME
# Cited paths that belong to other projects, by the file that cites them.
ELSEWHERE = {
    "configs/experiments/satellite-sources.md": {  # inside the sdists and repositories the scenes come from
        "tests/samples/test.tar.bz2",
        "tests/data/lbg/.../*_B{30",
        "tests/data/LC08_232066_20190727.tif",
        "docs/source/user_guide/data/LC80030172015001LGN00_B{4",
    },
    "src/fatsr/models/fat.py": {"models/FAT.py", "models/FSSA.py"},  # the published code (fengyanzi/FAT)
}
NOT_NAMES = {"fatsr.exe"}  # the command's file name on Windows


def _citations(pattern: re.Pattern[str]) -> dict[str, set[str]]:
    """Each text ``pattern`` finds in the scanned files -> the files citing it (others' paths left out)."""
    found: dict[str, set[str]] = {}
    for path in SCANNED:
        name = path.relative_to(ROOT).as_posix()
        for match in pattern.finditer(path.read_text(encoding="utf-8")):
            cited = match.group(match.lastindex or 0)
            if cited not in ELSEWHERE.get(name, ()):
                found.setdefault(cited, set()).add(name)
    return found


def _exists(cited: str, base: Path) -> bool:
    """Whether ``cited`` names a file or folder under ``base``; a path with a placeholder or glob
    counts when the folder before it exists (and a glob matches a file there)."""
    if (base / cited).exists() or not PLACEHOLDER.search(cited):
        return (base / cited).exists()
    fixed = re.split(r"[*{<]|(?:^|/)[A-Z][A-Z_]*(?:\.\w+)?$", cited, maxsplit=1)[0]
    folder = base / fixed.rsplit("/", 1)[0]
    if "*" in cited and "{" not in cited and "<" not in cited:
        return any(base.glob(cited))
    return folder.is_dir()


def test_the_scan_sees_the_citations():
    """The patterns find what they are for (a broken pattern would pass every other test)."""
    assert "docs/training.md" in _citations(REPO_PATH)
    assert "inference/raster.py" in _citations(MODULE_PATH)
    assert "fatsr.inference.windows.BBox" in _citations(DOTTED)
    assert not _exists("docs/no-such-page.md", ROOT) and _exists("docs/models/NAME.md", ROOT)
    assert _exists("configs/*.yaml", ROOT) and not _exists("configs/*.json", ROOT)


def test_cited_repository_paths_exist():
    missing = {cited: sorted(files) for cited, files in _citations(REPO_PATH).items() if not _exists(cited, ROOT)}
    assert missing == {}


def test_cited_package_modules_exist():
    package = ROOT / "src" / "fatsr"
    missing = {cited: sorted(files) for cited, files in _citations(MODULE_PATH).items() if not _exists(cited, package)}
    assert missing == {}


def _resolves(dotted: str) -> bool:
    """Whether ``dotted`` is a module of the package or a name in one."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:end]))
        except ModuleNotFoundError:
            continue
        for part in parts[end:]:
            if not hasattr(found, part):
                return False
            found = getattr(found, part)
        return True
    return False


def test_cited_python_names_exist():
    pytest.importorskip("xarray")  # fatsr.inference.xarray is cited
    cited = _citations(DOTTED)
    missing = {name: sorted(files) for name, files in cited.items() if name not in NOT_NAMES and not _resolves(name)}
    assert missing == {}
