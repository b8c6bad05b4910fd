"""ONNX export: an SRModel traced (TorchScript exporter) at a fixed tile size, any batch size.

What ONNX cannot hold is made fixed or exact before tracing: the FFTs become matrix products,
the LSH rotations drawn for ``seed`` at that tile size become constants, and equal hash codes
are ordered by token position (the export path of :mod:`fatsr.models.runtime`). The graph is run by
onnxruntime and compared with the same PyTorch computation before anything is written.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

from fatsr.errors import ArgumentError, FatsrError
from fatsr.io import atomic_write
from fatsr.models.loading import load_model
from fatsr.models.onnx_runner import FORMAT, INPUT, OUTPUT, OnnxModel, import_onnxruntime, onnx_session
from fatsr.models.runtime import runtime
from fatsr.models.wrapper import SRModel
from fatsr.version import __version__

DEFAULT_OPSET = 17
OPSETS = range(14, 21)  # scaled_dot_product_attention needs 14; the TorchScript exporter stops at 20
CHECK_TOLERANCE = 1e-3  # max abs difference, in [0, 1] pixel units, between onnxruntime and PyTorch
DEEPNESS_VERSION = "0.6.5"  # the Deepness QGIS plugin whose model metadata --deepness writes


def export_onnx(
    model_path: str | os.PathLike | None,
    output: str | os.PathLike,
    *,
    tile: int = 120,
    channels: int | None = None,
    seed: int = 0,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
    deepness: bool = False,
) -> Path:
    """Write ``model_path`` (None: the shipped default model) as an ONNX graph mapping
    (N, C, tile, tile) in [0, 1] to (N, C, scale*tile, scale*tile), checked with onnxruntime
    on a random tile (FatsrError beyond :data:`CHECK_TOLERANCE`). ``channels``: 1 or 4 run a
    3-channel model as :class:`SRModel` does (default: the model's own). The metadata holds
    the fatsr version, model name, scale, tile, seed, channels and the check's max abs diff.
    ``deepness``: a graph for the Deepness QGIS plugin: batch fixed to 1, output clamped to [0, 1], its metadata
    (:func:`deepness_metadata`)."""
    if opset not in OPSETS:
        raise FatsrError(f"opset {opset}: choose one from {OPSETS.start} to {OPSETS.stop - 1}")
    model = load_model(model_path, seed=seed)
    if not isinstance(model, SRModel):
        raise FatsrError(f"{model_path}: only a model file (.safetensors or .pth) of a network can be exported")
    multiple = model.info.size.multiple_of
    if tile <= 0 or tile % multiple:
        raise ArgumentError(f"{{arg}}: must be a positive multiple of {multiple} (e.g. 96 or 120)", "tile", tile)
    onnx = _import_onnx()
    import_onnxruntime()
    channels = channels or model.channels
    if channels not in (model.channels, *((1, 4) if model.channels == 3 else ())):
        raise ArgumentError(
            f"{{arg}} for a {model.channels}-channel model; give {{fit}}",
            "channels",
            channels,
            fit=("channels", model.channels),
        )
    x = torch.rand((1, channels, tile, tile), generator=torch.Generator().manual_seed(seed))
    metadata = {
        "format": FORMAT,
        "fatsr_version": __version__,
        "name": model.name,
        "scale": str(model.scale),
        "channels": str(channels),
        "tile": str(tile),
        "seed": str(seed),
        **(deepness_metadata(model, tile, channels) if deepness else {}),
    }
    with atomic_write(output, overwrite=overwrite) as tmp:  # refuses an existing output before the work
        graph, expected = _trace(Clamped(model) if deepness else model, x, opset, dynamic_batch=not deepness)
        proto = onnx.load_from_string(graph)
        onnx.helper.set_model_props(proto, metadata)
        with torch.inference_mode():
            got = OnnxModel(onnx_session(proto.SerializeToString()))(x)
        diff = (got - expected).abs().max().item()
        if not diff <= CHECK_TOLERANCE:
            raise FatsrError(
                f"onnxruntime differs from PyTorch by {diff:.2e} (more than {CHECK_TOLERANCE:g}) on a random tile; "
                "nothing was written; please report this with the model file"
            )
        onnx.helper.set_model_props(proto, {**metadata, "check_max_abs_diff": f"{diff:.3e}"})
        onnx.save(proto, str(tmp))
    return Path(output)


def onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata (``metadata_props``) of an ONNX file."""
    from google.protobuf.message import DecodeError

    onnx = _import_onnx()
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (OSError, DecodeError) as exc:
        raise FatsrError(f"{path}: not a readable ONNX file ({exc}); give a .onnx file") from None
    return {p.key: p.value for p in proto.metadata_props}


def deepness_metadata(model: SRModel, tile: int, channels: int) -> dict[str, str]:
    """The metadata the Deepness QGIS plugin (version :data:`DEEPNESS_VERSION`) reads from a
    super-resolution model, JSON-encoded as it parses them: its model type, the tile size
    (``tile_size``, the key its code reads; ``tiles_size``, its documentation's spelling),
    the tile overlap in percent (fatsr upscale's default overlap), the resolution in cm per
    pixel of the input (LR) layer when the model records its training GSD (the HR images'
    ``gsd_m`` x scale), and an identity standardization, so that its [0, 255] / 255 input stays
    in [0, 1]. Deepness takes the scale from the output/input shapes and feeds the layer's
    bands in its channel mapping's order (``bands`` lists the model's)."""
    overlap = min(tile // 4, 24)  # fatsr upscale's default for this tile
    meta = {
        "model_type": json.dumps("Superresolution"),
        "tile_size": json.dumps(tile),
        "tiles_size": json.dumps(tile),
        "tiles_overlap": json.dumps(round(100 * overlap / tile)),
        "standardization_mean": json.dumps([0.0] * channels),
        "standardization_std": json.dumps([1.0] * channels),
        "deepness_version": DEEPNESS_VERSION,
    }
    try:
        gsd_m = float(model.metadata.get("gsd_m", ""))
    except ValueError:
        gsd_m = 0.0
    if gsd_m > 0:
        meta["resolution"] = json.dumps(round(100 * gsd_m * model.scale, 4))
    if "bands" in model.metadata:
        meta["bands"] = model.metadata["bands"]
    return meta


class Clamped(torch.nn.Module):
    """``model``'s output clamped to [0, 1], the value range Deepness expects out."""

    def __init__(self, model: SRModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x).clamp(0.0, 1.0)


def _trace(model: torch.nn.Module, x: Tensor, opset: int, dynamic_batch: bool = True) -> tuple[bytes, Tensor]:
    """The serialized graph of ``model`` traced on ``x`` (any batch size, or ``x``'s when not
    ``dynamic_batch``), and ``model(x)`` computed the same way in PyTorch (export path, this
    call's rotations kept as constants)."""
    # no_grad, not inference mode: the kept rotations feed the trace
    with runtime(export=True, kept_rotations={}), torch.no_grad():
        expected = model(x)  # draws the rotations of model.seed for this size, and keeps them
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the sizes are fixed on purpose
            # the TorchScript exporter is deprecated; the dynamo one fails on FAT with torch 2.13
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                model,
                (x,),
                buffer,  # type: ignore[arg-type]
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}} if dynamic_batch else None,
            )
    return buffer.getvalue(), expected


def _import_onnx() -> ModuleType:
    try:
        import onnx
    except ImportError:
        raise FatsrError(
            "onnx is not installed; pip install onnx onnxruntime (or, in fatsr's folder, pip install '.[onnx]')"
        ) from None
    return onnx
