"""Checks several test modules share (``tests/`` is on the path through its conftest)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from fatsr.cli import main

ROOT = Path(__file__).resolve().parent.parent


def script(name: str) -> ModuleType:
    """The module of ``scripts/NAME.py`` (scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upscale_cli(capsys, *argv: object) -> tuple[int, str, str]:
    """``fatsr upscale ARGV``: (exit code, stdout, stderr)."""
    code = main(["upscale", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str, exit_code: int = 2) -> None:
    """Exit code ``exit_code`` (2: bad input; 1: the machine failed) and exactly one ``error: ...``
    line holding every needle."""
    lines = err.splitlines()
    assert code == exit_code and len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
