"""``fatsr info``: what a model file records: network, scale, bands, value mapping, training
data and degradation, licence, measured quality and speed."""

from __future__ import annotations

import argparse
import json

# library arguments whose flag is not --name (see fatsr.cli.flags.flag_of): the model file is positional
FLAGS = {"model": ""}

DESCRIPTION = """\
Print a model file's metadata (a .safetensors model of fatsr, a published .pth state dict, or
a built-in model's name): architecture and configuration, scale, parameters, bands and their
order, value mapping, training data and its ground sample distance, degradation, licence,
measured quality and speed, size and SHA-256.
"""

ORDER = ("name", "architecture", "scale", "parameters", "bands", "value_range", "value_mapping", "training_data", "gsd_m",
         "degradation", "training", "licence", "description", "evaluation", "speed", "config", "extra")  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fatsr info``'s arguments."""
    parser.add_argument("model", metavar="FILE|NAME", help="model file or built-in model name (see `fatsr models`)")
    parser.add_argument("--json", action="store_true", help="print the record as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fatsr.models import zoo

    path = zoo.resolve(args.model)
    info = zoo.summary(path)
    info.pop("format", None)
    info.pop("format_version", None)
    info["file"] = str(path)
    info["size_bytes"] = path.stat().st_size
    info["sha256"] = zoo.sha256(path)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    keys = [k for k in ORDER if k in info] + sorted(k for k in info if k not in ORDER)
    width = max(len(k) for k in keys)
    for key in keys:
        value = info[key]
        text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        print(f"{key:<{width}}  {text}")
    return 0
