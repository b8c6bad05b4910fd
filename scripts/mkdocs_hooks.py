"""MkDocs hook (mkdocs.yml: hooks): docs/cli-reference.md gets the --help text of every
command, taken from fatsr's own argparse parsers at build time."""

from __future__ import annotations

import os
from typing import Any

MARKER = "<!-- cli-reference -->"


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if MARKER not in markdown:
        return markdown
    os.environ["COLUMNS"] = "100"  # argparse wraps help text to this width
    from fatsr.cli import COMMANDS, build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices  # the subparsers
    sections = ["## fatsr\n\n```text\n" + parser.format_help().rstrip() + "\n```\n"]
    for name in COMMANDS:
        sections.append(f"## fatsr {name}\n\n```text\n" + commands[name].format_help().rstrip() + "\n```\n")
    return markdown.replace(MARKER, "\n".join(sections))
