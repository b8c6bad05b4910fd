"""Where the benchmarks find their real inputs.

Each benchmark takes its input folder or file as an argument; the default is the project's
data folder beside the repository (``../shared/data``, a development convenience that a clone
does not have). A missing input stops the benchmark with one line that says what to give.
"""

from __future__ import annotations

import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def existing(path: Path, what: str, flag: str) -> Path:
    """``path`` if it exists; otherwise print ``error: ...`` and exit with code 2."""
    if not path.exists():
        print(f"error: {path}: no such {what}; give one with {flag}", file=sys.stderr)
        raise SystemExit(2)
    return path
