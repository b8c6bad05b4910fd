"""LPIPS (Zhang et al., CVPR 2018) with the AlexNet and VGG16 backbones, without torchvision.

Weights are read from local files only: the torchvision ImageNet backbone
(``features.N.weight/bias`` keys) and the LPIPS v0.1 linear heads (``linK.model.1.weight``),
both in one folder, by default torch's hub cache (``~/.cache/torch/hub/checkpoints``).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fatsr.errors import ArgumentError, FatsrError
from fatsr.models.vgg import vgg_layers

# torchvision AlexNet features: (in, out, kernel, stride, padding) convs, "R" ReLU, "M" 3x3/2 max pool
_ALEX_LAYERS: tuple[tuple[int, int, int, int, int] | str, ...] = (
    (3, 64, 11, 4, 2), "R", "M", (64, 192, 5, 1, 2), "R", "M", (192, 384, 3, 1, 1), "R",
    (384, 256, 3, 1, 1), "R", (256, 256, 3, 1, 1), "R",
)  # fmt: skip
_VGG16_WIDTHS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
# network -> (torchvision weight file, LPIPS head file, indices of the tapped ReLUs)
NETWORKS: dict[str, tuple[str, str, tuple[int, ...]]] = {
    "alex": ("alexnet-owt-7be5be79.pth", "alex.pth", (1, 4, 7, 9, 11)),
    "vgg": ("vgg16-397923af.pth", "vgg.pth", (3, 8, 15, 22, 29)),
}
# LPIPS's fixed input scaling, applied to images in [-1, 1]
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def _alex_layers() -> list[nn.Module]:
    layers: list[nn.Module] = []
    for item in _ALEX_LAYERS:
        if item == "R":
            layers.append(nn.ReLU())
        elif item == "M":
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
        else:
            assert not isinstance(item, str), item
            cin, cout, k, stride, pad = item
            layers.append(nn.Conv2d(cin, cout, k, stride=stride, padding=pad))
    return layers


class LPIPS(nn.Module):
    """Perceptual distance between NCHW RGB images in [0, 1]; one value per image (lower = closer)."""

    shift: Tensor  # buffers
    scale: Tensor

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net not in NETWORKS:
            raise FatsrError(f"unknown LPIPS network {net!r}; choose one of {', '.join(NETWORKS)}")
        self.net = net
        self.features = nn.Sequential(*(_alex_layers() if net == "alex" else vgg_layers(_VGG16_WIDTHS)))
        self.taps = NETWORKS[net][2]
        widths = [cast(nn.Conv2d, self.features[i - 1]).out_channels for i in self.taps]  # a conv before each ReLU
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in widths)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))

    def _taps(self, x: Tensor) -> list[Tensor]:
        out = []
        # Sequential.__getitem__ is typed Sequential | Module for ints and slices alike
        for i, layer in enumerate(cast(nn.Sequential, self.features[: self.taps[-1] + 1])):
            x = layer(x)
            if i in self.taps:
                out.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, a: Tensor, b: Tensor, valid: Tensor | None = None) -> Tensor:
        """Distance per image; ``valid`` (N, 1, H, W) bool: average each layer's map only where
        its receptive cell holds valid pixels only (masked pixels excluded)."""
        xa, xb = ((x * 2 - 1 - self.shift) / self.scale for x in (a, b))
        pairs = zip(self._taps(xa), self._taps(xb), strict=True)
        total = torch.zeros(a.shape[0], device=a.device)
        for lin, (fa, fb) in zip(self.lins, pairs, strict=True):
            d = lin((fa - fb) ** 2)
            if valid is None:
                total = total + d.mean(dim=(1, 2, 3))
            else:
                m = (F.interpolate(valid.float(), size=d.shape[-2:], mode="area") > 0.999).float()
                total = total + (d * m).sum(dim=(1, 2, 3)) / m.sum(dim=(1, 2, 3)).clamp(min=1)
        return total


def default_weights_dir() -> Path:
    """Torch's hub cache of downloaded checkpoints."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def load_lpips(net: str = "alex", weights_dir: str | os.PathLike | None = None) -> LPIPS:
    """An :class:`LPIPS` (eval mode) with weights from ``weights_dir`` (default: torch's hub cache)."""
    model = LPIPS(net)
    folder = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    backbone_name, head_name, _ = NETWORKS[net]
    missing = [name for name in (backbone_name, head_name) if not (folder / name).is_file()]
    if missing:
        raise ArgumentError(
            f"LPIPS ({net}) needs {' and '.join(missing)} in {folder}; put the torchvision ImageNet "
            f"backbone ({backbone_name}) and the LPIPS v0.1 head ({head_name}) there and pass {{arg}}",
            "weights_dir",
            "FOLDER",
        )
    backbone = _read(folder / backbone_name)
    heads = _read(folder / head_name)
    features = {k.removeprefix("features."): v for k, v in backbone.items() if k.startswith("features.")}
    lins = {k.replace(".model.1.", ".").removeprefix("lin"): v for k, v in heads.items() if k.startswith("lin")}
    try:
        model.features.load_state_dict(features)
        model.lins.load_state_dict(lins)
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[0][:200]
        raise FatsrError(
            f"{folder}: LPIPS ({net}) weights do not fit ({reason}); use the original {net} files"
        ) from None
    return model.eval().requires_grad_(False)


def _read(path: Path) -> dict[str, Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt, truncated or pickled objects: the file must be replaced
        if isinstance(exc, pickle.UnpicklingError):
            reason = "not plain tensors: damaged, or pickled Python objects, which are never loaded"
        else:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise FatsrError(
            f"{path}: not a readable PyTorch weight file ({reason}); use the original weight file"
        ) from None
    if not isinstance(state, dict):
        raise FatsrError(f"{path}: holds no state dict; use the original weight file")
    return state
