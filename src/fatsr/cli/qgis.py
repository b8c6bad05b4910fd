"""``fatsr qgis``: the QGIS plugin (a Processing provider that runs this fatsr command), as a
zip for QGIS's plugin manager or installed straight into a QGIS profile."""

from __future__ import annotations

import argparse
import configparser
import json
import os
import shutil
import sys
import tempfile
import zipfile
from importlib.resources import files
from pathlib import Path

from fatsr.errors import FatsrError
from fatsr.io import atomic_write

PLUGIN = "fatsr_qgis"  # the plugin's folder name, QGIS's plugin id
COMMAND_SETTING = "FATSR_COMMAND"  # the provider setting with the fatsr command's path
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # every zip entry's time: the same plugin, the same bytes

DESCRIPTION = """\
The QGIS plugin adds the Processing algorithms fatsr:upscale and fatsr:compare (toolbox,
graphical models, batch mode, qgis_process). They run this fatsr command in a subprocess,
so QGIS's own Python needs no PyTorch.

  fatsr qgis install [--profile NAME]   copy the plugin into a QGIS profile, enable it (also
                                        for qgis_process) and record this fatsr's path as
                                        the provider's fatsr command; close QGIS first
  fatsr qgis build-plugin -o fatsr-qgis.zip
                                        the plugin as a zip for Plugins > Manage and Install
                                        Plugins > Install from ZIP
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fatsr qgis``'s arguments."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser("build-plugin", help="write the plugin as a zip for QGIS's plugin manager")
    build.add_argument("-o", "--output", required=True, metavar="ZIP", help="the zip file to write")
    build.add_argument("--overwrite", action="store_true", help="replace ZIP if it exists")
    build.set_defaults(func=run_build)
    install = actions.add_parser("install", help="install and enable the plugin in a QGIS profile")
    install.add_argument("--profile", metavar="NAME", help="QGIS profile (default: QGIS's default profile)")
    install.add_argument(
        "--profiles-dir",
        metavar="DIR",
        help="the folder holding QGIS's profiles (default: $QGIS_CUSTOM_CONFIG_PATH/profiles, else "
        "~/.local/share/QGIS/QGIS3/profiles on Linux, ~/Library/Application Support/QGIS/QGIS3/profiles "
        "on macOS, %%APPDATA%%\\QGIS\\QGIS3\\profiles on Windows)",
    )
    install.set_defaults(func=run_install)


def run_build(args: argparse.Namespace) -> int:
    with atomic_write(args.output, overwrite=args.overwrite) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in plugin_files().items():
                entry = zipfile.ZipInfo(f"{PLUGIN}/{name}", ZIP_TIME)
                entry.external_attr = 0o644 << 16
                entry.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(entry, data)
    print(f"wrote {args.output}: install it in QGIS with Plugins > Manage and Install Plugins > Install from ZIP")
    return 0


def run_install(args: argparse.Namespace) -> int:
    root = Path(args.profiles_dir) if args.profiles_dir else profiles_root()
    profile = args.profile or default_profile(root)
    folder = root / profile
    target = install_plugin(folder / "python" / "plugins")
    command = fatsr_command()
    settings = {("PythonPlugins", PLUGIN): "true"}
    if command is not None:
        settings[("Processing", f"Configuration\\{COMMAND_SETTING}")] = qt_string(command)
    ini = folder / "QGIS" / "QGIS3.ini"
    write_ini(ini, settings)
    print(f"installed the fatsr plugin in {target} and enabled it in {ini}")
    if command is None:
        print("the fatsr command was not found; set its path in Settings > Options > Processing > Providers > fatsr")
    else:
        print(f"the plugin runs {command}; start QGIS (or qgis_process) to use fatsr:upscale and fatsr:compare")
    return 0


def plugin_files() -> dict[str, bytes]:
    """The plugin's files (relative name -> bytes) with models.json, the built-in models' names."""
    source = files("fatsr") / "qgis-plugin" / PLUGIN
    found = {entry.name: entry.read_bytes() for entry in source.iterdir() if entry.is_file()}
    if "__init__.py" not in found:
        raise FatsrError(f"this fatsr build has no QGIS plugin ({source}); reinstall fatsr")
    found = {name: data for name, data in found.items() if not name.endswith(".pyc")}
    found["models.json"] = json.dumps(builtin_names(), indent=2).encode() + b"\n"
    return dict(sorted(found.items()))


def builtin_names() -> dict[str, object]:
    """The built-in model names and the default one, for the plugin's model list."""
    from fatsr.models import zoo

    return {"models": sorted(zoo.builtin_models()), "default": zoo.default_name() or "default"}


def profiles_root() -> Path:
    """The folder of QGIS's profiles, found as QGIS finds it."""
    custom = os.environ.get("QGIS_CUSTOM_CONFIG_PATH")
    if custom:
        return Path(custom) / "profiles"
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "QGIS" / "QGIS3" / "profiles"


def default_profile(root: Path) -> str:
    """The profile QGIS opens: profiles.ini's [core] defaultProfile, else "default"."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(root / "profiles.ini", encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return "default"
    return parser.get("core", "defaultProfile", fallback="default").strip() or "default"


def install_plugin(plugins: Path) -> Path:
    """Copy the plugin into ``plugins``/fatsr_qgis, replacing an earlier install of it whole."""
    target = plugins / PLUGIN
    try:
        plugins.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{PLUGIN}.", dir=plugins))
        try:
            for name, data in plugin_files().items():
                (staging / name).write_bytes(data)
            old = None
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{PLUGIN}.old.", dir=plugins))
                target.rename(old / PLUGIN)
            try:
                staging.rename(target)
            except OSError:
                if old is not None:  # put the earlier install back
                    (old / PLUGIN).rename(target)
                    old.rmdir()
                raise
            if old is not None:
                shutil.rmtree(old)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
    except OSError as exc:
        raise FatsrError(
            f"cannot install the plugin in {plugins}: {exc.strerror or exc}; check the folder's permissions "
            "or choose another --profiles-dir"
        ) from None
    return target


def fatsr_command() -> str | None:
    """The path of this fatsr command: the script beside this Python (a virtual environment's),
    else the fatsr on PATH."""
    script = Path(sys.executable).with_name("fatsr.exe" if sys.platform == "win32" else "fatsr")
    if script.is_file():
        return str(script)
    return shutil.which("fatsr")


def qt_string(value: str) -> str:
    """``value`` as a quoted string in Qt's INI format (so commas do not make it a list)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_ini(path: Path, settings: dict[tuple[str, str], str]) -> None:
    """Set ``(section, key) -> value`` in the QGIS settings file ``path`` (created if missing),
    every other line left as it is."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    except (OSError, UnicodeDecodeError) as exc:
        raise FatsrError(f"cannot read {path} ({exc}); close QGIS and check the file") from None
    for (section, key), value in settings.items():
        lines = set_ini_value(lines, section, key, value)
    with atomic_write(path, overwrite=True) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def set_ini_value(lines: list[str], section: str, key: str, value: str) -> list[str]:
    """``lines`` of an INI file with ``key=value`` in ``[section]`` (replaced or added)."""
    header = f"[{section}]"
    start = next((k for k, line in enumerate(lines) if line.strip() == header), None)
    if start is None:
        return [*lines, *([""] if lines and lines[-1].strip() else []), header, f"{key}={value}"]
    end = next((k for k in range(start + 1, len(lines)) if lines[k].lstrip().startswith("[")), len(lines))
    for k in range(start + 1, end):
        if lines[k].split("=", 1)[0].strip() == key:
            return [*lines[:k], f"{key}={value}", *lines[k + 1 :]]
    last = end
    while last > start + 1 and not lines[last - 1].strip():  # before the blank lines that end the section
        last -= 1
    return [*lines[:last], f"{key}={value}", *lines[last:]]
