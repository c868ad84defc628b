"""Errors meant for people: one line naming the problem and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BenchError(Exception):
    """An error the CLI prints as one line (no traceback) and exits with `exit_code`."""

    exit_code = 2  # bad input: the message names the fix


class RunFailed(BenchError):
    """A run stopped by something other than bad input (a bug, a full disk, a lost node): what
    finished is saved and the message holds the resume command; --debug shows the cause."""

    exit_code = 1


class ConfigError(BenchError):
    """A benchmark definition or CLI flag that cannot be used as given."""


class DataError(BenchError):
    """A dataset that cannot be found or read."""


class UnknownNameError(BenchError, KeyError):
    """A registry lookup for a name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def closest(name: str, known: Iterable[str]) -> str:
    """A ' (did you mean ...?)' hint, or '' when nothing is close."""
    known = sorted(known)
    # A prefix ('f1' for 'f1_macro') is what people type most; then spelling slips.
    prefixed = [k for k in known if k.startswith(name)] if name else []
    matches = prefixed or difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return f" (did you mean '{matches[0]}'?)" if matches else ""
