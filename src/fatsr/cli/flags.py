"""How a library argument is spelled on the command line, and a library error as a command says it."""

from __future__ import annotations

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


def message(exc: FatsrError, command: str | None = None) -> str:
    """A library error as ``fatsr <command>`` says it (arguments spelled as its flags)."""
    if not isinstance(exc, ArgumentError):
        return str(exc)
    return exc.render(lambda argument, value: flag_of(argument, value, command))
