"""The package's walls: inference runs without loading the trainer."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_inference_does_not_import_training():
    loaded = _modules_after("import fatsr.inference, fatsr.inference.raster, fatsr.inference.arrays")
    assert "fatsr.inference.tiling" in loaded
    assert not {m for m in loaded if m.startswith("fatsr.training")}


def test_public_api_does_not_import_training():
    loaded = _modules_after("import fatsr; fatsr.load_model")
    assert not {m for m in loaded if m.startswith("fatsr.training")}


def test_dask_and_xarray_stay_optional():
    """Dask and xarray are imported by --dask and DataArrays only: not by the package, the
    command line's parser, the raster path, nor an upscale of an array."""
    loaded = _modules_after(
        "import numpy, fatsr, fatsr.inference.raster, fatsr.cli.upscale; from fatsr.cli import build_parser; "
        "build_parser(); fatsr.upscale(numpy.zeros((8, 8), numpy.uint8), 'bicubic')"
    )
    assert "fatsr.inference.tiling" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("dask", "distributed", "xarray", "rioxarray")}
