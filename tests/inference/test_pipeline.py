"""The one pipeline and the one loader: fatsr.upscale and `fatsr upscale` give the same bytes;
every model kind follows the contract; the tiler asks the model for its size rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import fatsr
from fatsr.cli import main
from fatsr.errors import ArgumentError, FatsrError
from fatsr.inference.pipeline import Upscaler
from fatsr.inference.tiling import Tiling, upscale_tiled
from fatsr.models.bicubic import BicubicModel
from fatsr.models.contract import ModelInfo
from fatsr.models.fat import FAT
from fatsr.models.files import save_model
from fatsr.models.loading import load_model
from fatsr.models.wrapper import SRModel

HARBOR = Path(__file__).resolve().parents[2] / "examples" / "harbor55.png"  # UC Merced val harbor55


@pytest.fixture(scope="module")
def lr_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lr") / "lr.png"
    with Image.open(HARBOR) as im:
        Image.fromarray(np.asarray(im.convert("RGB"))[20:70, 30:100].copy()).save(path)  # 70x50, 3x2 tiles of 36
    return path


def test_api_and_cli_give_the_same_bytes_with_tile_36(tmp_path, lr_png, model_file):
    api = tmp_path / "api.png"
    assert fatsr.upscale(lr_png, model_file, tile=36, output=api) == api
    cli = tmp_path / "cli.png"
    assert main(["upscale", str(lr_png), "--model", str(model_file), "--tile", "36", "-o", str(cli)]) == 0
    assert api.read_bytes() == cli.read_bytes()
    # an array through fatsr.upscale: the same pixels as the command's file
    array = fatsr.upscale(np.asarray(Image.open(lr_png)), model_file, tile=36)
    np.testing.assert_array_equal(array, np.asarray(Image.open(cli)))
    # and both are the tiled computation with overlap = tile // 4, seed 0
    image = np.asarray(Image.open(lr_png))
    expected = Upscaler.prepare(load_model(model_file, seed=0), tile=36, overlap=9).picture(image)
    np.testing.assert_array_equal(np.asarray(Image.open(api)), expected)


def test_one_loader_for_names_paths_and_bicubic(model_file):
    tiny = load_model(model_file)
    assert isinstance(tiny, SRModel) and tiny.info.scale == 2 and tiny.info.in_channels == 3
    rule = tiny.info.size  # window 6: multiples of 12; 24 * 13 >= 144 Fourier tokens (one LSH chunk), 12 * 7 < 144
    assert (rule.multiple_of, rule.minimum, rule.fits(24, 24), rule.fits(12, 12), rule.padded(12, 12)) == (
        12, 24, True, False, (24, 12)
    )  # fmt: skip
    assert tiny.info.seed == 0 and tiny.info.mapping is None
    assert tiny.info.metadata["name"] == "tiny"
    bicubic = load_model("bicubic", scale=3)
    assert isinstance(bicubic, BicubicModel) and bicubic.info.scale == 3
    x = torch.rand(1, 3, 8, 8)
    ref = F.interpolate(x, size=(24, 24), mode="bicubic", align_corners=False, antialias=True)
    torch.testing.assert_close(bicubic(x), ref)
    if fatsr.default_model_path() is not None:
        assert load_model("default").info.name == load_model(None).info.name
    with pytest.raises(ArgumentError, match=r"x2 model but scale=4"):
        load_model(model_file, scale=4)


def test_the_tiler_asks_the_model_for_its_size_rule(tmp_path, model_file):
    six = load_model(model_file)  # window 6: tiles of a multiple of 12
    image = np.random.default_rng(0).random((3, 40, 40), dtype=np.float32)
    with pytest.raises(ArgumentError, match=r"tile=30: must be a positive multiple of 12"):
        upscale_tiled(six, image, Tiling(30, 6))
    path = tmp_path / "four.safetensors"
    save_model(path, FAT(dim=8, num_blocks=1, num_layers=1, num_heads=2, window_size=4, scale=2), name="four")
    four = load_model(path)  # window 4: a multiple of 8
    assert four.info.size.multiple_of == 8
    upscale_tiled(four, image, Tiling(32, 8))
    with pytest.raises(ArgumentError, match=r"multiple of 8"):
        upscale_tiled(four, image, Tiling(36, 9))
    upscale_tiled(BicubicModel(2), image, Tiling(30, 6))  # no rule: any tile


def test_precision_is_checked_in_one_place(model_file):
    with pytest.raises(ArgumentError, match=r"precision='float16' runs on CUDA or MPS.*precision='bfloat16'"):
        fatsr.upscale(np.zeros((8, 8, 3), np.uint8), model_file, device="cpu", precision="float16")
    with pytest.raises(FatsrError, match="choose float32, bfloat16 or float16"):
        Upscaler.prepare(model_file, precision="half")


def test_cli_spells_library_arguments_as_flags():
    err = ArgumentError("{arg} runs on CUDA; use {cpu}", "precision", "float16", cpu=("precision", "bfloat16"))
    from fatsr.cli.flags import flag_of

    assert str(err) == "precision='float16' runs on CUDA; use precision='bfloat16'"
    assert err.render(flag_of) == "--fp16 runs on CUDA; use --bf16"
    assert ArgumentError("{arg}: no", "seed", 5).render(flag_of) == "--seed 5: no"
    assert ArgumentError("{arg}: no", "channels_last", True).render(flag_of) == "--channels-last: no"


def test_each_command_spells_an_argument_as_its_own_flag(tmp_path, capsys):
    from fatsr.cli.flags import flag_of

    assert flag_of("value_range", (10.0, 5.0)) == "--value-range 10 5"  # fatsr train
    for command in ("upscale", "compare"):
        assert flag_of("value_range", (10.0, 5.0), command) == "--range 10 5"
    assert flag_of("model", "x.safetensors", "info") == "x.safetensors"  # a positional argument
    assert ArgumentError("pass {arg}", "degradation", None).render(flag_of) == "pass --degradation"
    assert str(ArgumentError("pass {arg}", "degradation", None)) == "pass degradation"
    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(image)
    assert main(["upscale", str(image), "-o", str(tmp_path / "out.png"), "--range", "10", "5"]) == 2
    assert capsys.readouterr().err == "error: --range 10 5: LO must be below HI\n"
    assert not (tmp_path / "out.png").exists()


def test_every_model_kind_describes_itself(model_file):
    for model in (load_model(model_file), BicubicModel(4)):
        assert isinstance(model.info, ModelInfo) and model.info.scale == model.scale


def test_wrapped_argument_errors_keep_their_flags(tmp_path):
    from fatsr.cli import message
    from fatsr.errors import within
    from fatsr.io import write_image

    path = tmp_path / "{x}.png"  # braces in a path are text, not a field
    write_image(path, np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(FatsrError) as err:
        write_image(path, np.zeros((4, 4, 3), np.uint8))
    wrapped = within(err.value, "scene: ", "; try again")
    assert str(wrapped) == f"scene: {path} exists; pass overwrite=True to replace it; try again"
    assert message(wrapped) == f"scene: {path} exists; pass --overwrite to replace it; try again"
