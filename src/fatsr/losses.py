"""Training losses of FAT: L1, LEV (local extreme values and variance) and a VGG19 perceptual
loss, combined by :class:`FATLoss`. All inputs are NCHW in the network's [-1, 1] space."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fatsr.errors import ArgumentError, FatsrError
from fatsr.models.vgg import vgg_layers

VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = f"https://download.pytorch.org/models/{VGG19_FILE}"
# torchvision's VGG19 "E" configuration: conv widths, "M" = 2x2 max pool.
_VGG19_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
    512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _sorting_network(n: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sort for n (a power of 2) elements: the compare-exchange pairs
    (i < j) that leave any n values in ascending order (63 for n = 16)."""
    pairs, p = [], 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


_SORT16 = _sorting_network(16)


def _sum(tensors: Iterable[Tensor]) -> Tensor:
    """``sum()`` of a non-empty run of tensors (typed by mypy as ``Tensor | int``)."""
    return cast(Tensor, sum(tensors))


def _extreme_mean(planes: list[Tensor], kth: Tensor, sign: int) -> Tensor:
    """Mean of the 4 largest (sign 1) or smallest (sign -1) of 16 planes, whose 4th largest or
    smallest is ``kth``: a sum with weights from comparisons, so the gradient goes to the 4
    values (shared equally among values tied with the 4th)."""
    with torch.no_grad():
        beyond = [(sign * (p - kth)) > 0 for p in planes]
        tied = [p == kth for p in planes]
        share = (4 - sum(b.to(kth.dtype) for b in beyond)) / sum(t.to(kth.dtype) for t in tied)
    return _sum(p * (b + t * share) for p, b, t in zip(planes, beyond, tied, strict=True)) / 4


def lev_maps(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-channel (variance, top-4 mean, bottom-4 mean) maps of LEV.

    Variance: population variance of non-overlapping 4x4 windows. Top/bottom: mean of the
    4 largest / 4 smallest values of every 4x4 window at stride 1, from the 16 shifted views
    of the image put in order by a sorting network (no copy of every window; 4x faster than
    sorting them, forward and backward, on a training batch).
    """
    n, c, h, w = x.shape
    if h < 4 or w < 4:
        raise ValueError(f"LEV needs images of at least 4x4 pixels, got {h}x{w}")
    hb, wb = h // 4, w // 4
    blocks = x[:, :, : hb * 4, : wb * 4].reshape(n, c, hb, 4, wb, 4)
    variance = blocks.var(dim=(3, 5), correction=0)
    planes = [x[:, :, i : h - 3 + i, j : w - 3 + j] for i in range(4) for j in range(4)]
    with torch.no_grad():
        ordered = list(planes)
        for i, j in _SORT16:
            ordered[i], ordered[j] = torch.minimum(ordered[i], ordered[j]), torch.maximum(ordered[i], ordered[j])
    if not (torch.is_grad_enabled() and x.requires_grad):
        return variance, _sum(ordered[12:]) / 4, _sum(ordered[:4]) / 4
    return variance, _extreme_mean(planes, ordered[12], 1), _extreme_mean(planes, ordered[3], -1)


class LEVLoss(nn.Module):
    """LEV = L1(variance maps) + L1(top-4 maps) + L1(bottom-4 maps), each a mean."""

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        with torch.no_grad():
            targets = lev_maps(hr)
        return _sum(F.l1_loss(a, b) for a, b in zip(lev_maps(sr), targets, strict=True))


def _vgg19_layers(last_index: int) -> list[nn.Module]:
    layers = vgg_layers(_VGG19_CFG, inplace_relu=True)
    if not 0 <= last_index < len(layers):
        raise ValueError(f"last_index must be in 0..{len(layers) - 1}, got {last_index}")
    return layers[: last_index + 1]


class VGG19Features(nn.Module):
    """torchvision's VGG19 ``features`` up to and including layer ``last_index``.

    The default 14 ends at conv3_3 before its ReLU. Keys are ``features.N.weight/bias`` as in
    torchvision's ImageNet file, so :meth:`load_state_dict` takes that file's entries.
    """

    def __init__(self, last_index: int = 14) -> None:
        super().__init__()
        self.features = nn.Sequential(*_vgg19_layers(last_index))

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)

    def load_pretrained(self, state: Mapping[str, Tensor]) -> None:
        """Load the entries of a full VGG19 state dict that this truncated stack needs."""
        own = self.state_dict()
        missing = [k for k in own if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
        if missing:
            raise FatsrError(
                f"the VGG19 weights lack or mis-shape {', '.join(missing[:4])}; "
                f"use torchvision's ImageNet file {VGG19_FILE}"
            )
        self.load_state_dict({k: state[k] for k in own})


def _default_vgg19_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure of a foreign file is the user's to fix
        raise FatsrError(f"{path}: not a readable VGG19 state dict ({exc}); replace it with {VGG19_URL}") from None
    if not isinstance(state, Mapping):
        raise FatsrError(f"{path}: not a VGG19 state dict; replace it with {VGG19_URL}")
    return dict(state)


def load_vgg19_state_dict(path: str | os.PathLike | None = None) -> dict[str, Tensor]:
    """The ImageNet VGG19 state dict (torchvision key names) on the CPU.

    Looks at ``path`` if given, else torch hub's ``checkpoints/vgg19-dcbb9e9d.pth``, else tries
    to download it there; raises :class:`FatsrError` naming the file and folder if all fail.
    """
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FatsrError(f"VGG19 weights {path}: no such file; download {VGG19_URL} to it")
        return _read_state_dict(path)
    default = _default_vgg19_path()
    if default.is_file():
        return _read_state_dict(default)
    try:
        return dict(
            torch.hub.load_state_dict_from_url(
                VGG19_URL, map_location="cpu", progress=False, check_hash=True, weights_only=True
            )
        )
    except Exception:  # noqa: BLE001 - offline, proxy, disk full ...: all end in the same advice
        raise ArgumentError(
            f"the perceptual loss needs the ImageNet VGG19 weights {VGG19_FILE}, which could not be "
            f"downloaded; put {VGG19_URL} at {default} (or give the file's path with {{vgg}}), "
            "or train without it with {arg}",
            "losses",
            "perceptual=0",
            vgg=("vgg_weights", "FILE"),
        ) from None


class PerceptualLoss(nn.Module):
    """MSE between frozen VGG19 conv3_3 (pre-ReLU) features of SR and HR.

    ``weights``: a VGG19 state dict, a path to one, or None (see :func:`load_vgg19_state_dict`).
    By default [-1, 1] inputs are mapped to [0, 1] and ImageNet-normalised; with
    ``published_normalization=True`` they are fed raw, as the published training did.
    """

    mean: Tensor  # buffers
    std: Tensor

    def __init__(
        self,
        weights: Mapping[str, Tensor] | str | os.PathLike | None = None,
        published_normalization: bool = False,
    ) -> None:
        super().__init__()
        state = weights if isinstance(weights, Mapping) else load_vgg19_state_dict(weights)
        self.vgg = VGG19Features()
        self.vgg.load_pretrained(state)
        self.vgg.requires_grad_(False)
        self.vgg.eval()
        self.published_normalization = published_normalization
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.vgg.eval()
        return self

    def _normalize(self, x: Tensor) -> Tensor:
        if self.published_normalization:
            return x
        return ((x + 1) * 0.5 - self.mean) / self.std

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        with torch.no_grad():
            target = self.vgg(self._normalize(hr))
        return F.mse_loss(self.vgg(self._normalize(sr)), target)


class L1Loss(nn.Module):
    """Mean absolute error."""

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        return F.l1_loss(sr, hr)


@dataclass(frozen=True)
class LossOptions:
    """What some terms need besides the images: the VGG19 weights and input normalisation of
    the perceptual loss."""

    vgg_weights: Mapping[str, Tensor] | str | os.PathLike | None = None
    published_normalization: bool = False


@dataclass(frozen=True)
class LossTerm:
    """A training loss term: ``build(options)`` gives the module (``(sr, hr) -> scalar``, both
    in [-1, 1]); ``weight`` is its weight in fatsr's recipe; ``about``, a few words for
    ``fatsr train --help``; ``three_bands``: it works on RGB images only."""

    build: Callable[[LossOptions], nn.Module]
    weight: float
    about: str
    three_bands: bool = False


# The terms by name, in the order they are computed and summed (a new term is one entry here).
TERMS: dict[str, LossTerm] = {
    "l1": LossTerm(lambda options: L1Loss(), 1.0, "L1"),
    "lev": LossTerm(lambda options: LEVLoss(), 0.1, "local extreme values and variance"),
    "perceptual": LossTerm(
        lambda options: PerceptualLoss(options.vgg_weights, options.published_normalization),
        0.001,
        "VGG19 conv3_3 features; needs vgg19-dcbb9e9d.pth",
        three_bands=True,
    ),
}


def default_weights() -> dict[str, float]:
    """Each term's weight in fatsr's recipe (the published one's too)."""
    return {name: term.weight for name, term in TERMS.items()}


def check_weights(weights: Mapping[str, float]) -> None:
    """Known terms, finite weights >= 0, at least one > 0 (FatsrError otherwise)."""
    unknown = sorted(set(weights) - set(TERMS))
    if unknown:
        raise FatsrError(f"unknown loss term {', '.join(unknown)}; the terms are {', '.join(TERMS)}")
    bad = {k: w for k, w in weights.items() if not (math.isfinite(w) and w >= 0)}
    if bad:
        raise FatsrError(f"loss weights must be finite and >= 0, got {bad}; use 0 to switch a term off")
    if not any(weights.values()):
        raise FatsrError("all loss weights are 0; give at least one term a positive weight")


class FATLoss(nn.Module):
    """Weighted sum of the :data:`TERMS`; forward returns (total, unweighted terms).

    ``weights``: term name -> weight (terms not named: their :func:`default_weights`). A term
    with weight 0 is neither built nor computed nor reported (the VGG19 is only loaded for a
    perceptual weight > 0). ``vgg_weights`` and ``published_normalization`` go to
    :class:`PerceptualLoss`.
    """

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        vgg_weights: Mapping[str, Tensor] | str | os.PathLike | None = None,
        published_normalization: bool = False,
    ) -> None:
        super().__init__()
        self.weights = {**default_weights(), **{k: float(w) for k, w in (weights or {}).items()}}
        check_weights(self.weights)
        options = LossOptions(vgg_weights, published_normalization)
        self.terms = nn.ModuleDict({k: TERMS[k].build(options) for k in TERMS if self.weights[k] > 0})

    def forward(self, sr: Tensor, hr: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        terms = {name: term(sr, hr) for name, term in self.terms.items()}
        total = _sum(self.weights[k] * v for k, v in terms.items())  # at least one term: a weight is > 0
        return total, terms
