"""Progress of long work on stderr: a tqdm bar on a terminal; elsewhere (nohup, SLURM, CI,
a log file) one line at least every ``LOG_SECONDS`` with what, done/total, rate and ETA.
:data:`VERBOSITY` (the command line's -q/-v) silences it or adds a line per update."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

LOG_SECONDS = 30.0
VERBOSITY = 1  # 0: errors only (-q); 1: normal; 2: a line per update and per finished job (-v)


def note(text: str) -> None:
    """A message on stderr (not an error), unless quiet."""
    if VERBOSITY > 0:
        print(text, file=sys.stderr, flush=True)


class Progress:
    """Counts ``total`` units of ``label``'s work; shows nothing when ``label`` is None."""

    def __init__(self, total: int, label: str | None, unit: str = "tile") -> None:
        self.label = label if VERBOSITY > 0 else None
        self.total, self.unit = total, unit
        self.verbose = VERBOSITY > 1 and self.label is not None
        self.terminal = sys.stderr.isatty() and not self.verbose
        self.bar = tqdm(
            total=total, desc=label, unit=unit, leave=False, file=sys.stderr, disable=not (self.label and self.terminal)
        )
        self.done = 0
        self.start = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.bar.update(n)
        self.done += n
        now = time.monotonic()
        if self.label and not self.terminal and (self.verbose or now - self.last >= LOG_SECONDS):
            self.last = now
            print(self.line(now), file=sys.stderr, flush=True)

    def line(self, now: float) -> str:
        """``label: 120/400 tiles (30%), 2.1 tiles/s, ETA 0:02:13``."""
        rate = self.done / max(now - self.start, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if eta < 86400 * 365 else "unknown"
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        return f"{self.label}: {self.done}/{self.total} {self.unit}s{share}, {rate:.3g} {self.unit}s/s, ETA {eta_text}"

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
