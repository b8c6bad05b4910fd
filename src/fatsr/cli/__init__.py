"""Command line: ``fatsr <command> ...``. Each subcommand lives in its own module with its
``DESCRIPTION`` (and ``EXAMPLES``), ``add_arguments(parser)`` and ``run(args) -> int``; only
the module of the command being run is imported (``fatsr --help``, ``--version``, ``models``
and ``info`` start without PyTorch)."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import re
import signal
import sys
import warnings
from collections.abc import Iterator
from typing import NoReturn, TextIO

from fatsr.cli.flags import message
from fatsr.errors import FatsrError, SystemFailure, os_error_class

# The commands in --help order, with their one-line help.
COMMANDS: dict[str, str] = {
    "upscale": "upscale images with a FAT model",
    "train": "train a FAT network",
    "evaluate": "score SR images or a model against HR images (PSNR/SSIM Y and RGB, SAM, ERGAS, LPIPS)",
    "compare": "write an offline HTML page comparing LR, bicubic, models and HR (swipe, zoom, numbers)",
    "lam": "local attribution map of an output window (Gini, diffusion index, figures)",
    "degrade": "make realistic LR images from HR images (Real-ESRGAN degradation)",
    "denoise": "denoise training images (non-local means or BM3D) and print noise estimates",
    "prepare": "split scenes into tiles, build HR/LR pairs, check a dataset",
    "export": "write a model as an ONNX graph (onnxruntime), checked against PyTorch",
    "models": "list the built-in models",
    "info": "print a model file's metadata",
    "qgis": "install the QGIS plugin (Processing algorithms fatsr:upscale, fatsr:compare) or build its zip",
}
MODEL_COMMANDS = ("upscale", "evaluate", "compare", "lam", "export")  # they run a model: --threads
EXIT_CODES = """\
exit status: 0 done; 2 bad usage or bad input (a flag, a file, a path or its permissions: the
one error line says what to change); 1 a failure that is not the input's fault (a full disk,
an I/O or network error, out of memory); 130 interrupted.
"""


class Parser(argparse.ArgumentParser):
    """argparse with fatsr's one-line errors: ``error: ...`` and exit code 2; usage on --help only."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        self.exit(2, f"error: {command}{one_line(message)} (see {self.prog} --help)\n")


def one_line(text: str) -> str:
    """A message as one line: the lines a library's own text may bring joined with "; "."""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of threads, at least 1")
    return value


def add_common_options(parser: argparse.ArgumentParser, threads: bool = False) -> None:
    """-q/--quiet and -v/--verbose (every command, and before the command), --threads (commands
    that run a model). They stay out of the namespace unless given."""
    group = parser.add_argument_group("output and resources")
    group.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
        help="print errors only (no progress, results or warnings)",
    )  # fmt: skip
    group.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS,
        help="print more detail: a line per tile batch and per file",
    )  # fmt: skip
    if threads and "--threads" not in parser._option_string_actions:
        group.add_argument(
            "--threads", type=_positive, metavar="N", default=argparse.SUPPRESS,
            help="CPU threads for the model (default: torch's, one per usable CPU)",
        )  # fmt: skip


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; with ``command``, only that command's module is imported
    and its parser built in full (the others are listed by name and help; "": none is built)."""
    from fatsr.version import __version__

    parser = Parser(
        prog="fatsr", description="Remote-sensing super-resolution with FAT.", epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"fatsr {__version__}")
    add_common_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, text in COMMANDS.items():
        if command is None or name == command:
            module = importlib.import_module(f"fatsr.cli.{name}")
            examples = getattr(module, "EXAMPLES", None)
            command_parser = sub.add_parser(
                name,
                help=text,
                description=module.DESCRIPTION,
                epilog=f"{examples}\n{EXIT_CODES}" if examples else EXIT_CODES,
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
            module.add_arguments(command_parser)
            add_common_options(command_parser, threads=name in MODEL_COMMANDS)
        else:
            sub.add_parser(name, help=text)
    return parser


def _command_of(argv: list[str]) -> str | None:
    """The command named in ``argv`` (the first word that is not an option), if it is one."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in COMMANDS else None


class _ErrorsOnly(io.TextIOBase):
    """stderr under -q: lines that start with ``error:`` pass; progress, notes and warnings do not."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.line = ""  # the current line while it may still be an error line
        self.dropping = False  # the current line is not one

    def write(self, text: str) -> int:
        for part in re.split(r"(\n)", text):
            if part == "\n":
                if self.line.startswith("error:"):
                    self.stream.write(self.line + "\n")
                self.line, self.dropping = "", False
            elif not self.dropping:
                self.line += part
                self.dropping = not ("error:".startswith(self.line) or self.line.startswith("error:"))
                if self.dropping:
                    self.line = ""
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:  # no progress bars
        return False


@contextlib.contextmanager
def _output(verbosity: int) -> Iterator[None]:
    """Messages at ``verbosity`` (0 quiet: errors only; 1 normal; 2 verbose)."""
    from fatsr import progress

    before = progress.VERBOSITY
    progress.VERBOSITY = verbosity
    try:
        if verbosity > 0:
            yield
            return
        with (
            open(os.devnull, "w") as devnull,
            contextlib.redirect_stdout(devnull),
            contextlib.redirect_stderr(_ErrorsOnly(sys.stderr)),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        progress.VERBOSITY = before


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
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_of(argv) or "")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    verbosity = 0 if getattr(args, "quiet", False) else 1 + getattr(args, "verbose", 0)
    try:
        if args.command in MODEL_COMMANDS and getattr(args, "threads", None):
            import torch

            torch.set_num_threads(args.threads)
        with _sigterm_as_interrupt(), _output(verbosity):
            return int(args.func(args) or 0)
    except SystemFailure as exc:
        print(f"error: {one_line(message(exc, args.command))}", file=sys.stderr)
        return 1
    except FatsrError as exc:
        print(f"error: {one_line(message(exc, args.command))}", file=sys.stderr)
        return 2
    except OSError as exc:  # the machine's answer (full disk, permissions, I/O, network): one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(
            f"error: {where}{exc.strerror or exc}; free some space, fix the permissions or choose another path",
            file=sys.stderr,
        )
        return 1 if os_error_class(exc) is SystemFailure else 2
    except MemoryError:
        print("error: out of memory; use a smaller --tile or batch, or a machine with more memory", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        if type(exc).__name__ != "OutOfMemoryError":  # torch.OutOfMemoryError (CUDA, MPS)
            raise
        first = (str(exc).strip().splitlines() or ["out of memory"])[0][:200]
        print(f"error: {first}; use a smaller --tile or batch, or another device", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
