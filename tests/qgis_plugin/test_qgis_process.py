"""The plugin in QGIS itself: `fatsr qgis install` into a temporary HOME, then qgis_process
lists and runs the algorithms, and a run cancelled through the feedback object leaves nothing.

Needs Debian's qgis and python3-qgis (CI installs them; headless with QT_QPA_PLATFORM=offscreen);
without them these tests are skipped, unless FATSR_REQUIRE_QGIS=1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from fatsr.cli import main


def _qgis_process() -> str | None:
    found = shutil.which("qgis_process")
    if found is None:
        return None
    binary = Path(found).with_name("qgis_process.bin")  # Debian's wrapper adds --noversioncheck, which 3.22 refuses
    return str(binary) if binary.is_file() else found


def _qgis_python() -> str | None:
    """A Python that imports qgis (Debian's python3-qgis is for /usr/bin/python3)."""
    for python in ("/usr/bin/python3", shutil.which("python3")):
        if python and subprocess.run([python, "-c", "import qgis.core"], capture_output=True).returncode == 0:
            return python
    return None


QGIS_PROCESS = _qgis_process()
QGIS_PYTHON = _qgis_python() if QGIS_PROCESS else None
if QGIS_PROCESS is None or QGIS_PYTHON is None:
    reason = "QGIS is not installed (apt-get install qgis python3-qgis)"
    if os.environ.get("FATSR_REQUIRE_QGIS") == "1":
        pytest.fail(f"{reason} (FATSR_REQUIRE_QGIS=1)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="module")
def home(tmp_path_factory, model_file) -> Path:
    """A HOME whose default QGIS profile has the plugin installed by `fatsr qgis install`."""
    home = tmp_path_factory.mktemp("home")
    old = os.environ.copy()
    os.environ.pop("QGIS_CUSTOM_CONFIG_PATH", None)
    os.environ.pop("XDG_DATA_HOME", None)
    os.environ["HOME"] = str(home)
    try:
        assert main(["qgis", "install"]) == 0
    finally:
        os.environ.clear()
        os.environ.update(old)
    return home


def qgis_env(home: Path) -> dict[str, str]:
    # no virtual environment on PATH: QGIS's embedded Python would take it for its own
    runtime = home / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return {"HOME": str(home), "PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(runtime)}


def qgis_process(home: Path, *args: str) -> subprocess.CompletedProcess:
    assert QGIS_PROCESS is not None
    return subprocess.run(
        [QGIS_PROCESS, *args], env=qgis_env(home), capture_output=True, text=True, timeout=600, cwd=home
    )


def write_scene(path: Path, side: int) -> Path:
    rng = np.random.default_rng(side)
    with rasterio.open(path, "w", driver="GTiff", count=3, height=side, width=side + 12, dtype="uint8",
                       crs="EPSG:32617", transform=from_origin(400000, 3300000, 10, 10)) as out:  # fmt: skip
        out.write(rng.integers(0, 256, (3, side, side + 12), dtype=np.uint8))
    return path


def files(folder: Path) -> list[str]:
    """The files in ``folder``, less the .aux.xml that QGIS itself writes beside an input it opens."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".aux.xml"))


def test_qgis_process_lists_the_fatsr_algorithms(home):
    done = qgis_process(home, "list")
    assert done.returncode == 0, done.stderr
    listed = [line.split() for line in done.stdout.splitlines() if line.strip().startswith("fatsr:")]
    assert [words[0] for words in listed] == ["fatsr:compare", "fatsr:upscale"]


def test_qgis_process_upscale_equals_fatsr_upscale(home, tmp_path, model_file):
    scene = write_scene(tmp_path / "scene.tif", 40)
    options = ["--model", str(model_file), "--device", "cpu", "--bands", "3,2,1", "--back-project", "--tile", "24"]
    done = qgis_process(
        home, "run", "fatsr:upscale", "--", f"INPUT={scene}", f"MODEL_FILE={model_file}", "DEVICE=cpu",
        "BANDS=3", "BANDS=2", "BANDS=1", "BACK_PROJECT=true", "TILE=24", f"OUTPUT={tmp_path / 'qgis.tif'}",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert main(["upscale", str(scene), "-o", str(tmp_path / "cli.tif"), *options]) == 0
    assert (tmp_path / "qgis.tif").read_bytes() == (tmp_path / "cli.tif").read_bytes()
    assert files(tmp_path) == ["cli.tif", "qgis.tif", "scene.tif"]


def test_qgis_process_upscale_of_an_extent_equals_fatsr_upscale_bbox(home, tmp_path, model_file):
    scene = write_scene(tmp_path / "scene.tif", 40)  # x 400000..400520, y 3299600..3300000 (EPSG:32617)
    box = ("400105.0", "3299702.0", "400333.0", "3299898.0")  # inside pixels: snapped outward by both
    done = qgis_process(
        home, "run", "fatsr:upscale", "--", f"INPUT={scene}", f"MODEL_FILE={model_file}", "DEVICE=cpu", "TILE=24",
        f"EXTENT={box[0]},{box[2]},{box[1]},{box[3]} [EPSG:32617]", f"OUTPUT={tmp_path / 'qgis.tif'}",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    options = [
        "--model",
        str(model_file),
        "--device",
        "cpu",
        "--tile",
        "24",
        "--bbox",
        *box,
        "--bbox-crs",
        "EPSG:32617",
    ]
    assert main(["upscale", str(scene), "-o", str(tmp_path / "cli.tif"), *options]) == 0
    assert (tmp_path / "qgis.tif").read_bytes() == (tmp_path / "cli.tif").read_bytes()
    with rasterio.open(tmp_path / "cli.tif") as ds:  # the area, snapped outward to whole 10 m pixels, at x2
        assert (ds.width, ds.height) == (2 * 24, 2 * 20) and ds.transform.c == 400100 and ds.transform.f == 3299900


def test_qgis_process_shows_fatsrs_error_and_writes_nothing(home, tmp_path, model_file):
    scene = write_scene(tmp_path / "scene.tif", 40)
    done = qgis_process(
        home, "run", "fatsr:upscale", "--", f"INPUT={scene}", f"MODEL_FILE={model_file}", "TILE=25",
        f"OUTPUT={tmp_path / 'out.tif'}",
    )  # fmt: skip
    assert done.returncode != 0
    assert "--tile 25: must be a positive multiple of 12" in done.stdout + done.stderr
    assert files(tmp_path) == ["scene.tif"]


def test_qgis_process_compare_writes_the_page(home, tmp_path, model_file):
    scene = write_scene(tmp_path / "scene.tif", 48)
    done = qgis_process(
        home, "run", "fatsr:compare", "--", f"INPUT={scene}", f"MODEL_FILE={model_file}", "DEVICE=cpu",
        "REGIONS=2", "POINT=400100,3299800 [EPSG:32617]", f"OUTPUT={tmp_path / 'qgis' / 'page.html'}",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    page = (tmp_path / "qgis" / "page.html").read_bytes()
    # the page records its command (-o included): fatsr compare writes the same bytes over it
    options = ["--model", str(model_file), "--device", "cpu", "--regions", "2", "--region", "400100.0", "3299800.0"]
    assert main(["compare", str(scene), "-o", str(tmp_path / "qgis" / "page.html"), "--overwrite", *options]) == 0
    assert (tmp_path / "qgis" / "page.html").read_bytes() == page
    assert b"400100" in page  # the region at POINT


CANCEL = """
import sys
from pathlib import Path

from qgis.core import QgsApplication, QgsProcessingException, QgsProcessingFeedback

app = QgsApplication([], False)
app.initQgis()
sys.path[:0] = [{plugins!r}, "/usr/share/qgis/python/plugins"]
from processing.core.Processing import Processing
from processing.core.ProcessingConfig import ProcessingConfig

Processing.initialize()
import fatsr_qgis
import processing

plugin = fatsr_qgis.classFactory(None)
plugin.initProcessing()
ProcessingConfig.setSettingValue("FATSR_COMMAND", {fatsr!r})


class CancelAtFirstProgress(QgsProcessingFeedback):
    def setProgress(self, progress):
        super().setProgress(progress)
        print("progress", progress, flush=True)
        if progress > 0:
            self.cancel()


try:
    processing.run("fatsr:upscale", {{"INPUT": {scene!r}, "MODEL_FILE": {model!r}, "DEVICE": "cpu", "TILE": 24,
                                     "OUTPUT": {output!r}}}, feedback=CancelAtFirstProgress())
    print("finished")
except QgsProcessingException as exc:
    print("raised:", exc)
"""


def test_cancel_through_the_feedback_stops_fatsr_and_leaves_no_output(home, tmp_path, model_file):
    scene = write_scene(tmp_path / "scene.tif", 960)  # about 3000 tiles: seconds of work to cancel
    output = tmp_path / "out.tif"
    plugins = home / ".local" / "share" / "QGIS" / "QGIS3" / "profiles" / "default" / "python" / "plugins"
    fatsr = str(Path(sys.executable).with_name("fatsr"))
    script = CANCEL.format(
        plugins=str(plugins), fatsr=fatsr, scene=str(scene), model=str(model_file), output=str(output)
    )
    assert QGIS_PYTHON is not None
    done = subprocess.run(
        [QGIS_PYTHON, "-c", textwrap.dedent(script)], env=qgis_env(home), capture_output=True, text=True, timeout=600
    )
    lines = done.stdout.splitlines()
    assert "raised: cancelled; fatsr was stopped and no output was written" in lines, done.stdout + done.stderr
    progress = [float(line.split()[1]) for line in lines if line.startswith("progress ")]
    assert progress and 0 < progress[-1] < 100  # stopped part-way
    assert files(tmp_path) == ["scene.tif"]  # no output, no temporary or partial file
