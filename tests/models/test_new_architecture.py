"""Adding an architecture is one module and one registration: this file is that module (a
throwaway network, its config and its record, as ``fatsr/models/cnn.py`` is for the plain CNN),
and the fixture the registration. The public commands then train it, upscale with it, and
save and reload it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file
from torch import Tensor, nn

import fatsr
from fatsr.cli import main
from fatsr.models import registry
from fatsr.models.contract import Architecture, Network, Preset, SizeRule
from fatsr.models.header import safetensors_header

UCMERCED = Path(__file__).resolve().parents[1] / "fixtures" / "ucmerced"


# --- the new architecture: what a newcomer writes in one file --------------------------------


@dataclass(frozen=True)
class ShuffleConfig:
    in_channels: int = 3
    out_channels: int = 3
    width: int = 8
    scale: int = 2

    BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {"width": (1, 64), "scale": (1, 8)}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ShuffleNet(Network):
    """conv -> ReLU -> conv -> pixel shuffle, plus bicubic."""

    def __init__(self, config: ShuffleConfig) -> None:
        super().__init__()
        self.config, self.scale = config, config.scale
        self.head = nn.Conv2d(config.in_channels, config.width, 3, padding=1)
        self.tail = nn.Conv2d(config.width, config.out_channels * config.scale**2, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        y = F.pixel_shuffle(self.tail(F.relu(self.head(x))), self.scale)
        return y + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)


def shuffle_size_rule(config: ShuffleConfig) -> SizeRule:
    return SizeRule(multiple_of=4)  # a rule of its own, to see the trainer and the tiler ask for it


ARCHITECTURE = Architecture(
    name="ShuffleNet",
    config=ShuffleConfig,
    module=ShuffleNet,
    presets={"shuffle-test": Preset(ShuffleConfig(), "a test's throwaway network")},
    size_rule=shuffle_size_rule,
)


# --- the registration, and the public commands -------------------------------------------------


@pytest.fixture
def registered() -> Iterator[Architecture]:
    registry.register(ARCHITECTURE)
    try:
        yield ARCHITECTURE
    finally:
        registry.unregister(ARCHITECTURE.name)


def train_flags(data: Path, run: Path, patch: int) -> list[str]:
    return [
        "train", "--data-dir", str(data), "--save-dir", str(run), "--preset", "shuffle-test", "--scale", "2",
        "--steps", "2", "--batch-size", "2", "--patch-size", str(patch), "--perceptual-weight", "0",
        "--workers", "0", "--device", "cpu", "--no-progress",
    ]  # fmt: skip


def test_a_registered_architecture_trains_upscales_saves_and_reloads(registered, tmp_path, capsys):
    data = tmp_path / "train"
    shutil.copytree(UCMERCED / "train48", data)
    run = tmp_path / "run"
    assert "shuffle-test" in registry.presets() and "shuffle-test (ShuffleNet: a test's throwaway network)" in (
        registry.presets_help()
    )

    # the trainer asks the architecture's size rule
    assert main(train_flags(data, tmp_path / "refused", patch=10)) == 2
    assert "--patch-size 10 does not fit this network: LR patches must be a multiple of 4" in capsys.readouterr().err

    assert main(train_flags(data, run, patch=8)) == 0
    saved = run / "model.safetensors"
    header_config = json.loads(safetensors_header(saved)["__metadata__"]["config"])
    assert header_config == asdict(ShuffleConfig())

    # reloaded: the same network class, the file's tensors as its weights
    model = fatsr.load_model(run)
    assert isinstance(model.network, ShuffleNet) and model.info.size == shuffle_size_rule(ShuffleConfig())
    tensors = load_file(str(saved))
    assert tensors.keys() == model.network.state_dict().keys()
    assert all(torch.equal(v, tensors[k]) for k, v in model.network.state_dict().items())
    assert not all(
        torch.equal(v, registry.build_network("shuffle-test", 2).state_dict()[k]) for k, v in tensors.items()
    )

    # upscaled through the command: the model run on the whole picture, [-1, 1] in and out
    lr = np.asarray(Image.open(next((UCMERCED / "val48").iterdir())).convert("RGB"))[:20, :24]
    Image.fromarray(lr).save(tmp_path / "lr.png")
    out = tmp_path / "sr.png"
    assert main(["upscale", str(tmp_path / "lr.png"), "-o", str(out), "--model", str(saved), "--no-cuda"]) == 0
    network = ShuffleNet(ShuffleConfig())
    network.load_state_dict(tensors)
    x = torch.from_numpy(lr.astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.inference_mode():
        y = (network(x * 2 - 1) + 1) / 2
    expected = np.rint(np.clip(y[0].permute(1, 2, 0).numpy(), 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)

    # `fatsr info` reads it back from the file
    assert main(["info", str(saved)]) == 0
    assert "ShuffleNet" in capsys.readouterr().out


def test_an_unregistered_architecture_is_refused_by_name(registered, tmp_path):
    from fatsr.errors import FatsrError
    from fatsr.models.files import load_network, save_model

    path = tmp_path / "shuffle.safetensors"
    save_model(path, ShuffleNet(ShuffleConfig()), name="shuffle")
    registry.unregister(ARCHITECTURE.name)
    try:
        with pytest.raises(
            FatsrError, match="architecture 'ShuffleNet' is not supported; fatsr runs FAT and ResidualCNN"
        ):
            load_network(path)
    finally:
        registry.register(ARCHITECTURE)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(ARCHITECTURE)
