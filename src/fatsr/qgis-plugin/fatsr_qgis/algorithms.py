"""The Processing algorithms fatsr:upscale and fatsr:compare: each builds a fatsr command line
from its parameters and runs it with :func:`runner.run_fatsr`."""

from __future__ import annotations

import json
import webbrowser
from pathlib import Path
from typing import Any

from processing.core.ProcessingConfig import ProcessingConfig
from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterPoint,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from . import runner

COMMAND_SETTING = "FATSR_COMMAND"
DEVICES = ["auto", "cpu", "cuda", "mps"]
MODEL_FILTER = "fatsr models (*.safetensors *.pth *.onnx);;All files (*)"


def builtin_models() -> tuple[list[str], str]:
    """The built-in model names (``fatsr models``, recorded in models.json when the plugin was
    built or installed) and the default one."""
    try:
        record = json.loads((Path(__file__).parent / "models.json").read_text(encoding="utf-8"))
        names, default = [str(n) for n in record["models"]], str(record["default"])
    except (OSError, ValueError, KeyError, TypeError):
        return ["default"], "default"
    return (names, default) if default in names else (["default", *names], "default")


class FatsrAlgorithm(QgsProcessingAlgorithm):
    """What both algorithms share: the model parameters and running fatsr."""

    INPUT, MODEL, MODEL_FILE, DEVICE, TILE, OUTPUT = "INPUT", "MODEL", "MODEL_FILE", "DEVICE", "TILE", "OUTPUT"

    NAME: str  # each algorithm's id (fatsr:NAME) and title; its docstring is its help
    TITLE: str

    def createInstance(self) -> Any:
        return type(self)()

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:
        return self.TITLE

    def shortHelpString(self) -> str:
        return " ".join((self.__doc__ or "").split())

    def group(self) -> str:
        return ""

    def groupId(self) -> str:
        return ""

    def add_model_parameters(self) -> None:
        names, default = builtin_models()
        self.addParameter(
            QgsProcessingParameterEnum(
                self.MODEL, "Built-in model", options=names, defaultValue=default, usesStaticStrings=True
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.MODEL_FILE, "Model file (instead of the built-in model)", fileFilter=MODEL_FILTER, optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.DEVICE, "Device", options=DEVICES, defaultValue="auto", usesStaticStrings=True
            )
        )

    def model_arguments(self, parameters: dict[str, Any], context: Any) -> list[str]:
        model_file = self.parameterAsFile(parameters, self.MODEL_FILE, context)
        model = model_file or self.parameterAsEnumString(parameters, self.MODEL, context)
        device = self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto"
        return ["--model", model or "default", "--device", device]

    def source(self, parameters: dict[str, Any], context: Any) -> str:
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException("the input raster layer could not be opened; choose a raster layer or file")
        if layer.providerType() != "gdal":
            raise QgsProcessingException(
                f"{layer.name()}: only rasters that GDAL reads (files, /vsicurl/ URLs) can be given to fatsr; "
                "save this layer as a GeoTIFF first"
            )
        return layer.source()

    def run_command(self, arguments: list[str], output: str, feedback: Any) -> list[str]:
        """Run ``fatsr ARGUMENTS`` with the progress bar, Cancel and fatsr's error message."""
        try:
            # -v: a progress line per update, for the progress bar
            command = [runner.find_fatsr(ProcessingConfig.getSetting(COMMAND_SETTING)), "-v", *arguments]
            feedback.pushCommandInfo(" ".join(command))
            return runner.run_fatsr(
                command,
                output=Path(output),
                progress=lambda fraction: feedback.setProgress(100.0 * fraction),
                cancelled=feedback.isCanceled,
                log=feedback.pushInfo,
            )
        except (runner.FatsrFailed, runner.Cancelled) as exc:
            raise QgsProcessingException(str(exc)) from None


class UpscaleAlgorithm(FatsrAlgorithm):
    """Upscales a raster, or the area of interest of it, with a fatsr model (fatsr upscale) into a Cloud-Optimized
    GeoTIFF: georeference rescaled to the new pixel size; nodata, mask, data type and every band kept. The pixels of
    an area are those of the whole raster's output there. The model sets the scale. Runs the fatsr command set in
    Settings > Options > Processing > Providers > fatsr (or on PATH)."""

    BANDS, BACK_PROJECT, EXTENT = "BANDS", "BACK_PROJECT", "EXTENT"
    NAME, TITLE = "upscale", "Upscale raster (super-resolution)"

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Input raster"))
        self.addParameter(
            QgsProcessingParameterExtent(
                self.EXTENT,
                "Area of interest (empty: the whole raster; snapped outward to whole pixels)",
                optional=True,
            )
        )
        self.add_model_parameters()
        self.addParameter(
            QgsProcessingParameterBand(
                self.BANDS,
                "Bands fed to the network together (empty: the model's bands, else 1,2,3)",
                parentLayerParameterName=self.INPUT,
                optional=True,
                allowMultiple=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.BACK_PROJECT, "Back-projection (each output block's mean equals its input pixel)", False
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.TILE, "Tile side in input pixels (0: fatsr's default)", defaultValue=0, minValue=0
            )
        )
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Upscaled raster"))

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict:
        source = self.source(parameters, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if Path(output).suffix.lower() not in (".tif", ".tiff"):
            raise QgsProcessingException(f"{output}: fatsr writes a GeoTIFF; give an output file ending in .tif")
        arguments = ["upscale", source, "-o", output, "--overwrite", *self.model_arguments(parameters, context)]
        if parameters.get(self.EXTENT):  # fatsr upscale --bbox, in the layer's CRS
            crs = self.parameterAsRasterLayer(parameters, self.INPUT, context).crs()
            box = self.parameterAsExtent(parameters, self.EXTENT, context, crs)
            arguments += [
                "--bbox",
                *(repr(v) for v in (box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum())),
            ]
            arguments += ["--bbox-crs", crs.authid() or crs.toWkt()]
        bands = self.parameterAsInts(parameters, self.BANDS, context)
        if bands:
            arguments += ["--bands", ",".join(str(b) for b in bands)]
        if self.parameterAsBool(parameters, self.BACK_PROJECT, context):
            arguments.append("--back-project")
        tile = self.parameterAsInt(parameters, self.TILE, context)
        if tile:
            arguments += ["--tile", str(tile)]
        self.run_command(arguments, output, feedback)
        return {self.OUTPUT: output}


class CompareAlgorithm(FatsrAlgorithm):
    """Writes fatsr's comparison page (fatsr compare) for the raster: an overview, a grid of regions and, for the most
    textured regions and the one at the given point, LR, bicubic and the model side by side with a swipe slider and
    zoom. The page is one HTML file that opens from disk."""

    POINT, REGIONS, OPEN = "POINT", "REGIONS", "OPEN"
    NAME, TITLE = "compare", "Comparison page (LR, bicubic, model)"

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Input raster"))
        self.add_model_parameters()
        self.addParameter(QgsProcessingParameterPoint(self.POINT, "Also show the region at this point", optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.REGIONS, "Regions computed", defaultValue=16, minValue=1))
        self.addParameter(QgsProcessingParameterBoolean(self.OPEN, "Open the page in the web browser", True))
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT, "Comparison page", fileFilter="HTML files (*.html)")
        )

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict:
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        source = self.source(parameters, context)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        arguments = ["compare", source, "-o", output, "--overwrite", *self.model_arguments(parameters, context)]
        arguments += ["--regions", str(self.parameterAsInt(parameters, self.REGIONS, context))]
        if parameters.get(self.POINT):
            point = self.parameterAsPoint(parameters, self.POINT, context, layer.crs())
            arguments += ["--region", repr(point.x()), repr(point.y())]
        self.run_command(arguments, output, feedback)
        if self.parameterAsBool(parameters, self.OPEN, context) and _desktop():
            webbrowser.open(Path(output).resolve().as_uri())
        return {self.OUTPUT: output}


def _desktop() -> bool:
    """Whether this runs in the QGIS desktop (not qgis_process)."""
    from qgis.utils import iface

    return iface is not None
