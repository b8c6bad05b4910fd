"""Command line: ``fatsr <command> ...``. Each subcommand lives in its own module with
``add_parser(subparsers)`` and ``run(args) -> int``."""

from __future__ import annotations

import argparse
import sys

from fatsr.errors import FatsrError


def build_parser() -> argparse.ArgumentParser:
    from fatsr import __version__
    from fatsr.cli import compare, degrade, denoise, evaluate, export, lam, prepare, train, upscale

    parser = argparse.ArgumentParser(prog="fatsr", description="Remote-sensing super-resolution with FAT.")
    parser.add_argument("--version", action="version", version=f"fatsr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (upscale, train, evaluate, compare, lam, degrade, denoise, prepare, export):
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except FatsrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
