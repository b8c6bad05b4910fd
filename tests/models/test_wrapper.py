"""SRModel: any size, any of 1/3/4 channels, repeatable, model files round-trip."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import fatsr
from fatsr.errors import FatsrError
from fatsr.models.fat import FAT
from fatsr.models.files import read_metadata, save_model
from fatsr.models.runtime import runtime
from fatsr.models.wrapper import SRModel, pad_reflect


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("m") / "tiny.safetensors"
    save_model(path, FAT(dim=16, num_blocks=1, num_layers=1, num_heads=2, scale=2), name="tiny")
    return path


@pytest.mark.parametrize("size", [(1, 1), (7, 13), (500, 37)])
def test_any_size(tiny_file, size):
    model = fatsr.load_model(tiny_file)
    with torch.inference_mode():
        y = model(torch.rand(1, 3, *size))
    assert y.shape == (1, 3, 2 * size[0], 2 * size[1])
    assert torch.isfinite(y).all()


def test_padding_meets_network_requirements(tiny_file):
    model = fatsr.load_model(tiny_file)
    for h, w in [(1, 1), (12, 12), (13, 25), (500, 37)]:
        ph, pw = model.info.size.padded(h, w)
        assert ph >= h and pw >= w and ph % 12 == 0 and pw % 12 == 0
        assert ph * (pw // 2 + 1) >= 144


def test_pad_reflect_matches_reflection_and_handles_tiny():
    x = torch.arange(12.0).view(1, 1, 3, 4)
    assert torch.equal(pad_reflect(x, 2, 3), F.pad(x, (0, 3, 0, 2), mode="reflect"))
    big = pad_reflect(x, 10, 11)  # more than the image: reflected again
    assert big.shape == (1, 1, 13, 15) and torch.equal(big[..., :3, :4], x)
    one = pad_reflect(torch.ones(1, 1, 1, 1) * 7, 5, 5)
    assert one.shape == (1, 1, 6, 6) and (one == 7).all()


def test_same_seed_same_output_and_seed_matters(tiny_file):
    x = torch.rand(1, 3, 30, 30)
    with torch.inference_mode():
        a = fatsr.load_model(tiny_file, seed=1)(x)
        b = fatsr.load_model(tiny_file, seed=1)(x)
        c = fatsr.load_model(tiny_file, seed=2)(x)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_grey_and_rgba(tiny_file):
    model = fatsr.load_model(tiny_file)
    grey = torch.rand(1, 1, 20, 20)
    rgba = torch.rand(1, 4, 20, 20)
    with torch.inference_mode():
        g = model(grey)
        expected = model(grey.expand(1, 3, 20, 20)).mean(dim=1, keepdim=True)
        out = model(rgba)
    assert g.shape == (1, 1, 40, 40) and torch.allclose(g, expected)
    assert out.shape == (1, 4, 40, 40)
    alpha = F.interpolate(rgba[:, 3:], scale_factor=2, mode="bicubic").clamp(0, 1)
    assert torch.allclose(out[:, 3:], alpha)
    with torch.inference_mode():
        assert torch.allclose(out[:, :3], model(rgba[:, :3]))


def test_model_file_metadata_and_round_trip(tiny_file, tmp_path):
    meta = read_metadata(tiny_file)
    assert meta["architecture"] == "FAT" and meta["scale"] == "2" and meta["name"] == "tiny"
    assert json.loads(meta["config"])["dim"] == 16
    a = fatsr.load_model(tiny_file)
    # the same weights as a published-style .pth (wrapped) load through the same call
    pth = tmp_path / "best.pth"
    torch.save({"params": a.network.state_dict()}, pth)
    b = fatsr.load_model(pth)
    x = torch.rand(1, 3, 24, 24)
    with torch.inference_mode():
        assert torch.equal(a(x), b(x))


def test_the_same_model_is_saved_as_the_same_bytes_by_another_process(tiny_file, tmp_path):
    """safetensors writes the metadata in a random order per process; fatsr's files do not."""
    again = tmp_path / "again.safetensors"
    code = "import sys; from fatsr.models.files import load_network, save_model; "
    code += "save_model(sys.argv[2], load_network(sys.argv[1])[0], name='tiny')"
    subprocess.run([sys.executable, "-c", code, str(tiny_file), str(again)], check=True, timeout=120)
    assert again.read_bytes() == tiny_file.read_bytes()
    size = int.from_bytes(tiny_file.read_bytes()[:8], "little")
    keys = list(json.loads(tiny_file.read_bytes()[8 : 8 + size])["__metadata__"])
    assert keys == sorted(keys) and len(keys) == 6 and (8 + size) % 8 == 0


def test_output_space_matches_network(tiny_file):
    model = fatsr.load_model(tiny_file)
    x = torch.rand(1, 3, 24, 24)
    with torch.inference_mode():
        with runtime(generator=torch.Generator().manual_seed(model.seed)):
            direct = (model.network(x * 2 - 1) + 1) / 2
        assert torch.allclose(model(x), direct)


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(FatsrError, match="not found"):
        fatsr.load_model(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(FatsrError, match="not a readable"):
        fatsr.load_model(bad)
    pth = tmp_path / "bad.pth"
    pth.write_text("not a checkpoint")
    with pytest.raises(FatsrError, match="not a readable PyTorch checkpoint"):
        fatsr.load_model(pth)
    assert isinstance(SRModel, type)
