"""The fatsr QGIS plugin: a Processing provider that runs the installed ``fatsr`` command."""


def classFactory(iface):
    """QGIS's entry point."""
    from .plugin import FatsrPlugin

    return FatsrPlugin(iface)
