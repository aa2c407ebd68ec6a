"""Errors users see. The CLI prints an ``AdmfError`` as one line (a traceback only with
``--debug``); any other exception is a bug and is shown in full."""

from __future__ import annotations


class AdmfError(Exception):
    """An error caused by the input (a file, an argument, a configuration), with a message
    that says what is wrong and what was expected."""


class AdmfWarning(UserWarning):
    """Input admf accepted but changed or doubts, said once with a count (rows of a data file
    that were out of time order and have been sorted, for instance). ``-W error::admf.errors.
    AdmfWarning`` (or ``warnings.simplefilter``) turns every such warning into an error."""


class SettingError(AdmfError, ValueError):
    """A setting outside its accepted values, raised before a run starts; ``setting`` is its
    name (``initial_cash``, ``risk.max_order_qty``) so that a front end can name its own
    option instead."""

    def __init__(self, setting: str, value: object, accepted: str) -> None:
        super().__init__(f"{setting}: {value!r} is not accepted; expected {accepted}")
        self.setting = setting
        self.value = value
        self.accepted = accepted
