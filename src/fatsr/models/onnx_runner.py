"""OnnxModel: a graph written by :func:`fatsr.export.export_onnx`, run by onnxruntime and
called like :class:`~fatsr.models.wrapper.SRModel`, so the tiler runs it unchanged.

The graph has a fixed tile size (and a free batch size); smaller inputs are padded by
reflection to the tile and the output is cropped, as SRModel pads to what FAT needs. FAT's
global attention sees that padding, so an input smaller than the tile comes out further from
PyTorch's output than a full tile (``benchmarks/bench_onnx_sizes.py``; a warning says so).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from fatsr.errors import ArgumentError, FatsrError
from fatsr.models.contract import ModelInfo, SizeRule
from fatsr.models.wrapper import pad_reflect

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

FORMAT = "fatsr-onnx"  # metadata "format" of graphs written by export_onnx
INPUT, OUTPUT = "lr", "sr"  # graph input and output names


def import_onnxruntime() -> ModuleType:
    """The onnxruntime module, or a FatsrError saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise FatsrError(
            "onnxruntime is not installed; pip install onnx onnxruntime (or, in fatsr's folder, pip install '.[onnx]')"
        ) from None
    return onnxruntime


def onnx_session(model: str | bytes, device: str = "cpu") -> InferenceSession:
    """An onnxruntime session for a .onnx path or serialized graph: CUDA when ``device``
    asks for it ("cuda", "cuda:N" or "auto") and onnxruntime has it, else the CPU;
    as many threads as torch uses."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    providers = ["CPUExecutionProvider"]
    wants_cuda = device == "auto" or device.startswith("cuda")
    if wants_cuda and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(model, options, providers=providers)


class OnnxModel:
    """An exported FAT graph: ``model(x)`` maps (N, C, h, w) in [0, 1] with h, w <= ``tile``
    to (N, C, scale*h, scale*w), not clamped; outputs are CPU tensors."""

    def __init__(self, session: InferenceSession) -> None:
        self.session = session
        self.metadata: dict[str, str] = dict(session.get_modelmeta().custom_metadata_map)
        if self.metadata.get("format") != FORMAT:
            raise FatsrError("this ONNX graph was not written by fatsr export; export the model with `fatsr export`")
        self.name = self.metadata.get("name", "onnx")
        self.scale = self._number("scale", 1, 16)
        self.channels = self._number("channels", 1, 4)
        self.tile = self._number("tile", 1, 4096)
        self.seed = self._number("seed", -(2**63), 2**63 - 1)
        self.providers: list[str] = session.get_providers()
        self._warned = False

    def _number(self, key: str, low: int, high: int) -> int:
        """An integer metadata entry within [low, high] (FatsrError naming it otherwise)."""
        try:
            value = int(self.metadata[key])
        except (KeyError, ValueError):
            value = None
        if value is None or not low <= value <= high:
            raise FatsrError(
                f"its metadata {key}={self.metadata.get(key)!r} is not an integer in {low}..{high}; "
                "export the model again with `fatsr export`"
            )
        return value

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            scale=self.scale,
            in_channels=self.channels,
            out_channels=self.channels,
            size=SizeRule(maximum=self.tile),
            tile=self.tile,
            float16=False,
            bfloat16=False,
            metadata=self.metadata,
            seed=self.seed,
        )

    def __call__(self, x: Tensor) -> Tensor:  # (N, C, h, w) -> (N, C, s*h, s*w)
        _, c, height, width = x.shape
        if c != self.channels:
            raise ArgumentError(
                f"{c}-channel image for an ONNX model exported for {self.channels}; export it with {{arg}}",
                "channels",
                c,
            )
        if height > self.tile or width > self.tile:
            raise ArgumentError(
                f"a {width}x{height} tile is larger than the {self.tile}x{self.tile} this ONNX model was exported for; "
                "use {arg} or less, or export again with a larger tile",
                "tile",
                self.tile,
            )
        if (height, width) != (self.tile, self.tile) and not self._warned:
            self._warned = True
            warnings.warn(
                f"a {width}x{height} input is padded to the {self.tile}x{self.tile} tile of this ONNX model; FAT's "
                "global attention sees the padding, so the output can differ from PyTorch's by tens of 8-bit levels "
                "at single pixels (about one on average); for PyTorch's output to a few levels, export with --tile the "
                "image's side rounded up to a multiple of 12 (8 for window-4 models)",
                stacklevel=2,
            )
        x = pad_reflect(x.detach().float().cpu(), self.tile - height, self.tile - width)
        batch = self.session.get_inputs()[0].shape[0]  # 1 in a graph for Deepness (fatsr export --deepness)
        if batch == 1 and x.shape[0] > 1:
            return torch.cat([self(x[k : k + 1, :, :height, :width]) for k in range(x.shape[0])])
        y = self.session.run([OUTPUT], {INPUT: x.contiguous().numpy()})[0]
        s = self.scale
        expected = (x.shape[0], self.channels, s * self.tile, s * self.tile)
        if tuple(y.shape) != expected:  # a graph that does not do what its metadata says
            raise FatsrError(
                f"the ONNX graph returned {tuple(y.shape)} for a {tuple(x.shape)} tile where its metadata "
                f"(x{s}, {self.channels} channels) promises {expected}; export the model again with `fatsr export`"
            )
        return torch.from_numpy(y[:, :, : s * height, : s * width].copy())


def load_onnx_model(path: str | os.PathLike, device: str = "cpu") -> OnnxModel:
    """An :class:`OnnxModel` from a .onnx file written by ``fatsr export``."""
    path = Path(path)
    if not path.is_file():
        raise FatsrError(f"ONNX model {path} not found; give a .onnx file made by `fatsr export`")
    import_onnxruntime()
    try:
        session = onnx_session(str(path), device)
    except Exception as exc:  # onnxruntime raises its own types for foreign or damaged files
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise FatsrError(f"{path}: not a readable ONNX model ({reason}); export one with `fatsr export`") from None
    try:
        return OnnxModel(session)
    except FatsrError as exc:
        raise FatsrError(f"{path}: {exc}") from None
