"""`accounts-job run`: one file in, the accounts out.

Options map one to one onto `accounts_job.process`, which owns every guarantee (outputs
whole or absent, the state committed last); this module only reads options and prints.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..engine.parser import DEFAULT_BATCH_SIZE
from ..errors import AlreadyApplied
from ..job import process
from ..warmup import compile_notice
from .app import app, guarded
from .progress import progress_bar

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
        bar = not quiet and sys.stderr.isatty() and cluster is None
        # A run that must compile the kernels first says so, once (not with --quiet).
        notice = compile_notice() if not quiet else contextlib.nullcontext()
        try:
            with notice, progress_bar(Path(input), enabled=bar) as progress:
                result = process(
                    input,
                    accounts_to=out if out is not None else sys.stdout.buffer,
                    accounts_format=format,  # type: ignore[arg-type]
                    rejects_to=rejects,
                    events_to=events,
                    summary_to=summary,
                    keep_rejects=False,
                    state=state,
                    cluster=cluster,
                    batch_size=batch_size,
                    progress=progress,
                )
        except AlreadyApplied as e:
            # Not an error: the state already holds this input. Said even with --quiet.
            print(f"accounts-job: {e}", file=sys.stderr)
            return
        if not quiet:
            sys.stderr.write(result.summary.to_text())

    guarded(debug, go)
