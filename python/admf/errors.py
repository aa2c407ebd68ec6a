"""Errors users see. The CLI prints an ``AdmfError`` as one line (a traceback only with
``--debug``); any other exception is a bug and is shown in full."""

from __future__ import annotations


class AdmfError(Exception):
    """An error caused by the input (a file, an argument, a configuration), with a message
    that says what is wrong and what was expected."""
