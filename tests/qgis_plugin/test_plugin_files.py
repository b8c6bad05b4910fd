"""The QGIS plugin without QGIS: its runner (progress, errors, Cancel) driven by stand-in
commands, `fatsr qgis build-plugin` and `fatsr qgis install` into a temporary profile."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import textwrap
import threading
import zipfile
from pathlib import Path

import pytest

from fatsr.cli import main
from fatsr.models import zoo

SRC = Path(__file__).resolve().parents[2] / "src" / "fatsr"
PLUGIN = SRC / "qgis-plugin" / "fatsr_qgis"


def load_runner():
    spec = importlib.util.spec_from_file_location("fatsr_qgis_runner", PLUGIN / "runner.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


runner = load_runner()


def fake_fatsr(tmp_path: Path, body: str) -> list[str]:
    """A stand-in for the fatsr command: a Python script."""
    script = tmp_path / "fake_fatsr.py"
    script.write_text(textwrap.dedent(body))
    return [sys.executable, str(script)]


def test_progress_lines_and_errors_are_read_as_fatsr_writes_them():
    assert runner.progress_fraction("in.tif: 12/40 tiles (30%), 2.1 tiles/s, ETA 00:00:13") == pytest.approx(0.3)
    assert runner.progress_fraction("wrote out.tif") is None
    stderr = ["some warning", "error: --tile: must be a positive multiple of 12 (e.g. 96 or 120)"]
    assert runner.error_message(stderr, 2) == "--tile: must be a positive multiple of 12 (e.g. 96 or 120)"
    assert runner.error_message([], 9) == "fatsr stopped with exit code 9"


def test_the_real_progress_line_is_recognised(monkeypatch):
    from fatsr.progress import Progress

    bar = Progress(40, "in.tif")
    bar.done = 12
    assert runner.progress_fraction(bar.line(bar.start + 10)) == pytest.approx(0.3)


def test_run_reports_progress_logs_and_returns_stdout(tmp_path, monkeypatch):
    command = fake_fatsr(
        tmp_path,
        """
        import os, sys
        print("PYTHONPATH" in os.environ, file=sys.stderr)
        for k in (1, 2, 4):
            print(f"in.tif: {k}/4 tiles ({k * 25}%), 1 tiles/s, ETA 00:00:01", file=sys.stderr, flush=True)
        print("out.tif")
        """,
    )
    fractions, logged = [], []
    monkeypatch.setenv("PYTHONPATH", "/usr/share/qgis/python")
    out = runner.run_fatsr(command, output=None, progress=fractions.append, cancelled=lambda: False, log=logged.append)
    assert out == ["out.tif"]
    assert fractions == [0.25, 0.5, 1.0]
    assert logged == ["False"]  # QGIS's Python path is not fatsr's


def test_a_failure_raises_fatsrs_one_line_message(tmp_path):
    command = fake_fatsr(
        tmp_path, 'import sys; print("error: in.tif: not a raster; give a GeoTIFF", file=sys.stderr); sys.exit(2)'
    )
    with pytest.raises(runner.FatsrFailed, match=r"^in.tif: not a raster; give a GeoTIFF$"):
        runner.run_fatsr(command, output=None, progress=print, cancelled=lambda: False, log=print)


def test_cancel_stops_fatsr_and_removes_the_output_it_made(tmp_path):
    output = tmp_path / "out.tif"
    started = tmp_path / "started"
    command = fake_fatsr(
        tmp_path,
        f"""
        import pathlib, time
        pathlib.Path({str(output)!r}).write_bytes(b"half")
        pathlib.Path({str(started)!r}).touch()
        time.sleep(60)
        """,
    )
    begun = threading.Event()

    def cancelled() -> bool:
        begun.set()
        return started.exists()

    with pytest.raises(runner.Cancelled):
        runner.run_fatsr(command, output=output, progress=print, cancelled=cancelled, log=print)
    assert begun.is_set() and started.exists() and not output.exists()


def test_cancel_leaves_an_output_that_existed_before(tmp_path):
    output = tmp_path / "out.tif"
    output.write_bytes(b"the user's")
    command = fake_fatsr(tmp_path, "import time; time.sleep(60)")
    with pytest.raises(runner.Cancelled):
        runner.run_fatsr(command, output=output, progress=print, cancelled=lambda: True, log=print)
    assert output.read_bytes() == b"the user's"


def test_find_fatsr_names_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(runner.FatsrFailed, match="is not an executable file; correct it"):
        runner.find_fatsr(str(tmp_path / "nothing"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(runner.FatsrFailed, match="not on PATH; pip install fatsr"):
        runner.find_fatsr("")


def test_no_qgis_import_in_the_fatsr_package():
    importing = re.compile(r"^\s*(import qgis|from qgis|import processing|from processing)", re.M)
    package = [p for p in SRC.rglob("*.py") if PLUGIN not in p.parents]
    assert package and not [p for p in package if importing.search(p.read_text())]
    assert importing.search((PLUGIN / "algorithms.py").read_text())  # the plugin's files do import it


def test_build_plugin_zip(tmp_path, capsys):
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    assert main(["qgis", "build-plugin", "-o", str(first)]) == 0
    assert main(["qgis", "build-plugin", "-o", str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()  # the same plugin, the same bytes
    with zipfile.ZipFile(first) as archive:
        names = set(archive.namelist())
        shipped = {f"fatsr_qgis/{p.name}" for p in PLUGIN.iterdir() if p.is_file() and p.suffix != ".pyc"}
        assert names == shipped | {"fatsr_qgis/models.json"}
        assert archive.read("fatsr_qgis/runner.py") == (PLUGIN / "runner.py").read_bytes()
        models = json.loads(archive.read("fatsr_qgis/models.json"))
        assert "hasProcessingProvider=yes" in archive.read("fatsr_qgis/metadata.txt").decode()
    assert models == {"models": sorted(zoo.builtin_models()), "default": zoo.default_name() or "default"}
    assert main(["qgis", "build-plugin", "-o", str(first)]) == 2
    assert "exists; pass --overwrite to replace it" in capsys.readouterr().err


def test_install_into_a_profile_keeps_the_other_settings(tmp_path, capsys):
    root = tmp_path / "profiles"
    ini = root / "work" / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[PythonPlugins]\nprocessing=true\n\n[Processing]\nConfiguration\\ACTIVATE_GDAL=true\n\n[UI]\nx=1\n")
    (root / "profiles.ini").write_text("[core]\ndefaultProfile=work\n")
    plugins = root / "work" / "python" / "plugins" / "fatsr_qgis"
    plugins.mkdir(parents=True)
    (plugins / "stale.py").write_text("an earlier version's file")
    assert main(["qgis", "install", "--profiles-dir", str(root)]) == 0  # profiles.ini's default profile
    assert not (plugins / "stale.py").exists()
    assert (plugins / "algorithms.py").read_bytes() == (PLUGIN / "algorithms.py").read_bytes()
    fatsr = Path(sys.executable).with_name("fatsr")
    assert fatsr.is_file()
    assert ini.read_text() == (
        "[PythonPlugins]\nprocessing=true\nfatsr_qgis=true\n\n[Processing]\nConfiguration\\ACTIVATE_GDAL=true\n"
        f'Configuration\\FATSR_COMMAND="{fatsr}"\n\n[UI]\nx=1\n'
    )
    assert main(["qgis", "install", "--profiles-dir", str(root), "--profile", "work"]) == 0  # again: the same
    assert ini.read_text().count("fatsr_qgis=true") == 1
    assert sorted(p.name for p in plugins.parent.iterdir()) == ["fatsr_qgis"]  # no staging folder left
    out = capsys.readouterr().out
    assert f"installed the fatsr plugin in {plugins}" in out and f"the plugin runs {fatsr}" in out


def test_install_finds_the_profiles_as_qgis_does(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("QGIS_CUSTOM_CONFIG_PATH", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["qgis", "install"]) == 0
    profile = tmp_path / ".local" / "share" / "QGIS" / "QGIS3" / "profiles" / "default"
    assert (profile / "python" / "plugins" / "fatsr_qgis" / "__init__.py").is_file()
    assert "fatsr_qgis=true" in (profile / "QGIS" / "QGIS3.ini").read_text()
    monkeypatch.setenv("QGIS_CUSTOM_CONFIG_PATH", str(tmp_path / "custom"))
    assert main(["qgis", "install", "--profile", "p2"]) == 0
    assert (tmp_path / "custom" / "profiles" / "p2" / "python" / "plugins" / "fatsr_qgis" / "runner.py").is_file()
