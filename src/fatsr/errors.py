"""The one error type a user sees: ``FatsrError`` carries a message saying what went wrong
and what to do. Only :func:`fatsr.cli.main` turns it into ``error: ...`` and exit code 2
(1 for a :class:`SystemFailure`)."""

from __future__ import annotations

import errno
from collections.abc import Callable


class FatsrError(Exception):
    """An error caused by the user's input (files, flags, checkpoints), not a bug."""


class SystemFailure(FatsrError):
    """A failure that is not the input's fault: a full disk, an I/O or network error, no memory
    (exit code 1 on the command line)."""


# What the user chose wrongly (a path, a folder's permissions), as opposed to the machine failing.
_USAGE_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG}


def os_error_class(exc: OSError) -> type[FatsrError]:
    """The error type of an operating system's refusal: :class:`FatsrError` (exit 2) for a bad
    path or permissions, :class:`SystemFailure` (exit 1) for the rest (full disk, I/O, network)."""
    return FatsrError if exc.errno in _USAGE_ERRNOS else SystemFailure


class ArgumentError(FatsrError):
    """A bad value of a named argument. The message is a template in which ``{arg}`` stands
    for the argument (and other fields for other arguments, given as ``name=(argument,
    value)``): ``name=value`` from Python; the command line puts its flags there (:meth:`render`).
    A value of None names the argument alone (``name``; ``--flag`` on the command line)."""

    def __init__(self, template: str, argument: str, value: object, **others: tuple[str, object]) -> None:
        self.template, self.argument, self.value, self.others = template, argument, value, others
        super().__init__(self.render(lambda name, given: name if given is None else f"{name}={given!r}"))

    def render(self, spell: Callable[[str, object], str]) -> str:
        """The message with each argument spelled by ``spell(argument, value)``."""
        text = self.template.replace("{arg}", spell(self.argument, self.value))
        for key, (name, given) in self.others.items():
            text = text.replace("{" + key + "}", spell(name, given))
        return text


def within(exc: FatsrError, prefix: str = "", suffix: str = "") -> FatsrError:
    """``exc`` with words around it; an :class:`ArgumentError` stays one, so the command line
    still spells its arguments as flags."""
    if isinstance(exc, ArgumentError):
        return ArgumentError(prefix + exc.template + suffix, exc.argument, exc.value, **exc.others)
    return FatsrError(f"{prefix}{exc}{suffix}")
