"""The job: its inputs in, every output written and the state committed, all or nothing.

`process` is the library's front door and owns the guarantee the command line promises
(docs/rules.md §6, §7): it opens every output before the work (a bad path fails in a
second, not after an hour of reading), runs, writes each output beside its final name,
and only then makes them visible, and commits the nightly state last. A failure or a
kill at any moment leaves no output and the state as it was; a kill after the outputs
and before the state's commit leaves the input not applied, and running it again writes
the same outputs and commits. The `run` command only maps its options onto this call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .distributed import CONNECT_TIMEOUT, STALL_TIMEOUT
from .engine.parser import DEFAULT_BATCH_SIZE
from .engine.result import Result
from .engine.run import Progress, run_inputs
from .errors import UsageError
from .faults import crash_point
from .io.source import is_url
from .io.spool import STDIN, Input, Spools, describe, expand
from .io.typed import TypedInput, TypedSource, is_typed_object, typed_source
from .io.writers import (
    STDOUT,
    AtomicFile,
    EventsWriter,
    Format,
    Output,
    RejectsWriter,
    StreamFile,
    TableWriter,
    check_distinct,
    format_for,
    open_output,
    output_format,
    sync_folder,
    write_accounts_to,
    write_bytes,
)
from .state.folder import StateDir
from .state.manifest import state_key as read_state_key
from .state.night import Night


def process(
    source: str | Path | Sequence[str | Path] | TypedInput,
    *,
    accounts_to: str | Path | BinaryIO | None = None,
    accounts_format: Format | None = None,
    rejects_to: str | Path | TableWriter | None = None,
    events_to: str | Path | TableWriter | None = None,
    summary_to: str | Path | None = None,
    keep_rejects: bool = True,
    state: str | Path | StateDir | None = None,
    state_key: bytes | None = None,
    allow_resend: bool = False,
    cluster: str | None = None,
    cluster_connect_timeout: float = CONNECT_TIMEOUT,
    cluster_stall_timeout: float = STALL_TIMEOUT,
    quiet: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    block_bytes: int | None = None,
    progress: Progress | None = None,
) -> Result:
    """Run the job over the transactions CSV `source`, or over several in order.

    Every output named is written whole or not at all, and with `state` the state is
    committed only after every output is in place (see this module's docstring).

    Parameters
    ----------
    source : str, Path, a sequence of them, or a frame, table or Arrow stream
        The transactions CSV (docs/rules.md §2): a path, `-` (standard input), a FIFO,
        or a URL (s3://, gs://, https://, file://, ... through fsspec); plain, or
        compressed with gzip, zstd, bzip2 or xz, told by its magic bytes (§2.10). A
        sequence is applied in order as one stream of commands, each input with its own
        header and line numbers; rejects and events then carry a `file` column. A name
        holding a glob pattern (``incoming/2026-11-*.csv``) stands for the files it
        matches, sorted. With `cluster`: one plain CSV, a path or a URL.
        Or typed rows (§2.11): a Parquet or Arrow IPC file (known by its content,
        whatever its suffix), a folder or glob of Parquet files, a Polars LazyFrame or
        DataFrame, a pyarrow Table or RecordBatchReader, or any object with
        ``__arrow_c_stream__``, scanned lazily in Arrow batches.
    accounts_to : str, Path or binary stream, optional
        Write the accounts here (docs/rules.md §5.1). A path is replaced atomically (a
        symlink's target, in its own folder); `-` (stdout), a device, a FIFO or a
        stream (such as ``sys.stdout.buffer``) is written directly, CSV unless named
        otherwise, once the run succeeded (docs/rules.md §6.1).
    accounts_format : {"csv", "parquet"}, optional
        The accounts' format; by default from `accounts_to`'s suffix.
    rejects_to, events_to : str, Path or TableWriter, optional
        Stream the rejected rows (§5.2) or the events (§5.3) to this file, CSV or
        Parquet by suffix (`-`, a device or a FIFO: written as the run goes, CSV unless
        named .parquet); or to a writer of your own, which the job then commits or
        discards with the other outputs. No output may name the input or another
        output (a character device such as /dev/null excepted).
    summary_to : str or Path, optional
        Write the summary here as JSON.
    keep_rejects : bool, default True
        Keep the rejected rows in memory for ``Result.rejects`` (when they are not
        streamed to `rejects_to`). A run over a hostile file may reject many rows.
    state : str, Path or StateDir, optional
        A nightly state folder: start from what earlier runs left there, apply `source`
        once, commit the new state last. An input whose content was already applied
        raises AlreadyApplied, and nothing is written. Of several inputs, those already
        applied (or the same as one before them) are skipped, each with a note in the
        summary; all of the rest are committed in one step, or none (§7). The folder must be a state
        (`accounts-job state init DIR` makes one); otherwise NotAState, and nothing is
        created.
    state_key : bytes, optional
        The state key: the manifest is signed with it and must carry its signature
        (docs/rules.md §7). By default the environment's ACCOUNTS_JOB_STATE_KEY, if set.
    allow_resend : bool, default False
        Apply `source` even if it looks like an applied file sent again (most of its
        deposits' and withdrawals' tx ids claimed on earlier nights), which is
        otherwise refused with ProbableResend.
    cluster : str, optional
        ``tcp://HOST:PORT`` of a Dask scheduler, or ``local:N`` for N worker processes
        here: the run is sharded by client over the workers, with the same result
        (distributed/cluster.py). Takes neither `state` nor `events_to`.
    cluster_connect_timeout : float, default 20
        Seconds to reach the scheduler and complete Dask's handshake with it; then
        ClusterError (docs/rules.md §6).
    cluster_stall_timeout : float, default 300
        Seconds a cluster run waits while its cluster has no worker and no step
        finishes; then ClusterError.
    quiet : bool, default False
        During a cluster run, silence Dask's log messages and warnings (in this process
        and in `local:N` workers); they are restored after the run.
    batch_size : int
        Lines the rules take at a time; changes memory and speed, never the answer.
    block_bytes : int, optional
        Bytes read at a time (default io.blocks.BLOCK_BYTES); likewise.
    progress : callable, optional
        Called as ``progress(pass_name, nbytes)`` as the passes advance.

    Returns
    -------
    Result
        The accounts, the rejects (unless streamed or not kept) and the summary.

    Raises
    ------
    JobError
        A fatal error (docs/rules.md §6); its subclass says which, its `exit_code` the
        command line's status. Nothing was written and the state is as it was.

    Examples
    --------
    >>> result = process("tx.csv", accounts_to="accounts.parquet")  # doctest: +SKIP
    >>> result.accounts  # doctest: +SKIP
    >>> import polars as pl  # doctest: +SKIP
    >>> january = pl.scan_parquet("lake/").filter(pl.col("month") == "2024-01")  # doctest: +SKIP
    >>> process(january, rejects_to="rejects.parquet").summary.rows_read  # doctest: +SKIP
    """
    if cluster is not None and (state is not None or events_to is not None):
        raise UsageError("a --cluster run takes neither --state nor --events")
    # Parquet, Arrow and frames by their content or type (docs/rules.md §2.11); None: CSV.
    if isinstance(source, Sequence) and not isinstance(source, str) and len(source) == 1:
        source = source[0]  # one input, as the command line hands it over
    single = isinstance(source, (str, Path)) or not isinstance(source, Sequence)
    typed = _typed(source, cluster, state) if single else None
    names: list[str] = []
    if typed is None:
        names = expand([source] if single else list(source))  # type: ignore[list-item, arg-type]
        if not names:
            raise UsageError("no input given")
        if names.count(STDIN) > 1:
            raise UsageError("standard input (-) can be read once: name it once")
        if cluster is not None and (len(names) > 1 or names[0] == STDIN):
            raise UsageError("a --cluster run takes one input, a path or a URL")
    several = len(names) > 1 or (typed is not None and typed.file_column is not None)
    fmt = _accounts_format(accounts_to, accounts_format)
    for extra in (rejects_to, events_to):
        if isinstance(extra, (str, Path)):
            output_format(extra)  # an unknown suffix fails before anything is opened
        elif len(names) > 1 and isinstance(extra, TableWriter) and "file" not in extra.schema.names:
            raise UsageError(
                "a run over several inputs writes a `file` column: give the writer files=True"
            )
    # A missing input and one of a form the job cannot read fail before any output is
    # opened (docs/rules.md §6); a pipe is told when it is read.
    inputs = [describe(name) if cluster is None or not is_url(name) else None for name in names]
    if cluster is not None and inputs and inputs[0] is not None and inputs[0].path is None:
        # The workers read byte ranges of the input itself: neither a stream nor a
        # compressed file has them.
        what = "a pipe" if inputs[0].form == "csv" else f"{inputs[0].form}-compressed"
        raise UsageError(
            f"a --cluster run reads a plain CSV file or URL; {names[0]} is {what}: "
            "run it without --cluster, or write it out as a plain file first"
        )
    # Two outputs on one file, or one on an input, lose data: refused before any opens.
    named = {"accounts": accounts_to, "summary": summary_to}
    typed_path = str(source) if isinstance(source, (str, Path)) else ""
    for name in names or [typed_path]:
        check_distinct(name, {**named, "rejects": rejects_to, "events": events_to})

    # A typed source may hold a temporary copy of a stream: removed whatever happens.
    done_with = contextlib.closing(typed) if typed is not None else contextlib.nullcontext()
    with Spools() as spools, _Outputs() as outputs, done_with:
        accounts_file = outputs.file(accounts_to)
        summary_file = outputs.file(summary_to)
        rejects = outputs.table(rejects_to, RejectsWriter, several)
        events = outputs.table(events_to, EventsWriter, several)
        night = (
            outputs.night(
                state,
                typed.name if typed is not None else ", ".join(names),
                read_state_key(state_key),
                allow_resend,
            )
            if state is not None
            else None
        )
        keep = keep_rejects and rejects is None
        if cluster is not None:
            # Dask is imported only for a cluster run.
            from .distributed.cluster import process_on_cluster

            result = process_on_cluster(
                names[0],
                cluster,
                batch_size=batch_size,
                rejects_to=rejects,
                keep_rejects=keep,
                connect_timeout=cluster_connect_timeout,
                stall_timeout=cluster_stall_timeout,
                quiet=quiet,
            )
        elif typed is not None:
            from .engine.typed import run_typed

            result = run_typed(
                typed,
                batch_size=batch_size,
                rejects_to=rejects,
                events_to=events,
                keep_rejects=keep,
                progress=progress,
                night=night,
            )
        else:
            result = run_inputs(
                [i for i in inputs if isinstance(i, Input)],
                spools,
                batch_size=batch_size,
                block_bytes=block_bytes,
                rejects_to=rejects,
                events_to=events,
                keep_rejects=keep,
                progress=progress,
                night=night,
            )
        if accounts_file is not None:
            table = result.accounts_table
            accounts_file.write_with(lambda sink: write_accounts_to(table, sink, fmt))
        if summary_file is not None:
            summary = result.summary.to_json().encode()
            summary_file.write_with(lambda sink: write_bytes(sink, summary))
        outputs.commit(result)
    return result


def _typed(source: object, cluster: str | None, state: object) -> TypedSource | None:
    """The typed source `source` is, or None for a CSV; refused where a typed source
    cannot go: a cluster run (which reads CSV), or a nightly state without a file to hash
    (docs/rules.md §2.11, §7)."""
    if cluster is not None:
        if is_typed_object(source):
            raise UsageError("a --cluster run reads a CSV path or URL, not a frame or table")
        if is_url(source):  # type: ignore[arg-type]
            return None
    typed = typed_source(source)
    if typed is None:
        return None
    if cluster is not None:
        raise UsageError(f"{typed.name}: a --cluster run reads CSV; run Parquet and Arrow here")
    if state is not None and not typed.files:
        raise UsageError(
            f"{typed.name}: a --state run applies a file once by its content; write the "
            "frame or table to a Parquet file first"
        )
    return typed


def init_state(folder: str | Path, state_key: bytes | None = None) -> int:
    """Make `folder` a new, empty nightly state, as `accounts-job state init` does
    (docs/rules.md §7): the folder is made if need be; a folder that already is a state
    is left as it is.

    Parameters
    ----------
    folder : str or Path
        The state folder, for ``process(..., state=folder)``.
    state_key : bytes, optional
        Sign the state with this key (by default ACCOUNTS_JOB_STATE_KEY, if set).

    Returns
    -------
    int
        The state's version: 0 for a new state.

    Raises
    ------
    StateError
        The folder is not empty and not a state (exit status 73), or is a damaged state.
    """
    manifest, _ = StateDir(folder, read_state_key(state_key)).init()
    return manifest.version


def _is_stream(target: object) -> bool:
    return target is not None and not isinstance(target, (str, Path))


def _accounts_format(target: str | Path | BinaryIO | None, override: Format | None) -> Format:
    if target is None:
        return override or "csv"
    if _is_stream(target) or str(target) == STDOUT:
        fmt = format_for("stream.csv", override)
        if fmt != "csv":
            raise UsageError(
                "parquet output needs a file path (--out PATH); a stream such as stdout "
                "takes CSV only"
            )
        return fmt
    return output_format(target, override)  # type: ignore[arg-type]


@dataclass
class _Outputs:
    """Everything a run will make visible, opened before the work: each output a
    temporary file beside its name (or a stream, docs/rules.md §6.1), and the state's
    lock. Committed in order, outputs first and the state last; discarded whole on any
    failure, a kill included (the temporary names are all that is left then, removed by
    the next run in their folder, and the state is as before)."""

    files: list[Output | TableWriter] = field(default_factory=list)
    state: Night | None = None
    committed: bool = False

    def file(self, target: str | Path | BinaryIO | None) -> Output | None:
        if target is None:
            return None
        if _is_stream(target):
            output: Output = StreamFile.of(target)  # type: ignore[arg-type]
        else:
            output = open_output(target, reversible=True)  # type: ignore[arg-type]
        self.files.append(output)
        return output

    def table(
        self, target: str | Path | TableWriter | None, kind: type[TableWriter], files: bool
    ) -> TableWriter | None:
        if target is None:
            return None
        own = isinstance(target, TableWriter)
        writer = target if own else kind(target, files=files)  # type: ignore[call-arg,arg-type]
        writer.file.reversible = True  # the job commits it with the others, or takes it back
        self.files.append(writer)
        return writer

    def night(
        self, folder: str | Path | StateDir, source: str, key: bytes | None, allow_resend: bool
    ) -> Night:
        self.state = Night.open(folder, source, key, allow_resend)
        return self.state

    def commit(self, result: Result) -> None:
        """The outputs first, all of them or none, then the state: a run stopped in
        between leaves the input not applied, and running it again writes the same
        outputs and commits.

        Files go first, each fsynced and renamed onto its name with what it replaces
        kept aside, then their folders are fsynced: a rename that fails puts back what
        the others replaced. Streams go last, as they cannot be taken back. Only then,
        the outputs on disk to stay, the state commits (docs/rules.md §6.1, §7).
        """
        done: list[Output | TableWriter] = []
        try:
            for f in sorted(self.files, key=lambda f: f.phase):
                f.commit()
                done.append(f)
            folders = {
                f.folder
                for f in (f.file if isinstance(f, TableWriter) else f for f in done)
                if isinstance(f, AtomicFile) and f.folder is not None
            }
            for folder in sorted(folders):
                sync_folder(folder)
        except BaseException:
            for f in reversed(done):
                with contextlib.suppress(Exception):
                    f.rollback()
            raise
        for f in done:
            f.finish()
        crash_point("outputs-written")
        if self.state is not None:
            self.state.commit(result.summary)
        self.committed = True

    def __enter__(self) -> _Outputs:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.committed:
            return
        for f in self.files:
            f.discard()
        if self.state is not None:
            self.state.discard()
