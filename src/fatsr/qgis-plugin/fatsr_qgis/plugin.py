"""Registers the fatsr Processing provider (also for qgis_process, which calls initProcessing)."""

from __future__ import annotations

from typing import Any

from qgis.core import QgsApplication

from .provider import FatsrProvider


class FatsrPlugin:
    def __init__(self, iface: Any) -> None:
        self.iface = iface
        self.provider: FatsrProvider | None = None

    def initProcessing(self) -> None:
        self.provider = FatsrProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        self.initProcessing()

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
