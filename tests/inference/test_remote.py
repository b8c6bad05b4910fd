"""Remote rasters and STAC items, served by a local HTTP server that honours Range requests
and counts the bytes it sends: a window reads a fraction of the file and gives the pixels of
the local whole-scene output; network failures are one-line errors that write nothing."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.shutil import copy as gdal_copy
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds

from checks import assert_one_line_error
from checks import upscale_cli as cli
from range_server import range_server

HEIGHT, WIDTH = 512, 4096  # 2 Mpx: past 3072 pixels the value statistics come from a 4x overview
SCALE = 4  # the bicubic model
RUN = ["--model", "bicubic", "--tile", "96"]
CRS = "EPSG:32633"
TRANSFORM = from_origin(500000, 4800000, 10, 10)


def write_cog(path: Path, data: np.ndarray, transform: Affine = TRANSFORM) -> Path:
    """A COG (256-pixel blocks, deflate, overviews) of (bands, rows, cols) uint8 data."""
    plain = path.with_suffix(".plain.tif")
    profile = {"driver": "GTiff", "count": data.shape[0], "height": data.shape[1], "width": data.shape[2]}
    with rasterio.open(plain, "w", **profile, dtype="uint8", crs=CRS, transform=transform) as out:
        out.write(data)
    gdal_copy(plain, path, driver="COG", BLOCKSIZE=256, COMPRESS="DEFLATE", OVERVIEWS="AUTO")
    plain.unlink()
    return path


def texture(seed: int) -> np.ndarray:
    """Blocky random texture with noise: (1, HEIGHT, WIDTH) uint8."""
    rng = np.random.default_rng(seed)
    coarse = np.kron(rng.integers(0, 256, (HEIGHT // 8, WIDTH // 8)), np.ones((8, 8)))
    return np.clip(coarse + rng.normal(0, 8, (HEIGHT, WIDTH)), 0, 255).astype(np.uint8)[None]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The served folder (scene.tif, red/green/blue.tif, coarse.tif at 20 m) and the server."""
    root = tmp_path_factory.mktemp("served")
    write_cog(root / "scene.tif", texture(0))
    for k, name in enumerate(("red", "green", "blue")):
        write_cog(root / f"{name}.tif", texture(k + 1))
    coarse = texture(4)[:, : HEIGHT // 2, : WIDTH // 2]
    write_cog(root / "coarse.tif", coarse, TRANSFORM @ Affine.scale(2))
    with range_server(root) as server:
        yield root, server


@pytest.fixture(scope="module")
def whole(served, tmp_path_factory):
    """The whole-scene output of the local scene.tif (read straight from disk)."""
    root, _ = served
    dst = tmp_path_factory.mktemp("whole") / "whole.tif"
    from fatsr.cli import main

    assert main(["upscale", str(root / "scene.tif"), *RUN, "-o", str(dst)]) == 0
    with rasterio.open(dst) as ds:
        return ds.read(), ds.transform


def read(path: Path) -> tuple[np.ndarray, rasterio.Affine, dict]:
    with rasterio.open(path) as ds:
        return ds.read(), ds.transform, ds.tags()


def cut(image: np.ndarray, col: int, row: int, width: int, height: int) -> np.ndarray:
    return image[:, row * SCALE : (row + height) * SCALE, col * SCALE : (col + width) * SCALE]


def test_window_reads_a_fraction_and_is_the_local_whole_scene_output(capsys, tmp_path, served, whole):
    root, server = served
    size = (root / "scene.tif").stat().st_size
    col, row, width, height = 2000, 150, 200, 200  # 4% of the scene
    code, out, err = cli(capsys, f"{server.url}/window/scene.tif", *RUN, "--window", col, row, width, height,
                         "-o", tmp_path / "aoi.tif")  # fmt: skip
    assert code == 0, err
    got, transform, tags = read(tmp_path / "aoi.tif")
    assert server.sent["/window/scene.tif"] < size / 3, (server.sent["/window/scene.tif"], size)
    assert np.array_equal(got, cut(whole[0], col, row, width, height))
    assert transform == TRANSFORM @ Affine.translation(col, row) @ Affine.scale(1 / SCALE)
    assert tags["FATSR_WINDOW"].startswith("2000 150 200 200")
    assert {path for path in server.asked if path.startswith("/window/")} == {"/window/scene.tif"}  # no sidecar probes
    from rio_cogeo.cogeo import cog_validate

    assert cog_validate(tmp_path / "aoi.tif", quiet=True)[0]


@pytest.mark.parametrize("crs", [CRS, "EPSG:4326"])
def test_bbox_reads_a_fraction_and_is_the_local_whole_scene_output(capsys, tmp_path, served, whole, crs):
    root, server = served
    name = f"bbox-{crs.replace(':', '')}"
    west, south = TRANSFORM @ (1000.4, 300.6)  # a bbox inside pixels: snapped outward to 1000 130 201 171
    east, north = TRANSFORM @ (1200.6, 130.2)
    bbox = transform_bounds(CRS, crs, west, south, east, north) if crs != CRS else (west, south, east, north)
    code, _, err = cli(capsys, f"{server.url}/{name}/scene.tif", *RUN, "--bbox", *bbox, "--bbox-crs", crs,
                       "-o", tmp_path / "aoi.tif")  # fmt: skip
    assert code == 0, err
    got, transform, _ = read(tmp_path / "aoi.tif")
    col, row = ~(transform @ Affine.scale(SCALE)) @ (TRANSFORM.c, TRANSFORM.f)
    col, row = round(-col), round(-row)
    height, width = got.shape[1] // SCALE, got.shape[2] // SCALE
    if crs == CRS:
        assert (col, row, width, height) == (1000, 130, 201, 171)
    else:  # the lon/lat box around the same area covers it: a pixel or so more on each side
        assert col <= 1000 and row <= 130 and col + width >= 1201 and row + height >= 301
        assert col >= 995 and row >= 125 and col + width <= 1206 and row + height <= 306
    assert np.array_equal(got, cut(whole[0], col, row, width, height))
    assert server.sent[f"/{name}/scene.tif"] < (root / "scene.tif").stat().st_size / 3


def item_json(path: Path, url: str, keys: dict[str, str], item_id: str = "S2-test-item") -> Path:
    """A STAC item whose assets (key -> served file) carry eo:bands common names (the file stem)."""
    import pystac
    from pystac.extensions.eo import Band, EOExtension

    bounds = transform_bounds(CRS, "EPSG:4326", *rasterio.transform.array_bounds(HEIGHT, WIDTH, TRANSFORM))
    west, south, east, north = bounds
    geometry = {
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
    }
    item = pystac.Item(item_id, geometry, list(bounds), datetime.datetime(2024, 6, 1, tzinfo=datetime.timezone.utc), {})
    EOExtension.add_to(item)
    for key, file in keys.items():
        asset = pystac.Asset(f"{url}/{file}", media_type=pystac.MediaType.COG, roles=["data"])
        item.add_asset(key, asset)
        EOExtension.ext(asset).bands = [Band.create(name=key, common_name=Path(file).stem)]
    item.save_object(include_self_link=False, dest_href=str(path))
    return path


@pytest.mark.parametrize("by", ["common name", "asset key", "item URL"])
def test_stac_item_stacks_assets_in_order(capsys, tmp_path, served, by):
    root, server = served
    url = f"{server.url}/stac-{by.replace(' ', '')}"
    keys = {"B04": "red.tif", "B03": "green.tif", "B02": "blue.tif"}
    item: Path | str = item_json(tmp_path / "item.json", url, keys)
    if by == "item URL":  # the item itself read over HTTP (an API's item URL need not end in .json)
        item_json(root / "item-url", url, keys)
        item = f"{url}/item-url"
    assets = "B04,B03,B02" if by == "asset key" else "red,green,blue"
    col, row, width, height = 3000, 100, 150, 120
    code, _, err = cli(capsys, item, *RUN, "--assets", assets, "--window", col, row, width, height,
                       "-o", tmp_path / "stac.tif")  # fmt: skip
    assert code == 0, err
    got, transform, tags = read(tmp_path / "stac.tif")
    assert tags["FATSR_STAC_ITEM"] == "S2-test-item" and tags["FATSR_STAC_ASSETS"] == assets
    counts = server.sent
    sent = sum(counts[f"/stac-{by.replace(' ', '')}/{n}.tif"] for n in ("red", "green", "blue"))
    assert sent > 0
    prefix = f"/stac-{by.replace(' ', '')}/"
    asked = {path for path in server.asked if path.startswith(prefix)} - {f"{prefix}item-url"}
    assert asked == {f"{prefix}{n}.tif" for n in ("red", "green", "blue")}  # no sidecar probes
    assert sent < sum((root / f"{n}.tif").stat().st_size for n in ("red", "green", "blue")) / 3
    # the same as the local stack of the three bands, whole scene, cut to the window
    stack = tmp_path / "stack.tif"
    bands = [read(root / f"{n}.tif")[0][0] for n in ("red", "green", "blue")]
    profile = {"driver": "GTiff", "count": 3, "height": HEIGHT, "width": WIDTH, "dtype": "uint8"}
    with rasterio.open(stack, "w", **profile, crs=CRS, transform=TRANSFORM, tiled=True) as out:
        out.write(np.stack(bands))
    code, _, err = cli(capsys, stack, *RUN, "-o", tmp_path / "stack_x4.tif")
    assert code == 0, err
    assert np.array_equal(got, cut(read(tmp_path / "stack_x4.tif")[0], col, row, width, height))
    assert transform == TRANSFORM @ Affine.translation(col, row) @ Affine.scale(1 / SCALE)


@pytest.mark.parametrize(
    ("assets", "needle"),
    [
        ("red,nir,blue", "the item has no asset or eo:bands common name 'nir'; its assets are B04, B03, B02, B8A"),
        ("red,coarse", "S2-test-item: the assets have different resolutions: red (10 x 10), coarse (20 x 20)"),
    ],
)
def test_stac_refusals_are_one_line_and_write_nothing(capsys, tmp_path, served, assets, needle):
    _, server = served
    keys = {"B04": "red.tif", "B03": "green.tif", "B02": "blue.tif", "B8A": "coarse.tif"}
    item = item_json(tmp_path / "item.json", f"{server.url}/refusal", keys)
    out = tmp_path / "out"
    code, _, err = cli(capsys, item, *RUN, "--assets", assets, "-o", out)
    assert_one_line_error(code, err, needle)
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "status", "needle"),
    [
        ("missing.tif", None, "cannot read the remote raster: not found (HTTP 404); check the URL"),
        ("secret.tif", 403, "cannot read the remote raster: access denied (HTTP 403); set the credentials GDAL reads"),
        ("busy.tif", 503, "cannot read the remote raster"),
    ],
)
def test_http_errors_are_one_line_without_credentials(capsys, tmp_path, served, name, status, needle):
    _, server = served
    if status is not None:
        server.force(name, status)
    host = server.url.removeprefix("http://")
    url = f"http://user:hunter2@{host}/errors/{name}?token=abc123"
    code, _, err = cli(capsys, url, *RUN, "--window", 0, 0, 10, 10, "-o", tmp_path / "out.tif")
    assert_one_line_error(code, err, f"http://{host}/errors/{name}?...: ", needle)
    assert "hunter2" not in err and "abc123" not in err
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "5")
    code, _, err = cli(capsys, "http://127.0.0.1:9/scene.tif", *RUN, "-o", tmp_path / "out.tif")
    assert_one_line_error(code, err, "http://127.0.0.1:9/scene.tif: cannot read the remote raster")
    assert list(tmp_path.iterdir()) == []


def test_list_of_urls_with_skip_existing(capsys, tmp_path, served):
    _, server = served
    listing = tmp_path / "list.txt"
    listing.write_text(f"# two scenes\n{server.url}/list/red.tif\n\n{server.url}/list/green.tif\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "red.tif").write_bytes(b"already there")
    code, stdout, err = cli(capsys, f"@{listing}", *RUN, "--window", 10, 10, 20, 20, "-o", out, "--skip-existing")
    assert code == 0, err
    assert stdout.split() == [str(out / "green.tif")]
    assert (out / "red.tif").read_bytes() == b"already there"
    assert read(out / "green.tif")[0].shape == (1, 80, 80)
    asked = server.asked
    assert "/list/green.tif" in asked and "/list/red.tif" not in asked


def test_messages_never_show_credentials():
    from fatsr.inference.sources import failure, public

    assert (
        public("/vsicurl/https://me:pw@host.org:8080/a/b.tif?X-Amz-Signature=s3cr3t")
        == "/vsicurl/https://host.org:8080/a/b.tif?..."
    )
    text = str(
        failure(
            "https://me:pw@host.org/b.tif?sig=s3cr3t", "HTTP error for https://me:pw@host.org/b.tif?sig=s3cr3t: 500"
        )
    )
    assert (
        text
        == "https://host.org/b.tif?...: cannot read the remote raster: the server answered HTTP 500; try again later"
    )


def test_api_remote_window_gives_array_and_profile(served, whole):
    import fatsr

    _, server = served
    data, profile = fatsr.upscale(f"{server.url}/api/scene.tif", "bicubic", tile=96, window=(2000, 150, 200, 200))
    assert np.array_equal(data, cut(whole[0], 2000, 150, 200, 200))
    assert profile["transform"] == TRANSFORM @ Affine.translation(2000, 150) @ Affine.scale(1 / SCALE)


def test_stac_input_needs_assets_and_assets_need_an_item(capsys, tmp_path, served):
    _, server = served
    item = item_json(tmp_path / "item.json", f"{server.url}/needs", {"B04": "red.tif"})
    code, _, err = cli(capsys, item, *RUN, "-o", tmp_path / "out.tif")
    assert_one_line_error(
        code, err, "item.json: a STAC item; choose its assets with --assets, e.g. --assets red,green,blue"
    )
    code, _, err = cli(capsys, f"{server.url}/needs/red.tif", *RUN, "--assets", "red", "-o", tmp_path / "out.tif")
    assert_one_line_error(code, err, "/needs/red.tif: not a readable STAC item (")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["item.json"]
