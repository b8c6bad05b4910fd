"""``fatsr upscale --dask``: one scene by tile batches, a batch file by file, on Dask workers;
the outputs are the local run's, byte for byte, also when a worker dies mid-run."""

from __future__ import annotations

import logging
import re
import socket
from pathlib import Path

import dask
import numpy as np
import pytest
import rasterio
from affine import Affine
from distributed import Client, LocalCluster

from checks import assert_one_line_error, upscale_cli

MODEL = ("--model", "bicubic", "--no-overviews", "--compress", "zstd", "--other-bands", "network")


def write_scene(path: Path, size: int, seed: int, count: int = 3, nodata: int | None = None) -> Path:
    """A uint8 GeoTIFF (UTM 17N, 0.3 m) of smooth blobs and noise."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (count, size // 16 + 1, size // 16 + 1)).astype(np.float32)
    pixels = np.kron(base, np.ones((1, 16, 16)))[:, :size, :size] + rng.normal(0, 12, (count, size, size))
    pixels = np.clip(pixels, 1, 255).astype(np.uint8)
    if nodata is not None:
        pixels[:, size // 3 : size // 2, size // 4 : size // 2] = nodata
    profile = {
        "driver": "GTiff", "dtype": "uint8", "count": count, "width": size, "height": size, "crs": "EPSG:32617",
        "transform": Affine.translation(400000.0, 3280000.0) @ Affine.scale(0.3, -0.3), "nodata": nodata,
        "tiled": True, "blockxsize": 256, "blockysize": 256,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(pixels)
    return path


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> tuple[Path, Path]:
    """A 1024x1024 one-band scene (through the network as grey) and its local run's output."""
    folder = tmp_path_factory.mktemp("dask-scene")
    src = write_scene(folder / "scene.tif", 1024, 0, count=1)
    code = upscale_cli_plain(src, "-o", folder / "local.tif", *MODEL)
    assert code == 0
    return src, folder / "local.tif"


def upscale_cli_plain(*argv: object) -> int:
    from fatsr.cli import main

    return main(["upscale", *map(str, argv)])


# Loaded by each worker of the cluster (dask's worker preload): the worker process exits when it
# starts its third tile batch, once in all (the marker file says a worker died already).
EXIT_ONCE = """
import os

from distributed.diagnostics.plugin import WorkerPlugin


class ExitOnce(WorkerPlugin):
    def __init__(self):
        self.started = 0

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and "tile_batch" in str(key):
            self.started += 1
            if self.started == 3:
                try:
                    os.close(os.open(MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                except FileExistsError:
                    return
                os._exit(1)


async def dask_setup(worker):
    await worker.plugin_add(ExitOnce(), name="fatsr-test-exit-once")
"""


def test_dask_local_scene_equals_the_local_run_with_a_worker_killed(scene, tmp_path, capsys) -> None:
    """--dask local:2 on the 1024x1024 scene; one worker process exits in the middle of its
    third tile batch; the nanny starts a new one, Dask runs the batch again, and the file is
    the local run's."""
    src, local = scene
    marker = tmp_path / "killed"
    preload = tmp_path / "exit_once.py"
    preload.write_text(f"MARKER = {str(marker)!r}\n" + EXIT_ONCE)
    with dask.config.set({"distributed.worker.preload": [str(preload)]}):
        code, out, err = upscale_cli(capsys, src, "-o", tmp_path / "dask.tif", *MODEL, "--dask", "local:2")
    assert code == 0, err
    assert marker.exists()  # a worker did die
    assert (tmp_path / "dask.tif").read_bytes() == local.read_bytes()
    assert out.strip() == str(tmp_path / "dask.tif")
    # the new worker loads the model once, or not at all when the other one finished first
    assert re.search(r"dask: 2 workers, the model loaded (1|0/1) time\(s\) on each", err), err


def test_dask_local_batch_equals_the_local_run(tmp_path, capsys) -> None:
    """Six files (1 and 3 bands, one with nodata), file by file on two workers."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for k in range(6):
        write_scene(inputs / f"s{k}.tif", 160 + 24 * k, k + 1, count=1 + 2 * (k % 2), nodata=0 if k == 3 else None)
    code, _, err = upscale_cli(capsys, inputs, "-o", tmp_path / "local", *MODEL)
    assert code == 0, err
    code, out, err = upscale_cli(capsys, inputs, "-o", tmp_path / "dask", *MODEL, "--dask", "local:2")
    assert code == 0, err
    written = sorted((tmp_path / "dask").iterdir())
    assert [p.name for p in written] == [f"s{k}.tif" for k in range(6)]
    for path in written:
        assert path.read_bytes() == (tmp_path / "local" / path.name).read_bytes(), path.name
    assert sorted(out.split()) == sorted(map(str, written))
    assert (
        "dask: 2 workers, the model loaded 1 time(s) on each; 6 files" in err
        or "dask: 2 workers, the model loaded 0/1 time(s) on each; 6 files" in err
    ), err


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    ) as running:
        yield running


def test_a_chunked_dataarray_on_workers_loads_the_model_once_per_worker(cluster, tmp_path) -> None:
    """Twelve chunks on two worker processes: each receives the model once; the result is
    the eager one."""
    import rioxarray

    import fatsr
    from fatsr.inference.distributed import worker_figures

    src = write_scene(tmp_path / "s.tif", 192, 3, nodata=0)
    da = rioxarray.open_rasterio(src)
    eager = fatsr.upscale(da, "bicubic", tile=64, overlap=16)
    with Client(cluster) as client:
        before = {w: f["loads"] for w, f in client.run(worker_figures).items()}
        lazy = fatsr.upscale(da.chunk({"y": 48, "x": 64}), "bicubic", tile=64, overlap=16)
        assert lazy.data.npartitions == 12
        assert np.array_equal(client.compute(lazy.data).result(), eager.values)
        loads = [f["loads"] - before.get(w, 0) for w, f in client.run(worker_figures).items()]
    assert sorted(loads) in ([0, 1], [1, 1]), loads  # once per worker that ran chunks, never per chunk


def test_an_interrupted_run_resumes_from_its_partial_file(scene, cluster, tmp_path, monkeypatch, capsys) -> None:
    """The client stops (Ctrl-C) after 20 of the 36 tile batches: no output, the partial file
    and its journal are kept; the same command on the workers resumes and gives the local bytes."""
    import fatsr.inference.distributed as dist
    from fatsr.inference.options import RasterOptions
    from fatsr.inference.raster import upscale_raster

    src, local = scene
    spec = dist.JobSpec("bicubic")
    job = spec.prepare()
    options = RasterOptions(other_bands="network", compress="zstd", overviews=False)  # as MODEL says
    handed, count = dist._result, [0]

    def interrupted(pair, distributed):
        count[0] += 1
        if count[0] > 20:
            raise KeyboardInterrupt
        return handed(pair, distributed)

    monkeypatch.setattr(dist, "_result", interrupted)
    out = tmp_path / "out.tif"
    with dist.connect(cluster.scheduler_address) as client, dist.remote_tiles(client, spec, job.model):
        with pytest.raises(KeyboardInterrupt):
            upscale_raster(src, out, job.model, model_file=job.model_file, tiling=job.tiling, options=options,
                           checkpoint_seconds=0)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.tif.fatsr-partial.json", ".out.tif.fatsr-partial.tif"]
    monkeypatch.undo()
    code, _, err = upscale_cli(capsys, src, "-o", out, *MODEL, "--dask", cluster.scheduler_address)
    assert code == 0, err
    assert f"{out}: resuming an interrupted run at band group 1, panel 1, output row" in err
    assert "warning: the Dask workers run with MALLOC_TRIM_THRESHOLD_ set" in err  # the test's cluster: Dask's default
    assert int(re.search(r"(\d+) tile batches", err).group(1)) < 36  # the finished rows are not redone
    assert out.read_bytes() == local.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]


def test_a_scheduler_that_does_not_answer_is_one_line(tmp_path, capsys) -> None:
    with socket.socket() as s:  # a free port: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = write_scene(tmp_path / "s.tif", 64, 0)
    address = f"tcp://127.0.0.1:{port}"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code, _, err = upscale_cli(capsys, src, "-o", tmp_path / "out" / "s.tif", *MODEL, "--dask", address)
    assert_one_line_error(code, err, f"--dask {address}: no Dask scheduler answered within 1s")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("address", ["local:0", "somewhere:8786"])
def test_a_bad_dask_address_is_one_line(address, tmp_path, capsys) -> None:
    src = write_scene(tmp_path / "s.tif", 64, 0)
    code, _, err = upscale_cli(capsys, src, "-o", tmp_path / "o.tif", *MODEL, "--dask", address)
    assert_one_line_error(code, err, f"--dask {address}: give")
    assert not (tmp_path / "o.tif").exists()


def test_tile_outputs_pass_through_a_private_folder_exactly_and_leave_nothing(monkeypatch) -> None:
    """A worker on the client's machine leaves a batch in the drop folder: the client reads the
    same bits (NaN and -0.0 included) and removes the file; a worker that does not see the
    folder's token (another machine) returns the array itself; the folder goes at the end."""
    import os
    import stat

    from fatsr.inference.distributed import Drop

    batch = np.random.default_rng(0).normal(size=(2, 3, 5, 7)).astype(np.float32)
    batch[0, 0, 0, :2] = np.nan, -0.0
    with Drop.made() as drop:
        folder = Path(drop.folder)
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        left = drop.put(batch)
        assert isinstance(left, tuple) and Path(left[0]).parent == folder
        back = Drop.take(left)
        assert back.dtype == np.float32 and back.tobytes() == batch.tobytes()
        assert sorted(os.listdir(folder)) == [drop.token]
        elsewhere = Drop(drop.folder, "another-token")
        assert elsewhere.put(batch) is batch and Drop.take(batch) is batch
        drop.put(batch)  # never taken (a cancelled batch): removed with the folder
        import fatsr.inference.distributed as dist

        def full(path, mode):  # a full /dev/shm: the file is created, the write fails
            handle = open(path, mode)  # noqa: SIM115
            handle.close()
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(dist, "open", full, raising=False)
        before = set(os.listdir(folder))
        assert drop.put(batch) is batch and set(os.listdir(folder)) == before  # through Dask, nothing left
    assert not folder.exists()
