"""Start-up time of the command line: whole-process wall time of repeated runs of
``fatsr --help``, ``fatsr --version``, ``fatsr models``, ``fatsr info NAME`` (targets: --help
under 0.5 s, models under 1 s) and ``fatsr upscale`` of a 64x64 picture with ``fatsr-x4`` (the
first command a user runs: PyTorch imported, the model loaded), and whether each one imported PyTorch.

    python benchmarks/bench_startup.py [--repeat 10]

Each run is a new ``python -m fatsr`` process (the ``fatsr`` script does the same work); the
median and the slowest of the runs are printed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = (["--help"], ["--version"], ["models"], ["info", "fatsr-x4"])
TARGETS = {"--help": 0.5, "models": 1.0}
PROBE = "import runpy, sys; sys.argv = ['fatsr', *sys.argv[1:]]\ntry:\n    runpy.run_module('fatsr', run_name='__main__')\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules, file=sys.stderr)"


def timed(argv: list[str], repeat: int) -> tuple[list[float], bool]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fatsr", *argv], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    probe = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True)
    return times, probe.stderr.strip().splitlines()[-1] == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=10, help="runs of each command (default 10)")
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "fatsr", "--version"], check=True, capture_output=True)  # warm the cache
    folder = Path(tempfile.mkdtemp(prefix="fatsr-startup-"))
    picture = folder / "small.png"
    subprocess.run([sys.executable, "-c", f"from PIL import Image; Image.new('RGB', (64, 64), (90, 120, 60)).save({str(picture)!r})"],
                   check=True)  # fmt: skip
    upscale = ["upscale", str(picture), "-o", str(folder / "small_x4.png"), "--model", "fatsr-x4", "--overwrite"]
    for argv in [*COMMANDS, upscale]:
        times, torch_imported = timed(argv, args.repeat)
        target = TARGETS.get(argv[0])
        verdict = (
            ""
            if target is None
            else f", target < {target} s: {'met' if statistics.median(times) < target else 'NOT met'}"
        )
        print(
            f"fatsr {'upscale 64x64.png' if argv is upscale else ' '.join(argv):<17} median {statistics.median(times):.3f} s, slowest {max(times):.3f} s "
            f"over {args.repeat} runs; torch imported: {torch_imported}{verdict}"
        )


if __name__ == "__main__":
    main()
