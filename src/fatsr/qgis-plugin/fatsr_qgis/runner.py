"""Runs the ``fatsr`` command for the Processing algorithms. No QGIS import here: the plugin's
algorithms pass callbacks, and the tests drive this module without QGIS."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# fatsr's progress line off a terminal, one per update with -v: "scene.tif: 12/40 tiles (30%), 2.1 tiles/s, ETA 0:00:13"
PROGRESS_LINE = re.compile(r": (\d+)/(\d+) \S+ \(\d+%\)")
STOP_SECONDS = 30.0  # after Cancel, the time fatsr gets to remove its temporary files before it is killed


class FatsrFailed(Exception):
    """fatsr exited with an error; the message is fatsr's one line."""


class Cancelled(Exception):
    """The user cancelled; fatsr was stopped and its output removed."""


def find_fatsr(setting: str | None) -> str:
    """The fatsr command: the provider setting when given, else ``fatsr`` on PATH."""
    if setting:
        if not (os.path.isfile(setting) and os.access(setting, os.X_OK)):
            raise FatsrFailed(
                f"the fatsr command {setting} set in Settings > Options > Processing > Providers > fatsr is not an executable file; "
                "correct it, or empty it to use the fatsr on PATH"
            )
        return setting
    found = shutil.which("fatsr")
    if found is None:
        raise FatsrFailed(
            "the fatsr command is not on PATH; pip install fatsr, then run `fatsr qgis install` or set its path "
            "in Settings > Options > Processing > Providers > fatsr"
        )
    return found


def progress_fraction(line: str) -> float | None:
    """The done share (0..1) a fatsr progress line reports; None for other lines."""
    match = PROGRESS_LINE.search(line)
    if match is None:
        return None
    done, total = int(match.group(1)), int(match.group(2))
    return done / total if total else None


def error_message(stderr: Sequence[str], returncode: int) -> str:
    """fatsr's one-line error (its last ``error:`` line), or the last line it wrote."""
    errors = [line for line in stderr if line.startswith("error:")]
    if errors:
        return errors[-1][len("error:") :].strip()
    lines = [line for line in stderr if line.strip()]
    return lines[-1].strip() if lines else f"fatsr stopped with exit code {returncode}"


def run_fatsr(
    command: Sequence[str],
    *,
    output: Path | None,
    progress: Callable[[float], None],
    cancelled: Callable[[], bool],
    log: Callable[[str], None],
) -> list[str]:
    """Run ``command`` (a fatsr command line, with -v for a progress line per update); report
    its progress lines as fractions and its
    stderr lines to ``log``; return its stdout lines. When ``cancelled()`` turns true, fatsr
    is stopped (SIGTERM: it removes its temporary files), ``output`` is removed if this run made
    it, and so is the resumable partial file fatsr keeps for a GeoTIFF; :class:`Cancelled` is raised. A failure raises :class:`FatsrFailed`."""
    existed = output is not None and output.exists()
    # QGIS's own Python settings are not for fatsr's Python
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
    with subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        encoding="utf-8",
        errors="replace",
        env=env,
    ) as process:
        stdout: list[str] = []
        stderr: list[str] = []
        fractions: list[float] = []

        def read_stderr() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                line = line.rstrip("\n")
                stderr.append(line)
                fraction = progress_fraction(line)
                if fraction is not None:
                    fractions.append(fraction)
                else:
                    log(line)

        def read_stdout() -> None:
            assert process.stdout is not None
            stdout.extend(line.rstrip("\n") for line in process.stdout)

        readers = [threading.Thread(target=read_stderr, daemon=True), threading.Thread(target=read_stdout, daemon=True)]
        for reader in readers:
            reader.start()
        reported = 0
        while process.poll() is None:
            if cancelled():
                _stop(process)
                if output is not None:
                    _remove_partial(output, existed)
                raise Cancelled("cancelled; fatsr was stopped and no output was written")
            while reported < len(fractions):  # reported from this (the algorithm's) thread
                progress(fractions[reported])
                reported += 1
            time.sleep(0.05)
        for reader in readers:
            reader.join()
    for fraction in fractions[reported:]:
        progress(fraction)
    if process.returncode != 0:
        raise FatsrFailed(error_message(stderr, process.returncode))
    return stdout


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM (fatsr cleans up as on Ctrl-C), then SIGKILL if it does not end in time."""
    process.terminate()
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _remove_partial(output: Path, existed: bool) -> None:
    """Remove what a stopped fatsr run leaves for ``output``: the output if this run made it,
    and the hidden partial GeoTIFF and journal that would let the same command resume."""
    made = [] if existed else [output]
    for path in [*made, *(output.with_name(f".{output.name}.fatsr-partial{ext}") for ext in (".tif", ".json"))]:
        path.unlink(missing_ok=True)
