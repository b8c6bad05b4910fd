"""``fatsr upscale --dask ADDRESS``: the work of a run on Dask workers (``pip install 'fatsr[dask]'``).

ADDRESS is a running scheduler (``tcp://host:8786``) or ``local:N``, a ``LocalCluster`` of N
one-thread worker processes that fatsr starts and closes.

* One input (a scene): this process reads the scene, blends and writes it exactly as a local
  run does (:func:`~fatsr.inference.raster.upscale_raster`: the resumable partial GeoTIFF, then
  the COG); only the tile batches go to the workers (:data:`fatsr.inference.tiling.REMOTE_TILES`),
  a few per worker thread ahead of the writer. The batches are the local run's and a batch's
  output does not depend on where it runs, so the file is the local run's, byte for byte. The
  workers need no access to the input; Dask recomputes the batches of a worker that dies.
* Several inputs: file by file, each on one worker (which reads its input and writes its
  output: the workers need the same file system paths as this process).

Each worker process loads the model once (from its name or file, by :class:`JobSpec`) and keeps
it; at the end a ``dask:`` line on stderr says how often each worker loaded it, the time spent in
model calls and each worker's peak memory.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import queue
import resource
import secrets
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fatsr.errors import ArgumentError, FatsrError, SystemFailure
from fatsr.inference.pipeline import JobSpec, Upscaler
from fatsr.inference.tiling import REMOTE_TILES, Runner, _forward
from fatsr.io import Busy
from fatsr.models.contract import Resampler
from fatsr.progress import note

if TYPE_CHECKING:
    from distributed import Client

AHEAD = 2  # tile batches in flight per worker thread: the next one is there when a thread is free
# Dask's nannies start workers with this glibc setting (memory handed back at once), under which
# every large tensor allocation faults its pages in afresh: model calls take about twice the CPU
# (a fatsr-x4 192-pixel tile, one thread: 3.70 vs 1.94 CPU-s). local:N starts its workers without it.
SLOW_MALLOC = "MALLOC_TRIM_THRESHOLD_"


@dataclass
class _Worker:
    """What one worker process holds: prepared jobs, spare model copies for concurrent
    threads, and counts for the summary."""

    jobs: dict[JobSpec, Upscaler] = field(default_factory=dict)
    spares: dict[int, queue.SimpleQueue] = field(default_factory=dict)
    loads: int = 0
    batches: int = 0
    files: int = 0
    model_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


_WORKER = _Worker()


def prepared(spec: JobSpec) -> Upscaler:
    """The job of ``spec`` in this process, prepared (the model loaded) the first time only."""
    with _WORKER.lock:
        if spec not in _WORKER.jobs:
            _WORKER.jobs[spec] = spec.prepare()
            _WORKER.loads += 1
        return _WORKER.jobs[spec]


def count_load() -> None:
    """Count a model received by this process (a DataArray's graph brings its model, see
    :mod:`fatsr.inference.xarray`)."""
    with _WORKER.lock:
        _WORKER.loads += 1


@contextlib.contextmanager
def borrowed(model: Resampler) -> Iterator[Resampler]:
    """``model`` for this thread alone: the model re-seeds its hashing at every call, so two
    threads never share one; a thread that finds none free gets a copy (not a new load)."""
    with _WORKER.lock:
        spares = _WORKER.spares.get(id(model))
        if spares is None:
            spares = _WORKER.spares[id(model)] = queue.SimpleQueue()
            spares.put(model)
    try:
        mine = spares.get_nowait()
    except queue.Empty:
        mine = copy.deepcopy(model)
    try:
        yield mine
    finally:
        spares.put(mine)


@dataclass(frozen=True)
class Drop:
    """A private folder of the client's (``mkdtemp``: mode 0700, an unpredictable name) in
    shared memory, where workers on the client's machine leave tile batch outputs: a 44 MB
    float32 batch costs a third to a half of the CPU through a tmpfs file that it costs
    through Dask's TCP transfer (both ends together). A worker that does not see the folder's ``token`` file
    (another machine, another user) returns its output through Dask."""

    folder: str
    token: str

    @classmethod
    @contextlib.contextmanager
    def made(cls) -> Iterator[Drop]:
        """A new drop folder, removed with what is left in it at the end."""
        shm = Path("/dev/shm")
        folder = tempfile.mkdtemp(prefix="fatsr-dask-", dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None)
        try:
            drop = cls(folder, secrets.token_hex(8))
            with open(os.path.join(folder, drop.token), "xb"):
                pass
            yield drop
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def put(self, array: np.ndarray) -> np.ndarray | tuple[str, tuple[int, ...], str]:
        """On a worker: ``array`` left in the folder as a new file (created exclusively, never
        through a planted link), or itself where the folder is not this worker's to see or has
        no room (a container's /dev/shm is often 64 MB)."""
        if not os.path.isfile(os.path.join(self.folder, self.token)):
            return array
        path = os.path.join(self.folder, secrets.token_hex(16))
        try:
            with open(path, "xb") as file:
                np.ascontiguousarray(array).tofile(file)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(path)
            return array
        return path, array.shape, array.dtype.str

    @staticmethod
    def take(result: np.ndarray | tuple[str, tuple[int, ...], str]) -> np.ndarray:
        """On the client: the array a worker returned, read (and removed) from the folder."""
        if isinstance(result, np.ndarray):
            return result
        path, shape, dtype = result
        try:
            return np.fromfile(path, dtype).reshape(shape)
        finally:
            os.unlink(path)


def tile_batch(
    spec: JobSpec, kind: str, x: np.ndarray, autocast: torch.dtype | None, drop: Drop | None = None
) -> np.ndarray | tuple[str, tuple[int, ...], str]:
    """A worker task: one tile batch through the job's model (``kind`` "model") or its
    :class:`~fatsr.inference.raster.TailSafe` wrapper ("tailsafe"); the output through
    ``drop`` where given (see :class:`Drop`)."""
    from fatsr.inference.resample import TailSafe

    job = prepared(spec)
    start = time.perf_counter()
    with borrowed(job.model) as model:
        out = _forward(TailSafe(model) if kind == "tailsafe" else model, x, job.device, autocast)
    with _WORKER.lock:
        _WORKER.batches += 1
        _WORKER.model_seconds += time.perf_counter() - start
    return out if drop is None else drop.put(out)


def upscale_file(spec: JobSpec, src: Path | str, dst: Path, **how: Any) -> list[str]:
    """A worker task: one input upscaled into ``dst`` as a local run does it (``how``: what
    :meth:`Upscaler.file` takes); returns the warnings to show (a clipped window)."""
    from fatsr.inference.windows import AreaClipped

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AreaClipped)
        prepared(spec).file(src, dst, **how)
    with _WORKER.lock:
        _WORKER.files += 1
    return [str(w.message) for w in caught if issubclass(w.category, AreaClipped)]


def warm(spec: JobSpec) -> None:
    """A worker task: prepare the job (load the model) before the first tile batch comes."""
    prepared(spec)


def worker_figures() -> dict[str, float]:
    """A worker's counts: model loads, tile batches, files, seconds in model calls, CPU seconds
    of the process, peak RSS (GiB)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return {
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "loads": _WORKER.loads,
        "batches": _WORKER.batches,
        "files": _WORKER.files,
        "model_seconds": _WORKER.model_seconds,
        "peak_gib": peak / 2**30,
    }


def _dask() -> Any:
    try:
        import distributed
    except ImportError:
        raise FatsrError("--dask needs Dask: pip install 'fatsr[dask]'") from None
    return distributed


@contextlib.contextmanager
def connect(address: str) -> Iterator[Client]:
    """A client of the scheduler at ``address``, or of a ``local:N`` cluster started (and
    closed at the end) here; FatsrError when it does not answer or has no workers."""
    distributed = _dask()
    import dask

    local = address.startswith("local:")
    if local:
        count = address.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise ArgumentError("{arg}: give local:N with N worker processes, e.g. local:2", "dask", address)
    elif "://" not in address:
        raise ArgumentError(
            "{arg}: give a scheduler's address (tcp://host:8786) or local:N (N worker processes here)",
            "dask",
            address,
        )
    timeout = dask.config.get("distributed.comm.timeouts.connect")
    with contextlib.ExitStack() as stack:
        try:
            if local:
                stack.enter_context(dask.config.set({f"distributed.nanny.pre-spawn-environ.{SLOW_MALLOC}": None}))
                cluster = stack.enter_context(
                    distributed.LocalCluster(
                        n_workers=int(count),
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        silence_logs=logging.CRITICAL,  # a worker's failures reach this process as errors
                    )
                )
                client = stack.enter_context(distributed.Client(cluster))
            else:
                client = stack.enter_context(distributed.Client(address, timeout=timeout))
        except (OSError, TimeoutError) as exc:
            if local:
                raise SystemFailure(f"--dask {address}: the local cluster did not start ({_first_line(exc)})") from None
            raise FatsrError(
                f"--dask {address}: no Dask scheduler answered within {timeout}; start one (dask scheduler, then "
                f"dask worker {address}) or use --dask local:N"
            ) from None
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError):
            raise FatsrError(
                f"--dask {address}: the scheduler has no workers (none joined within {timeout}); start some with "
                f"dask worker {address}"
            ) from None
        if any(client.run(os.environ.get, SLOW_MALLOC).values()):
            note(
                f"warning: the Dask workers run with {SLOW_MALLOC} set (Dask's default), which makes model calls about "
                f"2x slower; start them with distributed.nanny.pre-spawn-environ.{SLOW_MALLOC} set to null in their "
                "Dask configuration (see the fatsr docs, one machine to many)"
            )
        yield client


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


@contextlib.contextmanager
def remote_tiles(client: Client, spec: JobSpec, model: Resampler) -> Iterator[None]:
    """Within: the tile batches of ``model`` (the job's model, alone or under
    :class:`~fatsr.inference.raster.TailSafe`) run on the client's workers; those of other
    resamplers (bicubic, nearest bands) here."""
    from fatsr.inference.resample import TailSafe

    def runner(run_model: Resampler, autocast: torch.dtype | None) -> contextlib.AbstractContextManager[Runner] | None:
        if run_model is model:
            return _farm(client, spec, "model", autocast)
        if isinstance(run_model, TailSafe) and run_model.model is model:
            return _farm(client, spec, "tailsafe", autocast)
        return None

    token = REMOTE_TILES.set(runner)
    try:
        yield
    finally:
        REMOTE_TILES.reset(token)


@contextlib.contextmanager
def _farm(client: Client, spec: JobSpec, kind: str, autocast: torch.dtype | None) -> Iterator[Runner]:
    """A runner (see :func:`~fatsr.inference.tiling.tile_runner`) whose batches are tasks on
    the workers, a few per worker thread submitted ahead, their outputs handed out in order."""
    distributed = _dask()

    def run(jobs: Any) -> Any:
        pending: deque = deque()
        ahead = AHEAD * max(1, sum(client.nthreads().values()))
        try:
            for key, x in jobs:
                pending.append((key, client.submit(tile_batch, spec, kind, x, autocast, drop, pure=False)))
                while len(pending) >= ahead:
                    yield _result(pending.popleft(), distributed)
            while pending:
                yield _result(pending.popleft(), distributed)
        finally:
            client.cancel([future for _, future in pending])

    with Drop.made() as drop:
        yield run


def _result(pair: Any, distributed: Any) -> Any:
    key, future = pair
    try:
        return key, Drop.take(future.result())
    except distributed.KilledWorker:
        raise SystemFailure(
            "dask: the workers computing one tile batch died one after another and Dask gave up on it; see the workers' logs "
            "(out of memory? give each worker more, or run fewer threads per worker)"
        ) from None
    except (OSError, distributed.client.FutureCancelledError) as exc:
        raise SystemFailure(
            f"dask: the scheduler was lost ({_first_line(exc)}); run the same command again to resume"
        ) from None


def summary(figures: dict[str, dict[str, float]], before: dict[str, dict[str, float]]) -> str:
    """One line from the workers' :func:`worker_figures` at the end and at the start of a run:
    workers, model loads per worker, tile batches or files, time in model calls, peak memory."""
    done = {
        worker: {k: v - before.get(worker, {}).get(k, 0) if k != "peak_gib" else v for k, v in f.items()}
        for worker, f in figures.items()
    }
    loads = sorted({int(f["loads"]) for f in done.values()})
    batches = sum(int(f["batches"]) for f in done.values())
    files = sum(int(f["files"]) for f in done.values())
    seconds = sum(f["model_seconds"] for f in done.values())
    cpu = sum(f["cpu_seconds"] for f in done.values())
    peaks = ", ".join(f"{f['peak_gib']:.2f}" for f in done.values())
    work = f"{batches} tile batches, {seconds:.1f} s in model calls" if batches else f"{files} files"
    work += f", {cpu:.1f} CPU-s on the workers"
    return (
        f"dask: {len(done)} workers, the model loaded {'/'.join(map(str, loads))} time(s) on each; {work}; "
        f"peak RSS per worker {peaks} GiB"
    )


def upscale_on_dask(
    address: str,
    spec: JobSpec,
    job: Upscaler,
    pairs: list[tuple[Path | str, Path]],
    *,
    describe: Callable[[FatsrError], str],
    skip_existing: bool = False,
    **how: Any,
) -> None:
    """``fatsr upscale --dask``: one input by tile batches on the workers, several file by
    file (see the module's notes); ``how``: what :meth:`Upscaler.file` takes besides the
    paths. Outputs are printed as they are finished; a failed input is reported and skipped,
    as in a local run (FatsrError at the end)."""
    from tqdm import tqdm

    with connect(address) as client:
        before = client.run(worker_figures)
        if len(pairs) == 1:
            src, dst = pairs[0]
            # each worker loads the model while this process reads the scene's statistics
            ready = [
                client.submit(warm, spec, workers=[worker], allow_other_workers=False, pure=False)
                for worker in client.scheduler_info()["workers"]
            ]
            with remote_tiles(client, spec, job.model):
                job.file(src, dst, **how)
            del ready
            print(dst, flush=True)
        else:
            _spread_files(client, spec, pairs, describe, skip_existing, how, tqdm)
        note(summary(client.run(worker_figures), before))


def _spread_files(client: Any, spec: Any, pairs: Any, describe: Any, skip_existing: Any, how: Any, tqdm: Any) -> None:
    distributed = _dask()
    futures = {client.submit(upscale_file, spec, src, dst, pure=False, **how): (src, dst) for src, dst in pairs}
    failed: list[Path | str] = []
    with tqdm(total=len(pairs), desc="upscale", unit="image", file=sys.stderr, disable=None) as bar:
        for future in distributed.as_completed(futures):
            src, dst = futures[future]
            bar.update(1)
            try:
                for text in future.result():
                    tqdm.write(f"warning: {text}", file=sys.stderr)
            except FatsrError as exc:
                if skip_existing and (isinstance(exc, Busy) or dst.exists()):
                    tqdm.write(f"{dst}: another run is writing it (skipped)", file=sys.stderr)
                    continue
                failed.append(src)
                tqdm.write(f"error: {describe(exc)} (skipped)", file=sys.stderr)
                continue
            except distributed.KilledWorker:
                failed.append(src)
                tqdm.write(f"error: {src}: the workers upscaling it died; see their logs (skipped)", file=sys.stderr)
                continue
            tqdm.write(str(dst), file=sys.stdout)
    if failed:
        names = ", ".join(str(p) for p in failed[:3]) + (f" and {len(failed) - 3} more" if len(failed) > 3 else "")
        raise FatsrError(
            f"{len(failed)} of {len(pairs)} inputs failed ({names}, see above); the other {len(pairs) - len(failed)} were written"
        )
