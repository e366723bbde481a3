"""`accounts-job run`: one file in, the accounts out."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from ..cli import app, guarded
from ..engine import DEFAULT_BATCH_SIZE, AlreadyApplied, process
from ..errors import UsageError
from ..faults import crash_point
from ..output import (
    AtomicFile,
    EventsWriter,
    RejectsWriter,
    TableWriter,
    format_for,
    write_accounts,
    write_accounts_to,
)
from ..progress import progress_bar

T = TypeVar("T", bound=AtomicFile | TableWriter)  # an output opened before the work

EXIT_STATUS = (
    "Exit status: 0 when the run completed, rejected rows or not, or INPUT was already "
    "applied to --state; 2 usage error; 65 INPUT has no usable header, or the state is "
    "damaged; 66 INPUT missing or unreadable; 69 the --cluster is unreachable or failed; "
    "70 internal error; 73 an output cannot be "
    "written; 74 reading INPUT failed part way; 75 another run holds the state."
)


@app.command(epilog=EXIT_STATUS)
def run(
    input: Annotated[
        str,
        typer.Argument(
            help="The transactions CSV: a path, or with --cluster also a URL.",
            metavar="INPUT",
            show_default=False,
        ),
    ],
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Write the accounts here (.csv or .parquet) instead of CSV on stdout.",
            metavar="PATH",
        ),
    ] = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format", "-f", help="Output format, csv or parquet; overrides --out's suffix."
        ),
    ] = None,
    rejects: Annotated[
        str | None,
        typer.Option(
            help="Write every rejected row here (.csv or .parquet): line, reason, raw line.",
            metavar="PATH",
        ),
    ] = None,
    summary: Annotated[
        str | None,
        typer.Option(help="Write the run's summary here as JSON.", metavar="PATH"),
    ] = None,
    events: Annotated[
        str | None,
        typer.Option(
            help="Write every accepted event here (.csv or .parquet), in order: line, client, "
            "tx, event (credited, debited, held, released, reversed, locked), amount.",
            metavar="PATH",
        ),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            help="Nightly state folder: start from what earlier runs left there, apply INPUT "
            "once, and commit the new state after the outputs are written.",
            file_okay=False,
        ),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            help="Run on a Dask cluster, sharded by client: tcp://HOST:PORT of a running "
            "scheduler, or local:N to start N worker processes here. INPUT must be a path "
            "every worker can read, or a URL; with --cluster, outputs may be URLs too. Needs "
            "the distributed extra; not with --state or --events.",
            metavar="ADDRESS",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(min=1, help="Lines per batch: memory per batch versus overhead per batch."),
    ] = DEFAULT_BATCH_SIZE,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar and no summary on stderr.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of fatal errors.")
    ] = False,
) -> None:
    """Compute every client's account from INPUT: CSV on stdout, or --out a file."""

    def go() -> None:
        fmt = format_for(out if out is not None else "stdout.csv", format)
        if out is None and fmt != "csv":
            raise UsageError("parquet output needs --out PATH; stdout takes CSV only")
        # Check every format, then open every output: a path that cannot be written fails
        # before the work, and whatever was opened is removed again.
        for extra in (rejects, events):
            if extra is not None:
                format_for(extra)
        pending: list[AtomicFile | TableWriter] = []
        result = None

        def opened(kind: Callable[[str], T], path: str | None) -> T | None:
            if path is None:
                return None
            output = kind(path)
            pending.append(output)
            return output

        try:
            accounts_file = opened(AtomicFile, out)
            summary_file = opened(AtomicFile, summary)
            rejects_writer = opened(RejectsWriter, rejects)
            events_writer = opened(EventsWriter, events)
            bar = not quiet and sys.stderr.isatty() and cluster is None
            with progress_bar(Path(input), enabled=bar) as progress:
                result = process(
                    input,
                    batch_size=batch_size,
                    rejects_to=rejects_writer,
                    events_to=events_writer,
                    keep_rejects=False,
                    progress=progress,
                    state=state,
                    defer_commit=True,
                    cluster=cluster,
                )
            if accounts_file is not None:
                write_accounts_to(result.accounts_table, accounts_file.tmp, fmt)
            if summary_file is not None:
                summary_file.tmp.write_text(result.summary.to_json())
        except AlreadyApplied as e:
            # Not an error: the state already holds this file. Said even with --quiet.
            for f in pending:
                f.discard()
            print(f"accounts-job: {e}", file=sys.stderr)
            return
        except BaseException:
            for f in pending:
                f.discard()
            if result is not None and result.pending is not None:
                result.pending.discard()
            raise
        # The outputs first, then the state: a run stopped in between leaves the file
        # not applied, and running it again writes the same outputs and commits.
        try:
            for f in pending:
                f.commit()
            if out is None:
                write_accounts(result.accounts_table, None)
            crash_point("outputs-written")
        except BaseException:
            if result.pending is not None:
                result.pending.discard()
            raise
        if result.pending is not None:
            result.pending.commit()
        if not quiet:
            sys.stderr.write(result.summary.to_text())

    guarded(debug, go)
