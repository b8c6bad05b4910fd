"""How a library argument is spelled on the command line, and a library error as a command says it."""

from __future__ import annotations

import importlib
import importlib.util

from fatsr.errors import ArgumentError, FatsrError

# Library arguments whose command-line flag is not ``--name value``: the precision, in every
# command; the others in each command's module, as its ``FLAGS`` (a positional argument, "",
# is spelled by its value alone).
_PRECISION_FLAGS = {"float16": "--fp16", "bfloat16": "--bf16"}


def _command_flags(command: str | None) -> dict[str, str]:
    """The ``FLAGS`` of ``fatsr.cli.<command>`` (none for another name)."""
    name = f"fatsr.cli.{command}"
    if not command or not command.isidentifier() or importlib.util.find_spec(name) is None:
        return {}
    return getattr(importlib.import_module(name), "FLAGS", {})


def flag_of(argument: str, value: object, command: str | None = None) -> str:
    """The command-line spelling of a library argument and its value (None: the flag alone)
    in ``command`` (``fatsr <command>``)."""
    if argument == "precision" and value in _PRECISION_FLAGS:
        return _PRECISION_FLAGS[str(value)]
    flag = _command_flags(command).get(argument)
    if flag is None:
        flag = "--" + argument.replace("_", "-")
    if isinstance(value, (tuple, list)):  # bands 4,3,2; other lists as nargs: LO HI
        value = ("," if argument == "bands" else " ").join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if value is True or value is None:
        return flag
    return f"{flag} {value}" if flag else str(value)


def message(exc: FatsrError, command: str | None = None) -> str:
    """A library error as ``fatsr <command>`` says it (arguments spelled as its flags)."""
    if not isinstance(exc, ArgumentError):
        return str(exc)
    return exc.render(lambda argument, value: flag_of(argument, value, command))
