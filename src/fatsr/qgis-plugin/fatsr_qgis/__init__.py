"""The fatsr QGIS plugin: a Processing provider that runs the installed ``fatsr`` command."""

from typing import Any


def classFactory(iface: Any) -> Any:
    """QGIS's entry point."""
    from .plugin import FatsrPlugin

    return FatsrPlugin(iface)
