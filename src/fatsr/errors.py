"""The one error type a user sees: ``FatsrError`` carries a message saying what went wrong
and what to do. Only :func:`fatsr.cli.main` turns it into ``error: ...`` and exit code 2."""


class FatsrError(Exception):
    """An error caused by the user's input (files, flags, checkpoints), not a bug."""
