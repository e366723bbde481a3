"""`accounts-job run`: the inputs in, the accounts out.

Options map one to one onto `accounts_job.process`, which owns every guarantee (outputs
whole or absent, the state committed last); this module only reads options and prints.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..distributed import CONNECT_TIMEOUT, STALL_TIMEOUT
from ..engine.parser import DEFAULT_BATCH_SIZE
from ..errors import AlreadyApplied, UsageError
from ..job import process
from ..state.manifest import state_key as read_state_key
from ..warmup import compile_notice
from .app import app, guarded
from .progress import progress_bar

EXIT_STATUS = (
    "Exit status: 0 when the run completed, rejected rows or not, or INPUT was already "
    "applied to --state; 2 usage error; 65 INPUT has no usable header or columns, or the "
    "state is damaged or edited, or INPUT is a probable re-send, or INPUT is of a form the "
    "job does not read (a ZIP or binary file); 66 INPUT missing or unreadable, "
    "or --state is not a state folder (see state init); 69 the --cluster is unreachable "
    "or failed; 70 internal error; 73 an output, or the state, cannot be "
    "written; 74 reading INPUT failed part way, or its compressed data is corrupt or cut "
    "short; 75 another run holds the state; "
    "129, 130, 143 stopped by SIGHUP, SIGINT, SIGTERM."
)


@app.command(epilog=EXIT_STATUS)
def run(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="The transactions: a CSV path, - for standard input, a FIFO, or a URL "
            "(s3://, gs://, https://, file://); plain or compressed (gzip, zstd, bzip2, xz, "
            "told by their magic bytes). Several are applied in order as one stream, each "
            "with its own header and line numbers; a quoted glob ('in/2026-11-*.csv') is "
            "expanded and sorted by the job. Or, alone, a Parquet or Arrow file, or a folder "
            "or glob of Parquet files (known by content).",
            metavar="INPUT...",
            show_default=False,
        ),
    ],
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Write the accounts here (.csv or .parquet) instead of CSV on stdout "
            "(- is stdout; a symlink's target is replaced; a device or FIFO is written "
            "directly).",
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
            help="Nightly state folder (made by state init): start from what earlier runs "
            "left there, apply each INPUT once, and commit the new state after the outputs "
            "are written (all the inputs in one commit; those applied before are skipped "
            "with a note).",
            file_okay=False,
        ),
    ] = None,
    state_key_file: Annotated[
        Path | None,
        typer.Option(
            help="The state key, for a signed --state: the manifest must carry its "
            "signature, and is signed with it. Default: the ACCOUNTS_JOB_STATE_KEY "
            "environment variable, if set.",
            metavar="PATH",
            dir_okay=False,
        ),
    ] = None,
    allow_resend: Annotated[
        bool,
        typer.Option(
            "--allow-resend",
            help="Apply INPUT to --state even if most tx ids its deposits and withdrawals "
            "claim were claimed on earlier nights (refused otherwise as a probable re-send "
            "of an applied file, status 65).",
        ),
    ] = False,
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
    cluster_connect_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds to reach the --cluster scheduler and complete Dask's handshake; "
            "then exit 69.",
            metavar="SECONDS",
        ),
    ] = CONNECT_TIMEOUT,
    cluster_stall_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a --cluster run waits while the cluster has no worker and no step "
            "finishes; then exit 69.",
            metavar="SECONDS",
        ),
    ] = STALL_TIMEOUT,
    batch_size: Annotated[
        int,
        typer.Option(min=1, help="Lines per batch: memory per batch versus overhead per batch."),
    ] = DEFAULT_BATCH_SIZE,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="No progress bar, no summary and no Dask messages on stderr: fatal errors only.",
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of fatal errors.")
    ] = False,
) -> None:
    """Compute every client's account from INPUT...: CSV on stdout, or --out a file."""

    def go() -> None:
        if state is None and (state_key_file is not None or allow_resend):
            raise UsageError("--state-key-file and --allow-resend go with --state")
        key = read_state_key(key_file=state_key_file) if state_key_file is not None else None
        bar = not quiet and sys.stderr.isatty() and cluster is None
        # A run that must compile the kernels first says so, once (not with --quiet).
        notice = compile_notice() if not quiet else contextlib.nullcontext()
        try:
            with notice, progress_bar(enabled=bar) as progress:
                result = process(
                    inputs,
                    accounts_to=out if out is not None else sys.stdout.buffer,
                    accounts_format=format,  # type: ignore[arg-type]
                    rejects_to=rejects,
                    events_to=events,
                    summary_to=summary,
                    keep_rejects=False,
                    state=state,
                    state_key=key,
                    allow_resend=allow_resend,
                    cluster=cluster,
                    cluster_connect_timeout=cluster_connect_timeout,
                    cluster_stall_timeout=cluster_stall_timeout,
                    quiet=quiet,
                    batch_size=batch_size,
                    progress=progress,
                )
        except AlreadyApplied as e:
            # Not an error: the state already holds this input. Said even with --quiet.
            print(f"accounts-job: {e}", file=sys.stderr)
            return
        for item in result.summary.inputs:
            if item["skipped"]:
                # Said even with --quiet, as a run that applied nothing is.
                note = f"{item['name']} not applied: {item['skipped']}"
                print(f"accounts-job: {note}", file=sys.stderr)
        if not quiet:
            sys.stderr.write(result.summary.to_text())

    guarded(debug, go)
