"""`fatsr export --deepness`: the metadata that the Deepness QGIS plugin reads for a
super-resolution model, read back as Deepness 0.6.5 reads it (PUTvision/qgis-plugin-deepness,
tag 0.6.5: src/deepness/processing/models/model_base.py parses each value with json.loads,
capitalizes model_type and matches it with the class name "Superresolution"; the tile size comes
from "tile_size" (its docs' table, docs/source/creators/creators_add_metadata_to_model.rst,
spells it "tiles_size"), "tiles_overlap" is in percent, "resolution" in cm per pixel; the scale
factor is the output side over the input side, superresolution.py), and the graph run under its
contract: one tile (1, C, H, W) of uint8 / 255 in, (1, C, sH, sW) in [0, 1] out."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from fatsr.cli import main
from fatsr.export import deepness_metadata
from fatsr.models.fat import FAT
from fatsr.models.files import save_model
from fatsr.models.loading import load_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TILE = 24


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny x2 model that records a 0.5 m training GSD, and its --deepness export."""
    folder = tmp_path_factory.mktemp("deepness")
    torch.manual_seed(1)
    model = folder / "m.safetensors"
    net = FAT(dim=16, num_blocks=1, num_layers=1, num_heads=2, scale=2)
    save_model(model, net, name="tiny", info={"gsd_m": "0.5", "bands": "red,green,blue"})
    graph = folder / "m.onnx"
    assert main(["export", str(model), "-o", str(graph), "--tile", str(TILE), "--deepness"]) == 0
    return model, graph


def test_metadata_reads_as_deepness_reads_it(exported):
    _, graph = exported
    meta = {p.key: p.value for p in onnx.load(str(graph)).metadata_props}
    assert str(json.loads(meta["model_type"])).capitalize() == "Superresolution"
    assert int(json.loads(meta["tile_size"])) == int(json.loads(meta["tiles_size"])) == TILE
    assert int(json.loads(meta["tiles_overlap"])) == 25  # fatsr upscale's overlap for a 24 tile: 6 pixels
    assert float(json.loads(meta["resolution"])) == 100.0  # LR pixels of 0.5 m x 2 = 1 m = 100 cm
    assert json.loads(meta["standardization_mean"]) == [0.0, 0.0, 0.0]  # Deepness's /255 stays the input
    assert json.loads(meta["standardization_std"]) == [1.0, 1.0, 1.0]
    assert meta["bands"] == "red,green,blue" and meta["deepness_version"] == "0.6.5"
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.shape == [1, 3, TILE, TILE] and inp.type == "tensor(float)"
    assert out.shape == [1, 3, 2 * TILE, 2 * TILE] and out.type == "tensor(float)"
    assert out.shape[-1] / inp.shape[-1] == 2  # Deepness's scale factor


def test_no_resolution_without_a_recorded_gsd(model_file):
    meta = deepness_metadata(load_model(model_file), TILE, 3)
    assert "resolution" not in meta and json.loads(meta["tiles_overlap"]) == 25


def test_the_graph_under_deepness_contract_equals_fatsr_upscale(exported, tmp_path):
    model, graph = exported
    tile = np.random.default_rng(3).integers(0, 256, (TILE, TILE, 3), dtype=np.uint8)
    Image.fromarray(tile).save(tmp_path / "tile.png")
    # Deepness's preprocessing: NHWC uint8 / 255, (x - mean) / std, NCHW, batch 1
    x = (tile[None].astype(np.float32) / 255.0 - 0.0) / 1.0
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {session.get_inputs()[0].name: x.transpose(0, 3, 1, 2)})
    assert y.shape == (1, 3, 2 * TILE, 2 * TILE) and 0.0 <= y.min() and y.max() <= 1.0
    got = np.round(y[0].transpose(1, 2, 0) * 255.0).astype(np.int16)
    for name, model_arg in (("onnx", graph), ("torch", model)):
        argv = ["upscale", str(tmp_path / "tile.png"), "-o", str(tmp_path / f"{name}.png"), "--tile", str(TILE)]
        assert main([*argv, "--model", str(model_arg)]) == 0
    # the same graph through fatsr upscale's onnxruntime backend: the same pixels
    assert np.array_equal(np.asarray(Image.open(tmp_path / "onnx.png")), got)
    # the PyTorch model: equal hash codes are ordered by position in ONNX (fatsr export --help),
    # which moves a few pixels by one level
    difference = np.abs(got - np.asarray(Image.open(tmp_path / "torch.png")).astype(np.int16))
    assert difference.max() <= 1 and (difference == 0).mean() > 0.95, (difference.max(), (difference == 0).mean())


def test_fatsr_upscale_runs_the_one_tile_graph(exported, tmp_path):
    model, graph = exported
    picture = np.random.default_rng(4).integers(0, 256, (40, 52, 3), dtype=np.uint8)
    Image.fromarray(picture).save(tmp_path / "in.png")
    common = ["upscale", str(tmp_path / "in.png"), "--tile", str(TILE)]
    assert main([*common, "-o", str(tmp_path / "onnx.png"), "--model", str(graph)]) == 0  # tiles one at a time
    assert main([*common, "-o", str(tmp_path / "torch.png"), "--model", str(model)]) == 0
    a = np.asarray(Image.open(tmp_path / "onnx.png")).astype(np.int16)
    b = np.asarray(Image.open(tmp_path / "torch.png")).astype(np.int16)
    assert a.shape == b.shape == (80, 104, 3) and np.abs(a - b).max() <= 1
