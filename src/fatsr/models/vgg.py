"""VGG feature stacks (torchvision's layout), shared by the perceptual training loss
(:mod:`fatsr.losses`) and LPIPS (:mod:`fatsr.evaluation.lpips`)."""

from __future__ import annotations

from torch import nn


def vgg_layers(widths: tuple[int | str, ...], inplace_relu: bool = False) -> list[nn.Module]:
    """The torchvision VGG ``features`` stack ("M" = 2x2 max pool), so its state-dict keys
    ``features.N.weight/bias`` load unchanged."""
    layers: list[nn.Module] = []
    channels = 3
    for item in widths:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=inplace_relu)]
            channels = int(item)
    return layers
