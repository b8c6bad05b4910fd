"""FAT: Frequency-Aware Transformer for remote-sensing super-resolution (IEEE TGRS 2025).

Written from a study of the published code (github.com/fengyanzi/FAT, commit 82a977b:
``models/FAT.py``, ``models/FSSA.py``), none of it copied; it computes the published
numbers and keeps the published parameter names, so a published state dict loads after the
keys the published forward never touches are dropped (:func:`from_official_state_dict`).
Only modules the forward pass uses exist here (10.23 M parameters at the published size,
against 19.59 M in the published class).

Blocks first, then the model, then the checkpoint filter. Shapes: B batch, D channels,
H x W spatial size, L tokens.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fatsr.errors import FatsrError
from fatsr.models.contract import Architecture, Network, Preset, SizeRule
from fatsr.models.dft import irfft2_matmul, rfft2_matmul
from fatsr.models.lsh import CHUNK_SIZE, SparseAttention
from fatsr.models.runtime import current


class ChannelAttention(nn.Module):
    """ECA-style gate: global average pool, 1-D conv across channels, sigmoid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        k = int(abs((math.log2(channels) + 1) / 2))
        k = k if k % 2 else k + 1
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W)
        y = x.mean(dim=(2, 3)).unsqueeze(1)  # (B, 1, C)
        y = torch.sigmoid(self.conv(y)).transpose(1, 2).unsqueeze(-1)  # (B, C, 1, 1)
        return x * y


class SpatialAttention(nn.Module):
    """Gate from the channel-mean and channel-max maps through a 3x3 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W)
        y = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv1(y))


class UAFB(nn.Module):
    """U-shaped attention fusion block: full-resolution and half-resolution branches."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.down_conv = nn.Conv2d(dim, dim, 3, padding=1)
        self.up_conv = nn.Conv2d(dim, dim, 3, padding=1)
        self.up_transpose = nn.ConvTranspose2d(dim, dim, 2, stride=2)
        self.sa1 = SpatialAttention()
        self.sa2 = SpatialAttention()
        self.ca1 = ChannelAttention(dim)  # built for D channels, applied to 2D (as published)
        self.end_conv = nn.Conv2d(2 * dim, dim, 3, padding=1)

    def forward(self, h0: Tensor) -> Tensor:  # (B, D, H, W), H and W even
        a = F.leaky_relu(self.down_conv(h0), 0.2)
        b = F.leaky_relu(self.up_conv(F.max_pool2d(a, 2)), 0.2)  # (B, D, H/2, W/2)
        u = self.up_transpose(self.sa1(b))
        c = self.ca1(torch.cat([u, self.sa2(a)], dim=1))  # (B, 2D, H, W)
        return self.end_conv(c) + h0


class FourierSparseSelfAttention(nn.Module):
    """LSH attention over the bins of the 2-D real FFT (real and imaginary parts interleaved).

    On the export path (:mod:`fatsr.models.runtime`) the DFTs are matrix products
    (:func:`rfft2_matmul`), which export to ONNX; equal to the FFTs to ~1e-6."""

    def __init__(self, dim: int, n_hashes: int) -> None:
        super().__init__()
        self.sparse_attention = SparseAttention(2 * dim, n_hashes)

    def forward(self, x: Tensor) -> Tensor:  # (B, D, H, W)
        b, d, height, width = x.shape
        with torch.autocast(x.device.type, enabled=False):  # FFT and LSH stay in float32
            if current().export:
                z = rfft2_matmul(x.float())  # (B, D, 2H, Wf): real rows, imaginary rows
                u = self.sparse_attention(z.reshape(b, 2 * d, height, -1))  # same channel interleave
                return irfft2_matmul(u.reshape(b, d, 2 * height, -1), width).to(x.dtype)
            z = torch.fft.rfft2(x.float(), norm="ortho")  # (B, D, H, Wf)
            wf = z.shape[-1]
            t = torch.view_as_real(z).permute(0, 2, 3, 1, 4).reshape(b, height * wf, 2 * d)  # tokens (B, L, 2D)
            t = self.sparse_attention.forward_tokens(t, height, wf)  # channel 2c = real, 2c+1 = imaginary
            z = torch.view_as_complex(t.view(b, height, wf, d, 2).permute(0, 3, 1, 2, 4))
            y = torch.fft.irfft2(z, s=(height, width), norm="ortho")
        return y.to(x.dtype)


def relative_position_index(window: int) -> Tensor:
    """(w^2, w^2) index into the (2w-1)^2 bias table for each query/key pair of a window."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :] + (window - 1)  # (2, N, N)
    return rel[0] * (2 * window - 1) + rel[1]


class LayerNorm32(nn.LayerNorm):
    """LayerNorm computed in float32 under autocast (CPU autocast would run it in bfloat16),
    returned in the input's dtype."""

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return F.layer_norm(x.float(), self.normalized_shape, self.weight, self.bias, self.eps).to(x.dtype)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside non-overlapping windows with relative position bias."""

    relative_position_index: Tensor  # a buffer

    def __init__(self, dim: int, window: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window), persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:  # (B', N=w^2, D)
        bw, n, d = x.shape
        qkv = self.qkv(x).view(bw, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, -1).permute(2, 0, 1).unsqueeze(0).to(x.dtype)  # (1, heads, N, N)
        q, k, v = qkv.unbind(0)  # (B', heads, N, hd)
        # Small windows under autograd: plain matmuls. Otherwise SDPA's fused kernel (without autograd on
        # 6x6 windows: 0.21 -> 0.16 s for the compact model's window attention on 4x96x96, 1 thread).
        if n <= 64 and torch.is_grad_enabled():
            scores = (q * self.scale) @ k.transpose(-1, -2) + bias
            out = scores.softmax(dim=-1, dtype=torch.float32).to(v.dtype) @ v  # softmax in float32 under autocast
        else:  # a 4-D mask keeps SDPA on its fused (flash) path
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(bw, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:  # (..., D)
        return self.fc2(F.gelu(self.fc1(x)))


class SwinLayer(nn.Module):
    """Window attention + MLP (no shift: the published model never shifts). With ``fusion``
    (the "MAT" layer) a Fourier sparse attention branch is added; as published, it reads the
    un-normalised token buffer (B, L, D) as if it were a (B, D, H, W) image and back."""

    chunk_rows = 1024  # without autograd, the MLP branch runs in chunks of tokens that stay in cache

    def __init__(self, dim: int, num_heads: int, window: int, mlp_ratio: float, fusion: bool = False) -> None:
        super().__init__()
        self.window = window
        self.norm1 = LayerNorm32(dim)
        self.attn = WindowAttention(dim, window, num_heads)
        self.norm2 = LayerNorm32(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.FSSA = FourierSparseSelfAttention(dim, n_hashes=2) if fusion else None

    def forward(self, t: Tensor, height: int, width: int) -> Tensor:  # (B, L, D), L = H*W
        b, length, d = t.shape
        w = self.window
        grid = (b, height // w, w, width // w, w, d)  # the token buffer as windows
        y = self.norm1(t).view(grid).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, d)  # windows, row-major
        y = self.attn(y).view(b, height // w, width // w, w, w, d).permute(0, 1, 3, 2, 4, 5)  # a view, as grid
        if self.FSSA is not None:
            y = self.FSSA(t.reshape(b, d, height, width)).reshape(grid) + y
        t = (t.view(grid) + y).reshape(b, length, d)  # the windows return to their places in this add
        return self.mlp_branch(t)

    def mlp_branch(self, t: Tensor) -> Tensor:  # t + mlp(norm2(t)), (B, L, D)
        rows = t[..., 0].numel()
        if torch.is_grad_enabled() or rows <= self.chunk_rows or current().export:
            return t + self.mlp(self.norm2(t))
        # Without autograd in chunks of tokens: norm, hidden activations and sum stay in cache
        # (measured on 14400 tokens of the published size: 0.081 -> 0.052 s, 1 thread), same numbers.
        flat = t.reshape(rows, -1)
        out: Tensor | None = None
        for start in range(0, rows, self.chunk_rows):
            part = slice(start, start + self.chunk_rows)
            y = self.mlp(self.norm2(flat[part]))  # in the autocast dtype, if any
            if out is None:
                out = flat.new_empty(flat.shape, dtype=torch.result_type(flat, y))
            torch.add(flat[part], y, out=out[part])
        assert out is not None  # rows > chunk_rows: the loop ran
        return out.view(t.shape)


class SRTBlock(nn.Module):
    """Swin layers, one fusion (MAT) layer with twice the window, a conv, a Fourier attention."""

    def __init__(self, dim: int, num_layers: int, num_heads: int, window: int, mlp_ratio: float) -> None:
        super().__init__()
        self.STL = nn.ModuleList(SwinLayer(dim, num_heads, window, mlp_ratio) for _ in range(num_layers))
        self.MAT = SwinLayer(dim, num_heads, 2 * window, mlp_ratio, fusion=True)
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)
        self.fssa = FourierSparseSelfAttention(dim, n_hashes=4)

    def forward(self, x: Tensor) -> Tensor:  # (B, D, H, W)
        b, d, height, width = x.shape
        t = x.flatten(2).transpose(1, 2)  # (B, L, D)
        for layer in self.STL:
            t = layer(t, height, width)
        t = self.MAT(t, height, width)
        # tokens are channels-last after the first layer; the conv keeps the layout it always had (a
        # channels-last conv differs by ~1e-6, enough to move a token across an LSH bucket boundary)
        return self.fssa(self.conv(t.transpose(1, 2).reshape(b, d, height, width).contiguous()))


def _shuffle_taps() -> Tensor:
    """(2, 2, 2, 3) one-hot: for output row parity a, input sub-pixel row pa and row dy of a
    2x2 window on the unshuffled map, which row of a 3x3 kernel on the x2-shuffled map it is."""
    taps = torch.zeros(2, 2, 2, 3)
    for a in range(2):
        for pa in range(2):
            for dy in range(2):
                ky = 2 * ((a - 1) // 2 + dy) + pa - a  # the window starts one row up for a = 0
                if -1 <= ky <= 1:
                    taps[a, pa, dy, ky + 1] = 1
    return taps


class Upsample(nn.Module):
    """Pixel-shuffle upsampler: x4 two stages, x3 one, x2 with a LeakyReLU (as published)."""

    shuffle_taps: Tensor  # a buffer

    def __init__(self, scale: int, dim: int, out_channels: int) -> None:
        super().__init__()
        self.scale = scale
        if scale == 4:
            layers = [nn.Conv2d(dim, 4 * dim, 3, padding=1), nn.PixelShuffle(2)]
            layers += [nn.Conv2d(dim, 4 * dim, 3, padding=1), nn.PixelShuffle(2)]
        elif scale == 3:
            layers = [nn.Conv2d(dim, 9 * dim, 3, padding=1), nn.PixelShuffle(3)]
        elif scale == 2:
            layers = [
                nn.Conv2d(dim, dim, 3, padding=1),
                nn.LeakyReLU(0.01),
                nn.Conv2d(dim, 4 * dim, 3, padding=1),
                nn.PixelShuffle(2),
            ]
        else:
            raise FatsrError(f"scale {scale} is not supported; FAT upsamples x2, x3 or x4")
        self.upsample = nn.Sequential(*layers)
        self.conv_last = nn.Conv2d(dim, out_channels, 3, padding=1)
        self.register_buffer("shuffle_taps", _shuffle_taps(), persistent=False)

    strip_rows = 64  # without autograd, the last stage runs in strips of this many of its input rows
    halo = 2  # rows of context a strip needs for exact results (the last 3x3 conv and conv_last)

    def forward(self, x: Tensor) -> Tensor:  # (B, D, H, W) -> (B, out, sH, sW)
        # Channels-last: the convolutions and pixel_shuffle run 1.5x faster on a CPU (measured:
        # compact x4 on 4x32x96x96, 0.43 -> 0.29 s); the output returns to the usual layout.
        x = x.contiguous(memory_format=torch.channels_last)
        *head, conv, shuffle = self.upsample  # the last conv and shuffle make the largest maps
        for layer in head:
            x = layer(x)
        if torch.is_grad_enabled():
            return self.conv_last(shuffle(conv(x))).contiguous()
        s = cast(nn.PixelShuffle, shuffle).upscale_factor
        fold = s == 2 and not current().export  # ONNX graphs keep the plain layers

        def last_stage(rows: Tensor) -> Tensor:  # (B, D', h, W) -> (B, out, s h, s W)
            return self.shuffled_conv_last(conv(rows)) if fold else self.conv_last(shuffle(conv(rows)))

        height = x.shape[2]
        if height <= self.strip_rows + 2 * self.halo:
            return last_stage(x).contiguous()
        # Without autograd, the last stage runs in strips of rows with a halo, keeping their exact
        # centres: its full-size maps (2 x 118 MB at 120x120 x4) never exist at once.
        out: Tensor | None = None
        for top in range(0, height, self.strip_rows):
            bottom = min(top + self.strip_rows, height)
            lo, hi = max(top - self.halo, 0), min(bottom + self.halo, height)
            y = last_stage(x[:, :, lo:hi])
            if out is None:
                out = y.new_empty(y.shape[0], y.shape[1], s * height, y.shape[3])
            out[:, :, s * top : s * bottom] = y[:, :, s * (top - lo) : s * (bottom - lo)]
        assert out is not None  # height > strip_rows: the loop ran
        return out

    def shuffled_conv_last(self, y: Tensor) -> Tensor:  # (B, 4D, h, W) -> (B, out, 2h, 2W)
        """``conv_last(pixel_shuffle(y, 2))`` without the shuffled map: each output sub-pixel
        is a 2x2 conv of y (the 3x3 taps it needs), all of them one conv with 4x the outputs.
        1.8x the multiply-adds, yet 2x faster than a 3-channel conv on the 4x larger map
        (measured on the compact x4 model's 4x128x68x192 strips, 1 thread: 23 -> 11.5 ms)."""
        b, _, height, width = y.shape
        weight, bias = self.conv_last.weight, cast(Tensor, self.conv_last.bias)
        out_channels, dim = weight.shape[:2]
        taps = self.shuffle_taps.to(weight.dtype)
        folded = torch.einsum("apyk,bqxl,ockl->oabcpqyx", taps, taps, weight)  # 2x2 kernels
        z = F.conv2d(y, folded.reshape(4 * out_channels, 4 * dim, 2, 2), bias.repeat_interleave(4), padding=1)
        z = z.view(b, out_channels, 2, 2, height + 1, width + 1)  # window rows i-1, i of y at row i
        out = z.new_empty(b, out_channels, height, 2, width, 2)
        for a in range(2):  # row a of a pixel's 2x2 output takes rows i-1, i (a = 0) or i, i+1 of y
            for c in range(2):
                out[:, :, :, a, :, c] = z[:, :, a, c, a : a + height, c : c + width]
        return out.view(b, out_channels, 2 * height, 2 * width)


def enough_tokens(height: int, width: int) -> bool:
    """Whether an H x W input gives the Fourier attention at least one LSH chunk of tokens
    (the bins of its 2-D real FFT: H * (W // 2 + 1))."""
    return height * (width // 2 + 1) >= CHUNK_SIZE


@dataclass(frozen=True)
class FATConfig:
    """Everything that defines a FAT network. ``window_size``: one for all blocks, or one per
    block. ``bicubic_skip`` (not in the published model) adds a bicubic upscale of the input
    to the output, so the network learns only the detail bicubic misses; it makes small
    models train several times faster on a CPU."""

    in_channels: int = 3
    out_channels: int = 3
    dim: int = 128
    num_blocks: int = 6
    num_layers: int = 3
    num_heads: int = 8
    window_size: int | tuple[int, ...] = 6
    mlp_ratio: float = 4.0
    scale: int = 4
    bicubic_skip: bool = False

    # the range a model file may declare for each number (checked before anything is built)
    BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        "in_channels": (1, 16), "out_channels": (1, 16), "dim": (2, 1024), "num_blocks": (1, 64),
        "num_layers": (1, 32), "num_heads": (1, 64), "window_size": (1, 64), "mlp_ratio": (0.25, 16), "scale": (1, 16),
    }  # fmt: skip

    def __post_init__(self) -> None:
        if not isinstance(self.window_size, int):  # one per block; a single int when all agree
            windows = tuple(self.window_size)
            object.__setattr__(self, "window_size", windows[0] if len(set(windows)) == 1 else windows)
        if len(self.windows) != self.num_blocks:
            raise ValueError(f"{len(self.windows)} window sizes for {self.num_blocks} blocks")
        if self.dim % self.num_heads or self.dim % 2:
            raise ValueError(f"dim {self.dim} must be even and divisible by num_heads {self.num_heads}")
        if self.bicubic_skip and self.in_channels != self.out_channels:
            raise ValueError("bicubic_skip needs as many input as output channels")

    @property
    def windows(self) -> tuple[int, ...]:
        """The window size of each block."""
        return (self.window_size,) * self.num_blocks if isinstance(self.window_size, int) else self.window_size

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this (two windows of every block)."""
        return math.lcm(2, *(2 * w for w in self.windows))

    def size_rule(self) -> SizeRule:
        """The sides a FAT of this config computes on: multiples of :attr:`size_multiple` that
        give at least one LSH chunk of Fourier tokens."""
        return SizeRule(multiple_of=self.size_multiple, enough=enough_tokens)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in model files and checkpoints (one window size when all agree)."""
        window = self.window_size
        return {**asdict(self), "window_size": window if isinstance(window, int) else list(window)}


class FAT(Network):
    """Frequency-Aware Transformer. Input and output in [-1, 1] (mean 0.5 / std 0.5 of [0, 1]).

    H and W must fit :func:`size_rule`; :class:`fatsr.models.wrapper.SRModel` pads any input
    to that. Its configuration is a :class:`FATConfig`.
    """

    def __init__(self, config: FATConfig | None = None, /, **arguments: Any) -> None:
        """``FAT(FATConfig(...))``, or the config's fields as keywords: ``FAT(dim=32, ...)``."""
        super().__init__()
        self.config = c = config if config is not None else FATConfig(**arguments)
        self.scale = c.scale
        self.bicubic_skip = c.bicubic_skip
        self.conv0 = nn.Conv2d(c.in_channels, c.in_channels, 3, padding=1)
        self.conv1 = nn.Conv2d(c.in_channels, c.dim, 1)
        self.uafb = UAFB(c.dim)
        self.SRTB_list = nn.ModuleList(SRTBlock(c.dim, c.num_layers, c.num_heads, w, c.mlp_ratio) for w in c.windows)
        self.conv4 = nn.Conv2d(c.dim, c.dim, 3, padding=1)
        self.upsample = Upsample(c.scale, c.dim, c.out_channels)
        for module in self.modules():  # the published init of Linear / LayerNorm
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:  # (B, Cin, H, W) -> (B, Cout, sH, sW)
        h0 = self.conv1(self.conv0(x))  # (B, D, H, W)
        f = self.uafb(h0)
        for block in self.SRTB_list:  # sequential, no skip around a block
            f = block(f)
        y = self.upsample(self.conv4(f) + h0)
        if self.bicubic_skip:  # not in the published model: learn the residual over bicubic
            y = y + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return y


def grown(small: FAT, config: FATConfig) -> FAT:
    """A FAT of ``config`` that computes what ``small`` computes, to train on from there.

    ``config`` may have more Swin layers per block and a larger MLP ratio, all else as in
    ``small``. Added layers start with zero output projections (attention and MLP), so they add
    nothing; added hidden MLP units start with zero outgoing weights. Gradients reach all of them
    from the first step (the zeros are last in their branch).
    """
    base = small.config
    if (
        replace(config, num_layers=base.num_layers, mlp_ratio=base.mlp_ratio) != base
        or config.num_layers < base.num_layers
        or config.mlp_ratio < base.mlp_ratio
    ):
        raise ValueError("a network grows only in num_layers and mlp_ratio")
    big = FAT(config)
    own = big.state_dict()
    old = small.state_dict()
    with torch.no_grad():
        for key, target in own.items():
            value = old.get(key)
            if value is None:  # a tensor of an added layer
                if re.search(r"\.(attn\.proj|mlp\.fc2)\.", key):
                    target.zero_()
                continue
            target[tuple(slice(0, n) for n in value.shape)] = value  # added hidden units after the old
            if key.endswith("mlp.fc2.weight"):
                target[:, value.shape[1] :] = 0
    return big


# --- published checkpoints --------------------------------------------------------------

_UNUSED_KEYS = re.compile(
    r"^(ca\.|conv3\.|uafb\.ca2\."
    r"|SRTB_list\.\d+\.(ca|sa|fssa\.conv_layer)\."
    r"|SRTB_list\.\d+\.(STL\.\d+|MAT)\.(conv|ca|sa)\."
    r"|SRTB_list\.\d+\.STL\.\d+\.FSSA\."
    r"|SRTB_list\.\d+\.MAT\.FSSA\.conv_layer\.)"
)


def unwrap_state_dict(obj: object) -> dict[str, Tensor]:
    """The tensor dict inside the usual wrappers, with a DDP ``module.`` prefix removed."""
    for _ in range(3):
        if isinstance(obj, Mapping) and not any(isinstance(v, Tensor) for v in obj.values()):
            for key in ("params_ema", "params", "state_dict", "model", "ema"):
                if isinstance(obj.get(key), Mapping):
                    obj = obj[key]
                    break
            else:
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise FatsrError("the checkpoint holds no state dict of tensors; give a FAT checkpoint (.pth or .safetensors)")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def infer_config(sd: Mapping[str, Tensor]) -> FATConfig:
    """The :class:`FATConfig` read from the keys and shapes of an official-layout state dict."""
    try:
        dim, in_channels = sd["conv1.weight"].shape[:2]
        blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"SRTB_list\.(\d+)\.", k))})
        layers = {int(m.group(1)) for k in sd if (m := re.match(r"SRTB_list\.0\.STL\.(\d+)\.", k))}
        windows = [
            (math.isqrt(sd[f"SRTB_list.{i}.MAT.attn.relative_position_bias_table"].shape[0]) + 1) // 4 for i in blocks
        ]
        heads = sd["SRTB_list.0.MAT.attn.relative_position_bias_table"].shape[1]
        hidden = sd["SRTB_list.0.MAT.mlp.fc1.weight"].shape[0]
        first = sd["upsample.upsample.0.weight"].shape[0]
        if "upsample.upsample.2.weight" not in sd:
            scale = math.isqrt(first // dim)
        elif first == dim:
            scale = math.isqrt(sd["upsample.upsample.2.weight"].shape[0] // dim)
        else:
            scale = 4
        out_channels = sd["upsample.conv_last.weight"].shape[0]
    except (KeyError, IndexError) as exc:
        raise FatsrError(f"not a FAT checkpoint (missing or malformed {exc}); give a FAT state dict") from None
    if not blocks:
        raise FatsrError("not a FAT checkpoint (no SRTB_list blocks); give a FAT state dict")
    return FATConfig(
        in_channels=int(in_channels),
        out_channels=int(out_channels),
        dim=int(dim),
        num_blocks=len(blocks),
        num_layers=len(layers),
        num_heads=int(heads),
        window_size=tuple(windows),
        mlp_ratio=hidden / dim,
        scale=scale,
    )


def from_official_state_dict(sd: object) -> FAT:
    """Build a :class:`FAT` from a published checkpoint (official key layout).

    Accepts the ``params``/``params_ema``/``state_dict``/``model`` wrappers and a ``module.``
    prefix; drops the keys of modules the published forward never calls; checks the
    ``relative_position_index`` buffers; loads the rest strictly.
    """
    sd = unwrap_state_dict(sd)
    model = FAT(infer_config(sd))
    kept = {}
    for key, value in sd.items():
        if _UNUSED_KEYS.match(key):
            continue
        if key.endswith(".relative_position_index"):
            expected = model.get_buffer(key)
            if value.shape != expected.shape or not torch.equal(value.to(expected.dtype), expected):
                raise FatsrError(f"checkpoint entry {key} is not a window's relative position index")
            continue
        kept[key] = value
    load_strict(model, kept)
    return model


def load_strict(model: nn.Module, sd: Mapping[str, Tensor]) -> None:
    """``load_state_dict(strict=True)`` with a one-line error naming what does not fit; weights
    that are not floating point (bool, int8: they would be silently converted) are refused."""
    for key, value in sd.items():
        if not value.is_floating_point():
            raise FatsrError(f"weight {key} is stored as {value.dtype}; model weights must be floating point")
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        first = str(exc).split("\n\t", 2)[:2]
        raise FatsrError(f"checkpoint does not fit the FAT configuration ({' '.join(first)[:300]})") from None


ARCHITECTURE = Architecture(
    name="FAT",
    config=FATConfig,
    module=FAT,
    presets={
        # the published network (10.23 M parameters used)
        "fat": Preset(
            FATConfig(dim=128, num_blocks=6, num_layers=3, num_heads=8, window_size=6, mlp_ratio=4.0),
            "published, 10.2 M parameters",
        ),
        # same design, small enough to train on a laptop CPU; the bicubic skip makes it learn
        # in hundreds of steps instead of thousands (measured: +0.36 dB over bicubic after 80
        # steps of batch 8, against -1.8 dB without it)
        "compact": Preset(
            FATConfig(dim=32, num_blocks=2, num_layers=1, num_heads=4, window_size=6, mlp_ratio=2.0, bicubic_skip=True),
            "0.24 M parameters",
        ),
    },
    size_rule=FATConfig.size_rule,
    read_foreign=from_official_state_dict,
)
