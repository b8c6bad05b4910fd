"""Command line: ``fatsr <command> ...``. Each subcommand lives in its own module with
``add_parser(subparsers)`` and ``run(args) -> int``."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator
from typing import NoReturn

from fatsr.errors import ArgumentError, FatsrError

# Library arguments whose command-line flag is not ``--name value``: in every command, and in
# one command (a positional argument, "", is spelled by its value alone).
_PRECISION_FLAGS = {"float16": "--fp16", "bfloat16": "--bf16"}
_FLAGS = {"specs": "--model", "hr_files": "--hr", "points": "--region"}
_COMMAND_FLAGS = {
    "upscale": {"value_range": "--range"},
    "compare": {"value_range": "--range"},
    "evaluate": {"weights_dir": "--lpips-weights", "value_range": "--range"},
    "info": {"model": ""},
}


def flag_of(argument: str, value: object, command: str | None = None) -> str:
    """The command-line spelling of a library argument and its value (None: the flag alone)
    in ``command`` (``fatsr <command>``)."""
    if argument == "precision" and value in _PRECISION_FLAGS:
        return _PRECISION_FLAGS[str(value)]
    flag = _COMMAND_FLAGS.get(command or "", {}).get(argument)
    if flag is None:
        flag = _FLAGS.get(argument) or "--" + argument.replace("_", "-")
    if isinstance(value, (tuple, list)):  # bands 4,3,2; other lists as nargs: LO HI
        value = ("," if argument == "bands" else " ").join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if value is True or value is None:
        return flag
    return f"{flag} {value}" if flag else str(value)


class Parser(argparse.ArgumentParser):
    """argparse with fatsr's one-line errors: ``error: ...`` and exit code 2; usage on --help only."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        self.exit(2, f"error: {command}{one_line(message)} (see {self.prog} --help)\n")


def one_line(text: str) -> str:
    """A message as one line: the lines a library's own text may bring joined with "; "."""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def message(exc: FatsrError, command: str | None = None) -> str:
    """A library error as ``fatsr <command>`` says it (arguments spelled as its flags)."""
    if not isinstance(exc, ArgumentError):
        return str(exc)
    return exc.render(lambda argument, value: flag_of(argument, value, command))


def build_parser() -> argparse.ArgumentParser:
    from fatsr import __version__
    from fatsr.cli import compare, degrade, denoise, evaluate, export, info, lam, models, prepare, train, upscale

    parser = Parser(prog="fatsr", description="Remote-sensing super-resolution with FAT.")
    parser.add_argument("--version", action="version", version=f"fatsr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (upscale, train, evaluate, compare, lam, degrade, denoise, prepare, export, models, info):
        module.add_parser(sub)
    return parser


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a job scheduler, ``timeout``) stops a command as Ctrl-C does: its
    temporary files are removed and a resumable partial file keeps its progress."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        with _sigterm_as_interrupt():
            return int(args.func(args) or 0)
    except FatsrError as exc:
        print(f"error: {one_line(message(exc, args.command))}", file=sys.stderr)
        return 2
    except OSError as exc:  # the machine's answer (full disk, permissions, I/O): one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(
            f"error: {where}{exc.strerror or exc}; free some space, fix the permissions or choose another path",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
