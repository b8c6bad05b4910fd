"""The fatsr Processing provider and its one setting, the path of the fatsr command."""

from __future__ import annotations

from processing.core.ProcessingConfig import ProcessingConfig, Setting
from qgis.core import QgsProcessingProvider

from .algorithms import COMMAND_SETTING, CompareAlgorithm, UpscaleAlgorithm


class FatsrProvider(QgsProcessingProvider):
    def id(self) -> str:
        return "fatsr"

    def name(self) -> str:
        return "fatsr"

    def longName(self) -> str:
        return "fatsr super-resolution"

    def load(self) -> bool:
        ProcessingConfig.settingIcons[self.name()] = self.icon()
        ProcessingConfig.addSetting(
            Setting(
                self.name(),
                COMMAND_SETTING,
                "fatsr command (empty: the fatsr found on PATH)",
                "",
                valuetype=Setting.FILE,
            )
        )
        ProcessingConfig.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self) -> None:
        ProcessingConfig.removeSetting(COMMAND_SETTING)

    def loadAlgorithms(self) -> None:
        self.addAlgorithm(UpscaleAlgorithm())
        self.addAlgorithm(CompareAlgorithm())

    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        return ["tif"]
