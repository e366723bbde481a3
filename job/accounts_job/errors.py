"""Fatal errors, each with the exit status the command line gives it.

Rejected rows are data, not errors: nothing here is raised for a bad row. These are the
conditions under which the job cannot produce a trustworthy answer at all. The statuses
follow sysexits(3), so schedulers and shell scripts can tell the cases apart; the table
is docs/rules.md §6.
"""

from __future__ import annotations

EXIT_USAGE = 2  # wrong option or argument (typer's own status for usage errors)
EXIT_DATAERR = 65  # no usable header in the input, an input of an unread form, a damaged --state
EXIT_NOINPUT = 66  # the input is missing or cannot be read; --state is not a state folder
EXIT_UNAVAILABLE = 69  # the --cluster cannot be reached, or lost every try of a step
EXIT_SOFTWARE = 70  # a bug: please report it with the --debug traceback
EXIT_CANTCREAT = 73  # an output, or the --state folder, cannot be written
EXIT_IOERR = 74  # reading the input failed part way
EXIT_TEMPFAIL = 75  # another run holds the --state folder: try again later


class JobError(Exception):
    """A fatal error (docs/rules.md §6): the run stops, no output appears, the state is
    as it was.

    Attributes
    ----------
    exit_code : int
        The command line's exit status for it (sysexits(3)); each subclass has its own.
    """

    exit_code: int = EXIT_SOFTWARE


class InputError(JobError):
    """The input file is missing, unreadable, or failed while being read."""

    exit_code = EXIT_NOINPUT


class ReadError(InputError):
    """Reading the input failed part way, after it was opened."""

    exit_code = EXIT_IOERR


class HeaderError(JobError):
    """The input has no usable header line."""

    exit_code = EXIT_DATAERR


class FormError(HeaderError):
    """The input is none of the forms the job reads (docs/rules.md §2.10): a ZIP archive,
    a Parquet file, binary data. A HeaderError too: such an input has no CSV header."""

    exit_code = EXIT_DATAERR


class OutputError(JobError):
    """An output path cannot be written."""

    exit_code = EXIT_CANTCREAT


class UsageError(JobError):
    """The options do not make sense together (for example an unknown output format)."""

    exit_code = EXIT_USAGE


class StateError(JobError):
    """The --state folder is damaged, edited by hand, or not a state folder."""

    exit_code = EXIT_DATAERR


class NotAState(StateError):
    """The --state folder is missing, or holds no manifest.json: not a state that
    `accounts-job state init` made. Nothing was created (docs/rules.md §7)."""

    exit_code = EXIT_NOINPUT


class StateWriteError(StateError):
    """The --state folder cannot be written: read-only, full, or not permitted. The
    state is as it was."""

    exit_code = EXIT_CANTCREAT


class ProbableResend(StateError):
    """The input's deposits and withdrawals mostly claim tx ids earlier nights claimed:
    an applied file sent again, edited (docs/rules.md §7). Refused unless allowed."""


class StateBusy(JobError):
    """Another run holds the --state folder."""

    exit_code = EXIT_TEMPFAIL


class ClusterError(JobError):
    """The Dask cluster cannot be reached, or could not finish the run."""

    exit_code = EXIT_UNAVAILABLE


class AlreadyApplied(JobError):
    """The input's content was already applied to the --state folder: nothing to do, and
    nothing changed (docs/rules.md §7). Not a failure: its exit status is 0."""

    exit_code = 0
